"""End-to-end harness: the real Application polling the local Bot API server over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telegram.ext import Application

from bot.app import build_application, start_application, stop_application
from bot.config import Config
from bot.localapi.driver import WAIT_GUARD
from bot.localapi.server import ChatMessage, LocalBotAPI
from bot.storage import Storage


async def until(predicate: Callable[[], Any], timeout: float = WAIT_GUARD) -> Any:  # noqa: ASYNC109
    """Poll ``predicate`` every 10 ms until it is truthy; returns its value. For state the
    local server is not told of (the bot's database, its memory), so ``server.wait_until``
    would not wake. ``timeout`` only catches a hang: no test asserts how long it took."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := predicate()):
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)
    return result


class BotHarness:
    """Starts, stops and restarts the bot against ``server``; plays users through it."""

    def __init__(self, server: LocalBotAPI, db_path: Path, **config: object) -> None:
        self.server = server
        self.config = dataclasses.replace(
            Config(), api_base_url=server.base_url, db_path=db_path, **config
        )
        self.app: Application | None = None
        self.storage: Storage | None = None

    async def __aenter__(self) -> BotHarness:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> BotHarness:
        self.storage = Storage(self.config.db_path)
        self.app = build_application(self.config, self.storage)
        await start_application(self.app)
        return self

    async def stop(self) -> None:
        if self.app is None:
            return
        await stop_application(self.app)
        assert self.storage is not None
        self.storage.close()
        self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def say(
        self,
        user_id: int,
        text: str,
        *,
        lang: str | None = "en",
        count: int = 1,
        timeout: float = WAIT_GUARD,
    ) -> list[ChatMessage]:
        """The user sends ``text``; returns the bot's next ``count`` messages."""
        await self.server.send_text(user_id, text, language_code=lang)
        return await self.server.wait_for_bot_messages(user_id, count, timeout=timeout)

    async def press(
        self, user_id: int, message: ChatMessage, data: str, *, timeout: float = WAIT_GUARD
    ) -> dict:
        """The user taps the button with ``data`` on ``message``; returns the callback answer."""
        query_id = await self.server.press_button(user_id, message.message_id, data)
        return await self.server.wait_for_callback_answer(query_id, timeout=timeout)

    def last_bot_message(self, user_id: int) -> ChatMessage:
        return self.server.bot_messages(user_id)[-1]
