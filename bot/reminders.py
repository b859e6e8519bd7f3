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
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from bot.domain.deadlines import (
    DEFAULT_DEADLINE_DAYS,
    DEFAULT_HOUR,
    KL,
    PAYMENT_OPEN_DAY,
    Moment,
    ReminderSettings,
    add_months,
    days_from_mask,
    deadline,
    mask_from_days,
    moments_for_month,
    month_key,
    reminder_suffix,
    to_utc_text,
)
from bot.i18n import format_date, format_money, format_month, t
from bot.storage import Storage

__all__ = [
    "AUDIENCES",
    "DueReminder",
    "OVERDUE_GRACE",
    "ReminderStore",
    "Worker",
    "due_reminders",
    "guide_for",
    "iter_due_reminders",
    "render_reminder",
    "row_settings",
    "send_due",
    "send_due_async",
]

AUDIENCES = ("household", "employer")
OVERDUE_GRACE = timedelta(days=7)  # an "overdue" reminder missed for longer is not sent any more
PENDING_TTL = timedelta(minutes=30)  # an unfinished add-a-worker conversation expires
MAX_WORKERS = 10
_CHUNK = 500  # SQLite variables per IN (...) query; subscribers per due_reminders piece
# send_due_async: pages of ASYNC_CHUNK subscribers; after ASYNC_STEP s of work it gives the event
# loop ASYNC_REST s (a bare yield lets only one loop iteration run, too few for a reply's round
# trips: measured p95 ~300 ms during a big slot, against ~50 ms with this duty cycle).
ASYNC_CHUNK = 50
ASYNC_STEP = 0.008
ASYNC_REST = 0.003


def _utc_text(moment: datetime) -> str:
    return to_utc_text(moment)


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Worker:
    id: int
    chat_id: int
    name: str
    worker_type: str
    salary: Decimal | None


@dataclass(frozen=True, slots=True)
class DueReminder:
    """One reminder to send now."""

    chat_id: int
    lang: str
    kind: str  # "payment-open" | "deadline" | "overdue"
    year: int  # the contribution month it is about
    month: int
    days: int | None  # deadline reminders: the setting (days before the deadline) it comes from
    days_left: int  # days from today (Kuala Lumpur) to the deadline; < 0 when overdue
    at: datetime  # the moment it was due (aware)
    audience: str
    snoozed: bool = False

    @property
    def month_key(self) -> str:
        return month_key(self.year, self.month)

    @property
    def suffix(self) -> str:
        return reminder_suffix(self.kind, self.days)

    @property
    def key(self) -> str:
        """The outbox dedupe key."""
        return f"reminder:{self.chat_id}:{self.month_key}:{self.suffix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "kind": self.kind,
            "month": self.month_key,
            "days": self.days,
            "days_left": self.days_left,
            "lang": self.lang,
            "at": self.at.astimezone(KL).isoformat(timespec="minutes"),
            "snoozed": self.snoozed,
            "key": self.key,
        }


