"""Agencies and broadcasts end to end: the real bot polling the local Bot API server."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.agencies import AgencyService, plain_text, unfollow_markup
from bot.handlers import broadcast as broadcast_handlers
from bot.i18n import LANG_NAMES, LANGS, n, t
from bot.localapi.server import ChatMessage, LocalBotAPI
from bot.outbox import Outbox
from bot.storage import Storage
from tests.harness import BotHarness

OP = 1
STAFF = 200
OTHER_STAFF = 201
LINK_RE = re.compile(r"https://t\.me/perkeso_local_bot\?start=([A-Za-z0-9_-]+)")
KL_FORMAT = "%Y-%m-%d %H:%M"


@pytest.fixture
async def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BotHarness]:
    monkeypatch.setattr(broadcast_handlers, "PROGRESS_INTERVAL", 0.3)
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(server, tmp_path / "bot.sqlite3", admin_ids=frozenset({OP}))
        await harness.start()
        yield harness
        await harness.stop()


async def new_agency(bot: BotHarness, name: str) -> tuple[str, str]:
    """The operator creates an agency; returns (staff payload, follow payload)."""
    (answer,) = await bot.say(OP, f"/agency new {name}")
    staff, follow = LINK_RE.findall(answer.text)
    assert staff.startswith("staff-") and follow.startswith("f-")
    return staff, follow


async def follow(bot: BotHarness, user: int, payload: str, lang: str) -> ChatMessage:
    (answer,) = await bot.say(user, f"/start {payload}", lang=lang)
    return answer


def plain(markup: str) -> str:
    """What a reader sees of a Telegram-HTML catalog text: no tags, entities read."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup)))


def header(lang: str, agency: str = "Acme Payroll") -> str:
    return plain(t("broadcast.header", lang, agency=agency))


def footer(lang: str, agency: str = "Acme Payroll") -> str:
    return plain(t("broadcast.footer", lang, agency=agency))


def deliveries(bot: BotHarness, chat_id: int, agency: str = "Acme Payroll") -> list[ChatMessage]:
    """The broadcasts ``chat_id`` received: texts (sendMessage) and media (copyMessage) whose
    first line names ``agency``, and copies without that line (rows queued before headers)."""
    heads = {header(lang, agency) for lang in LANGS}
    return [
        m for m in bot.server.bot_messages(chat_id)
        if m.copied_from is not None or (m.plain_text or "").split("\n", 1)[0] in heads
    ]


async def press_last(bot: BotHarness, user: int, data: str) -> dict:
    """Press ``data`` on the newest bot message of ``user`` that shows it."""
    message = next(m for m in reversed(bot.server.bot_messages(user)) if data in m.callback_data)
    return await bot.press(user, message, data)


