"""bot/appbot.py: getUpdates sends ``allowed_updates`` once; Telegram (here the local Bot API
server, which keeps the previous setting as the Bot API says) goes on applying it. After an
answer with two updates or more, the next poll waits ``batch_hold`` and takes what came
meanwhile in one answer; after one update or none, it goes at once. ``send_html`` sends a
reply as ``send_message`` would, with the same errors, and returns the message's id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError

from bot.app import build_application
from bot.appbot import AppBot
from bot.config import Config
from bot.localapi.server import FaultPlan, LocalBotAPI
from bot.storage import Storage
from bot.transport import AiohttpRequest
from tests.harness import BotHarness
from tests.localapi_fixtures import TEST_TOKEN

USER = 5550042


def polling_bot(server: LocalBotAPI, batch_hold: float = 0.0) -> AppBot:
    return AppBot(
        TEST_TOKEN,
        base_url=server.base_url,
        request=AiohttpRequest(connection_pool_size=2),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
        batch_hold=batch_hold,
    )


async def test_the_running_bot_sends_its_update_types_on_the_first_poll_only(
    bot: BotHarness, local_api: LocalBotAPI
) -> None:
    for text in ("hello", "thanks", "ok"):
        assert await bot.say(USER, text)
    await local_api.wait_until(lambda: local_api.stats.calls["getUpdates"] >= 4)
    assert local_api.stats.allowed_updates_sent == 1
    assert bot.app is not None and isinstance(bot.app.bot, AppBot)
    assert bot.app.bot.batch_hold == bot.config.poll_hold == 0  # BOT_POLL_HOLD_MS, off by default


def test_the_application_bot_holds_as_configured(tmp_path: Path) -> None:
    config = Config(db_path=tmp_path / "bot.sqlite3", poll_hold=0.007)
    storage = Storage(config.db_path)
    try:
        app = build_application(config, storage, token=TEST_TOKEN, outbox_sender=False)
        assert isinstance(app.bot, AppBot) and app.bot.batch_hold == 0.007
    finally:
        storage.close()


async def test_the_setting_holds_on_later_polls_and_a_changed_list_is_sent() -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(USER)
        async with polling_bot(server) as tg:
            assert await tg.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
            for _ in range(3):  # the same list: left out, and still in force
                await tg.get_updates(timeout=0, allowed_updates=["callback_query"])
            assert server.stats.allowed_updates_sent == 1
            await server.send_text(USER, "not wanted: only button presses are")
            assert await tg.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
            # Another list goes out at once, and takes effect.
            await tg.get_updates(timeout=0, allowed_updates=list(Update.ALL_TYPES))
            assert server.stats.allowed_updates_sent == 2
            await server.send_text(USER, "wanted now")
            (update,) = await tg.get_updates(timeout=0, allowed_updates=list(Update.ALL_TYPES))
            assert update.message is not None and update.message.text == "wanted now"
            assert server.stats.allowed_updates_sent == 2


async def test_a_failed_poll_does_not_count_as_sent() -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        async with polling_bot(server) as tg:
            server.faults = FaultPlan(
                rate=1.0, kinds=("500",), methods={"getUpdates"}, exclude=frozenset()
            )
            with pytest.raises(NetworkError):
                await tg.get_updates(timeout=0, allowed_updates=["message"])
            server.faults = None
            await tg.get_updates(timeout=0, allowed_updates=["message"])
            await tg.get_updates(timeout=0, allowed_updates=["message"])
            assert server.stats.allowed_updates_sent == 1


async def test_after_a_batch_the_next_poll_waits_and_brings_what_came_meanwhile() -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(USER)
        async with polling_bot(server, batch_hold=2.0) as tg:
            for text in ("one", "two"):
                await server.send_text(USER, text)
            first = await tg.get_updates(timeout=0)
            assert [u.message.text for u in first if u.message] == ["one", "two"]
            polls = server.stats.calls["getUpdates"]
            held = asyncio.create_task(tg.get_updates(offset=first[-1].update_id + 1, timeout=0))
            await asyncio.sleep(0.3)
            # Not sent yet: without the hold this poll (timeout 0) would have come back empty.
            assert server.stats.calls["getUpdates"] == polls and not held.done()
            for text in ("three", "four", "five"):
                await server.send_text(USER, text)
            later = await held
            assert [u.message.text for u in later if u.message] == ["three", "four", "five"]
            assert server.stats.calls["getUpdates"] == polls + 1


async def test_after_one_update_or_none_the_next_poll_goes_at_once() -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(USER)
        async with polling_bot(server, batch_hold=600.0) as tg:
            await server.send_text(USER, "alone")
            (update,) = await tg.get_updates(timeout=0)
            # A hold would last ten minutes; each poll answers at once instead.
            assert await asyncio.wait_for(tg.get_updates(offset=update.update_id + 1, timeout=0), 30) == ()
            assert await asyncio.wait_for(tg.get_updates(offset=update.update_id + 1, timeout=0), 30) == ()


def test_a_negative_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_hold"):
        AppBot(TEST_TOKEN, batch_hold=-0.001)


async def test_send_html_sends_html_with_its_keyboard_and_returns_the_message_id() -> None:
    keyboard = {"inline_keyboard": [[{"text": "Kira", "callback_data": "m:calc"}]]}
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(USER)
        async with polling_bot(server) as tg:
            first = await tg.send_html(USER, "<b>Caruman</b> &amp; SIP", keyboard)
            second = await tg.send_html(USER, "tanpa papan kekunci")
        assert [(r.method, r.message_id) for r in server.sent] == [
            ("sendMessage", first),
            ("sendMessage", second),
        ]
        one, two = server.message(USER, first), server.message(USER, second)
        assert one is not None and two is not None
        assert one.parse_mode == "HTML" and one.plain_text == "Caruman & SIP"
        assert [e["type"] for e in one.entities] == ["bold"]
        assert one.reply_markup == keyboard and two.reply_markup is None
        assert server.stats.calls["sendMessage"] == 2


async def test_send_html_raises_what_send_message_raises() -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(USER)
        async with polling_bot(server) as tg:
            with pytest.raises(BadRequest, match="(?i)can't parse entities"):
                await tg.send_html(USER, "<b>not closed")
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await tg.send_html(USER + 1, "nobody there")
            await server.block_bot(USER)
            with pytest.raises(Forbidden):
                await tg.send_html(USER, "blocked")
        assert not server.sent