class ReminderStore:
    """Reads and writes of the reminder tables (schema: migration 4 in bot/storage.py)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.db = storage.db

    # -- subscription ------------------------------------------------------------------------

    def get(self, chat_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM reminder_subs WHERE chat_id = ?", [chat_id]))
        return rows[0] if rows else None

    def ensure(self, chat_id: int, now: datetime | None = None, *, enabled: bool = False) -> dict[str, Any]:
        """The subscriber's row, created with the defaults (off unless ``enabled``) if missing."""
        stamp = _utc_text(now) if now else _now_text()
        with self.storage.transaction():
            self.db.execute(
                "INSERT INTO reminder_subs (chat_id, enabled, payment_open, open_day, days_mask, "
                "hour, audience, since, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, "
                "'household', ?, ?, ?) ON CONFLICT(chat_id) DO NOTHING",
                [chat_id, int(enabled), PAYMENT_OPEN_DAY, mask_from_days(DEFAULT_DEADLINE_DAYS),
                 DEFAULT_HOUR, stamp, stamp, stamp],
            )
        row = self.get(chat_id)
        assert row is not None
        return row

    def update(self, chat_id: int, now: datetime | None = None, **values: Any) -> dict[str, Any]:
        """Change settings (enabled, payment_open, days_mask, hour, audience, open_day).

        Turning reminders on or changing when they come moves ``since`` to now: moments that
        passed before the change are never sent afterwards (no burst of stale reminders).
        """
        allowed = {"enabled", "payment_open", "days_mask", "hour", "audience", "open_day"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown reminder settings: {sorted(unknown)}")
        if "audience" in values and values["audience"] not in AUDIENCES:
            raise ValueError("bad audience")
        if "hour" in values and not 0 <= int(values["hour"]) <= 23:
            raise ValueError("bad hour")
        stamp = _utc_text(now) if now else _now_text()
        self.ensure(chat_id, now)
        sets = [f"{name} = ?" for name in values] + ["updated_at = ?"]
        params: list[Any] = [*values.values(), stamp]
        if set(values) - {"audience"} and values.get("enabled", 1):
            sets.append("since = ?")
            params.append(stamp)
        with self.storage.transaction():
            self.db.execute(
                f"UPDATE reminder_subs SET {', '.join(sets)} WHERE chat_id = ?", [*params, chat_id]
            )
        row = self.get(chat_id)
        assert row is not None
        return row

    # -- workers -----------------------------------------------------------------------------

    def workers(self, chat_id: int) -> list[Worker]:
        return [
            _worker(row)
            for row in self.db.query(
                "SELECT * FROM reminder_workers WHERE chat_id = ? ORDER BY id", [chat_id]
            )
        ]

    def workers_for(self, chat_ids: Sequence[int]) -> dict[int, list[Worker]]:
        out: dict[int, list[Worker]] = {}
        for chunk in _chunks(sorted(set(chat_ids)), _CHUNK):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT * FROM reminder_workers WHERE chat_id IN ({marks}) ORDER BY chat_id, id",
                chunk,
            ):
                out.setdefault(row["chat_id"], []).append(_worker(row))
        return out

    def add_worker(self, chat_id: int, name: str, worker_type: str, salary: Decimal | None) -> int:
        with self.storage.transaction():
            cursor = self.db.execute(
                "INSERT INTO reminder_workers (chat_id, name, worker_type, salary, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [chat_id, name, worker_type, None if salary is None else str(salary), _now_text()],
            )
        return int(cursor.lastrowid)

    def delete_worker(self, chat_id: int, worker_id: int) -> bool:
        with self.storage.transaction():
            cursor = self.db.execute(
                "DELETE FROM reminder_workers WHERE chat_id = ? AND id = ?", [chat_id, worker_id]
            )
        return cursor.rowcount > 0

    # -- the add-a-worker conversation ---------------------------------------------------------

    def pending(self, chat_id: int, now: datetime | None = None) -> dict[str, Any] | None:
        """The unfinished add-a-worker step of this chat, or None (also when it expired)."""
        rows = list(
            self.db.query(
                "SELECT pending, pending_at FROM reminder_subs WHERE chat_id = ? AND pending IS NOT NULL",
                [chat_id],
            )
        )
        if not rows:
            return None
        now = now or datetime.now(UTC)
        started = datetime.fromisoformat(rows[0]["pending_at"])
        if now - started > PENDING_TTL:
            return None
        return json.loads(rows[0]["pending"])

    def set_pending(self, chat_id: int, state: dict[str, Any] | None) -> None:
        self.ensure(chat_id)
        with self.storage.transaction():
            self.db.execute(
                "UPDATE reminder_subs SET pending = ?, pending_at = ? WHERE chat_id = ?",
                [None if state is None else json.dumps(state), None if state is None else _now_text(),
                 chat_id],
            )

    # -- months: paid, snoozed, sent -----------------------------------------------------------

    def month_state(self, chat_id: int, ym: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query("SELECT * FROM reminder_months WHERE chat_id = ? AND ym = ?", [chat_id, ym])
        )
        return rows[0] if rows else None

    def mark_paid(self, chat_id: int, ym: str, now: datetime | None = None) -> None:
        stamp = _utc_text(now) if now else _now_text()
        with self.storage.transaction():
            self.db.execute(
                "INSERT INTO reminder_months (chat_id, ym, paid_at) VALUES (?, ?, ?) "
                "ON CONFLICT(chat_id, ym) DO UPDATE SET paid_at = excluded.paid_at, snooze_until = NULL",
                [chat_id, ym, stamp],
            )

    def snooze(self, chat_id: int, ym: str, until: datetime) -> None:
        """One pending snooze per month: a later press replaces it."""
        with self.storage.transaction():
            self.db.execute(
                "INSERT INTO reminder_months (chat_id, ym, snooze_until) VALUES (?, ?, ?) "
                "ON CONFLICT(chat_id, ym) DO UPDATE SET snooze_until = excluded.snooze_until",
                [chat_id, ym, _utc_text(until)],
            )

    def mark_sent(self, reminders: Iterable[DueReminder]) -> None:
        rows = [(r.chat_id, r.month_key, " " + r.suffix, _utc_text(r.at)) for r in reminders]
        with self.storage.transaction():
            self.db.conn.executemany(
                "INSERT INTO reminder_months (chat_id, ym, sent, last_sent_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(chat_id, ym) DO UPDATE SET sent = sent || excluded.sent, "
                "last_sent_at = max(coalesce(last_sent_at, ''), excluded.last_sent_at)",
                rows,
            )

    # -- scheduler state ----------------------------------------------------------------------

    def watermark(self) -> str | None:
        rows = list(self.db.query("SELECT value FROM reminder_meta WHERE key = 'watermark'"))
        return rows[0]["value"] if rows else None

    def set_watermark(self, now: datetime) -> None:
        stamp = _utc_text(now)
        with self.storage.transaction():
            self.db.execute(
                "INSERT INTO reminder_meta (key, value) VALUES ('watermark', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [stamp],
            )


