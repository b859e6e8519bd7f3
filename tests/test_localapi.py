"""Tests for the local Bot API server and the terminal chat, driven by real PTB over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, CommandHandler
from telegram.request import HTTPXRequest

from bot.localapi.server import FaultPlan, LocalBotAPI, parse_html, utf16_len
from bot.localapi.terminal import render_message_text, run_terminal_chat
from tests import localapi_fixtures
from tests.localapi_fixtures import TEST_TOKEN

# fixtures live in tests/localapi_fixtures.py (conftest.py belongs to the lead)
localapi = localapi_fixtures.localapi
ptb_bot = localapi_fixtures.ptb_bot

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = 5550001
SPEC = str(Path(__file__).resolve().parent / "data" / "botapi" / "api-botapi-10.0.json")


def _kb(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(list(rows))


async def _raw(server: LocalBotAPI, method: str, **kwargs) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            kwargs.pop("http_method", "POST"),
            f"{server.base_url}{TEST_TOKEN}/{method}",
            **kwargs,
        ) as resp,
    ):
        return resp.status, await resp.json()


# ----------------------------------------------------------------------------- methods.json


def test_methods_json_matches_spec() -> None:
    spec = json.load(open(SPEC, encoding="utf-8"))["methods"]
    from bot.localapi.make_methods import compact

    methods_json = Path(__file__).parents[1] / "bot" / "localapi" / "methods.json"
    assert json.loads(methods_json.read_text(encoding="utf-8")) == compact(
        json.load(open(SPEC, encoding="utf-8"))
    )
    data = compact({"methods": spec})["methods"]
    assert set(data) == set(spec)
    assert data["sendMessage"]["required"] == ["chat_id", "text"]
    assert "text" in data["sendMessage"]["strings"]
    assert "chat_id" not in data["sendMessage"]["strings"]


# ----------------------------------------------------------------------------- raw HTTP


async def test_raw_http_errors_and_body_encodings(localapi: LocalBotAPI) -> None:
    status, body = await _raw(localapi, "noSuchMethod")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{localapi.base_url}not-a-token/getMe") as resp,
    ):
        assert resp.status == 404
    status, body = await _raw(localapi, "getMe", http_method="GET")
    assert status == 200 and body["ok"] and body["result"]["username"] == "perkeso_local_bot"
    assert body["result"]["id"] == 123456 and body["result"]["is_bot"] is True

    localapi.add_user(USER)
    # query string, form-encoded, JSON and multipart bodies all work
    status, body = await _raw(localapi, "sendMessage", params={"chat_id": USER, "text": "q"})
    assert status == 200 and body["result"]["text"] == "q"
    status, body = await _raw(localapi, "sendMessage", data={"chat_id": str(USER), "text": "f"})
    assert status == 200 and body["result"]["chat"]["id"] == USER
    status, body = await _raw(localapi, "sendMessage", json={"chat_id": USER, "text": "j"})
    assert status == 200 and body["result"]["text"] == "j"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("text", "m")
    status, body = await _raw(localapi, "sendMessage", data=form)
    assert status == 200 and body["result"]["text"] == "m"
    assert [m.text for m in localapi.chat(USER)] == ["q", "f", "j", "m"]

    # required parameters, for implemented and recorded-only methods alike
    status, body = await _raw(localapi, "sendMessage", json={"chat_id": USER})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await _raw(localapi, "banChatMember", json={"chat_id": USER})
    assert (status, body["description"]) == (400, "Bad Request: user_id is empty")
    status, body = await _raw(localapi, "banChatMember", json={"chat_id": USER, "user_id": 7})
    assert (status, body) == (200, {"ok": True, "result": True})
    assert localapi.calls("banChatMember") == [{"chat_id": USER, "user_id": 7}]
    # method names are case-insensitive like Telegram's
    status, body = await _raw(localapi, "getme")
    assert status == 200


# ----------------------------------------------------------------------------- updates


async def test_long_poll_returns_promptly_and_offset_confirms(
    localapi: LocalBotAPI, ptb_bot: telegram.Bot
) -> None:
    async def user_later() -> None:
        await asyncio.sleep(0.2)
        await localapi.send_text(USER, "hello", language_code="ms", first_name="Aminah")

    started = time.monotonic()
    task = asyncio.create_task(user_later())
    updates = await ptb_bot.get_updates(timeout=60)
    elapsed = time.monotonic() - started
    await task
    # it waited for the update, and answered when it came, not at the end of the long poll
    assert 0.15 < elapsed < 50
    assert len(updates) == 1
    msg = updates[0].message
    assert msg.text == "hello" and msg.chat.id == USER and msg.chat.type == "private"
    assert msg.from_user.language_code == "ms" and msg.from_user.first_name == "Aminah"

    await localapi.send_text(USER, "/start pay-socso")
    await localapi.send_text(USER, "second")
    again = await ptb_bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [
        updates[0].update_id,
        updates[0].update_id + 1,
        updates[0].update_id + 2,
    ]
    cmd = again[1].message
    assert cmd.entities[0].type == "bot_command" and cmd.entities[0].length == len("/start")
    assert localapi.pending_updates == 3
    rest = await ptb_bot.get_updates(offset=again[1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest] == ["second"]
    assert localapi.pending_updates == 1
    limited = await ptb_bot.get_updates(offset=rest[0].update_id + 1, limit=5, timeout=0)
    assert limited == () and localapi.pending_updates == 0


async def test_ptb_application_command_handler_roundtrip(localapi: LocalBotAPI) -> None:
    async def start(update, context) -> None:
        await update.message.reply_text(f"hi {context.args[0]}", do_quote=True)

    app = Application.builder().token(TEST_TOKEN).base_url(localapi.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=5)
        await localapi.send_text(USER, "/start eis")
        reply = await localapi.wait_for_bot_message(USER)
        await app.updater.stop()
        await app.stop()
    assert reply.text == "hi eis"
    assert reply.reply_to_message_id == 1


# ----------------------------------------------------------------------------- sending


async def test_second_long_poll_terminates_first_with_conflict(
    localapi: LocalBotAPI, ptb_bot: telegram.Bot
) -> None:
    first = asyncio.create_task(ptb_bot.get_updates(timeout=5))
    await localapi.wait_until(lambda: localapi.stats.calls["getUpdates"] == 1, 2)
    await asyncio.sleep(0.05)
    second_bot = telegram.Bot(TEST_TOKEN, base_url=localapi.base_url)
    second = asyncio.create_task(second_bot.get_updates(timeout=5))
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 2)
    await localapi.send_text(USER, "to the survivor")
    (update,) = await asyncio.wait_for(second, 2)
    assert update.message.text == "to the survivor"
    await second_bot.shutdown()


async def test_chat_not_found_add_user_blocked_deactivated(
    localapi: LocalBotAPI, ptb_bot: telegram.Bot
) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await ptb_bot.send_message(777, "hi")
    localapi.add_user(777, language_code="zh")
    sent = await ptb_bot.send_message(777, "hi")
    assert sent.message_id == 1 and localapi.chat(777)[0].from_bot
    localapi.block(777)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await ptb_bot.send_message(777, "again")
    localapi.add_user(778)
    localapi.deactivate(778)
    with pytest.raises(Forbidden, match="user is deactivated"):
        await ptb_bot.send_chat_action(778, "typing")
    assert [s.message_id for s in localapi.sent] == [1]
    chat = await ptb_bot.get_chat(777)
    assert chat.id == 777 and chat.type == "private"


@pytest.mark.parametrize(
    ("html", "plain", "entity_types"),
    [
        (
            '<b>bold <i>both</i></b> and <a href="https://x.my">link</a>',
            "bold both and link",
            ["bold", "italic", "text_link"],
        ),
        ("5 &lt; 6 &amp;&amp; 7 &gt; 6 &quot;q&quot; &#65;&#x42;", '5 < 6 && 7 > 6 "q" AB', []),
        (
            '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler><u>u</u><s>x</s>',
            "stux",
            ["spoiler", "spoiler", "underline", "strikethrough"],
        ),
        (
            '<pre><code class="language-python">x = 1</code></pre><blockquote>q</blockquote>',
            "x = 1q",
            ["pre", "blockquote"],
        ),
        (
            "<B>caps</B> <strong>s</strong><em>e</em><ins>i</ins><del>d</del><strike>k</strike>",
            "caps seidk",
            ["bold", "bold", "italic", "underline", "strikethrough", "strikethrough"],
        ),
    ],
)
def test_parse_html_valid(html: str, plain: str, entity_types: list[str]) -> None:
    text, entities = parse_html(html)
    assert text == plain
    assert [e["type"] for e in entities] == entity_types


@pytest.mark.parametrize(
    "html",
    [
        "<b>x",
        "a < b",
        "x & y",
        "&nbsp;",
        "<b><i>x</b></i>",
        "</b>",
        "<div>x</div>",
        "<span>x</span>",
        "<b x</b>",
        "&#xD800;",
    ],
)
def test_parse_html_invalid(html: str) -> None:
    with pytest.raises(Exception, match="can't parse entities") as info:
        parse_html(html)
    assert info.value.code == 400


def test_utf16_offsets() -> None:
    text, entities = parse_html("😀 <b>RM1,000</b>")
    assert text == "😀 RM1,000"
    assert entities == [{"type": "bold", "offset": 3, "length": 7}]
    assert utf16_len("😀") == 2
    assert render_message_text(text, entities, ansi=True) == "😀 \033[1mRM1,000\033[22m"
    assert render_message_text(*parse_html('<a href="https://a.my/x">ASSIST</a>')) == (
        "ASSIST (https://a.my/x)"
    )


async def test_html_and_length_validation_through_ptb(
    localapi: LocalBotAPI, ptb_bot: telegram.Bot
) -> None:
    localapi.add_user(USER)
    ok = await ptb_bot.send_message(
        USER, "<b>Pay <i>by 15th</i></b> &amp; keep receipt", parse_mode="HTML"
    )
    assert ok.text == "Pay by 15th & keep receipt"
    assert [(e.type, e.offset, e.length) for e in ok.entities] == [
        ("bold", 0, 11),
        ("italic", 4, 7),
    ]
    assert localapi.chat(USER)[-1].text.startswith("<b>Pay")
    assert localapi.chat(USER)[-1].parse_mode == "HTML"
    for bad in ("<b>x", "a < b", "Tom & Jerry"):
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await ptb_bot.send_message(USER, bad, parse_mode="HTML")
    # without parse_mode the same text is fine
    assert (await ptb_bot.send_message(USER, "a < b")).text == "a < b"
    with pytest.raises(BadRequest, match="Message text is empty"):
        await ptb_bot.send_message(USER, "  \n ")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await ptb_bot.send_message(USER, "<b> </b>", parse_mode="HTML")

    await ptb_bot.send_message(USER, "x" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await ptb_bot.send_message(USER, "x" * 4097)
    # tags don't count, UTF-16 units do
    await ptb_bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await ptb_bot.send_message(USER, "😀" * 2048)
    with pytest.raises(BadRequest, match="Message is too long"):
        await ptb_bot.send_message(USER, "😀" * 2048 + "x")
    await ptb_bot.send_photo(USER, photo=b"img", caption="c" * 1024)
    with pytest.raises(BadRequest, match="caption is too long"):
        await ptb_bot.send_photo(USER, photo=b"img", caption="c" * 1025)


async def test_reply_markup_validation(localapi: LocalBotAPI, ptb_bot: telegram.Bot) -> None:
    localapi.add_user(USER)
    d64 = "é" * 32  # 64 UTF-8 bytes, 32 characters
    msg = await ptb_bot.send_message(
        USER, "pick", reply_markup=_kb([InlineKeyboardButton("ok", callback_data=d64)])
    )
    assert msg.reply_markup.inline_keyboard[0][0].callback_data == d64
    for data in (d64 + "a", "x" * 65):
        with pytest.raises(BadRequest, match="Button_data_invalid|BUTTON_DATA_INVALID"):
            await ptb_bot.send_message(
                USER, "pick", reply_markup=_kb([InlineKeyboardButton("no", callback_data=data)])
            )
    with pytest.raises(BadRequest, match="is invalid"):
        await ptb_bot.send_message(
            USER, "u", reply_markup=_kb([InlineKeyboardButton("u", url="ftp://x.my")])
        )
    await ptb_bot.send_message(
        USER, "u", reply_markup=_kb([InlineKeyboardButton("u", url="tg://resolve?domain=x")])
    )
    status, body = await _raw(
        localapi,
        "sendMessage",
        json={"chat_id": USER, "text": "t", "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}},
    )
    assert status == 400 and "text buttons are unallowed" in body["description"]
    status, body = await _raw(
        localapi,
        "sendMessage",
        json={
            "chat_id": USER,
            "text": "t",
            "reply_markup": {
                "inline_keyboard": [[{"text": "a", "url": "https://a.my", "callback_data": "x"}]]
            },
        },
    )
    assert status == 400 and "exactly one" in body["description"]


async def test_edit_delete_and_not_modified(localapi: LocalBotAPI, ptb_bot: telegram.Bot) -> None:
    localapi.add_user(USER)
    kb = _kb([InlineKeyboardButton("A", callback_data="a")])
    msg = await ptb_bot.send_message(USER, "<b>one</b>", parse_mode="HTML", reply_markup=kb)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await ptb_bot.edit_message_text(
            "<b>one</b>", USER, msg.message_id, parse_mode="HTML", reply_markup=kb
        )
    # same text but dropping the keyboard is a modification
    edited = await ptb_bot.edit_message_text("<b>one</b>", USER, msg.message_id, parse_mode="HTML")
    assert edited.reply_markup is None
    await ptb_bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=kb)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await ptb_bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=kb)
    stored = localapi.message(USER, msg.message_id)
    assert stored.edits == [
        ("<b>one</b>", kb.to_dict()),
        ("<b>one</b>", None),
    ]
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await ptb_bot.edit_message_text("x", USER, 999)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await ptb_bot.delete_message(USER, 999)
    assert await ptb_bot.delete_message(USER, msg.message_id) is True
    assert localapi.chat(USER)[0].deleted
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await ptb_bot.edit_message_text("x", USER, msg.message_id)
    user_msg = await localapi.send_text(USER, "mine")
    with pytest.raises(BadRequest, match="can't be edited"):
        await ptb_bot.edit_message_text("x", USER, user_msg["message_id"])


async def test_callback_buttons_and_answers(localapi: LocalBotAPI, ptb_bot: telegram.Bot) -> None:
    localapi.add_user(USER, language_code="ms")
    msg = await ptb_bot.send_message(
        USER,
        "Menu",
        reply_markup=_kb(
            [InlineKeyboardButton("Guides", callback_data="menu:guides")],
            [InlineKeyboardButton("Portal", url="https://assist.perkeso.gov.my")],
        ),
    )
    with pytest.raises(ValueError, match="no button"):
        await localapi.press_button(USER, msg.message_id, "menu:other")
    query_id = await localapi.press_button(USER, msg.message_id, "menu:guides")
    (update,) = await ptb_bot.get_updates(timeout=1)
    cq = update.callback_query
    assert cq.id == query_id and cq.data == "menu:guides"
    assert cq.from_user.id == USER and cq.from_user.language_code == "ms"
    assert cq.message.message_id == msg.message_id and cq.message.text == "Menu"

    async def bot_side() -> None:
        await ptb_bot.answer_callback_query(cq.id, text="Opening guides")
        await cq.edit_message_text("Guides:")

    edit_wait = asyncio.create_task(localapi.wait_for_edit(USER, msg.message_id, timeout=3))
    await bot_side()
    edited = await edit_wait
    assert edited.text == "Guides:" and edited.reply_markup is None
    assert localapi.callback_answers == [
        {
            "callback_query_id": query_id,
            "user_id": USER,
            "message_id": msg.message_id,
            "text": "Opening guides",
            "show_alert": False,
            "url": None,
            "cache_time": None,
        }
    ]
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await ptb_bot.answer_callback_query(cq.id)
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await ptb_bot.answer_callback_query("nope")


async def test_media_copy_and_files(localapi: LocalBotAPI, ptb_bot: telegram.Bot) -> None:
    admin = 9000
    localapi.add_user(admin)
    user_msg = await localapi.send_media(USER, photo=True, caption="my payslip")
    (update,) = await ptb_bot.get_updates(timeout=1)
    photo = update.message.photo[-1]
    assert update.message.caption == "my payslip"
    copied = await ptb_bot.copy_message(admin, USER, user_msg["message_id"])
    stored = localapi.message(admin, copied.message_id)
    assert stored.kind == "copy" and stored.from_bot
    assert stored.media["type"] == "photo" and stored.media["file_id"] == photo.file_id
    assert stored.text == "my payslip" and stored.copied_from == (USER, user_msg["message_id"])
    over = await ptb_bot.copy_message(
        admin, USER, user_msg["message_id"], caption="<b>from user</b>", parse_mode="HTML"
    )
    assert localapi.message(admin, over.message_id).plain_text == "from user"
    with pytest.raises(BadRequest, match="Message to copy not found"):
        await ptb_bot.copy_message(admin, USER, 999)

    doc = await ptb_bot.send_document(
        USER, document=io.BytesIO(b"a,b\n1,2\n"), filename="rates.csv", caption="rates"
    )
    assert doc.document.file_name == "rates.csv" and doc.caption == "rates"
    got = await (await ptb_bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(got) == b"a,b\n1,2\n"
    again = await ptb_bot.send_photo(admin, photo=photo.file_id)
    assert again.photo[-1].file_id == photo.file_id
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await ptb_bot.send_photo(admin, photo="AgACnope")
    kinds = [(m.kind, m.from_bot) for m in localapi.chat(USER)]
    assert kinds == [("photo", False), ("document", True)]
    assert [s.method for s in localapi.sent] == [
        "copyMessage",
        "copyMessage",
        "sendDocument",
        "sendPhoto",
    ]


async def test_command_menus_per_scope_and_language(
    localapi: LocalBotAPI, ptb_bot: telegram.Bot
) -> None:
    await ptb_bot.set_my_commands([("start", "Start"), ("help", "Help")])
    await ptb_bot.set_my_commands([("start", "Mula"), ("help", "Bantuan")], language_code="ms")
    await ptb_bot.set_my_commands([("admin", "Admin")], scope=telegram.BotCommandScopeChat(USER))
    assert [c["description"] for c in localapi.commands(language_code="ms")] == ["Mula", "Bantuan"]
    assert [c["command"] for c in localapi.commands()] == ["start", "help"]
    assert localapi.commands(language_code="zh") == []
    ms = await ptb_bot.get_my_commands(language_code="ms")
    assert [(c.command, c.description) for c in ms] == [("start", "Mula"), ("help", "Bantuan")]
    assert localapi.effective_commands(42, "ms")[0]["description"] == "Mula"
    assert localapi.effective_commands(42, "zh")[0]["description"] == "Start"
    assert localapi.effective_commands(USER, "ms") == [{"command": "admin", "description": "Admin"}]
    await ptb_bot.delete_my_commands(language_code="ms")
    assert localapi.commands(language_code="ms") == []
    with pytest.raises(BadRequest, match="Bot_command_invalid|BOT_COMMAND_INVALID"):
        await ptb_bot.set_my_commands([("Bad-Name", "x")])


# ----------------------------------------------------------------------------- limits, faults


async def test_global_rate_limit_and_early_retries() -> None:
    server = LocalBotAPI(rate_limit=5)
    await server.start()
    bot = telegram.Bot(TEST_TOKEN, base_url=server.base_url)
    try:
        server.add_user(USER)
        for i in range(5):
            await bot.send_message(USER, f"m{i}")
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(USER, "too fast")
        retry = info.value.retry_after
        retry = retry.total_seconds() if hasattr(retry, "total_seconds") else retry
        assert retry >= 1
        assert server.stats.rate_limited == 1 and server.stats.early_retries == 0
        await asyncio.sleep(0.1)
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "ignoring retry_after")
        assert server.stats.early_retries == 1 and server.stats.rate_limited == 2
        await asyncio.sleep(retry)
        await bot.send_message(USER, "after waiting")
        assert server.stats.early_retries == 1
        assert len(server.bot_messages(USER)) == 6
        assert server.stats.calls["sendMessage"] == 8
        # non-sending methods are not limited
        for _ in range(10):
            await bot.get_me()
    finally:
        await bot.shutdown()
        await server.stop()


async def test_per_chat_rate_limit() -> None:
    async with LocalBotAPI(rate_limit=None, per_chat_rate=2) as server:
        bot = telegram.Bot(TEST_TOKEN, base_url=server.base_url)
        server.add_user(1)
        server.add_user(2)
        await bot.send_message(1, "a")
        await bot.send_message(1, "b")
        await bot.send_message(2, "other chat is fine")
        with pytest.raises(RetryAfter):
            await bot.send_message(1, "c")
        await bot.shutdown()


async def test_faults_errors_timeouts_and_no_delivery(localapi: LocalBotAPI) -> None:
    request = HTTPXRequest(read_timeout=0.4)
    bot = telegram.Bot(TEST_TOKEN, base_url=localapi.base_url, request=request)
    await bot.initialize()
    localapi.add_user(USER)
    try:
        expected = {
            "500": NetworkError,
            "502": NetworkError,
            "403": Forbidden,
            "chat_not_found": BadRequest,
        }
        for kind, exc in expected.items():
            localapi.faults = FaultPlan(rate=1.0, kinds=(kind,))
            with pytest.raises(exc):
                await bot.send_message(USER, kind)
        localapi.faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_delay=1.0)
        with pytest.raises(TimedOut):
            await bot.send_message(USER, "lost")
        # getUpdates is excluded by default
        assert await bot.get_updates(timeout=0) == ()
        assert localapi.bot_messages(USER) == []
        localapi.faults = FaultPlan(rate=1.0, kinds=("deliver_then_timeout",), timeout_delay=1.0)
        with pytest.raises(TimedOut):
            await bot.send_message(USER, "delivered anyway")
        assert [m.text for m in localapi.bot_messages(USER)] == ["delivered anyway"]
        assert localapi.stats.faults["timeout"] == 1
        localapi.faults = FaultPlan(rate=1.0, kinds=("429",), retry_after=1)
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "flood")
        localapi.faults = None
        await asyncio.sleep(1.0)  # the 429 fault's retry_after
        await bot.send_message(USER, "fine")
        assert localapi.stats.early_retries == 0
    finally:
        await bot.shutdown()


async def test_fault_plan_is_seeded_and_partial() -> None:
    outcomes = []
    for _ in range(2):
        async with LocalBotAPI(seed=7, rate_limit=None) as server:
            server.add_user(USER)
            server.faults = FaultPlan(rate=0.3, kinds=("500", "502"), methods={"sendMessage"})
            run = []
            for i in range(40):
                status, _ = await _raw(server, "sendMessage", json={"chat_id": USER, "text": i})
                run.append(status)
            outcomes.append(run)
            assert len(server.bot_messages(USER)) == run.count(200)
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(200) < 40
    assert set(outcomes[0]) <= {200, 500, 502}


# ----------------------------------------------------------------------------- webhook


async def test_webhook_delivery_with_secret(localapi: LocalBotAPI, ptb_bot: telegram.Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        assert await ptb_bot.set_webhook(url, secret_token="s3cret-token")
        info = await ptb_bot.get_webhook_info()
        assert info.url == url
        with pytest.raises(Conflict, match="webhook is active"):
            await ptb_bot.get_updates()
        await localapi.send_text(USER, "via webhook")
        await asyncio.wait_for(arrived.wait(), 3)
        secret, update = received[0]
        assert secret == "s3cret-token"
        assert update["message"]["text"] == "via webhook"
        await localapi.wait_idle(timeout=2)
        assert (await ptb_bot.get_webhook_info()).pending_update_count == 0
        assert await ptb_bot.delete_webhook()
        await localapi.send_text(USER, "polling again")
        (polled,) = await ptb_bot.get_updates(timeout=1)
        assert polled.message.text == "polling again"
        assert len(received) == 1
    finally:
        await runner.cleanup()


# ----------------------------------------------------------------------------- terminal


async def _fake_bot(server: LocalBotAPI, stop: asyncio.Event) -> None:
    bot = telegram.Bot(TEST_TOKEN, base_url=server.base_url)
    await bot.initialize()
    offset = 0
    try:
        while not stop.is_set():
            try:
                updates = await bot.get_updates(offset=offset, timeout=0.3)
            except Conflict:
                continue
            for update in updates:
                offset = update.update_id + 1
                if update.message:
                    await bot.send_message(
                        update.message.chat_id,
                        f"<b>Menu</b> for &lt;{update.message.from_user.first_name}&gt;",
                        parse_mode="HTML",
                        reply_markup=_kb(
                            [
                                InlineKeyboardButton("Guides", callback_data="g"),
                                InlineKeyboardButton("Calculator", callback_data="c"),
                            ],
                            [InlineKeyboardButton("Portal", url="https://assist.perkeso.gov.my")],
                        ),
                    )
                elif update.callback_query:
                    cq = update.callback_query
                    await cq.answer(text=f"chose {cq.data}")
                    await cq.edit_message_text(
                        f'You chose <i>{cq.data}</i>, see <a href="https://x.my">docs</a>',
                        parse_mode="HTML",
                    )
    finally:
        await bot.shutdown()


async def test_terminal_chat_scripted(localapi: LocalBotAPI) -> None:
    stop = asyncio.Event()
    bot_task = asyncio.create_task(_fake_bot(localapi, stop))
    stdin = io.StringIO("hello\n3\n2\n/quit\nnever sent\n")
    stdout = io.StringIO()
    try:
        await asyncio.wait_for(
            run_terminal_chat(
                localapi,
                user_id=4242,
                language_code="zh",
                first_name="Mei",
                stdin=stdin,
                stdout=stdout,
            ),
            timeout=15,
        )
    finally:
        stop.set()
        await bot_task
    out = stdout.getvalue()
    assert "bot> Menu for <Mei>" in out
    assert "[1] Guides  [2] Calculator  [3] Portal (https://assist.perkeso.gov.my)" in out
    assert "✎ (edited) You chose c, see docs (https://x.my)" in out
    assert "ⓘ chose c" in out
    assert "→ open https://assist.perkeso.gov.my" in out
    assert "\033[" not in out  # not a tty: no ANSI codes
    assert out.index("you> hello") < out.index("bot> Menu") < out.index("you> 2")
    texts = [m.text for m in localapi.chat(4242) if not m.from_bot]
    assert texts == ["hello"]  # numbers pressed buttons, /quit stopped before "never sent"
    assert localapi.callback_answers[0]["text"] == "chose c"


async def test_terminal_chat_sends_numbers_without_buttons_and_stops_on_eof(
    localapi: LocalBotAPI,
) -> None:
    stdout = io.StringIO()
    await run_terminal_chat(
        localapi, user_id=77, stdin=io.StringIO("3000\n"), stdout=stdout, reply_wait=0.05
    )
    assert [m.text for m in localapi.chat(77)] == ["3000"]
    assert "you> 3000" in stdout.getvalue()
    # a real pipe goes through the non-blocking fd reader; the last line has no newline
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"gaji 2500\n\nbantuan")
    os.close(write_fd)
    with os.fdopen(read_fd, "r") as piped:
        await run_terminal_chat(localapi, user_id=78, stdin=piped, stdout=stdout, reply_wait=0)
    assert [m.text for m in localapi.chat(78)] == ["gaji 2500", "bantuan"]
