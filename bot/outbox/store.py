"""The ``outbox`` table: every message the bot sends unprompted, one row each.

:class:`Outbox` enqueues rows (``queued``, committed before anything is sent), claims them for
the sender (``sending``), records outcomes (``sent`` with Telegram's message_id, ``failed``,
``unreachable``), requeues, cancels a broadcast, reports status and backlog, and returns
``sending`` rows to ``queued`` after a crash (:meth:`Outbox.recover`). SQL only; no Telegram
calls. Timestamps are UTC ISO 8601 with milliseconds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup

if TYPE_CHECKING:
    from bot.storage import Storage

STATES = ("queued", "sending", "sent", "failed", "unreachable", "cancelled")


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
