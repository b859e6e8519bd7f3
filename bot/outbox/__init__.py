"""One persistent, rate-limited outbox for every message the bot sends unprompted.

Reminders and broadcasts never call Telegram directly: they :meth:`Outbox.enqueue` a row in the
SQLite table ``outbox`` (migration 3 in bot/storage.py) and :class:`OutboxSender` drains it
through the same ``application.bot`` as the interactive replies.

Pacing. :class:`OutboxRateLimiter` is installed as PTB's rate limiter (``ApplicationBuilder
.rate_limiter``). Every sending request takes a token from one global bucket (Telegram's ~30
messages/s, or the configured outbox rate when that is higher); interactive requests (no
``rate_limit_args``) are served first, outbox requests (``rate_limit_args={"outbox": True}``)
only get what is left and never more than the outbox rate; outbox requests keep one message per
second per chat. A 429 pauses every request until ``retry_after`` has passed.

Crash safety and the duplicate bound. A row is committed (``queued``) before anything is sent.
The sender claims a row (``sending``, committed) just before its HTTP request and records the
outcome (``sent`` + Telegram's message_id) in its own commit right after the answer. After a
kill -9, :meth:`Outbox.recover` returns ``sending`` rows to ``queued``: rows that were claimed
but not yet requested are simply sent once later; only rows whose request was in flight (or
whose answer arrived but was not yet committed) can reach the user twice. Each worker has at
most one request in flight, so **a crash duplicates at most ``workers`` messages** (default 8).
A timed-out request that Telegram did deliver is also retried (Telegram has no idempotency
key): a lost answer can duplicate that one message. Only one sender per database: ``recover``
at start-up assumes no other process is sending from the same file.

The package: ``store.py`` (the table, :class:`Outbox`), ``limiter.py`` (pacing,
:class:`OutboxRateLimiter`) and ``sender.py`` (draining, :class:`OutboxSender`). Every public
name is re-exported here: ``from bot.outbox import Outbox`` keeps working.
"""

from __future__ import annotations

from bot.outbox.limiter import (
    PACED_METHODS,
    TELEGRAM_GLOBAL_RATE,
    ApiObserver,
    LimiterStats,
    OutboxRateLimiter,
    retry_after_seconds,
)
from bot.outbox.sender import OutboxSender, SenderStats, send_payload
from bot.outbox.store import STATES, Outbox, OutboxRow

__all__ = [
    "PACED_METHODS",
    "STATES",
    "TELEGRAM_GLOBAL_RATE",
    "ApiObserver",
    "LimiterStats",
    "Outbox",
    "OutboxRateLimiter",
    "OutboxRow",
    "OutboxSender",
    "SenderStats",
    "retry_after_seconds",
    "send_payload",
]
