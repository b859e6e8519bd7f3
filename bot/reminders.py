"""Monthly payment reminders: subscriptions, saved workers, and what is due at a moment.

Everything the scheduler knows lives in SQLite (tables of migration 4 in bot/storage.py), so a
restart, a clock jump or a deploy neither loses nor repeats a reminder:

* :func:`due_reminders` looks at the database and a time ``now`` only. For every subscriber and
  contribution month it takes the *latest* reminder moment that has passed; the reminder is due
  when that moment was not sent yet, the month is not paid and the moment is not older than the
  subscription's ``since`` (set when reminders are turned on or their settings change). After a
  downtime, the reminders missed are therefore returned once (only the latest of each month), and a
  "deadline" reminder whose deadline has passed is dropped: the "overdue" one follows instead.
* :func:`send_due` renders each due reminder in the subscriber's language, enqueues it in the
  outbox with the dedupe key ``reminder:<chat>:<YYYY-MM>:<kind>[:<days>]`` and records it as sent,
  in one transaction; calling it twice enqueues nothing new.
* A watermark (the last ``now`` of :func:`send_due`) lets the per-minute job read only the
  subscribers whose reminder hour passed since then (index on ``hour``), plus pending snoozes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from bot.domain.clock import parse_utc
from bot.domain.reminder_rules import (
    AUDIENCES,
    OVERDUE_GRACE,
    DueEvaluator,
    DueReminder,
    Worker,
    earliest_after,
    guide_for,
    hours_between,
    next_candidates,
    tomorrow_at,
)
from bot.reminder_store import CHUNK, MAX_WORKERS, PENDING_TTL, ReminderStore, row_settings
from bot.reminder_views import render_reminder
from bot.storage import Storage

__all__ = [
    "AUDIENCES",
    "DueReminder",
    "MAX_WORKERS",
    "OVERDUE_GRACE",
    "PENDING_TTL",
    "ReminderStore",
    "Worker",
    "due_reminders",
    "guide_for",
    "iter_due_reminders",
    "next_reminder",
    "render_reminder",
    "row_settings",
    "send_due",
    "send_due_async",
    "tomorrow_at",
]

_CHUNK = CHUNK
# send_due_async: pages of ASYNC_CHUNK subscribers; after ASYNC_STEP s of work it gives the event
# loop ASYNC_REST s (a bare yield lets only one loop iteration run, too few for a reply's round
# trips: measured p95 ~300 ms during a big slot, against ~50 ms with this duty cycle).
ASYNC_CHUNK = 50
ASYNC_STEP = 0.008
ASYNC_REST = 0.003


def due_reminders(storage: Storage, now: datetime, *, chat_id: int | None = None) -> list[DueReminder]:
    """Every reminder due at ``now`` (aware) that was not sent yet, from the database alone.

    With ``chat_id``, only that subscriber's, whatever the scheduler's watermark (what
    :func:`next_reminder` asks at moments to come)."""
    return [r for chunk in iter_due_reminders(storage, now, chat_id=chat_id) for r in chunk]


def iter_due_reminders(
    storage: Storage, now: datetime, *, chunk: int = _CHUNK, chat_id: int | None = None
) -> Iterator[list[DueReminder]]:
    """:func:`due_reminders` in pieces: one list per ``chunk`` subscribers read (maybe empty).

    Memory stays bounded by ``chunk`` however many subscribers there are, and a caller may act
    on each piece before the next is read (:func:`send_due` enqueues it; the async one yields
    to the event loop). Subscribers are read per hour through the hour index (the per-minute
    job), then the snoozed ones of other hours; a full scan (first start, a day or more since
    the last run) walks the table in chat_id order (:meth:`ReminderStore.due_rows`). What is due
    in each row is decided by :class:`bot.domain.reminder_rules.DueEvaluator`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if chunk < 1:
        raise ValueError("chunk must be positive")
    rules = DueEvaluator(now)
    store = ReminderStore(storage)
    mark = store.watermark()
    hours: set[int] | None = None
    snooze_from = ""
    if chat_id is None and mark is not None and mark < rules.now_text:
        hours = hours_between(parse_utc(mark), rules.now_utc)
        snooze_from = mark if hours is not None else ""
    for rows in store.due_rows(
        rules.keys, rules.now_text, chunk=chunk, chat_id=chat_id, hours=hours, snooze_from=snooze_from
    ):
        yield rules.evaluate(rows)