async def test_two_language_broadcast_reaches_each_follower_once(bot: BotHarness) -> None:
    server = bot.server
    staff_link, follow_a = await new_agency(bot, "Acme Payroll")
    _, follow_b = await new_agency(bot, "Beta Agency")
    (welcome,) = await bot.say(STAFF, f"/start {staff_link}")
    assert welcome.text.startswith(t("agency.staff_welcome", "en", agency="Acme Payroll"))
    followers = {301: "en", 302: "ms", 303: "zh-hans", 305: "en"}
    for user, code in followers.items():
        answer = await follow(bot, user, follow_a, code)
        assert "Acme Payroll" in answer.text
    await follow(bot, 304, follow_b, "en")
    await follow(bot, 305, follow_b, "en")  # follows both agencies

    (mode,) = await bot.say(STAFF, "/broadcast")
    assert mode.callback_data == ["bc:m:one", "bc:m:each", "bc:cancel"]
    assert "4" in mode.text
    await bot.press(STAFF, mode, "bc:m:each")
    ask_en = await server.wait_for_bot_message(STAFF)
    assert LANG_NAMES["en"] in ask_en.text
    en_source = await server.send_text(STAFF, "Contribution rates change on 1 December.")
    ask_ms = await server.wait_for_bot_message(STAFF)
    assert LANG_NAMES["ms"] in ask_ms.text and "bc:skip" in ask_ms.callback_data
    ms_source = await server.send_media(STAFF, photo=True, caption="Kadar caruman berubah pada 1 Disember.")
    ask_zh = await server.wait_for_bot_message(STAFF)
    assert LANG_NAMES["zh"] in ask_zh.text
    await bot.press(STAFF, ask_zh, "bc:skip")  # Chinese followers fall back to English
    audience = await server.wait_for_bot_message(STAFF)
    assert audience.callback_data == ["bc:a:all", "bc:a:en", "bc:a:ms", "bc:a:zh", "bc:cancel"]
    await bot.press(STAFF, audience, "bc:a:all")

    # Preview: a title and the message as followers get it (the line naming the agency, the
    # footer button) for each version, then the count. The text is sent as text, the photo copied.
    preview = await server.wait_for_bot_messages(STAFF, 5)
    en_copy, ms_copy = preview[1], preview[3]
    assert en_copy.method == "sendMessage" and en_copy.copied_from is None and en_source["text"] in en_copy.plain_text
    assert en_copy.plain_text == (f"{header('en')}\n\nContribution rates change on 1 December.\n\n"
                                  f"{footer('en')}")
    assert ms_copy.copied_from == (STAFF, ms_source["message_id"]) and ms_copy.media["type"] == "photo"
    assert ms_copy.plain_text == f"{header('ms')}\n\nKadar caruman berubah pada 1 Disember."
    assert ms_copy.buttons[0]["text"] == plain_text("broadcast.unfollow_button", "ms", agency="Acme Payroll")
    assert "3" in preview[0].text and "1" in preview[2].text  # en+zh get English, ms gets Malay
    assert en_copy.buttons[0]["text"] == plain_text("broadcast.unfollow_button", "en", agency="Acme Payroll")
    confirm = preview[4]
    assert confirm.text == t("broadcast.confirm_now", "en", count=4)
    assert confirm.callback_data == ["bc:send", "bc:sched", "bc:cancel"]
    await bot.press(STAFF, confirm, "bc:send")

    report_text = str(t("broadcast.report", "en", id=1, delivered=4, unreachable=0, failed=0, cancelled=0))
    await server.wait_until(lambda: any(m.text == report_text for m in server.bot_messages(STAFF)), 15)
    progress = next(m for m in server.bot_messages(STAFF) if m.edits and m.text.startswith("Broadcast #1:"))
    assert progress.edits[0][0] == t("broadcast.starting", "en")  # one message, edited in place
    assert progress.text == t("broadcast.progress", "en", id=1, sent=4, total=4, unreachable=0, failed=0)

    expected = {301: (None, "en"), 302: (ms_source, "ms"), 303: (None, "zh"), 305: (None, "en")}
    for user, (source, lang) in expected.items():
        got = deliveries(bot, user)
        assert len(got) == 1, user
        if source is None:  # the English text, with the header and footer in the follower's language
            assert got[0].copied_from is None and got[0].method == "sendMessage"
            assert got[0].plain_text == (f"{header(lang)}\n\nContribution rates change on 1 December."
                                         f"\n\n{footer(lang)}")
        else:  # the Malay photo, copied, its caption under the header line
            assert got[0].copied_from == (STAFF, source["message_id"])
            assert got[0].plain_text == f"{header(lang)}\n\nKadar caruman berubah pada 1 Disember."
        [button] = got[0].buttons
        assert button["text"] == plain_text("broadcast.unfollow_button", lang, agency="Acme Payroll")
        assert button["callback_data"].startswith("af:u:")
    assert deliveries(bot, 304) == []  # another agency's follower gets nothing

    # The footer button: the follower stops following; a second press changes nothing.
    answer = await bot.press(302, deliveries(bot, 302)[0], deliveries(bot, 302)[0].callback_data[0])
    assert answer["text"] == plain_text("agency.unfollowed", "ms", agency="Acme Payroll")
    service = AgencyService(bot.storage)
    assert [a.name for a in service.followed(302)] == []
    assert sorted(a.name for a in service.followed(305)) == ["Acme Payroll", "Beta Agency"]

    (status,) = await bot.say(STAFF, "/broadcast status")
    assert "#1" in status.text and t("broadcast.state_done", "en") in status.text


