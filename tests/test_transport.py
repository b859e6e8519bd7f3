"""bot/transport.py: PTB on aiohttp, driven over HTTP against the local Bot API server."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator

import pytest
import telegram
from aiohttp import web
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.app import build_application
from bot.config import Config, ConfigError
from bot.localapi.server import FaultPlan, LocalBotAPI
from bot.transport import AiohttpRequest, make_request, scrub
from tests import localapi_fixtures
from tests.localapi_fixtures import TEST_TOKEN

localapi = localapi_fixtures.localapi

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = 5550001
SECRET_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # token-shaped, not a real one


@pytest.fixture
async def aio_bot(localapi: LocalBotAPI) -> AsyncIterator[telegram.Bot]:
    bot = telegram.Bot(
        TEST_TOKEN,
        base_url=localapi.base_url,
        base_file_url=localapi.base_file_url,
        request=AiohttpRequest(read_timeout=0.4, connection_pool_size=4),
    )
    await bot.initialize()
    localapi.add_user(USER)
    try:
        yield bot
    finally:
        await bot.shutdown()


async def test_messages_buttons_and_edits_round_trip(
    localapi: LocalBotAPI, aio_bot: telegram.Bot
) -> None:
    me = await aio_bot.get_me()
    assert me.username == localapi.bot_username
    markup = telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Satu 一", callback_data="a:1")]]
    )
    sent = await aio_bot.send_message(
        USER, "<b>RM5</b> 社险 &amp; “quotes”", parse_mode="HTML", reply_markup=markup
    )
    assert sent.text == "RM5 社险 & “quotes”"
    stored = localapi.bot_messages(USER)[-1]
    assert stored.callback_data == ["a:1"]
    edited = await aio_bot.edit_message_text("edited", chat_id=USER, message_id=sent.message_id)
    assert edited.text == "edited"
    # a user's message arrives through getUpdates
    await localapi.send_text(USER, "hello")
    updates = await aio_bot.get_updates(timeout=1)
    assert [u.message.text for u in updates] == ["hello"]


async def test_uploads_photo_and_pdf_and_download(
    localapi: LocalBotAPI, aio_bot: telegram.Bot
) -> None:
    photo_bytes = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    photo = await aio_bot.send_photo(USER, photo=io.BytesIO(photo_bytes), caption="Kadar 费率")
    assert photo.caption == "Kadar 费率"
    pdf = b"%PDF-1.4\n" + b"0" * 50_000 + b"\n%%EOF"
    doc = await aio_bot.send_document(
        USER, document=io.BytesIO(pdf), filename="borang.pdf", caption="PDF"
    )
    assert doc.document.file_name == "borang.pdf"
    assert doc.document.mime_type == "application/pdf"
    got_pdf = await (await aio_bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(got_pdf) == pdf
    got_photo = await (await aio_bot.get_file(photo.photo[-1].file_id)).download_as_bytearray()
    assert bytes(got_photo) == photo_bytes
    assert [s.method for s in localapi.sent] == ["sendPhoto", "sendDocument"]


async def test_status_codes_map_to_ptb_exceptions(
    localapi: LocalBotAPI, aio_bot: telegram.Bot
) -> None:
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await aio_bot.send_message(USER, "")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await aio_bot.send_message(777, "nobody")
    for kind, exc in {"500": NetworkError, "502": NetworkError, "403": Forbidden}.items():
        localapi.faults = FaultPlan(rate=1.0, kinds=(kind,))
        with pytest.raises(exc) as caught:
            await aio_bot.send_message(USER, kind)
        assert not isinstance(caught.value, BadRequest | TimedOut)
    localapi.faults = FaultPlan(rate=1.0, kinds=("429",), retry_after=2)
    with pytest.raises(RetryAfter) as info:
        await aio_bot.send_message(USER, "flood")
    retry = info.value.retry_after
    assert (retry.total_seconds() if hasattr(retry, "total_seconds") else retry) == 2
    localapi.faults = None
    assert localapi.bot_messages(USER) == []


async def test_read_timeout_is_timed_out_and_bot_keeps_working(
    localapi: LocalBotAPI, aio_bot: telegram.Bot
) -> None:
    localapi.faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_delay=2.0)
    with pytest.raises(TimedOut):
        await aio_bot.send_message(USER, "lost")
    localapi.faults = FaultPlan(rate=1.0, kinds=("deliver_then_timeout",), timeout_delay=2.0)
    with pytest.raises(TimedOut):
        await aio_bot.send_message(USER, "delivered anyway")
    localapi.faults = None
    await aio_bot.send_message(USER, "fine")
    assert [m.text for m in localapi.bot_messages(USER)] == ["delivered anyway", "fine"]


async def test_pool_timeout_when_every_connection_is_busy(localapi: LocalBotAPI) -> None:
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.05, read_timeout=3.0)
    bot = telegram.Bot(TEST_TOKEN, base_url=localapi.base_url, request=request)
    await bot.initialize()
    localapi.add_user(USER)
    try:
        localapi.faults = FaultPlan(rate=1.0, kinds=("timeout",), timeout_delay=0.5)
        slow = asyncio.create_task(bot.send_message(USER, "holds the only connection"))
        await localapi.wait_until(lambda: localapi.stats.faults["timeout"] == 1)
        with pytest.raises(TimedOut, match="Pool timeout"):
            await bot.send_message(USER, "no connection free")
        with pytest.raises(NetworkError):  # the slow one ends in the server's 504
            await slow
        assert localapi.stats.calls["sendMessage"] == 1  # the second was never sent
    finally:
        await bot.shutdown()


async def test_connection_errors_never_show_the_token(caplog: pytest.LogCaptureFixture) -> None:
    # a port nobody listens on: take one from a server and stop it
    server = LocalBotAPI()
    await server.start()
    base_url = server.base_url
    await server.stop()
    bot = telegram.Bot(SECRET_TOKEN, base_url=base_url, request=AiohttpRequest(connect_timeout=1))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NetworkError) as info:
        await bot.get_me()
    assert "aiohttp.Client" in str(info.value)
    chain: list[str] = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(f"{exc!s} {exc!r}")
        exc = exc.__cause__ or exc.__context__
    assert SECRET_TOKEN not in " ".join(chain) + caplog.text
    await bot.shutdown()


async def test_server_closing_the_connection_is_network_error() -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang_up)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bot = telegram.Bot(
        SECRET_TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest()
    )
    try:
        with pytest.raises(NetworkError) as info:
            await bot.get_me()
        assert not isinstance(info.value, TimedOut)
        assert SECRET_TOKEN not in str(info.value)
    finally:
        await bot.shutdown()
        await runner.cleanup()


def test_scrub_removes_the_token_from_any_text() -> None:
    url = f"http://127.0.0.1:1/bot{SECRET_TOKEN}/getMe"
    assert SECRET_TOKEN not in scrub(f"cannot reach {url}", url)
    local = "http://h/bot1000000001:local-mode-token/sendMessage"
    assert "local-mode-token" not in scrub(f"bad url {local}", local)
    assert scrub("Connection reset by peer", url) == "Connection reset by peer"


async def test_shutdown_then_initialize_again(localapi: LocalBotAPI) -> None:
    request = AiohttpRequest()
    bot = telegram.Bot(TEST_TOKEN, base_url=localapi.base_url, request=request)
    await bot.initialize()
    await bot.get_me()
    await bot.shutdown()
    # A request after shutdown fails, as on PTB's own client, and opens no session (which would
    # stay open with nobody to close it: "Unclosed client session" at exit).
    with pytest.raises(NetworkError, match="shut down"):
        await request.post(f"{localapi.base_url}{TEST_TOKEN}/getMe")
    assert request._session is None
    await bot.initialize()
    assert (await bot.get_me()).is_bot
    await bot.shutdown()


def test_setting_chooses_the_client(tmp_path) -> None:
    env = {"BOT_DB": str(tmp_path / "b.sqlite3")}
    assert Config.from_env(env).http_client == "aiohttp"
    assert Config.from_env({**env, "BOT_HTTP_CLIENT": "HTTPX"}).http_client == "httpx"
    with pytest.raises(ConfigError, match="BOT_HTTP_CLIENT"):
        Config.from_env({**env, "BOT_HTTP_CLIENT": "requests"})
    assert type(make_request("httpx", connection_pool_size=2)).__name__ == "HTTPXTransport"
    for client, cls in (("aiohttp", "AiohttpRequest"), ("httpx", "HTTPXTransport")):
        config = Config(db_path=tmp_path / "b.sqlite3", http_client=client)
        app = build_application(config)
        assert type(app.bot.request).__name__ == cls
        assert app.bot.request.read_timeout == 7.0
        app.bot_data["services"].storage.close()
