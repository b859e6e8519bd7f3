"""The real bot over HTTP through the local Bot API server: start, languages, menus, fallback."""

from __future__ import annotations

import pytest

from bot.i18n import LANGS, t
from tests.harness import BotHarness


@pytest.mark.parametrize(("code", "lang"), [("en", "en"), ("ms", "ms"), ("zh-hans", "zh")])
async def test_start_greets_in_telegram_language(bot: BotHarness, code: str, lang: str) -> None:
    (reply,) = await bot.say(100, "/start", lang=code)
    assert reply.parse_mode == "HTML"
    assert reply.text.endswith(t("start.menu_prompt", lang))
    assert reply.text.startswith(t("start.greeting", lang, name="Test"))
    labels = [b["text"] for b in reply.buttons]
    assert labels == [
        t(k, lang) for k in ("menu.guides", "menu.calc", "menu.reminders", "menu.language")
    ]
    assert bot.storage.get_user(100)["lang"] == lang


async def test_start_with_payload_is_stored(bot: BotHarness) -> None:
    await bot.say(101, "/start agency-XYZ123", lang="en")
    assert bot.storage.get_user(101)["start_payload"] == "agency-XYZ123"


async def test_language_switch_survives_restart(bot: BotHarness) -> None:
    (menu,) = await bot.say(102, "/language", lang="en")
    assert [b["callback_data"] for b in menu.buttons] == [f"lang:{code}" for code in LANGS]
    await bot.press(102, menu, "lang:ms")
    edited = await bot.server.wait_for_edit(102, menu.message_id)
    assert edited.text == t("language.set", "ms")
    await bot.restart()
    # Telegram still says "en", but the user chose Malay.
    (reply,) = await bot.say(102, "/help", lang="en")
    assert reply.text.startswith(t("help.text", "ms")) and "/remind" in reply.text


async def test_menu_language_button_opens_picker(bot: BotHarness) -> None:
    (menu,) = await bot.say(103, "/start", lang="zh")
    await bot.press(103, menu, "menu:lang")
    picker = await bot.server.wait_for_edit(103, menu.message_id)
    assert [b["callback_data"] for b in picker.buttons] == ["lang:en", "lang:ms", "lang:zh"]


async def test_command_menus_in_three_languages(bot: BotHarness) -> None:
    default = bot.server.commands(language_code="")
    malay = bot.server.commands(language_code="ms")
    chinese = bot.server.commands(language_code="zh")
    assert (
        [c["command"] for c in default]
        == [c["command"] for c in malay]
        == [c["command"] for c in chinese]
    )
    assert {"start", "help", "language"} <= {c["command"] for c in default}
    by_name = {
        lang: {c["command"]: c["description"] for c in menu}
        for lang, menu in (("en", default), ("ms", malay), ("zh", chinese))
    }
    for lang in LANGS:
        assert by_name[lang]["language"] == t("cmd.language", lang)
    assert bot.server.effective_commands(104, "ms") == malay


async def test_unknown_message_gets_menu(bot: BotHarness) -> None:
    await bot.server.send_media(105, photo=True, caption=None, language_code="ms")
    reply = await bot.server.wait_for_bot_message(105)
    assert reply.text.startswith(t("fallback.unsupported", "ms"))
    assert len(reply.buttons) == 4


async def test_forged_button_is_answered_politely(bot: BotHarness) -> None:
    (menu,) = await bot.say(106, "/start", lang="en")
    query_id = await bot.server.press_button(106, menu.message_id, "nonsense:42", strict=False)
    answer = await bot.server.wait_for_callback_answer(query_id)
    assert answer.get("text") == t("error.stale_button", "en")


async def test_bot_content_dir_moves_the_ui_strings_too(local_api, tmp_path) -> None:
    import shutil

    from bot.config import CONTENT_DIR
    from bot.i18n import set_content_dir

    content = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, content)
    po = content / "ms" / "messages.po"
    original = t("start.greeting", "ms")
    po.write_text(
        po.read_text(encoding="utf-8").replace(
            'msgid "start.greeting"\nmsgstr "', 'msgid "start.greeting"\nmsgstr "[ubah] ', 1
        ),
        encoding="utf-8",
    )
    harness = BotHarness(local_api, tmp_path / "bot.sqlite3", content_dir=content)
    await harness.start()
    try:
        replies = await harness.say(42, "/start", lang="ms")
        assert any(m.text.startswith("[ubah] ") for m in replies)
    finally:
        await harness.stop()
        set_content_dir(CONTENT_DIR)
    assert t("start.greeting", "ms") == original