async def test_refusals_and_forged_buttons_change_nothing(bot: BotHarness) -> None:
    server = bot.server
    staff_link, follow_a = await new_agency(bot, "Acme Payroll")
    _, follow_b = await new_agency(bot, "Beta Agency")
    await bot.say(STAFF, f"/start {staff_link}")
    await follow(bot, 301, follow_a, "en")
    await follow(bot, 302, follow_a, "ms")
    await follow(bot, 304, follow_b, "en")

    # Not staff, not operator: /broadcast and /agency are refused politely.
    (refused,) = await bot.say(999, "/broadcast")
    assert refused.text == t("broadcast.not_allowed", "en")
    (refused,) = await bot.say(STAFF, "/agency new Evil")
    assert refused.text == t("agency.not_allowed", "en")
    assert len(AgencyService(bot.storage).list_agencies()) == 2

    # The staff member starts composing; another user presses the staff member's buttons.
    (mode,) = await bot.say(STAFF, "/broadcast")
    assert "bc:m:one" in mode.callback_data
    # The message is not in the stranger's chat, so Telegram would send the press without a
    # message: the pre-handler answers it as a stale button before any feature sees it.
    for data in ("bc:m:one", "bc:send", "bc:t:*", "bc:x:1"):
        query = await server.press_button(999, mode.message_id, data, strict=False)
        answer = await server.wait_for_callback_answer(query)
        assert answer.get("text") in (t("broadcast.not_allowed", "en"), t("error.stale_button", "en"))
    # Made-up data inside the staff member's own conversation: target of another agency, everyone.
    other_code = AgencyService(bot.storage).list_agencies()[1]["code"]
    for data in (f"bc:t:{other_code}", "bc:t:*", "bc:a:xx", "bc:send"):
        query = await server.press_button(STAFF, mode.message_id, data, strict=False)
        answer = await server.wait_for_callback_answer(query)
        assert answer.get("text") in (t("broadcast.not_allowed", "en"), t("broadcast.stale", "en"))
    # The draft is still usable: finish it and check only the own agency's follower gets it.
    await bot.press(STAFF, mode, "bc:m:one")
    await server.wait_for_bot_message(STAFF)
    source = await server.send_text(STAFF, "Hello followers")
    audience = await server.wait_for_bot_message(STAFF)
    await bot.press(STAFF, audience, "bc:a:ms")  # only Malay users
    preview = await server.wait_for_bot_messages(STAFF, 3)
    assert preview[2].text == t("broadcast.confirm_now", "en", count=1)
    await bot.press(STAFF, preview[2], "bc:send")
    await server.wait_until(lambda: deliveries(bot, 302), 10)
    assert source["text"] == "Hello followers"
    assert deliveries(bot, 302)[0].plain_text == f"{header('ms')}\n\nHello followers\n\n{footer('ms')}"
    await server.wait_until(lambda: AgencyService(bot.storage).get_broadcast(1)["state"] == "done", 10)
    assert deliveries(bot, 301) == [] and deliveries(bot, 304) == [] and deliveries(bot, 999) == []
    sent = [c for m in ("sendMessage", "copyMessage") for c in server.calls(m)]
    assert [c["chat_id"] for c in sent if "Hello followers" in str(c.get("text"))
            and int(c["chat_id"]) != STAFF] == [302]


async def test_scheduled_broadcast_can_be_cancelled(bot: BotHarness) -> None:
    server = bot.server
    staff_link, follow_a = await new_agency(bot, "Acme Payroll")
    await bot.say(STAFF, f"/start {staff_link}")
    await follow(bot, 301, follow_a, "en")
    (ask,) = await bot.say(STAFF, "/broadcast")  # one language: straight to the message
    assert ask.text == t("broadcast.ask_message_one", "en")
    await server.send_text(STAFF, "Reminder for next week")
    preview = await server.wait_for_bot_messages(STAFF, 3)
    await bot.press(STAFF, preview[2], "bc:sched")
    await server.wait_for_bot_message(STAFF)
    (bad,) = await bot.say(STAFF, "next tuesday")
    assert bad.text == t("broadcast.bad_when", "en")
    (past,) = await bot.say(STAFF, "2020-01-01 09:00")
    assert past.text == t("broadcast.past_when", "en")
    when = (datetime.now(UTC) + timedelta(days=2)).astimezone(bot.config.tz).strftime(KL_FORMAT)
    (confirm,) = await bot.say(STAFF, when)
    assert when in confirm.text and confirm.callback_data == ["bc:send", "bc:cancel"]
    await bot.press(STAFF, confirm, "bc:send")
    scheduled = await server.wait_for_bot_message(STAFF)
    assert scheduled.text == t("broadcast.scheduled", "en", id=1, count=1, when=when)

    outbox = bot.app.bot_data["services"].outbox
    assert outbox.group_progress("broadcast:1")["queued"] == 1
    await bot.restart()  # a scheduled broadcast survives a restart
    outbox = bot.app.bot_data["services"].outbox
    assert outbox.group_progress("broadcast:1")["queued"] == 1

    # Another agency's staff member cannot see or cancel it.
    other_link, _ = await new_agency(bot, "Beta Agency")
    await bot.say(OTHER_STAFF, f"/start {other_link}")
    (other,) = await bot.say(OTHER_STAFF, "/broadcast cancel 1")
    assert other.text == t("broadcast.nothing_to_cancel", "en")
    (other_status,) = await bot.say(OTHER_STAFF, "/broadcast status")
    assert other_status.text == t("broadcast.status_none", "en")

    (status,) = await bot.say(STAFF, "/broadcast status")
    assert "#1" in status.text and status.callback_data == ["bc:x:1"]
    await bot.press(STAFF, status, "bc:x:1")
    cancelled = await server.wait_for_bot_message(STAFF)
    assert cancelled.text == t("broadcast.cancelled", "en", id=1, count=1)
    assert outbox.group_progress("broadcast:1")["cancelled"] == 1
    assert AgencyService(bot.storage).get_broadcast(1)["state"] == "cancelled"
    assert deliveries(bot, 301) == []