def next_reminder(storage: Storage, chat_id: int, now: datetime) -> DueReminder | None:
    """The next reminder that will really be sent to ``chat_id`` after ``now``: the first of the
    coming reminder moments (and snooze ends) at which :func:`due_reminders`, the code that sends
    them, finds one due. Paid months, snoozes and reminders already sent are thereby skipped."""
    store = ReminderStore(storage)
    row = store.get(chat_id)
    if row is None or not row["enabled"]:
        return None
    for moment in next_candidates(row_settings(row), now, store.snooze_ends(chat_id, now)):
        found = earliest_after(due_reminders(storage, moment, chat_id=chat_id), now)
        if found is not None:
            return found
    return None


class _Outbox(Protocol):
    def enqueue_many(self, items: Iterable[dict[str, Any]]) -> int: ...


def send_due(storage: Storage, outbox: _Outbox, now: datetime, *, chunk: int = _CHUNK) -> int:
    """Enqueue every reminder due at ``now`` in the outbox; return how many were new.

    Due reminders are read, rendered and enqueued ``chunk`` subscribers at a time (bounded
    memory). Each chunk is enqueued and recorded as sent in one transaction; the outbox's dedupe
    key makes a repeated call (or a retry after a crash between the two) enqueue nothing twice.
    """
    return sum(_send_due_steps(storage, outbox, now, chunk))


async def send_due_async(
    storage: Storage,
    outbox: _Outbox,
    now: datetime,
    *,
    chunk: int = ASYNC_CHUNK,
    step: float = ASYNC_STEP,
    rest: float = ASYNC_REST,
) -> int:
    """:func:`send_due` on the event loop, giving it back between chunks.

    Chunks (read, render, enqueue, commit ``chunk`` subscribers each) run for about ``step``
    seconds, then the loop gets ``rest`` seconds for everything else: the loop is never held
    for much more than ``step`` plus one chunk, so interactive replies keep their latency while
    a big slot is enqueued, and no thread competes for the GIL meanwhile.
    """
    sent = 0
    started = time.perf_counter()
    for count in _send_due_steps(storage, outbox, now, chunk):
        sent += count
        if time.perf_counter() - started >= step:
            await asyncio.sleep(rest)
            started = time.perf_counter()
    return sent


def _send_due_steps(storage: Storage, outbox: _Outbox, now: datetime, chunk: int) -> Iterator[int]:
    """Enqueue the due reminders chunk by chunk; yield how many were new after each chunk."""
    store = ReminderStore(storage)
    # Without saved workers a reminder depends only on these fields: render each variant once.
    shared: dict[tuple[Any, ...], dict[str, Any]] = {}

    def payload(reminder: DueReminder, saved: list[Worker]) -> dict[str, Any]:
        if saved:
            return render_reminder(reminder, saved)
        variant = (reminder.lang, reminder.kind, reminder.year, reminder.month, reminder.days_left,
                   reminder.audience, reminder.snoozed)
        if variant not in shared:
            shared[variant] = render_reminder(reminder, saved)
        return shared[variant]

    for due in iter_due_reminders(storage, now, chunk=chunk):
        if not due:
            yield 0
            continue
        workers = store.workers_for([r.chat_id for r in due])
        items = [
            {
                "chat_id": r.chat_id,
                "kind": "reminder",
                "dedupe_key": r.key,
                "payload": payload(r, workers.get(r.chat_id, [])),
                "lang": r.lang,
            }
            for r in due
        ]
        with storage.transaction():
            sent = outbox.enqueue_many(items)
            store.mark_sent(due)
        yield sent
    store.set_watermark(now)