def row_settings(row: dict[str, Any]) -> ReminderSettings:
    """The domain settings of a ``reminder_subs`` row."""
    return ReminderSettings(
        payment_open=bool(row["payment_open"]),
        deadline_days=days_from_mask(row["days_mask"]),
        hour=row["hour"],
        open_day=row["open_day"],
    )


def _worker(row: dict[str, Any]) -> Worker:
    salary: Decimal | None
    try:
        salary = Decimal(row["salary"]) if row["salary"] is not None else None
    except InvalidOperation:
        salary = None
    return Worker(row["id"], row["chat_id"], row["name"], row["worker_type"], salary)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- what is due ------------------------------------------------------------------------------


def _hours_between(start: datetime, end: datetime) -> set[int] | None:
    """The Kuala Lumpur hours h with an h:00 in (start, end]; None when that is every hour."""
    if end - start >= timedelta(hours=24):
        return None
    local = start.astimezone(KL).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours: set[int] = set()  # local is the first full hour strictly after start
    end_local = end.astimezone(KL)
    while local <= end_local:
        hours.add(local.hour)
        local += timedelta(hours=1)
    return hours


def _snooze_moment(until: datetime, year: int, month: int) -> Moment:
    """A snoozed reminder: a deadline reminder, or the overdue one once the deadline has passed."""
    local = until.astimezone(KL)
    left = (deadline(year, month) - local.date()).days
    if left < 0:
        return Moment(local, "overdue", year, month)
    return Moment(local, "deadline", year, month, left)


def due_reminders(storage: Storage, now: datetime, *, chat_id: int | None = None) -> list[DueReminder]:
    """Every reminder due at ``now`` (aware) that was not sent yet, from the database alone.

    With ``chat_id``, only that subscriber's, whatever the scheduler's watermark (what
    :func:`next_reminder` asks at moments to come)."""
    return [r for chunk in iter_due_reminders(storage, now, chat_id=chat_id) for r in chunk]


