"""Guides in the chat, end to end: the real bot polling the local Bot API server.

Expectations come from the guide files themselves (titles, steps, sources, review dates) and
the catalogs, not from the handler's output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

from bot.commands import unanswered
from bot.config import CONTENT_DIR
from bot.domain.guides import load_guides
from bot.i18n import LANG_NAMES, format_date, t
from bot.localapi.server import ChatMessage
from tests.harness import BotHarness

LIB = load_guides(CONTENT_DIR)
HELPLINE = "1-300-22-8000"


def plain(key: str, lang: str, **params: object) -> str:
    """A catalog text as the user sees it (tags removed by the server's HTML parser)."""
    from bot.localapi.server import parse_html

    return parse_html(str(t(key, lang, **params)))[0]


def header(guide_id: str, lang: str, n: int) -> str:
    guide = LIB.get(guide_id, lang)
    assert guide is not None
    return f"{guide.title} · {plain('guides.step_of', lang, n=n, total=len(guide.steps))}"


def step_heading(guide_id: str, lang: str, n: int) -> str:
    return LIB.get(guide_id, lang).steps[n - 1].title


async def press_and_edit(
    bot: BotHarness, user: int, message: ChatMessage, data: str
) -> ChatMessage:
    answer = await bot.press(user, message, data)
    assert answer.get("text") in (None, "")
    return await bot.server.wait_for_edit(user, message.message_id)


@pytest.mark.parametrize(
    ("question", "guide_id", "lang"),
    [
        ("how do I pay EIS", "pay-eis", "en"),
        ("macam mana nak daftar maid dengan PERKESO", "domestic-register", "ms"),
        ("外佣社险怎么付", "domestic-pay", "zh"),
    ],
)
async def test_question_opens_guide_in_its_language(
    bot: BotHarness, question: str, guide_id: str, lang: str
) -> None:
    # The user's Telegram is in English: the answer follows the question's language.
    (reply,) = await bot.say(200, question, lang="en")
    assert reply.parse_mode == "HTML"
    assert reply.plain_text.startswith(header(guide_id, lang, 1))
    assert step_heading(guide_id, lang, 1) in reply.plain_text
    data = reply.callback_data
    assert f"g:{guide_id}:2:{lang}" in data
    assert f"ga:{guide_id}:{lang}" in data
    assert not any(d.startswith(f"g:{guide_id}:0:") for d in data)  # no Back on step 1
    offer = [d for d in data if d.startswith("gd:")]
    assert offer == ([] if lang == "en" else [f"gd:{lang}"])
    assert bot.storage.unanswered_summary() == []


async def test_mixed_language_and_misspelling(bot: BotHarness) -> None:
    (reply,) = await bot.say(201, "how to bayar sosco for my maid", lang="en")
    assert reply.plain_text.startswith(header("domestic-pay", "en", 1))


async def test_next_to_the_end_and_back_edits_in_place(bot: BotHarness) -> None:
    user, gid, lang = 202, "domestic-pay", "ms"
    guide = LIB.get(gid, lang)
    total = len(guide.steps)
    (message,) = await bot.say(
        user, "macam mana nak bayar caruman PERKESO pembantu rumah", lang="ms"
    )
    assert message.plain_text.startswith(header(gid, lang, 1))
    for n in range(2, total + 1):
        message = await press_and_edit(bot, user, message, f"g:{gid}:{n}:{lang}")
        assert message.plain_text.startswith(header(gid, lang, n))
        assert step_heading(gid, lang, n) in message.plain_text
        for link in guide.links:
            shown = any(b.get("url") == link.url for b in message.buttons)
            if link.step == n or n == total:
                assert shown, (n, link)
    # The last step: review date, sources, 👍/👎, related guides, ask again; no Next.
    text = message.plain_text
    assert plain("guides.reviewed", lang, date=format_date(guide.reviewed, lang)) in text
    for source in guide.sources:
        assert source.label in text
        if source.url:
            assert any(e.get("url") == source.url for e in message.entities)
    assert plain("guides.did_it_help", lang) in text
    data = message.callback_data
    assert f"gf:{gid}:{lang}:1" in data and f"gf:{gid}:{lang}:0" in data
    for rid in guide.related:
        assert f"g:{rid}:1:{lang}" in data
    assert f"gq:{lang}" in data
    assert f"g:{gid}:{total + 1}:{lang}" not in data
    for n in range(total - 1, 0, -1):
        message = await press_and_edit(bot, user, message, f"g:{gid}:{n}:{lang}")
        assert message.plain_text.startswith(header(gid, lang, n))
    assert plain("guides.did_it_help", lang) not in message.plain_text
    # Every step was an edit of the one message.
    assert len(bot.server.bot_messages(user)) == 1
    assert len(message.edits) == 2 * (total - 1)
    # "Ask another question" prompts for a new question.
    await bot.press(user, message, f"ga:{gid}:{lang}")
    message = await bot.server.wait_for_edit(user, message.message_id)
    await bot.press(user, message, f"gq:{lang}")
    prompt = await bot.server.wait_for_bot_message(user)
    assert prompt.plain_text == plain("guides.ask_prompt", lang)


async def test_all_steps_splits_long_guides(bot: BotHarness) -> None:
    split = 0
    for i, gid in enumerate(LIB.ids()):
        if i % 10 == 0:  # a new user every ten guides: one user's presses stay under flood control
            user = 203 + i
            (menu,) = await bot.say(user, "/guides", lang="en")
        guide = LIB.get(gid, "en")
        before = len(bot.server.bot_messages(user))
        query = await bot.server.press_button(user, menu.message_id, f"ga:{gid}:en", strict=False)
        await bot.server.wait_for_callback_answer(query)

        def done(
            gid: str = gid, before: int = before, user: int = user, menu: ChatMessage = menu
        ) -> list[ChatMessage] | None:
            parts = [
                bot.server.message(user, menu.message_id),
                *bot.server.bot_messages(user)[before:],
            ]
            return parts if f"gf:{gid}:en:0" in parts[-1].callback_data else None

        parts = await bot.server.wait_until(done)
        assert parts[0].plain_text.startswith(guide.title)
        joined = "\n".join(p.plain_text for p in parts)
        for step in guide.steps:
            assert step.title in joined
        assert (
            plain("guides.reviewed", "en", date=format_date(guide.reviewed, "en"))
            in parts[-1].plain_text
        )
        assert all(len(p.plain_text) <= 4096 for p in parts)
        if sum(len(step.html) for step in guide.steps) > 4096:
            assert len(parts) > 1, gid
        if len(parts) > 1:
            split += 1
            assert all(f"gf:{gid}:en:0" not in p.callback_data for p in parts[:-1])
    assert split >= 1  # domestic-coverage in English does not fit one message


async def test_stale_and_forged_buttons_are_answered_politely(bot: BotHarness) -> None:
    user = 204
    (message,) = await bot.say(user, "how do I pay EIS", lang="en")
    for data in (
        "g:no-such-guide:1:en",
        "g:pay-eis:99:en",
        "g:pay-eis:1:xx",
        "g:pay-eis:1:",
        "gf:pay-eis:en",
        "gt:nosuchtopic:en",
        "ga:no-such-guide:ms",
    ):
        query = await bot.server.press_button(user, message.message_id, data, strict=False)
        answer = await bot.server.wait_for_callback_answer(query)
        assert answer.get("text") == t("error.stale_button", "en"), data
        await bot.server.wait_for_bot_message(user)  # the main menu that follows
    current = bot.server.message(user, message.message_id)
    assert current.edits == []
    assert current.plain_text.startswith(header("pay-eis", "en", 1))


async def test_guides_command_lists_topics_and_opens_a_guide(bot: BotHarness) -> None:
    user = 205
    (menu,) = await bot.say(user, "/guides", lang="zh-hans")
    groups = LIB.by_topic("zh")
    assert {"employers", "households"} <= set(groups)
    assert [d for d in menu.callback_data if d.startswith("gt:")] == [
        f"gt:{topic}:zh" for topic in groups
    ]
    for topic, guides in groups.items():
        assert plain(f"guides.topic.{topic}", "zh") in menu.plain_text
        for guide in guides:
            assert guide.title in menu.plain_text
    topic = await press_and_edit(bot, user, menu, "gt:households:zh")
    expected = [f"g:{g.id}:1:zh" for g in groups["households"]]
    assert [d for d in topic.callback_data if d.startswith("g:")] == expected
    first = groups["households"][0]
    opened = await press_and_edit(bot, user, topic, f"g:{first.id}:1:zh")
    assert opened.plain_text.startswith(header(first.id, "zh", 1))
    back = await press_and_edit(bot, user, opened, "gm:zh")
    assert back.callback_data == menu.callback_data


async def test_main_menu_guides_button(bot: BotHarness) -> None:
    user = 206
    (menu,) = await bot.say(user, "/start", lang="ms")
    edited = await press_and_edit(bot, user, menu, "menu:guides")
    assert edited.plain_text.startswith(plain("guides.menu_title", "ms"))
    assert "gt:households:ms" in edited.callback_data


async def test_did_you_mean(bot: BotHarness) -> None:
    (reply,) = await bot.say(207, "socso", lang="en")
    assert reply.plain_text == plain("understand.not_sure", "en")
    guides = [d for d in reply.callback_data if d.startswith("g:")]
    assert 1 <= len(guides) <= 3
    for data in guides:
        _, gid, step, lang = data.split(":")
        assert gid in LIB.ids() and step == "1" and lang == "en"
    assert bot.storage.unanswered_summary() == []


def _columns(bot: BotHarness, table: str) -> set[str]:
    return {c.name for c in bot.storage.db[table].columns}


async def test_thumbs_down_and_nonsense_are_kept_for_the_operator(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    user = 208
    nonsense = "purple elephant banana"
    for _ in range(2):
        (reply,) = await bot.say(user, nonsense, lang="en")
        assert reply.plain_text.startswith(plain("understand.no_guide", "en"))
        assert HELPLINE in reply.plain_text
        assert "gt:employers:en" in reply.callback_data
    (answer,) = await bot.say(user, "how do I pay EIS", lang="en")
    await bot.press(user, answer, "ga:pay-eis:en")
    answer = await bot.server.wait_for_edit(user, answer.message_id)
    result = await bot.press(user, answer, "gf:pay-eis:en:0")
    assert result.get("text") == plain("guides.thanks_no", "en")
    answer = await bot.server.wait_for_edit(user, answer.message_id)
    assert not any(d.startswith("gf:") for d in answer.callback_data)  # one vote per message

    feedback = list(bot.storage.db["feedback"].rows)
    assert [(r["guide_id"], r["lang"], r["helpful"]) for r in feedback] == [("pay-eis", "en", 0)]
    for table in ("feedback", "unanswered"):
        assert not {"chat_id", "user_id"} & _columns(bot, table)
        for row in bot.storage.db[table].rows:
            assert str(user) not in json.dumps(row)

    monkeypatch.setenv("BOT_DB", str(bot.config.db_path))
    assert unanswered.run(argparse.Namespace(limit=50, json=False)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    title = LIB.get("pay-eis", "en").title.lower()
    assert len(lines) == 3  # header, nonsense x2, thumbs-down x1
    assert lines[1].split()[:3] == ["2", "en", "no-match"] and lines[1].endswith(nonsense)
    assert lines[2].split()[:3] == ["1", "en", "thumbs-down"] and lines[2].endswith(title)
    assert unanswered.run(argparse.Namespace(limit=1, json=True)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        {
            **rows[0],
            "count": 2,
            "lang": "en",
            "reason": "no-match",
            "text": nonsense,
            "guide_id": None,
        }
    ]


def test_unanswered_cli_empty_and_bad_limit(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.storage import Storage

    db = tmp_path / "empty.sqlite3"
    Storage(db).close()
    monkeypatch.setenv("BOT_DB", str(db))
    assert unanswered.run(argparse.Namespace(limit=10, json=False)) == 0
    assert capsys.readouterr().out.strip() == unanswered.EMPTY
    assert unanswered.run(argparse.Namespace(limit=0, json=False)) == 2
    assert capsys.readouterr().err.strip()


async def test_salary_goes_to_the_calculator(bot: BotHarness) -> None:
    (reply,) = await bot.say(209, "RM3,500", lang="en")
    assert not reply.plain_text.startswith(plain("understand.no_guide", "en"))
    assert reply.plain_text != plain("understand.not_sure", "en")
    assert bot.storage.unanswered_summary() == []
    if importlib.util.find_spec("bot.handlers.calc") is not None:
        assert not reply.plain_text.startswith(plain("fallback.not_understood", "en"))


async def test_guide_button_works_after_restart(bot: BotHarness) -> None:
    user = 210
    (message,) = await bot.say(user, "how do I pay EIS", lang="en")
    await bot.restart()
    edited = await press_and_edit(bot, user, message, "g:pay-eis:2:en")
    assert edited.plain_text.startswith(header("pay-eis", "en", 2))


async def test_detected_language_button_sets_the_default(bot: BotHarness) -> None:
    user = 211
    (reply,) = await bot.say(user, "macam mana nak daftar maid dengan PERKESO", lang="en")
    assert bot.storage.get_user(user)["lang"] == "en"
    label = next(b["text"] for b in reply.buttons if b.get("callback_data") == "gd:ms")
    assert LANG_NAMES["ms"] in label
    answer = await bot.press(user, reply, "gd:ms")
    assert answer.get("text") == plain("guides.lang_set", "ms")
    edited = await bot.server.wait_for_edit(user, reply.message_id)
    assert "gd:ms" not in edited.callback_data
    user_row = bot.storage.get_user(user)
    assert (user_row["lang"], user_row["lang_chosen"]) == ("ms", 1)
    (help_reply,) = await bot.say(user, "/help", lang="en")
    assert help_reply.text.startswith(t("help.text", "ms"))


async def test_menu_follows_the_journey_and_a_guide_ends_with_related_buttons(
    bot: BotHarness,
) -> None:
    """The menu lists employers, households, workers, general, each in its ``order``; a
    guide's last step offers its related guides, and pressing one opens that guide."""
    user, lang = 211, "ms"
    (menu,) = await bot.say(user, "/guides", lang="ms")
    topics = [d.split(":")[1] for d in menu.callback_data if d.startswith("gt:")]
    assert topics == [t for t in ("employers", "households", "workers", "general") if t in topics]
    assert topics[:2] == ["employers", "households"]
    page = await press_and_edit(bot, user, menu, f"gt:employers:{lang}")
    ids = [d.split(":")[1] for d in page.callback_data if d.startswith("g:")]
    orders = [LIB.get(gid, lang).order for gid in ids]
    assert None not in orders and orders == sorted(orders)
    assert ids.index("assist-register") < ids.index("pay-socso") < ids.index("eis-not-eligible")
    # Households, then domestic-register step by step: only the last step has related guides.
    menu = await press_and_edit(bot, user, page, f"gm:{lang}")
    page = await press_and_edit(bot, user, menu, f"gt:households:{lang}")
    gid = "domestic-register"
    guide = LIB.get(gid, lang)
    message = await press_and_edit(bot, user, page, f"g:{gid}:1:{lang}")
    for n in range(2, len(guide.steps) + 1):
        assert not any("➡️" in b.get("text", "") for b in message.buttons)
        message = await press_and_edit(bot, user, message, f"g:{gid}:{n}:{lang}")
    related = [b for b in message.buttons if b.get("callback_data", "").startswith("g:")]
    related_ids = [b["callback_data"].split(":")[1] for b in related if "➡️" in b["text"]]
    assert related_ids == list(guide.related) and related_ids
    for b in related:
        if "➡️" in b["text"]:
            rid = b["callback_data"].split(":")[1]
            assert b["text"] == f"➡️ {LIB.get(rid, lang).title}"
    # Pressing the first related guide opens its first step in place, in the same language.
    rid = related_ids[0]
    opened = await press_and_edit(bot, user, message, f"g:{rid}:1:{lang}")
    assert opened.plain_text.startswith(header(rid, lang, 1))
    assert step_heading(rid, lang, 1) in opened.plain_text
