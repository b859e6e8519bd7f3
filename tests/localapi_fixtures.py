"""Pytest fixtures for the local Bot API server (import them into a test module)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram

from bot.localapi.server import LocalBotAPI

TEST_TOKEN = "123456:TEST"


@pytest.fixture
async def localapi() -> AsyncIterator[LocalBotAPI]:
    """A started LocalBotAPI on a free port (default limits), stopped afterwards."""
    server = LocalBotAPI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def ptb_bot(localapi: LocalBotAPI) -> AsyncIterator[telegram.Bot]:
    """An initialized python-telegram-bot ``Bot`` talking to ``localapi`` over HTTP."""
    bot = telegram.Bot(
        token=TEST_TOKEN, base_url=localapi.base_url, base_file_url=localapi.base_file_url
    )
    await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()
