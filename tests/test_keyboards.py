"""The main menu keyboard is built once per language and catalogs, and a keyboard is serialized
once for every reply that sends it again (bot/handlers/common.py)."""

from __future__ import annotations

import json

from bot.callbacks import Menu
from bot.config import CONTENT_DIR
from bot.handlers.common import _wire_markup, keyboard, main_menu_keyboard
from bot.i18n import current_lang, set_content_dir, t


def _labels(markup) -> list[str]:
    return [b.text for row in markup.inline_keyboard for b in row]


def test_main_menu_is_shared_per_language_and_in_that_language() -> None:
    token = current_lang.set("en")
    try:
        en = main_menu_keyboard()
        assert main_menu_keyboard() is en
        current_lang.set("zh")
        zh = main_menu_keyboard()
        assert zh is not en
        assert _labels(zh) == [str(t(k, "zh")) for k in ("menu.guides", "menu.calc", "menu.reminders", "menu.language")]
        assert [b.callback_data for row in zh.inline_keyboard for b in row] == [
            Menu(item).pack() for item in ("guides", "calc", "remind", "lang")
        ]
    finally:
        current_lang.reset(token)


def test_new_catalogs_give_a_new_menu() -> None:
    before = main_menu_keyboard()
    set_content_dir(CONTENT_DIR)  # the catalogs read again (as BOT_CONTENT_DIR does at start)
    try:
        after = main_menu_keyboard()
        assert after is not before and _labels(after) == _labels(before)
    finally:
        set_content_dir(CONTENT_DIR)


def test_wire_markup_is_the_bot_api_json_of_the_keyboard() -> None:
    markup = keyboard([[("A & B", "menu:main")], [("二", Menu("calc").pack())]])
    wire = _wire_markup(markup)
    assert wire == markup.to_dict()
    assert json.loads(json.dumps(wire)) == {
        "inline_keyboard": [
            [{"text": "A & B", "callback_data": "menu:main"}],
            [{"text": "二", "callback_data": "menu:calc"}],
        ]
    }
    # an equal keyboard built again is served from the cache
    assert _wire_markup(keyboard([[("A & B", "menu:main")], [("二", Menu("calc").pack())]])) is wire
