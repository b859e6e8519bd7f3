"""SQL of the reminder tables (schema: migration 4 in bot/storage.py), and nothing else.

:class:`ReminderStore` reads and writes subscriptions, saved workers, the add-a-worker step, the
state of each contribution month (paid, snoozed, sent) and the scheduler's watermark. The
decisions on what those values mean live in :mod:`bot.domain.reminder_rules`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain.clock import now_text, parse_utc, utc_now, utc_text
from bot.domain.deadlines import (
    DEFAULT_DEADLINE_DAYS,
    DEFAULT_HOUR,
    PAYMENT_OPEN_DAY,
    ReminderSettings,
    days_from_mask,
    mask_from_days,
)
from bot.domain.reminder_rules import AUDIENCES, DueReminder, Worker
from bot.storage import Storage

__all__ = ["CHUNK", "MAX_WORKERS", "PENDING_TTL", "ReminderStore", "row_settings"]

PENDING_TTL = timedelta(minutes=30)  # an unfinished add-a-worker conversation expires
MAX_WORKERS = 10
CHUNK = 500  # SQLite variables per IN (...) query; subscribers per due_reminders piece


_DUE_SELECT = (
    "SELECT s.chat_id, u.lang, s.hour, s.days_mask, s.payment_open, s.open_day, s.since, "
    "s.audience, p.paid_at, p.snooze_until, p.sent, p.last_sent_at, "
    "c.paid_at, c.snooze_until, c.sent, c.last_sent_at "
    "FROM reminder_subs s {hint} JOIN users u ON u.chat_id = s.chat_id "
    "LEFT JOIN reminder_months p ON p.chat_id = s.chat_id AND p.ym = ? "
    "LEFT JOIN reminder_months c ON c.chat_id = s.chat_id AND c.ym = ? "
    "WHERE s.enabled = 1 AND u.blocked = 0 AND {where}"
)



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
        stamp = utc_text(now) if now else now_text()
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
        stamp = utc_text(now) if now else now_text()
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
        for chunk in _chunks(sorted(set(chat_ids)), CHUNK):
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
                [chat_id, name, worker_type, None if salary is None else str(salary), now_text()],
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
        now = now or utc_now()
        started = parse_utc(rows[0]["pending_at"])
        if now - started > PENDING_TTL:
            return None
        return json.loads(rows[0]["pending"])

    def set_pending(self, chat_id: int, state: dict[str, Any] | None) -> None:
        self.ensure(chat_id)
        with self.storage.transaction():
            self.db.execute(
                "UPDATE reminder_subs SET pending = ?, pending_at = ? WHERE chat_id = ?",
                [None if state is None else json.dumps(state), None if state is None else now_text(),
                 chat_id],
            )

    # -- months: paid, snoozed, sent -----------------------------------------------------------

    def month_state(self, chat_id: int, ym: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query("SELECT * FROM reminder_months WHERE chat_id = ? AND ym = ?", [chat_id, ym])
        )
        return rows[0] if rows else None

    def mark_paid(self, chat_id: int, ym: str, now: datetime | None = None) -> None:
        stamp = utc_text(now) if now else now_text()
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
                [chat_id, ym, utc_text(until)],
            )

    def mark_sent(self, reminders: Iterable[DueReminder]) -> None:
        rows = [(r.chat_id, r.month_key, " " + r.suffix, utc_text(r.at)) for r in reminders]
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
        stamp = utc_text(now)
        with self.storage.transaction():
            self.db.execute(
                "INSERT INTO reminder_meta (key, value) VALUES ('watermark', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [stamp],
            )

    # -- counts (python -m bot stats) ---------------------------------------------------------

    def active_subscriptions(self) -> int:
        """Subscriptions turned on, of users who have not blocked the bot."""
        return int(
            self.db.execute(
                "SELECT count(*) FROM reminder_subs s LEFT JOIN users u ON u.chat_id = s.chat_id "
                "WHERE s.enabled = 1 AND COALESCE(u.blocked, 0) = 0"
            ).fetchone()[0]
        )

    def paid_count(self, ym: str) -> int:
        """Of those active subscriptions, how many marked contribution month ``ym`` paid."""
        return int(
            self.db.execute(
                "SELECT count(*) FROM reminder_months m JOIN reminder_subs s ON s.chat_id = m.chat_id "
                "LEFT JOIN users u ON u.chat_id = s.chat_id WHERE m.ym = ? AND m.paid_at IS NOT NULL "
                "AND s.enabled = 1 AND COALESCE(u.blocked, 0) = 0",
                [ym],
            ).fetchone()[0]
        )

    # -- what the scheduler reads --------------------------------------------------------------

    def due_rows(
        self,
        keys: Sequence[str],
        now_text: str,
        *,
        chunk: int,
        chat_id: int | None = None,
        hours: set[int] | None = None,
        snooze_from: str = "",
    ) -> Iterator[list[Any]]:
        """Subscriber rows (the shape :class:`bot.domain.reminder_rules.DueEvaluator` reads) for
        the months ``keys`` (last month, this month), ``chunk`` subscribers per list.

        Every piece is its own keyset query (``chat_id > last``), so no cursor stays open while
        the caller writes. With ``chat_id``, that subscriber only; with ``hours`` None, the whole
        table in rowid order; else the subscribers of those hours through the hour index, then
        those of other hours with a snooze ending in (``snooze_from``, ``now_text``].
        """
        conn = self.db.conn

        def pages(hint: str, where: str, params: list[Any]) -> Iterator[list[Any]]:
            sql = _DUE_SELECT.format(hint=hint, where=where) + " AND s.chat_id > ? ORDER BY s.chat_id LIMIT ?"
            last = -(2**63)
            while True:
                rows = conn.execute(sql, [*keys, *params, last, chunk]).fetchall()
                if not rows:
                    return
                last = rows[-1][0]
                yield rows
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
            yield conn.execute(sql + " ORDER BY s.chat_id", [*keys, *ids]).fetchall()
            if len(ids) < chunk:
                return

    def snooze_ends(self, chat_id: int, after: datetime) -> list[datetime]:
        """The ends of this chat's snoozes later than ``after`` (aware)."""
        return [
            parse_utc(until)
            for (until,) in self.db.execute(
                "SELECT snooze_until FROM reminder_months WHERE chat_id = ? AND snooze_until > ?",
                [chat_id, utc_text(after.astimezone(UTC))],
            ).fetchall()
        ]


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