async def test_invite_is_single_use_and_revocable(bot: BotHarness) -> None:
    staff_link, follow_a = await new_agency(bot, "Acme Payroll")
    (ok,) = await bot.say(STAFF, f"/start {staff_link}")
    assert ok.text.startswith(t("agency.staff_welcome", "en", agency="Acme Payroll"))
    (used,) = await bot.say(OTHER_STAFF, f"/start {staff_link}")
    assert used.text.startswith(t("agency.invite_invalid", "en"))
    (forged,) = await bot.say(OTHER_STAFF, "/start staff-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.text.startswith(t("agency.invite_invalid", "en"))
    service = AgencyService(bot.storage)
    code = follow_a.removeprefix("f-")
    assert service.is_staff(STAFF, code) and not service.is_staff(OTHER_STAFF, code)
    assert bot.storage.get_user(STAFF)["start_payload"] is None  # the token is not kept

    (fresh,) = await bot.say(OP, f"/agency invite {code}")
    [second] = LINK_RE.findall(fresh.text)
    (revoked,) = await bot.say(OP, f"/agency revoke {code}")
    assert revoked.text == t("agency.revoked", "en", name="Acme Payroll", invites=n("plural.invites", 1, "en"),
                                staff=n("plural.staff", 1, "en"))
    (late,) = await bot.say(OTHER_STAFF, f"/start {second}")
    assert late.text.startswith(t("agency.invite_invalid", "en"))
    (gone,) = await bot.say(STAFF, "/broadcast")
    assert gone.text == t("broadcast.not_allowed", "en")
    (listing,) = await bot.say(OP, "/agency list")
    assert "Acme Payroll" in listing.text and code in listing.text

    # /agencies: see and leave.
    await follow(bot, 301, follow_a, "zh")
    (mine,) = await bot.say(301, "/agencies", lang="zh")
    assert "Acme Payroll" in mine.text and mine.callback_data == [f"af:u:{code}", "menu:main"]
    answer = await bot.press(301, mine, f"af:u:{code}")
    assert answer["text"] == plain_text("agency.unfollowed", "zh", agency="Acme Payroll")
    left = await bot.server.wait_for_bot_message(301)
    assert left.text == t("agency.unfollowed_next", "zh", agency="Acme Payroll")
    assert left.callback_data == ["menu:main"]  # a way on, not a dead end
    (none,) = await bot.say(301, "/agencies", lang="zh")
    assert none.text == t("agency.following_none", "zh") and none.callback_data == ["menu:main"]


async def test_restart_while_sending_loses_nothing_and_reports(bot: BotHarness) -> None:
    server = bot.server
    staff_link, follow_a = await new_agency(bot, "Acme Payroll")
    await bot.say(STAFF, f"/start {staff_link}")
    service = AgencyService(bot.storage)
    code = follow_a.removeprefix("f-")
    followers = range(5000, 5080)
    for chat in followers:  # quicker than 80 /start messages; same rows
        server.add_user(chat)
        bot.storage.touch_user(chat, "en")
        service.follow(code, chat)
    (ask,) = await bot.say(STAFF, "/broadcast")
    source = await server.send_text(STAFF, "Important: new contribution table")
    preview = await server.wait_for_bot_messages(STAFF, 3)
    await bot.press(STAFF, preview[2], "bc:send")
    await server.wait_until(lambda: sum(1 for c in followers if deliveries(bot, c)) >= 15, 10)
    await bot.restart()  # the sender stops mid-broadcast; the rest goes after the restart
    report_text = str(t("broadcast.report", "en", id=1, delivered=80, unreachable=0, failed=0, cancelled=0))
    await server.wait_until(lambda: any(m.text == report_text for m in server.bot_messages(STAFF)), 20)
    for chat in followers:
        got = deliveries(bot, chat)
        assert len(got) == 1 and source["text"] in got[0].plain_text, chat
    assert AgencyService(bot.storage).get_broadcast(1)["state"] == "done"


# --- issue 18: each copy names its agency (a header line), whatever the agency composed --------

LINK = "https://example.com/rates"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def staff_and_follower(bot: BotHarness, lang: str, agency: str = "Acme & Sons") -> None:
    """An agency whose staff member (STAFF) and one follower (301) both use ``lang``; the staff
    member's /broadcast goes straight to asking for the message (one language)."""
    staff_link, follow_link = await new_agency(bot, agency)
    await bot.say(STAFF, f"/start {staff_link}", lang=lang)
    await follow(bot, 301, follow_link, lang)
    (ask,) = await bot.say(STAFF, "/broadcast", lang=lang)
    assert ask.text == t("broadcast.ask_message_one", lang)


def unfollow_label(lang: str, agency: str) -> str:
    return plain_text("broadcast.unfollow_button", lang, agency=agency)


@pytest.mark.parametrize("lang", LANGS)
async def test_text_composed_in_the_chat_names_the_agency_and_keeps_its_formatting(
    bot: BotHarness, lang: str
) -> None:
    server = bot.server
    await staff_and_follower(bot, lang)
    text = "New rates from 1 December: see the table <here> & ask us. 🎉"
    formatting = [
        {"type": "bold", "offset": 0, "length": 9},  # "New rates"
        {"type": "text_link", "offset": text.index("the table"), "length": 9, "url": LINK},
        {"type": "italic", "offset": text.index("ask us"), "length": 6},
    ]
    # a custom emoji (which a bot may not send to everyone) goes as the ordinary emoji
    custom = {"type": "custom_emoji", "offset": utf16(text) - 2, "length": 2, "custom_emoji_id": "5368324170671202286"}
    await server.send_text(STAFF, text, language_code=lang, entities=[*formatting, custom])

    # The preview is the follower's message itself: header line, text, footer, button.
    title, shown, confirm = await server.wait_for_bot_messages(STAFF, 3)
    assert title.text == t("broadcast.preview_header", lang, language=t("broadcast.all_languages", lang), count=1)
    assert confirm.callback_data == ["bc:send", "bc:sched", "bc:cancel"]
    await bot.press(STAFF, confirm, "bc:send")
    await server.wait_until(lambda: deliveries(bot, 301, "Acme & Sons"), 10)
    [got] = deliveries(bot, 301, "Acme & Sons")

    for message in (shown, got):
        assert message.method == "sendMessage" and message.copied_from is None
        assert message.plain_text == f"{header(lang, 'Acme & Sons')}\n\n{text}\n\n{footer(lang, 'Acme & Sons')}"
        assert message.plain_text.splitlines()[0].endswith("Acme & Sons")  # the name, escaped and read back
        [button] = message.buttons
        assert button["text"] == unfollow_label(lang, "Acme & Sons") and button.get("callback_data")
        # the agency's formatting survives, moved down by the header line
        shift = utf16(header(lang, "Acme & Sons")) + 2
        moved = [{**e, "offset": e["offset"] + shift} for e in formatting]
        for entity in moved:
            assert entity in message.entities, (entity, message.entities)
        assert "custom_emoji" not in [e["type"] for e in message.entities]
    assert "<b>New rates</b>" in got.text and f'<a href="{LINK}">the table</a>' in got.text
    assert "&lt;here&gt; &amp;" in got.text  # the agency's own < and & stay text


@pytest.mark.parametrize("lang", LANGS)
async def test_media_composed_in_the_chat_carries_the_header_in_its_caption(
    bot: BotHarness, lang: str
) -> None:
    server = bot.server
    await staff_and_follower(bot, lang, "Acme Payroll")
    caption = "Poster: the new contribution table"
    source = await server.send_media(
        STAFF, photo=True, caption=caption, language_code=lang,
        caption_entities=[{"type": "bold", "offset": 0, "length": 6}],
    )
    _, shown, confirm = await server.wait_for_bot_messages(STAFF, 3)
    await bot.press(STAFF, confirm, "bc:send")
    await server.wait_until(lambda: deliveries(bot, 301), 10)
    [got] = deliveries(bot, 301)
    for message in (shown, got):
        assert message.method == "copyMessage"
        assert message.copied_from == (STAFF, source["message_id"]) and message.media["type"] == "photo"
        assert message.plain_text == f"{header(lang)}\n\n{caption}"
        bold = {"type": "bold", "offset": utf16(header(lang)) + 2, "length": 6}
        assert bold in message.entities
        assert [b["text"] for b in message.buttons] == [unfollow_label(lang, "Acme Payroll")]
    # a document (a PDF) without a caption still names the agency (after the first broadcast's
    # report, which would otherwise land among the preview's messages)
    report = t("broadcast.report", lang, id=1, delivered=1, unreachable=0, failed=0, cancelled=0)
    await server.wait_until(lambda: [m for m in server.bot_messages(STAFF) if m.text == report], 10)
    await bot.say(STAFF, "/broadcast", lang=lang)
    bare = await server.send_media(STAFF, document_name="rates.pdf", language_code=lang)
    _, shown, _ = await server.wait_for_bot_messages(STAFF, 3)
    assert shown.copied_from == (STAFF, bare["message_id"]) and shown.media["type"] == "document"
    assert shown.plain_text == header(lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_too_long_with_the_header_is_refused_and_nothing_is_queued(
    bot: BotHarness, lang: str
) -> None:
    server = bot.server
    await staff_and_follower(bot, lang, "Acme Payroll")
    # What fits: Telegram's limits less the longest header (and footer) of the three languages.
    text_room = 4096 - max(utf16(header(x)) + utf16(footer(x)) + 4 for x in LANGS)
    caption_room = 1024 - max(utf16(header(x)) + 2 for x in LANGS)

    await server.send_text(STAFF, "x" * 4096, language_code=lang)  # as long as Telegram allows
    refused = await server.wait_for_bot_message(STAFF)
    assert refused.text == t("broadcast.text_too_long", lang, length=4096, limit=text_room)
    assert refused.callback_data == ["bc:cancel"]
    await server.send_media(STAFF, photo=True, caption="y" * (caption_room + 1), language_code=lang)
    refused = await server.wait_for_bot_message(STAFF)
    assert refused.text == t("broadcast.caption_too_long", lang, length=caption_room + 1, limit=caption_room)
    assert bot.storage.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert bot.storage.db.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == 0

    # The draft waits for a shorter message; exactly the room left goes through Telegram.
    await server.send_text(STAFF, "z" * text_room, language_code=lang)
    _, shown, confirm = await server.wait_for_bot_messages(STAFF, 3)
    assert shown.plain_text.count("z") == text_room
    await bot.press(STAFF, confirm, "bc:send")
    await server.wait_until(lambda: deliveries(bot, 301), 10)
    [got] = deliveries(bot, 301)
    assert got.plain_text.count("z") == text_room and utf16(got.plain_text) <= 4096
    assert server.stats.rejected == []  # no request was refused by Telegram on the way


async def test_copy_rows_queued_before_the_headers_are_still_delivered(bot: BotHarness) -> None:
    """A deploy: rows the old code queued (copy payloads without a caption) go out after it."""
    staff_link, follow_link = await new_agency(bot, "Acme Payroll")
    await bot.say(STAFF, f"/start {staff_link}")
    await follow(bot, 302, follow_link, "ms")
    source = await bot.server.send_media(STAFF, photo=True, caption="Old poster")
    code = follow_link.removeprefix("f-")
    await bot.stop()
    storage = Storage(bot.config.db_path)
    agency = AgencyService(storage).get_agency(code)
    assert agency is not None
    old = {"type": "copy", "from_chat_id": STAFF, "message_id": source["message_id"],
           "reply_markup": unfollow_markup(agency, "ms")}  # as the old code wrote it
    Outbox(storage).enqueue(302, "broadcast", "broadcast:41:302", old, lang="ms")
    storage.close()
    await bot.start()
    await bot.server.wait_until(lambda: deliveries(bot, 302), 10)
    [got] = deliveries(bot, 302)
    assert got.copied_from == (STAFF, source["message_id"]) and got.plain_text == "Old poster"
    assert [b["text"] for b in got.buttons] == [unfollow_label("ms", "Acme Payroll")]
    outbox = bot.app.bot_data["services"].outbox
    await bot.server.wait_until(lambda: outbox.get("broadcast:41:302")["state"] == "sent", 10)
