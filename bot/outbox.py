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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import sqlite3
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.dbhealth import alarm_for

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import Application

    from bot.config import Config
    from bot.storage import Storage

log = logging.getLogger(__name__)

STATES = ("queued", "sending", "sent", "failed", "unreachable", "cancelled")
TELEGRAM_GLOBAL_RATE = 30.0  # messages per second Telegram allows a bot overall

# Methods that count against Telegram's message limits (everything else is only paused on 429).
PACED_METHODS = frozenset(
    {
        "sendMessage", "copyMessage", "copyMessages", "forwardMessage", "forwardMessages",
        "sendPhoto", "sendDocument", "sendAudio", "sendVideo", "sendAnimation", "sendVoice",
        "sendVideoNote", "sendMediaGroup", "sendLocation", "sendVenue", "sendContact",
        "sendPoll", "sendDice", "sendSticker", "sendInvoice", "sendGame", "sendPaidMedia",
        "editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",
        "editMessageLiveLocation",
    }
)  # fmt: skip

_UNREACHABLE_400 = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")


# --- time helpers -------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds: every outbox timestamp has this exact shape."""
    if moment.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _now_iso(offset: float = 0.0) -> str:
    return _iso(datetime.now(UTC) + timedelta(seconds=offset))


def _as_iso(value: datetime | str | None) -> str:
    if value is None:
        return _now_iso()
    if isinstance(value, str):
        return _iso(datetime.fromisoformat(value))
    return _iso(value)


