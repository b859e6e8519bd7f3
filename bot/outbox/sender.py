"""Draining the outbox: :class:`OutboxSender`, ``workers`` asyncio tasks sending claimed rows.

Each row goes through the bot's :class:`~bot.outbox.limiter.OutboxRateLimiter` as an outbox
request; the outcome is recorded in the ``outbox`` table at once. Retries with backoff,
unreachable chats, a failing database and a clean stop (claimed rows go back to ``queued``)
are handled here. Whether this process may send at all is decided outside, by the
single-sender lease (bot/locks.py), which starts and stops the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
    TelegramError,
)

from bot.dbhealth import alarm_for
from bot.outbox.limiter import OutboxRateLimiter, retry_after_seconds
from bot.outbox.store import Outbox, OutboxRow

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger("bot.outbox")

_UNREACHABLE_400 = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def send_payload(bot: Bot, chat_id: int, payload: dict[str, Any], **extra: Any) -> Any:
    """Send one outbox payload to ``chat_id``; the answer has the new ``message_id``.

    ``{"type": "text", "text", "parse_mode", "disable_web_page_preview", "reply_markup"}`` goes
    with sendMessage; ``{"type": "copy", "from_chat_id", "message_id", "reply_markup"}`` with
    copyMessage, plus ``caption`` and ``parse_mode`` when the payload has a caption (a media
    broadcast's header line); a copy payload without one (rows queued before captions were
    added) keeps the original caption. The compose preview of /broadcast uses it too, so that the
    agency sees exactly what its followers get. ``extra`` goes to the Bot method as is.
    """
    markup = payload.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        extra["reply_markup"] = InlineKeyboardMarkup.de_json(markup, bot)
    elif markup is not None:
        extra["api_kwargs"] = {"reply_markup": markup}
    if payload["type"] == "copy":
        if payload.get("caption") is not None:
            extra["caption"] = payload["caption"]
            extra["parse_mode"] = payload.get("parse_mode", ParseMode.HTML)
        return await bot.copy_message(
            chat_id, payload["from_chat_id"], payload["message_id"], **extra
        )
    return await bot.send_message(
        chat_id,
        payload["text"],
        parse_mode=payload.get("parse_mode", ParseMode.HTML),
        disable_web_page_preview=payload.get("disable_web_page_preview", True),
        **extra,
    )


class OutboxSender:
    """Drains the outbox with ``workers`` asyncio tasks through ``bot`` (the Application's).

    Pacing comes from the bot's :class:`OutboxRateLimiter` (or a private one if the bot has
    none). Transient errors (5xx, timeouts, network) are retried with exponential backoff up to
    ``max_attempts`` attempts, then the row is ``failed``; 403 and 400 "chat not found" make
    the chat unreachable; other 400s fail at once. A failing database (read-only, full,
    locked) loses nothing: claims back off (up to ``db_backoff_max`` s) and an outcome that
    cannot be written is retried by its worker until it can (logged once, see bot/dbhealth.py).
    """

    def __init__(
        self,
        bot: Bot,
        outbox: Outbox,
        *,
        workers: int = 8,
        rate: float | None = None,
        per_chat_interval: float = 1.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        poll_interval: float = 1.0,
        send_timeout: float | None = None,
        stop_grace: float = 5.0,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.workers = workers
        self.per_chat_interval = per_chat_interval
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.send_timeout = send_timeout
        self.stop_grace = stop_grace
        self.stats = SenderStats()
        limiter = getattr(bot, "rate_limiter", None)
        self._via_bot = isinstance(limiter, OutboxRateLimiter)
        self.limiter: OutboxRateLimiter = (
            limiter if self._via_bot else OutboxRateLimiter(rate or 25.0, rate or 25.0)
        )
        if rate is not None:
            self.limiter.configure(outbox_rate=rate)
        self._queue: asyncio.Queue[OutboxRow] | None = None
        self._wake: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: dict[int, OutboxRow] = {}
        self._chat_ready: dict[int, float] = {}
        self._skipped: set[int] = set()
        self._unreachable: dict[int, float] = {}  # chat -> when Telegram refused it
        self._running = False
        self._alarm = alarm_for(outbox.storage)
        self.db_backoff_max = 5.0  # seconds between two claims while the database fails
        outbox.add_listener(self._poke)

    @property
    def running(self) -> bool:
        return self._running

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        """Recover rows a crash left in ``sending``, then start the feeder and the workers."""
        if self._running:
            return
        recovered = self.outbox.recover()
        if recovered:
            log.warning(
                "outbox: %d rows were in flight at the last stop; sending them again", recovered
            )
        self._queue = asyncio.Queue(maxsize=max(2, self.workers * 2))
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._running = True
        self._tasks = [asyncio.create_task(self._feed(), name="outbox-feeder")]
        self._tasks += [
            asyncio.create_task(self._worker(), name=f"outbox-worker-{i}")
            for i in range(self.workers)
        ]

    async def stop(self) -> None:
        """Stop claiming, let requests in flight finish (``stop_grace`` s), requeue the rest."""
        if not self._running:
            return
        self._running = False
        feeder, workers = self._tasks[0], self._tasks[1:]
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        assert self._queue is not None
        unsent = []
        while not self._queue.empty():
            unsent.append(self._queue.get_nowait().id)
        deadline = time.monotonic() + self.stop_grace
        while self._inflight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        unsent += list(self._inflight)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._tasks = []
        self._inflight.clear()
        with contextlib.suppress(sqlite3.Error):
            self.outbox.requeue(unsent)

    async def wait_idle(self, horizon: float = 60.0, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until nothing due within ``horizon`` s is left; False on ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            queue_empty = self._queue is None or self._queue.empty()
            if queue_empty and not self._inflight and self.outbox.pending(horizon) == 0:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)

    # -- feeder ------------------------------------------------------------------------------

    async def _feed(self) -> None:
        assert self._queue is not None and self._wake is not None and self._space is not None
        loop = asyncio.get_running_loop()
        queue = self._queue
        db_failures = 0
        while self._running:
            if queue.qsize() > self.workers // 2:  # refill in batches: fewer transactions
                self._space.clear()
                await self._space.wait()
                continue
            free = queue.maxsize - queue.qsize()
            now = time.monotonic()
            if len(self._chat_ready) > 512:
                self._chat_ready = {c: t for c, t in self._chat_ready.items() if t > now}
            busy = [c for c, t in self._chat_ready.items() if t > now]
            self._wake.clear()
            try:
                rows, skipped = self.outbox.claim(free, busy)
            except sqlite3.Error as exc:  # read-only, disk full, locked: back off, keep the rows
                db_failures += 1
                self._alarm.failure(exc, "claiming outbox rows")
                delay = min(self.db_backoff_max, 0.25 * 2 ** min(db_failures, 8))
                handle = loop.call_later(delay, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    handle.cancel()
                continue
            if rows:  # a write went through
                db_failures = 0
                if self._alarm.failing:
                    self._alarm.success()
            self._skipped = skipped
            for row in rows:
                self._chat_ready[row.chat_id] = math.inf
                queue.put_nowait(row)
            if rows:
                continue
            delay = self.poll_interval
            if skipped:
                ready = min(self._chat_ready.get(c, now) for c in skipped) - now
                delay = min(delay, max(ready, 0.001))
            with contextlib.suppress(sqlite3.Error):
                due = self.outbox.next_due()
                if due is not None and due > 0:
                    delay = min(delay, due + 0.001)
            handle = loop.call_later(delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                handle.cancel()

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self) -> None:
        assert self._queue is not None and self._space is not None
        while True:
            row = await self._queue.get()
            if self._queue.qsize() <= self.workers // 2:
                self._space.set()
            self._inflight[row.id] = row
            try:
                await self._process(row)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._running or task is None or task.cancelling():
                    raise  # stop(): it requeues the rows in hand
                # A request cancelled under a running sender (not a stop): back to the queue.
                await self._retry_or_fail(row, "CancelledError: the request was cancelled")
            except Exception as exc:  # never let one row kill a worker, nor stay 'sending'
                log.exception("outbox: unexpected error on row %s", row.id)
                with contextlib.suppress(Exception):
                    self._release(row, f"{type(exc).__name__}: {exc}")
            self._inflight.pop(row.id, None)
            self._chat_ready[row.chat_id] = time.monotonic() + self.per_chat_interval
            if row.chat_id in self._skipped and self._wake is not None:
                self._wake.set()

    async def _send(self, row: OutboxRow) -> int | None:
        payload = row.payload
        extra: dict[str, Any] = {}
        if self._via_bot:
            extra["rate_limit_args"] = {"outbox": True}
        else:
            await self.limiter.acquire(outbox=True, chat_id=row.chat_id)
        if self.send_timeout is not None:
            extra["read_timeout"] = self.send_timeout
        result = await send_payload(self.bot, row.chat_id, payload, **extra)
        return result.message_id

    async def _process(self, row: OutboxRow) -> None:
        refused = self._unreachable.get(row.chat_id)
        if refused is not None and time.monotonic() - refused < 60:
            await self._record(
                self.outbox.mark_unreachable,
                row.chat_id,
                row.id,
                "chat unreachable: not sent",
                attempted=False,
            )
            return
        try:
            message_id = await self._send(row)
        except RetryAfter as exc:
            delay = retry_after_seconds(exc)
            self.stats.retried += 1
            await self._record(
                self.outbox.mark_retry, row.id, f"RetryAfter: {exc}", delay, count=False
            )
        except Forbidden as exc:
            await self._mark_unreachable(row, f"Forbidden: {exc.message}")
        except ChatMigrated as exc:
            self.stats.failed += 1
            await self._record(self.outbox.mark_failed, row.id, f"ChatMigrated: {exc}")
        except BadRequest as exc:
            if any(text in exc.message.lower() for text in _UNREACHABLE_400):
                await self._mark_unreachable(row, f"BadRequest: {exc.message}")
            else:  # bad HTML, message to copy gone...: retrying cannot help
                self.stats.failed += 1
                await self._record(self.outbox.mark_failed, row.id, f"BadRequest: {exc.message}")
        except TelegramError as exc:  # TimedOut, NetworkError (5xx), other transient errors
            name = type(exc).__name__
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
            await self._retry_or_fail(row, f"{name}: {exc}")
        except Exception as exc:  # a bug, or a library raising outside TelegramError
            name = type(exc).__name__
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
            log.error("outbox: unexpected error sending row %s: %s", row.id, name, exc_info=True)
            await self._retry_or_fail(row, f"{name}: {exc}")
        else:
            self.stats.sent += 1
            await self._record(self.outbox.mark_sent, row.id, message_id)

    def _retry_delay(self, attempts: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1))
        return delay * random.uniform(0.8, 1.2)

    async def _retry_or_fail(self, row: OutboxRow, error: str) -> None:
        """Back to ``queued`` with exponential backoff, or ``failed`` after ``max_attempts``."""
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self.stats.failed += 1
            await self._record(self.outbox.mark_failed, row.id, error)
        else:
            self.stats.retried += 1
            await self._record(self.outbox.mark_retry, row.id, error, self._retry_delay(attempts))

    def _release(self, row: OutboxRow, error: str) -> None:
        """Last resort when recording the outcome itself failed oddly: one direct write."""
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self.outbox.mark_failed(row.id, error)
        else:
            self.outbox.mark_retry(row.id, error, self._retry_delay(attempts))

    async def _mark_unreachable(self, row: OutboxRow, reason: str) -> None:
        self.stats.unreachable += 1
        self._unreachable[row.chat_id] = time.monotonic()
        if len(self._unreachable) > 10000:
            cutoff = time.monotonic() - 60
            self._unreachable = {c: t for c, t in self._unreachable.items() if t > cutoff}
        await self._record(self.outbox.mark_unreachable, row.chat_id, row.id, reason)

    async def _record(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Write an outcome; while the database fails, retry with backoff as long as we run.

        The worker keeps its row meanwhile (it claims nothing else), so the in-flight bound
        holds. Once the sender stops, it gives up: the row stays ``sending`` and
        :meth:`Outbox.recover` sends it again at the next start.
        """
        delay = 0.1
        while True:
            try:
                method(*args, **kwargs)
            except sqlite3.Error as exc:
                self._alarm.failure(exc, "recording an outbox outcome")
                if not self._running:
                    log.error(
                        "outbox: cannot record an outcome (%s); the row stays 'sending' "
                        "and is sent again after a restart",
                        exc,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.db_backoff_max)
            else:
                if self._alarm.failing:
                    self._alarm.success()
                return
