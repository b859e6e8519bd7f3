"""A running bot + local Bot API server on an event loop in a background thread, for
property-based tests: Hypothesis drives examples synchronously (``@given``, shrinking and all)
while the one Application keeps running between examples.

``LiveBot.run(coro)`` runs a coroutine on the bot's loop and returns its result. The harness,
the server and the database connection all live on that loop's thread; read the database
through :meth:`LiveBot.snapshot` (which runs there too).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any

from telegram.ext import ContextTypes

from bot.localapi.server import ChatMessage, LocalBotAPI
from tests.harness import BotHarness

# Columns that change on every update by design (not state a button may change).
VOLATILE = {"users": {"last_seen"}}


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LiveBot:
    """Start with :meth:`start`, stop with :meth:`stop` (module-scoped fixtures)."""

    def __init__(self, db_path: Path, **config: object) -> None:
        self.db_path = db_path
        self.config = {"throttle_burst": 100_000, "throttle_rate": 100_000.0, **config}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-bot", daemon=True)
        self.errors: list[BaseException] = []  # every error PTB's error handlers saw
        self.error_log = _ErrorLog()
        self.server: LocalBotAPI | None = None
        self.bot: BotHarness | None = None
        self.columns: dict[str, list[str]] = {}  # the columns of each table :meth:`snapshot` read

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LiveBot:
        self.thread.start()
        logging.getLogger().addHandler(self.error_log)
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.server = LocalBotAPI(rate_limit=None)
        await self.server.start()
        self.bot = BotHarness(self.server, self.db_path, **self.config)
        await self.bot.start()
        self._watch()

    def _watch(self) -> None:
        async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
            self.errors.append(context.error)  # type: ignore[arg-type]

        assert self.bot is not None and self.bot.app is not None
        self.bot.app.add_error_handler(record)

    def stop(self) -> None:
        logging.getLogger().removeHandler(self.error_log)
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
        if self.server is not None:
            await self.server.stop()

    async def restart(self) -> None:
        """Restart the Application (same server, same database)."""
        assert self.bot is not None
        await self.bot.restart()
        self._watch()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:  # noqa: ASYNC109
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # --- driving --------------------------------------------------------------------------------

    async def idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every update sent so far has been fully handled."""
        assert self.server is not None and self.bot is not None and self.bot.app is not None
        queue = self.bot.app.update_queue
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:  # idle on two checks in a row
            busy = self.server.pending_updates or queue._unfinished_tasks  # type: ignore[attr-defined]
            quiet = 0 if busy else quiet + 1
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not become idle")
            await asyncio.sleep(0.003)

    async def say(
        self, user: int, text: str, *, lang: str | None = "en", first_name: str = "Test"
    ) -> list[ChatMessage]:
        """``user`` sends ``text``; returns every bot message sent in that chat in answer."""
        assert self.server is not None
        before = len(self.server.bot_messages(user, include_deleted=True))
        await self.server.send_text(user, text, language_code=lang, first_name=first_name)
        await self.idle()
        return self.server.bot_messages(user, include_deleted=True)[before:]

    async def press(
        self, user: int, message_id: int, data: str, *, strict: bool = False
    ) -> tuple[dict | None, list[ChatMessage]]:
        """``user`` presses ``data`` on ``message_id``: (the callback answer or None, new messages)."""
        assert self.server is not None
        before = len(self.server.bot_messages(user, include_deleted=True))
        query_id = await self.server.press_button(user, message_id, data, strict=strict)
        await self.idle()
        answer = next(
            (a for a in self.server.callback_answers if a["callback_query_id"] == query_id), None
        )
        return answer, self.server.bot_messages(user, include_deleted=True)[before:]

    # --- checking -------------------------------------------------------------------------------

    async def snapshot(self, tables: Iterable[str] | None = None) -> dict[str, list[tuple]]:
        """Every row of ``tables`` (default: all), without the volatile columns, sorted."""
        assert self.bot is not None and self.bot.storage is not None
        db = self.bot.storage.db
        names = list(tables) if tables is not None else db.table_names()
        out: dict[str, list[tuple]] = {}
        for name in names:
            if name not in db.table_names() or name.startswith("sqlite_"):
                continue
            cols = [c.name for c in db[name].columns if c.name not in VOLATILE.get(name, set())]
            self.columns[name] = cols
            sql = f"SELECT {', '.join(cols)} FROM [{name}]"
            out[name] = sorted((tuple(r) for r in db.conn.execute(sql).fetchall()), key=repr)
        return out

    def problems(self) -> list[str]:
        """Unexpected errors and rejected Bot API calls so far (should stay empty)."""
        assert self.server is not None
        found = [f"handler error: {type(e).__name__}: {e}" for e in self.errors]
        found += [f"ERROR log: {r.name}: {r.getMessage()}" for r in self.error_log.records]
        found += [f"400 from {method}: {desc}" for method, desc in self.server.stats.rejected]
        return found

    def clear(self) -> None:
        assert self.server is not None
        self.errors.clear()
        self.error_log.records.clear()
        self.server.stats.rejected.clear()