def _retry_after(exc: RetryAfter) -> float:
    """RetryAfter's delay in seconds (int or timedelta, depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    """A claimed row, ready to send."""

    id: int
    chat_id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int


# Once a row is final (sent, cancelled, unreachable) its text is never read again; reminder
# texts carry workers' names and salaries, so only the payload's type is kept (PDPA: keep
# personal data no longer than needed). ``failed`` rows keep theirs: they can be retried.
_SPEND_PAYLOAD = "payload = json_object('type', json_extract(payload, '$.type'))"


def _payload_json(payload: Mapping[str, Any]) -> str:
    """Check a payload and serialise it (reply_markup may be an InlineKeyboardMarkup)."""
    data = dict(payload)
    kind = data.get("type")
    if kind == "text":
        if not isinstance(data.get("text"), str) or not data["text"].strip():
            raise ValueError("a text payload needs a non-empty 'text'")
    elif kind == "copy":
        if not isinstance(data.get("message_id"), int) or data.get("from_chat_id") is None:
            raise ValueError("a copy payload needs 'from_chat_id' and an int 'message_id'")
    else:
        raise ValueError(f"payload type must be 'text' or 'copy', not {kind!r}")
    markup = data.get("reply_markup")
    if isinstance(markup, InlineKeyboardMarkup):
        data["reply_markup"] = markup.to_dict()
    elif markup is not None and not isinstance(markup, dict):
        raise ValueError("reply_markup must be a dict, an InlineKeyboardMarkup or None")
    data.setdefault("reply_markup", None)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Outbox:
    """The ``outbox`` table: enqueue, claim, record outcomes, report. Uses the Storage connection."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.conn: sqlite3.Connection = storage.db.conn
        self._listeners: list[Callable[[], None]] = []

    # -- producers ---------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback()`` runs after every enqueue in this process (the sender's wake-up)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def enqueue(
        self,
        chat_id: int,
        kind: str,
        dedupe_key: str,
        payload: Mapping[str, Any],
        lang: str = "en",
        not_before: datetime | str | None = None,
        group_ref: str | None = None,
    ) -> bool:
        """Queue one message; False (and nothing changes) when ``dedupe_key`` already exists."""
        inserted = self.enqueue_many(
            [
                {
                    "chat_id": chat_id,
                    "kind": kind,
                    "dedupe_key": dedupe_key,
                    "payload": payload,
                    "lang": lang,
                    "not_before": not_before,
                    "group_ref": group_ref,
                }
            ]
        )
        return inserted == 1

    def enqueue_many(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Queue many messages in ONE transaction; return how many were new (dedupe keys)."""
        now = _now_iso()
        rows = []
        for item in items:
            if not item.get("dedupe_key") or not item.get("kind"):
                raise ValueError("every outbox item needs a kind and a dedupe_key")
            rows.append(
                (
                    int(item["chat_id"]),
                    str(item["kind"]),
                    str(item["dedupe_key"]),
                    item.get("lang") or "en",
                    _payload_json(item["payload"]),
                    _as_iso(item.get("not_before")) if item.get("not_before") else now,
                    now,
                    now,
                    item.get("group_ref"),
                )
            )
        if not rows:
            return 0
        with self.storage.transaction():
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT INTO outbox (chat_id, kind, dedupe_key, lang, payload, not_before, "
                "created_at, updated_at, group_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(dedupe_key) DO NOTHING",
                rows,
            )
            inserted = self.conn.total_changes - before
        if inserted:
            self._notify()
        return inserted

    # -- operator ------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, int]]:
        """Counts by kind, then by state (every state present, zeros included)."""
        result: dict[str, dict[str, int]] = {}
        for kind, state, n in self.conn.execute(
            "SELECT kind, state, count(*) FROM outbox GROUP BY kind, state ORDER BY kind"
        ):
            result.setdefault(kind, dict.fromkeys(STATES, 0))[state] = n
        return result

    def retry_failed(self, kind: str | None = None) -> int:
        """Requeue failed rows (of one kind, or all) with a fresh attempt budget."""
        now = _now_iso()
        sql = (
            "UPDATE outbox SET state = 'queued', attempts = 0, not_before = ?, updated_at = ? "
            "WHERE state = 'failed'"
        )
        params: list[Any] = [now, now]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self.storage.transaction():
            count = self.conn.execute(sql, params).rowcount
        if count:
            self._notify()
        return count

    def cancel_group(self, group_ref: str) -> int:
        """Cancel the queued rows of a group (e.g. a broadcast); rows already claimed still go."""
        with self.storage.transaction():
            return self.conn.execute(
                f"UPDATE outbox SET state = 'cancelled', {_SPEND_PAYLOAD}, updated_at = ? "
                "WHERE group_ref = ? AND state = 'queued'",
                [_now_iso(), group_ref],
            ).rowcount

    def group_progress(self, group_ref: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.conn.execute(
            "SELECT state, count(*) FROM outbox WHERE group_ref = ? GROUP BY state", [group_ref]
        ):
            counts[state] = n
        return counts

    def recover(self) -> int:
        """At start-up: rows a crash left in ``sending`` go back to ``queued``; return how many."""
        with self.storage.transaction():
            return self.conn.execute(
                "UPDATE outbox SET state = 'queued', updated_at = ? WHERE state = 'sending'",
                [_now_iso()],
            ).rowcount

    def backlog(self) -> tuple[int, float]:
        """(rows due now and not yet sent, seconds since the oldest of them became due)."""
        now = datetime.now(UTC)
        count, oldest = self.conn.execute(
            "SELECT count(*), min(not_before) FROM outbox "
            "WHERE state IN ('queued', 'sending') AND not_before <= ?",
            [_iso(now)],
        ).fetchone()
        age = (now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        return int(count), max(0.0, age)

    def pending(self, horizon: float = 0.0) -> int:
        """Rows queued or sending that are due within ``horizon`` seconds."""
        return int(
            self.conn.execute(
                "SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending') "
                "AND not_before <= ?",
                [_now_iso(horizon)],
            ).fetchone()[0]
        )

    def get(self, dedupe_key: str) -> dict[str, Any] | None:
        cursor = self.conn.execute("SELECT * FROM outbox WHERE dedupe_key = ?", [dedupe_key])
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    # -- the sender's side -------------------------------------------------------------------

    def next_due(self) -> float | None:
        """Seconds until the earliest queued row is due (<= 0: due now), None when none."""
        first = self.conn.execute(
            "SELECT min(not_before) FROM outbox WHERE state = 'queued'"
        ).fetchone()[0]
        if first is None:
            return None
        return (datetime.fromisoformat(first) - datetime.now(UTC)).total_seconds()

    def claim(self, limit: int, busy: Iterable[int] = ()) -> tuple[list[OutboxRow], set[int]]:
        """Mark up to ``limit`` due rows ``sending`` (one per chat, none for chats in ``busy``).

        Rows of chats known to be unreachable become ``unreachable`` here, without a request.
        Returns the claimed rows and the chats skipped because they were busy.
        """
        busy_set = set(busy)
        now = _now_iso()
        claimed: list[OutboxRow] = []
        skipped: set[int] = set()
        blocked_ids: list[int] = []
        due = self.conn.execute(
            "SELECT 1 FROM outbox WHERE state = 'queued' AND not_before <= ? LIMIT 1", [now]
        ).fetchone()
        if due is None:  # nothing to do: no write lock taken (idle polls stay read-only)
            return claimed, skipped
        with self.storage.transaction():
            rows = self.conn.execute(
                "SELECT o.id, o.chat_id, o.kind, o.dedupe_key, o.payload, o.attempts, "
                "COALESCE(u.blocked, r.chat_id IS NOT NULL) AS blocked FROM outbox o "
                "LEFT JOIN users u ON u.chat_id = o.chat_id "
                "LEFT JOIN outbox_unreachable r ON r.chat_id = o.chat_id "
                "WHERE o.state = 'queued' AND o.not_before <= ? "
                "ORDER BY o.not_before, o.id LIMIT ?",
                [now, limit * 4 + 64],
            ).fetchall()
            for row_id, chat_id, kind, key, payload, attempts, blocked in rows:
                if blocked:
                    blocked_ids.append(row_id)
                    continue
                if chat_id in busy_set:
                    skipped.add(chat_id)
                    continue
                if len(claimed) >= limit:
                    continue
                busy_set.add(chat_id)
                claimed.append(OutboxRow(row_id, chat_id, kind, key, json.loads(payload), attempts))
            if claimed:
                self.conn.executemany(
                    "UPDATE outbox SET state = 'sending', updated_at = ? WHERE id = ?",
                    [(now, row.id) for row in claimed],
                )
            if blocked_ids:
                self.conn.executemany(
                    f"UPDATE outbox SET state = 'unreachable', {_SPEND_PAYLOAD}, updated_at = ?, "
                    "last_error = 'chat unreachable: not sent' WHERE id = ?",
                    [(now, row_id) for row_id in blocked_ids],
                )
        return claimed, skipped

    def mark_sent(self, row_id: int, message_id: int | None) -> None:
        now = _now_iso()
        self.conn.execute(
            f"UPDATE outbox SET state = 'sent', {_SPEND_PAYLOAD}, attempts = attempts + 1, "
            "sent_at = ?, updated_at = ?, message_id = ?, last_error = NULL WHERE id = ?",
            [now, now, message_id, row_id],
        )

    def mark_retry(self, row_id: int, error: str, delay: float, *, count: bool = True) -> None:
        """Back to ``queued``, due in ``delay`` seconds; ``count`` adds one attempt."""
        self.conn.execute(
            "UPDATE outbox SET state = 'queued', attempts = attempts + ?, last_error = ?, "
            "not_before = ?, updated_at = ? WHERE id = ?",
            [int(count), error[:500], _now_iso(delay), _now_iso(), row_id],
        )

    def mark_failed(self, row_id: int, error: str) -> None:
        self.conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?, "
            "updated_at = ? WHERE id = ?",
            [error[:500], _now_iso(), row_id],
        )

    def mark_unreachable(
        self, chat_id: int, row_id: int | None, reason: str, *, attempted: bool = True
    ) -> int:
        """Telegram refused the chat: this row and every queued row of the chat become
        ``unreachable``, users.blocked = 1, and the chat is remembered. Returns rows changed."""
        now = _now_iso()
        with self.storage.transaction():
            changed = 0
            if row_id is not None:
                changed += self.conn.execute(
                    f"UPDATE outbox SET state = 'unreachable', {_SPEND_PAYLOAD}, "
                    "attempts = attempts + ?, last_error = ?, updated_at = ? WHERE id = ?",
                    [int(attempted), reason[:500], now, row_id],
                ).rowcount
            changed += self.conn.execute(
                f"UPDATE outbox SET state = 'unreachable', {_SPEND_PAYLOAD}, last_error = "
                "'chat unreachable: not sent', updated_at = ? WHERE chat_id = ? AND state = 'queued'",
                [now, chat_id],
            ).rowcount
            self.conn.execute("UPDATE users SET blocked = 1 WHERE chat_id = ?", [chat_id])
            self.conn.execute(
                "INSERT INTO outbox_unreachable (chat_id, reason, since) VALUES (?, ?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET reason = excluded.reason, since = excluded.since",
                [chat_id, reason[:200], now],
            )
        return changed

    def requeue(self, row_ids: Iterable[int]) -> int:
        """Claimed rows that were never requested go back to ``queued`` (graceful stop)."""
        ids = [(row_id,) for row_id in row_ids]
        if not ids:
            return 0
        with self.storage.transaction():
            before = self.conn.total_changes
            self.conn.executemany(
                "UPDATE outbox SET state = 'queued' WHERE id = ? AND state = 'sending'", ids
            )
            return self.conn.total_changes - before


# --- the rate limiter -----------------------------------------------------------------------

MIN_SLACK = 0.005  # seconds of pacing slack at least (see OutboxRateLimiter)


@dataclass
class LimiterStats:
    interactive: int = 0
    outbox: int = 0
    retry_after: int = 0
    paused_seconds: float = 0.0
    transient_retries: int = 0  # interactive requests tried again after a 5xx/timeout


class OutboxRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter: one global budget, interactive requests first, outbox gets the rest.

    ``overall_rate``: sending requests per second for the whole bot. ``outbox_rate``: the most
    the outbox may take of it. Each budget is kept two ways at once, on the time the request is
    *released* (the request reaches Telegram a little later, by a varying delay):

    - a sliding window: at most ``N = floor(rate)`` requests in any ``N / rate * (1 +
      window_margin)`` seconds (for whole rates: ``1 + window_margin``). Telegram counts in a
      one-second window on *arrival*; the margin absorbs up to ``window_margin`` s of jitter
      between two requests' trips, so the window never overflows at Telegram's end. At 30/s
      the bot uses 30 / 1.025 = 29.3 requests/s, 0.976 of the allowance;
    - even spacing (GCRA at the same rate): a queue is drained at a steady pace instead of N
      requests at once and then a pause. Interactive replies have a slack of ``burst``
      requests (a few answers at once are not delayed); the outbox only half an interval (at
      least ``MIN_SLACK``), enough to make up for a late wake-up of a busy event loop.

    A RetryAfter pauses every request (all methods, all callers) until ``retry_after`` (plus
    ``retry_margin``) has passed; afterwards sending resumes at the steady pace, with no
    catch-up burst (the slack is spent), and the request is tried again (at most ``max_retries``
    times). Outbox requests (``rate_limit_args={"outbox": True}``) also keep
    ``per_chat_interval`` seconds between two messages to the same chat.

    Transient failures (5xx, gateway timeouts, network errors, read timeouts) of *interactive*
    requests are tried again up to ``interactive_retries`` times after a short backoff
    (``retry_backoff`` s, doubled each time), so handlers stay thin and a user still gets an
    answer. Outbox requests are not retried here: the sender persists its own backoff. A 4xx
    other than 429 is never retried (403 blocked, 400 bad request / chat not found are final).

    ``clock`` (default ``time.monotonic``) is injectable: :meth:`ready_at` and :meth:`take` are
    the whole pacing decision, so tests can replay hours of sending on a simulated clock.
    """

    def __init__(
        self,
        overall_rate: float = TELEGRAM_GLOBAL_RATE,
        outbox_rate: float | None = None,
        *,
        per_chat_interval: float = 1.0,
        max_retries: int = 3,
        burst: int = 3,
        retry_margin: float = 0.05,
        window_margin: float = 0.025,
        interactive_retries: int = 2,
        retry_backoff: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_margin < 0:
            raise ValueError("window_margin must not be negative")
        self.per_chat_interval = per_chat_interval
        self.max_retries = max_retries
        self.interactive_retries = interactive_retries
        self.retry_backoff = retry_backoff
        self.burst = max(1, burst)
        self.retry_margin = retry_margin
        self.window_margin = window_margin
        self.clock = clock
        self.stats = LimiterStats()
        self._tat = 0.0  # GCRA theoretical arrival times: global and outbox
        self._otat = 0.0
        self._sent: deque[float] = deque()  # release times in the window: global and outbox
        self._osent: deque[float] = deque()
        self._pause_until = -math.inf
        self._interactive: deque[asyncio.Future[None]] = deque()
        self._outbox: deque[asyncio.Future[None]] = deque()
        self._chat_last: dict[Any, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.configure(overall_rate, outbox_rate)

    @classmethod
    def for_config(cls, config: Config) -> OutboxRateLimiter:
        """Telegram's 30/s overall (or the outbox rate if higher); the outbox gets config's rate."""
        rate = float(config.outbox_rate)
        return cls(max(TELEGRAM_GLOBAL_RATE, rate), rate)

    def configure(
        self, overall_rate: float | None = None, outbox_rate: float | None = None
    ) -> None:
        """Change the rates (requests per second); the outbox rate is capped by the overall."""
        if overall_rate is not None:
            if overall_rate <= 0:
                raise ValueError("overall_rate must be positive")
            self.overall_rate = float(overall_rate)
        if outbox_rate is not None:
            if outbox_rate <= 0:
                raise ValueError("outbox_rate must be positive")
            self.outbox_rate = float(outbox_rate)
        elif not hasattr(self, "outbox_rate"):
            self.outbox_rate = self.overall_rate
        stretch = 1.0 + self.window_margin
        self._count = max(1, math.floor(self.overall_rate))
        self._ocount = max(1, math.floor(self.outbox_rate))
        self._window = self._count / self.overall_rate * stretch
        self._owindow = self._ocount / self.outbox_rate * stretch
        self._interval = stretch / self.overall_rate
        self._ointerval = stretch / self.outbox_rate
        # Slack: interactive replies may go ``burst`` at once; the outbox only makes up for late
        # wake-ups (half an interval, at least 5 ms: at 1000/s the event loop's timer is ~1 ms).
        self._tau = max((self.burst - 1) * self._interval, MIN_SLACK)
        self._otau = min(max(0.5 * self._ointerval, MIN_SLACK), self._tau)
        self._sent = deque(self._sent, maxlen=self._count)
        self._osent = deque(self._osent, maxlen=self._ocount)
        if self._wake is not None:
            self._wake.set()

    def ready_at(self, outbox: bool = False) -> float:
        """The earliest clock time the next request (interactive or outbox) may be released."""
        ready = max(self._pause_until, self._tat - self._tau)
        if len(self._sent) == self._count:
            ready = max(ready, self._sent[0] + self._window)
        if outbox:
            ready = max(ready, self._otat - self._otau)
            if len(self._osent) == self._ocount:
                ready = max(ready, self._osent[0] + self._owindow)
        return ready

    def take(self, now: float, outbox: bool = False) -> None:
        """Record a request released at ``now`` (call only once ``now >= ready_at(outbox)``)."""
        self._tat = max(self._tat, now) + self._interval
        self._sent.append(now)
        if outbox:
            self._otat = max(self._otat, now) + self._ointerval
            self._osent.append(now)
            self.stats.outbox += 1
        else:
            self.stats.interactive += 1

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for fut in (*self._interactive, *self._outbox):
            fut.cancel()
        self._interactive.clear()
        self._outbox.clear()

    # -- pause on 429 ------------------------------------------------------------------------

    @property
    def paused_for(self) -> float:
        return max(0.0, self._pause_until - self.clock())

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (plus a small margin) from now.

        When the pause ends, sending restarts at the steady pace: the GCRA slack is used up, so
        requests that queued meanwhile do not go out in a burst (which would trip the next 429).
        """
        now = self.clock()
        until = now + seconds + self.retry_margin
        if until > self._pause_until:
            self.stats.paused_seconds += until - max(self._pause_until, now)
            self._pause_until = until
        self._tat = max(self._tat, self._pause_until + self._tau)
        self._otat = max(self._otat, self._pause_until + self._otau)
        if self._wake is not None:
            self._wake.set()

    async def wait_pause(self) -> None:
        while (delay := self._pause_until - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)  # a deadline that may move later: re-check after

    # -- tokens ------------------------------------------------------------------------------

    async def acquire(self, *, outbox: bool = False, chat_id: Any = None) -> None:
        """Wait for a sending slot (interactive first; outbox: per-chat spacing too)."""
        if outbox and chat_id is not None and self.per_chat_interval > 0:
            while True:
                delay = self._chat_last.get(chat_id, -math.inf) + self.per_chat_interval
                if (delay := delay - self.clock()) <= 0:
                    break
                await asyncio.sleep(delay)
            self._chat_last[chat_id] = self.clock()  # reserve the chat
        now = self.clock()
        if not self._interactive and not self._outbox and self.ready_at(outbox) <= now:
            self.take(now, outbox)  # nobody waiting and a slot free: no queue, no dispatcher turn
            if chat_id is not None:
                self._note_chat(chat_id, now)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        (self._outbox if outbox else self._interactive).append(fut)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name="outbox-rate-limiter")
        else:
            self._wake.set()
        await fut
        if chat_id is not None:
            self._note_chat(chat_id, self.clock())

    def _note_chat(self, chat_id: Any, now: float) -> None:
        self._chat_last[chat_id] = now
        if len(self._chat_last) > 20000:
            cutoff = now - self.per_chat_interval
            self._chat_last = {c: t for c, t in self._chat_last.items() if t > cutoff}

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        wake = self._wake
        while True:
            for waiters in (self._interactive, self._outbox):
                while waiters and waiters[0].done():  # cancelled while waiting
                    waiters.popleft()
            if not self._interactive and not self._outbox:
                self._task = None
                return
            now = self.clock()
            is_outbox = not self._interactive
            ready = self.ready_at(is_outbox)
            if ready <= now:
                fut = (self._outbox if is_outbox else self._interactive).popleft()
                self.take(now, is_outbox)
                fut.set_result(None)
                continue
            wake.clear()
            handle = loop.call_later(ready - now, wake.set)
            try:
                await wake.wait()
            finally:
                handle.cancel()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        outbox = isinstance(rate_limit_args, dict) and bool(rate_limit_args.get("outbox"))
        paced = endpoint in PACED_METHODS
        chat_id = data.get("chat_id") if paced else None
        retries = 0  # after RetryAfter (everyone)
        transient = 0  # after a 5xx / timeout (interactive requests only)
        while True:
            if paced:
                await self.acquire(outbox=outbox, chat_id=chat_id)
            else:
                await self.wait_pause()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.stats.retry_after += 1
                self.pause(_retry_after(exc))
                log.warning("Telegram flood control: pausing all sends for %s s", _retry_after(exc))
                if retries >= self.max_retries:
                    raise
                retries += 1
            except BadRequest:  # a 4xx (NetworkError's subclass): retrying cannot help
                raise
            except NetworkError as exc:  # 5xx, 504, TimedOut, connection errors
                if outbox or transient >= self.interactive_retries:
                    raise
                transient += 1
                self.stats.transient_retries += 1
                delay = self.retry_backoff * 2 ** (transient - 1) * random.uniform(0.8, 1.2)
                log.info(
                    "%s failed (%s: %s); trying again in %.2f s",
                    endpoint,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)


# --- the sender -----------------------------------------------------------------------------


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    errors: dict[str, int] = field(default_factory=dict)


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
        markup = payload.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            extra["reply_markup"] = InlineKeyboardMarkup.de_json(markup, self.bot)
        elif markup is not None:
            extra["api_kwargs"] = {"reply_markup": markup}
        if payload["type"] == "copy":
            result = await self.bot.copy_message(
                row.chat_id, payload["from_chat_id"], payload["message_id"], **extra
            )
            return result.message_id
        message = await self.bot.send_message(
            row.chat_id,
            payload["text"],
            parse_mode=payload.get("parse_mode", ParseMode.HTML),
            disable_web_page_preview=payload.get("disable_web_page_preview", True),
            **extra,
        )
        return message.message_id

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
            delay = _retry_after(exc)
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


# --- wiring ----------------------------------------------------------------------------------


def install(
    app: Application,
    *,
    start_sender: bool = True,
    workers: int = 8,
    **sender_options: Any,
) -> OutboxSender:
    """Create the Outbox and its sender for ``app``; start/stop it with the app unless disabled.

    Puts them in ``services.extras["outbox"]`` and ``["outbox_sender"]``.
    """
    services = app.bot_data["services"]
    outbox = Outbox(services.storage)
    sender = OutboxSender(app.bot, outbox, workers=workers, **sender_options)
    services.extras["outbox"] = outbox
    services.extras["outbox_sender"] = sender
    if start_sender:

        async def _start(_app: Application) -> None:
            await sender.start()

        async def _stop(_app: Application) -> None:
            await sender.stop()

        services.extras.setdefault("post_init", []).append(_start)
        services.extras.setdefault("post_stop", []).append(_stop)
    return sender