_DUE_SELECT = (
    "SELECT s.chat_id, u.lang, s.hour, s.days_mask, s.payment_open, s.open_day, s.since, "
    "s.audience, p.paid_at, p.snooze_until, p.sent, p.last_sent_at, "
    "c.paid_at, c.snooze_until, c.sent, c.last_sent_at "
    "FROM reminder_subs s {hint} JOIN users u ON u.chat_id = s.chat_id "
    "LEFT JOIN reminder_months p ON p.chat_id = s.chat_id AND p.ym = ? "
    "LEFT JOIN reminder_months c ON c.chat_id = s.chat_id AND c.ym = ? "
    "WHERE s.enabled = 1 AND u.blocked = 0 AND {where}"
)


def iter_due_reminders(
    storage: Storage, now: datetime, *, chunk: int = _CHUNK, chat_id: int | None = None
) -> Iterator[list[DueReminder]]:
    """:func:`due_reminders` in pieces: one list per ``chunk`` subscribers read (maybe empty).

    Memory stays bounded by ``chunk`` however many subscribers there are, and a caller may act
    on each piece before the next is read (:func:`send_due` enqueues it; the async one yields
    to the event loop). Every piece is its own keyset query (``chat_id > last``), so no cursor
    stays open while the caller writes. Subscribers are read per hour through the hour index
    (the per-minute job), then the snoozed ones of other hours; a full scan (first start, a day
    or more since the last run) walks the table in chat_id order.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if chunk < 1:
        raise ValueError("chunk must be positive")
    now_utc = now.astimezone(UTC)
    now_text = _utc_text(now_utc)
    local = now.astimezone(KL)
    today = local.date()
    months = [add_months(local.year, local.month, -1), (local.year, local.month)]
    keys = [month_key(*m) for m in months]

    store = ReminderStore(storage)
    mark = store.watermark()
    hours: set[int] | None = None
    snooze_from = ""
    if chat_id is None and mark is not None and mark < now_text:
        hours = _hours_between(datetime.fromisoformat(mark), now_utc)
        snooze_from = mark if hours is not None else ""

    # The latest passed moment per (settings, month), computed once per distinct settings.
    latest_cache: dict[tuple[int, int, int, int, int], tuple[str, Moment] | None] = {}

    def latest(po: int, open_day: int, mask: int, hour: int, index: int) -> tuple[str, Moment] | None:
        cache_key = (po, open_day, mask, hour, index)
        if cache_key not in latest_cache:
            settings = ReminderSettings(bool(po), days_from_mask(mask), hour, open_day)
            found = None
            for m in moments_for_month(settings, *months[index]):
                text = _utc_text(m.at)
                if text <= now_text:
                    found = (text, m)
            latest_cache[cache_key] = found
        return latest_cache[cache_key]

    deadlines = [deadline(*m) for m in months]

    def evaluate(rows: Iterable[Sequence[Any]]) -> list[DueReminder]:
        out: list[DueReminder] = []
        for row in rows:
            (chat_id, lang, hour, mask, po, open_day, since, audience) = row[:8]
            for index in (0, 1):
                paid_at, snooze_until, sent, last_sent = row[8 + 4 * index : 12 + 4 * index]
                if paid_at is not None:
                    continue
                found = latest(po, open_day, mask, hour, index)
                snoozed = False
                if snooze_until is not None and snooze_until <= now_text and (
                    found is None or snooze_until > found[0]
                ):
                    found = (snooze_until, _snooze_moment(datetime.fromisoformat(snooze_until),
                                                          *months[index]))
                    snoozed = True
                if found is None:
                    continue
                text, moment = found
                if text < since or (last_sent is not None and text <= last_sent):
                    continue
                if sent and f" {moment.suffix}" in f"{sent} ":
                    continue
                left = (deadlines[index] - today).days
                if moment.kind == "overdue":
                    if now_utc - moment.at > OVERDUE_GRACE:
                        continue
                elif left < 0:
                    continue  # a warning about a deadline that has passed: the overdue one follows
                out.append(
                    DueReminder(chat_id, lang, moment.kind, moment.year, moment.month, moment.days,
                                left, moment.at, audience, snoozed)
                )
        return out

    conn = storage.db.conn

    def pages(hint: str, where: str, params: list[Any]) -> Iterator[list[DueReminder]]:
        sql = _DUE_SELECT.format(hint=hint, where=where) + " AND s.chat_id > ? ORDER BY s.chat_id LIMIT ?"
        last = -(2**63)
        while True:
            rows = conn.execute(sql, [*keys, *params, last, chunk]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield evaluate(rows)
            if len(rows) < chunk:
                return

    if chat_id is not None:  # one subscriber (next_reminder), whatever the watermark
        yield from pages("", "s.chat_id = ?", [int(chat_id)])
        return
    if hours is None:
        yield from pages("NOT INDEXED", "1", [])  # the rowid order, no index
        return
    for hour in sorted(hours):
        yield from pages("INDEXED BY idx_reminder_subs_hour", "s.hour = ?", [hour])
    # Snoozed until a moment in (watermark, now], at an hour not read above.
    other_hours = ",".join(str(int(h)) for h in sorted(hours)) or "-1"
    snoozed_sql = (
        "SELECT DISTINCT chat_id FROM reminder_months WHERE snooze_until > ? AND snooze_until <= ? "
        "AND chat_id > ? ORDER BY chat_id LIMIT ?"
    )
    last = -(2**63)
    while True:
        ids = [r[0] for r in conn.execute(snoozed_sql, [snooze_from, now_text, last, chunk])]
        if not ids:
            return
        last = ids[-1]
        marks = ",".join("?" * len(ids))
        sql = _DUE_SELECT.format(
            hint="", where=f"s.hour NOT IN ({other_hours}) AND s.chat_id IN ({marks})"
        )
        yield evaluate(conn.execute(sql + " ORDER BY s.chat_id", [*keys, *ids]).fetchall())
        if len(ids) < chunk:
            return


def next_reminder(storage: Storage, chat_id: int, now: datetime) -> DueReminder | None:
    """The next reminder that will really be sent to ``chat_id`` after ``now``: the first of the
    coming reminder moments (and snooze ends) at which :func:`due_reminders`, the code that sends
    them, finds one due. Paid months, snoozes and reminders already sent are thereby skipped."""
    row = ReminderStore(storage).get(chat_id)
    if row is None or not row["enabled"]:
        return None
    settings = row_settings(row)
    local = now.astimezone(KL)
    moments = {
        m.at
        for k in (-1, 0, 1, 2, 3)
        for m in moments_for_month(settings, *add_months(local.year, local.month, k))
        if m.at > local
    }
    for (until,) in storage.db.execute(
        "SELECT snooze_until FROM reminder_months WHERE chat_id = ? AND snooze_until > ?",
        [chat_id, _utc_text(now.astimezone(UTC))],
    ).fetchall():
        moments.add(datetime.fromisoformat(until).astimezone(KL))
    for moment in sorted(moments):
        due = [d for d in due_reminders(storage, moment, chat_id=chat_id) if d.at > now]
        if due:
            return min(due, key=lambda d: (d.at, d.year, d.month))
    return None


# --- rendering --------------------------------------------------------------------------------


def guide_for(workers: Sequence[Worker], audience: str) -> str:
    """The "How to pay" guide: domestic-pay when any saved worker is domestic (or, with no saved
    worker, for a household), else pay-socso."""
    if workers:
        return "domestic-pay" if any(w.worker_type.startswith("domestic") for w in workers) else "pay-socso"
    return "domestic-pay" if audience == "household" else "pay-socso"


def _amount_lines(reminder: DueReminder, workers: Sequence[Worker], lang: str) -> tuple[list[str], Decimal]:
    from bot.domain.rates import WorkerType, calculate

    lines: list[str] = []
    total = Decimal("0.00")
    month = format_month(reminder.year, reminder.month, lang)
    for worker in workers:
        if worker.salary is None:
            continue
        try:
            result = calculate(worker.salary, reminder.year, reminder.month, WorkerType(worker.worker_type))
        except ValueError:
            continue
        amount = result.employer_total + result.employee_total
        total += amount
        if result.employee_total == 0:
            split = t("remind.split_employer_only", lang)
        else:
            split = t(
                "remind.split",
                lang,
                employer=format_money(result.employer_total, lang),
                employee=format_money(result.employee_total, lang),
            )
        lines.append(
            str(t("remind.amount_line", lang, month=month, name=worker.name,
                  amount=format_money(amount, lang), split=split))
        )
    return lines, total


def render_reminder(reminder: DueReminder, workers: Sequence[Worker]) -> dict[str, Any]:
    """The outbox payload: ``{"type": "text", "text": html, "reply_markup": dict}``."""
    lang = reminder.lang
    month = format_month(reminder.year, reminder.month, lang)
    due = deadline(reminder.year, reminder.month)
    due_text = format_date(due, lang)
    parts: list[str] = []
    if reminder.kind == "overdue":
        parts.append(str(t("remind.overdue_title", lang, month=month)))
        parts.append(str(t("remind.overdue_body", lang, deadline=due_text)))
        parts.append(str(t("remind.late_interest", lang)))
    else:
        if reminder.kind == "payment-open" and not reminder.snoozed:
            parts.append(str(t("remind.open_title", lang, month=month)))
            parts.append(str(t("remind.open_body", lang, month=month, deadline=due_text)))
        else:
            if reminder.days_left == 0:
                title = t("remind.deadline_today_title", lang, month=month)
            elif reminder.days_left == 1:
                title = t("remind.deadline_one_title", lang, month=month)
            else:
                title = t("remind.deadline_title", lang, month=month, days=reminder.days_left)
            parts.append(str(title))
            parts.append(str(t("remind.deadline_body", lang, deadline=due_text)))
        if due.weekday() >= 5:
            parts.append(str(t("remind.weekend_note", lang, deadline=due_text)))
    lines, total = _amount_lines(reminder, workers, lang)
    if lines:
        block = "\n".join(f"• {line}" for line in lines)
        if len(lines) > 1:
            block += "\n" + str(t("remind.total_line", lang, amount=format_money(total, lang)))
        parts.append(block)
    elif reminder.kind != "overdue":
        parts.append(str(t("remind.no_salary", lang)))
    if reminder.kind == "overdue":
        parts.append(str(t("remind.overdue_last", lang, month=month)))

    ym = reminder.month_key
    guide = guide_for(workers, reminder.audience)
    rows: list[list[dict[str, str]]] = [[{"text": str(t("remind.btn_paid", lang)), "callback_data": f"rm:paid:{ym}"}]]
    if reminder.kind != "overdue":
        rows[0].append({"text": str(t("remind.btn_snooze", lang)), "callback_data": f"rm:snooze:{ym}"})
    second = [{"text": str(t("remind.btn_howto", lang)), "callback_data": f"g:{guide}:1:{lang}"}]
    if not lines:
        second.append({"text": str(t("remind.btn_calc", lang)), "callback_data": "menu:calc"})
    rows.append(second)
    rows.append([{"text": str(t("remind.btn_stop", lang)), "callback_data": "rm:stop"}])
    return {"type": "text", "text": "\n\n".join(parts), "reply_markup": {"inline_keyboard": rows}}


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


def tomorrow_at(now: datetime, hour: int) -> datetime:
    """Tomorrow (Kuala Lumpur) at ``hour``:00, for "Remind me tomorrow"."""
    local = now.astimezone(KL)
    day: date = local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=KL)
