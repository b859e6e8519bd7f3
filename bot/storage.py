"""The bot's one storage module: SQLite through sqlite-utils, WAL mode, versioned migrations.

Every table the bot uses is created by a numbered migration in :data:`MIGRATIONS`; the
database's ``PRAGMA user_version`` records the last one applied, and :class:`Storage`
applies the missing ones at start-up, each in its own transaction.

SQL lives only in store modules, one per table group: this module (users, questions, feedback,
personal data), :mod:`bot.reminder_store` (reminders), :mod:`bot.agencies` (agencies, staff,
follows, broadcasts), :mod:`bot.outbox` (the outbox) and :mod:`bot.locks` (the sender lease).
One style: SQL text with ``?`` parameters, run through ``db.query`` (rows as dicts) and
``db.execute`` or the connection (tuples, bulk and hot paths); sqlite-utils' table API only to
create tables in migrations. Stored times come from :mod:`bot.domain.clock`.

Length (over 500 lines): the numbered migrations are kept next to the Storage class that applies
them, so a table's schema and the code that reads it are read together; the migrations are the
part to move out (e.g. ``bot/migrations.py``) when the table groups get their own store modules.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.domain.clock import now_text
from bot.domain.langs import LANGS

# What a failed read or write raises (read-only file, full disk, lock timeout, corruption):
# callers above the stores catch this name and never import sqlite3 themselves.
DatabaseError = sqlite3.Error

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 2000  # a locked database must not freeze the event loop for long


def utcnow() -> str:
    """Now as stored in every timestamp column (:func:`bot.domain.clock.now_text`)."""
    return now_text()


def lang_from_telegram(language_code: str | None) -> str:
    """Map Telegram's ``language_code`` to a bot language: ms → Malay, zh* → Chinese, else English."""
    code = (language_code or "").lower()
    if code == "ms" or code.startswith("ms-"):
        return "ms"
    if code.startswith("zh"):
        return "zh"
    return "en"


# --- migrations -------------------------------------------------------------------------


def _m1_users(db: sqlite_utils.Database) -> None:
    db["users"].create(
        {
            "chat_id": int,
            "lang": str,  # en | ms | zh
            "lang_chosen": int,  # 1 once the user picked a language themselves
            "first_seen": str,
            "last_seen": str,
            "start_payload": str,  # deep-link payload of the last /start, if any
            "blocked": int,  # 1 when Telegram said the user blocked the bot
            "worker_type": str,  # calculator: last worker type chosen
            "age_band": str,  # calculator: under55 | 55to59 | 60plus, or NULL (assumed)
            "lindung_opt_out": int,  # calculator: 1 if the employee opted out of LINDUNG 24 JAM
        },
        pk="chat_id",
        not_null={"lang", "first_seen", "last_seen"},
        defaults={"lang_chosen": 0, "blocked": 0, "lindung_opt_out": 0},
    )


def _m2_questions(db: sqlite_utils.Database) -> None:
    # Questions the bot could not answer and 👎 answers: text, language, date. No user id.
    db["unanswered"].create(
        {"id": int, "text": str, "lang": str, "reason": str, "guide_id": str, "created_at": str},
        pk="id",
        not_null={"text", "lang", "reason", "created_at"},
    )
    db["feedback"].create(
        {"id": int, "guide_id": str, "lang": str, "helpful": int, "created_at": str},
        pk="id",
        not_null={"guide_id", "lang", "helpful", "created_at"},
    )


def _m3_outbox(db: sqlite_utils.Database) -> None:
    # The outbox: every unprompted message (reminders, broadcasts) is written here before it is
    # sent; bot/outbox.py drains it. Timestamps are UTC ISO with milliseconds (same length, so
    # they compare as strings).
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            dedupe_key TEXT NOT NULL UNIQUE,
            lang TEXT NOT NULL DEFAULT 'en',
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN
                ('queued', 'sending', 'sent', 'failed', 'unreachable', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            not_before TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            message_id INTEGER,
            group_ref TEXT
        )
        """
    )
    db.execute("CREATE INDEX outbox_due ON outbox (state, not_before, id)")
    db.execute("CREATE INDEX outbox_chat ON outbox (chat_id, state)")
    db.execute("CREATE INDEX outbox_kind_state ON outbox (kind, state)")
    db.execute(
        "CREATE INDEX outbox_group ON outbox (group_ref, state) WHERE group_ref IS NOT NULL"
    )
    # Chats Telegram called unreachable (blocked, deactivated, not found) that may have no
    # users row; for chats with a users row, users.blocked is authoritative.
    db.execute(
        "CREATE TABLE outbox_unreachable (chat_id INTEGER PRIMARY KEY, reason TEXT NOT NULL, "
        "since TEXT NOT NULL)"
    )


def _m4_reminders(db: sqlite_utils.Database) -> None:
    # Monthly payment reminders (bot/reminders.py, bot/handlers/reminders.py).
    # One row per subscriber; days_mask: bit i = DEADLINE_DAYS_CHOICES[i] (7, 3, 1, 0 days before
    # the 15th); since: UTC ISO time of the last (re)start or settings change, no moment before it
    # is ever sent; pending: the add-a-worker conversation step (JSON) and when it started.
    db.execute(
        "CREATE TABLE reminder_subs ("
        " chat_id INTEGER PRIMARY KEY,"
        " enabled INTEGER NOT NULL DEFAULT 1,"
        " payment_open INTEGER NOT NULL DEFAULT 1,"
        " open_day INTEGER NOT NULL DEFAULT 17,"
        " days_mask INTEGER NOT NULL DEFAULT 6,"
        " hour INTEGER NOT NULL DEFAULT 9,"
        " audience TEXT NOT NULL DEFAULT 'household',"
        " since TEXT NOT NULL,"
        " pending TEXT,"
        " pending_at TEXT,"
        " created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_reminder_subs_hour ON reminder_subs (hour, enabled)")
    # Saved workers: a first name or nickname, the calculator's worker type, the monthly salary
    # as a decimal string.
    db.execute(
        "CREATE TABLE reminder_workers ("
        " id INTEGER PRIMARY KEY,"
        " chat_id INTEGER NOT NULL,"
        " name TEXT NOT NULL,"
        " worker_type TEXT NOT NULL,"
        " salary TEXT,"
        " created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_reminder_workers_chat ON reminder_workers (chat_id)")
    # Per subscriber and contribution month (ym = YYYY-MM): paid, the one pending snooze, and the
    # reminders already sent (space-separated "<kind>[:<days>]") with the latest one's moment.
    db.execute(
        "CREATE TABLE reminder_months ("
        " chat_id INTEGER NOT NULL,"
        " ym TEXT NOT NULL,"
        " paid_at TEXT,"
        " snooze_until TEXT,"
        " sent TEXT NOT NULL DEFAULT '',"
        " last_sent_at TEXT,"
        " PRIMARY KEY (chat_id, ym)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE INDEX idx_reminder_months_snooze ON reminder_months (snooze_until) "
        "WHERE snooze_until IS NOT NULL"
    )
    # Scheduler state: key "watermark" = the UTC time up to which every due reminder was sent.
    db.execute("CREATE TABLE reminder_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _m5_agencies(db: sqlite_utils.Database) -> None:
    # Agencies, their staff and followers, and broadcasts (bot/agencies.py). Staff invite tokens
    # are stored as SHA-256 hashes only; a broadcast's messages are rows in the outbox
    # (group_ref "broadcast:<id>"); versions = JSON {lang: {"text": html}} (texts, from the chat
    # or the command line), {lang: {"copy": [from_chat_id, message_id], "caption": html}} (media
    # composed in the chat) or {lang: [from_chat_id, message_id]} (copies, before headers).
    db.execute(
        "CREATE TABLE agencies (code TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,"
        " created_by INTEGER, revoked INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "CREATE TABLE staff_invites (token_hash TEXT PRIMARY KEY,"
        " agency TEXT NOT NULL REFERENCES agencies(code), created_at TEXT NOT NULL,"
        " created_by INTEGER, used_by INTEGER, used_at TEXT, revoked INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX idx_staff_invites_agency ON staff_invites (agency)")
    db.execute(
        "CREATE TABLE staff (user_id INTEGER NOT NULL, agency TEXT NOT NULL REFERENCES agencies(code),"
        " joined_at TEXT NOT NULL, PRIMARY KEY (user_id, agency)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX idx_staff_agency ON staff (agency)")
    db.execute(
        "CREATE TABLE follows (agency TEXT NOT NULL REFERENCES agencies(code), chat_id INTEGER NOT NULL,"
        " created_at TEXT NOT NULL, PRIMARY KEY (agency, chat_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX idx_follows_chat ON follows (chat_id)")
    db.execute(
        "CREATE TABLE broadcasts (id INTEGER PRIMARY KEY, agency TEXT REFERENCES agencies(code),"
        " created_by INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN"
        " ('scheduled', 'sending', 'done', 'cancelled')), versions TEXT NOT NULL,"
        " audience TEXT NOT NULL, recipients INTEGER NOT NULL DEFAULT 0, scheduled_at TEXT,"
        " created_at TEXT NOT NULL, finished_at TEXT, progress_chat_id INTEGER,"
        " progress_message_id INTEGER, last_progress TEXT)"
    )
    db.execute("CREATE INDEX idx_broadcasts_state ON broadcasts (state)")


def _m6_locks(db: sqlite_utils.Database) -> None:
    # Leases (bot/locks.py): one row per lock name; owner = host:pid:random of the holder;
    # timestamps are UTC ISO with milliseconds, so they compare as strings.
    db.execute(
        "CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, acquired_at TEXT NOT NULL,"
        " heartbeat_at TEXT NOT NULL, expires_at TEXT NOT NULL)"
    )


MIGRATIONS: list[tuple[int, Callable[[sqlite_utils.Database], None]]] = [
    (1, _m1_users),
    (2, _m2_questions),
    (3, _m3_outbox),
    (4, _m4_reminders),
    (5, _m5_agencies),
    (6, _m6_locks),
]

# --- personal data: what /mydata shows and /forget removes ----------------------------------

# Every column that can hold a person's Telegram chat or user id (in private chats both are the
# same number), and what Storage.forget_user does with it:
#   "delete" - delete the row;  "null" - set the column (and its companions below) to NULL;
#   "keep"   - kept on purpose (the broadcast audit trail; documented in README "Your data").
# tests/test_privacy.py fails when a table gains such a column that is not listed here; and a
# table missing from this map that has a chat_id or user_id column is still cleaned (rows deleted).
PERSONAL_COLUMNS: dict[str, dict[str, str]] = {
    "users": {"chat_id": "delete"},
    "reminder_subs": {"chat_id": "delete"},
    "reminder_workers": {"chat_id": "delete"},
    "reminder_months": {"chat_id": "delete"},
    "outbox": {"chat_id": "delete"},
    "outbox_unreachable": {"chat_id": "delete"},
    "follows": {"chat_id": "delete"},
    "staff": {"user_id": "delete"},
    "staff_invites": {"used_by": "delete", "created_by": "null"},
    "agencies": {"created_by": "null"},
    "broadcasts": {"created_by": "keep", "progress_chat_id": "null"},
}
_NULL_TOGETHER: dict[tuple[str, str], tuple[str, ...]] = {
    ("broadcasts", "progress_chat_id"): ("progress_message_id",),
}
_FALLBACK_PERSON_COLUMNS = ("chat_id", "user_id")


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL from its own connection, off the event loop (see
    :meth:`Storage.checkpoint_in_background`)."""

    def __init__(self, path: Path, interval: float) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self.path, self.interval = path, interval
        self.halt = threading.Event()
        self.failures = 0

    def run(self) -> None:
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            while not self.halt.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.failures = 0
                except sqlite3.Error as exc:
                    self.failures += 1
                    if self.failures == 1:
                        log.warning("WAL checkpoint failed, will retry: %s", exc)
        finally:
            conn.close()


class Storage:
    """All reads and writes of the bot's state. One instance per process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._checkpointer: _Checkpointer | None = None
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(self.path) != ":memory:":
            self.db.enable_wal()
            # WAL + NORMAL: a crash of the process loses nothing committed; only a power
            # cut can drop the last transactions. Saves an fsync per update.
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.migrate()

    # -- schema ---------------------------------------------------------------------------

    def ping(self) -> None:
        """Read the database once (raises :data:`DatabaseError` when it cannot be read)."""
        self.db.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> list[int]:
        """Apply every migration newer than the database; return the versions applied."""
        applied = []
        for version, migration in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version <= self.schema_version:
                continue
            with self.transaction():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {int(version)}")
            applied.append(version)
        return applied

    def checkpoint_in_background(self, interval: float = 2.0) -> None:
        """Move WAL checkpoints off this connection into a thread.

        SQLite otherwise checkpoints inside whichever commit crosses 1,000 WAL pages, with an
        fsync, on the bot's event loop: that stalled replies by tens of milliseconds (p95 of
        bench/updates.py 15-55 ms, 5-10 ms without). A PASSIVE checkpoint never blocks writers.
        """
        if self._checkpointer is not None or str(self.path) == ":memory:":
            return
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = _Checkpointer(self.path, interval)
        self._checkpointer.start()

    def stop_background_checkpoints(self) -> None:
        """Stop the thread and let this connection checkpoint again by itself."""
        if self._checkpointer is None:
            return
        self._checkpointer.halt.set()
        self._checkpointer.join(timeout=10)
        self._checkpointer = None
        try:
            self.db.execute("PRAGMA wal_autocheckpoint = 1000")
        except sqlite3.Error as exc:  # the connection is gone or failing: nothing to restore
            log.warning("could not re-enable automatic WAL checkpoints: %s", exc)

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield self.db
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self.stop_background_checkpoints()
        self.db.conn.close()

    # -- users ----------------------------------------------------------------------------

    def get_user(self, chat_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM users WHERE chat_id = ?", [chat_id]))
        return rows[0] if rows else None

    def touch_user(self, chat_id: int, language_code: str | None) -> dict[str, Any]:
        """Record that a user wrote to the bot; on first contact take their Telegram language."""
        now = utcnow()
        # One statement (atomic on its own): runs on every update, so no BEGIN/COMMIT/SELECT.
        cursor = self.db.execute(
            "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET last_seen = excluded.last_seen, blocked = 0 "
            "RETURNING *",
            [chat_id, lang_from_telegram(language_code), now, now],
        )
        row = cursor.fetchone()
        cursor.close()
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def set_language(self, chat_id: int, lang: str) -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}")
        with self.transaction():
            self.db.execute(
                "UPDATE users SET lang = ?, lang_chosen = 1 WHERE chat_id = ?", [lang, chat_id]
            )

    def set_start_payload(self, chat_id: int, payload: str | None) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE users SET start_payload = ? WHERE chat_id = ?", [payload, chat_id]
            )

    def set_blocked(self, chat_id: int, blocked: bool = True) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE users SET blocked = ? WHERE chat_id = ?", [int(blocked), chat_id]
            )

    def set_calc_prefs(self, chat_id: int, **prefs: Any) -> None:
        """Store the calculator choices: worker_type, age_band, lindung_opt_out."""
        allowed = {"worker_type", "age_band", "lindung_opt_out"}
        unknown = set(prefs) - allowed
        if unknown:
            raise ValueError(f"unknown calculator preferences: {sorted(unknown)}")
        if not prefs:
            return
        columns = ", ".join(f"{name} = ?" for name in prefs)
        with self.transaction():
            self.db.execute(
                f"UPDATE users SET {columns} WHERE chat_id = ?", [*prefs.values(), chat_id]
            )

    def adopt_language(self, chat_id: int, lang: str) -> None:
        """Set the language of a user who never chose one with /language (a choice is kept)."""
        with self.transaction():
            self.db.execute(
                "UPDATE users SET lang = ? WHERE chat_id = ? AND lang_chosen = 0", [lang, chat_id]
            )

    def table_names(self) -> set[str]:
        """The tables of this database (an older schema may lack some)."""
        return set(self.db.table_names())

    def blocked_users(self) -> int:
        """How many users have blocked the bot."""
        return int(self.db.execute("SELECT count(*) FROM users WHERE blocked = 1").fetchone()[0])

    def users_by_language(self) -> dict[str, int]:
        return {
            row["lang"]: row["n"]
            for row in self.db.query("SELECT lang, count(*) AS n FROM users GROUP BY lang")
        }

    # -- questions and feedback -------------------------------------------------------------

    def log_unanswered(self, text: str, lang: str, reason: str, guide_id: str | None = None) -> None:
        """Keep a question the bot could not answer, or a 👎 (no user id is stored)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO unanswered (text, lang, reason, guide_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [text[:500], lang, reason, guide_id, utcnow()],
            )

    def record_feedback(self, guide_id: str, lang: str, helpful: bool) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO feedback (guide_id, lang, helpful, created_at) VALUES (?, ?, ?, ?)",
                [guide_id, lang, int(helpful), utcnow()],
            )

    def unanswered_summary(self, limit: int = 50) -> list[dict[str, Any]]:
        """Unanswered questions grouped by normalised text, most frequent first."""
        return list(
            self.db.query(
                "SELECT lower(trim(text)) AS text, lang, reason, guide_id, count(*) AS count, "
                "max(created_at) AS last_asked FROM unanswered "
                "GROUP BY lower(trim(text)), lang, reason, guide_id "
                "ORDER BY count DESC, last_asked DESC LIMIT ?",
                [limit],
            )
        )

    # -- personal data (PDPA 2010): /mydata and /forget ---------------------------------------

    def _person_columns(self) -> dict[str, dict[str, str]]:
        """{table: {column: action}} for every table that exists, including unlisted tables with
        a ``chat_id``/``user_id`` column (action "delete")."""
        found: dict[str, dict[str, str]] = {}
        for table in self.db.table_names():
            columns = set(self.db[table].columns_dict)
            policy = {c: a for c, a in PERSONAL_COLUMNS.get(table, {}).items() if c in columns}
            if table not in PERSONAL_COLUMNS:
                policy = {c: "delete" for c in _FALLBACK_PERSON_COLUMNS if c in columns}
            if policy:
                found[table] = policy
        return found

    def export_user(self, chat_id: int) -> dict[str, Any]:
        """Everything stored about ``chat_id`` (the same number is its user id): {table: rows}.

        Outbox rows are listed without their payload (``payload_type`` instead); the ``follows``
        and ``staff`` rows carry the agency's name; every table with a person column is present
        (an empty list when nothing is stored).
        """
        out: dict[str, Any] = {}
        for table, policy in self._person_columns().items():
            where = " OR ".join(f"[{column}] = ?" for column in policy)
            params = [chat_id] * len(policy)
            if table == "outbox":
                sql = (
                    "SELECT id, kind, state, lang, json_extract(payload, '$.type') AS payload_type, "
                    "created_at, sent_at FROM outbox WHERE " + where + " ORDER BY id"
                )
            elif table in ("follows", "staff"):
                sql = (
                    f"SELECT t.*, a.name AS agency_name FROM [{table}] t LEFT JOIN agencies a "
                    f"ON a.code = t.agency WHERE {where.replace('[', 't.[')}"
                )
            else:
                sql = f"SELECT * FROM [{table}] WHERE {where}"
            out[table] = list(self.db.query(sql, params))
        return out

    def forget_user(self, chat_id: int) -> dict[str, int]:
        """Delete what is stored about ``chat_id``, in one transaction: {table: rows deleted}.

        Follows :data:`PERSONAL_COLUMNS`: rows are deleted, references in other people's rows
        (who created an agency or an invite, where a broadcast's progress is shown) are set to
        NULL, and the broadcast audit trail keeps ``broadcasts.created_by``.
        """
        deleted: dict[str, int] = {}
        with self.transaction():
            for table, policy in self._person_columns().items():
                deleted[table] = 0
                for column, action in policy.items():
                    if action == "delete":
                        deleted[table] += self.db.execute(
                            f"DELETE FROM [{table}] WHERE [{column}] = ?", [chat_id]
                        ).rowcount
                    elif action == "null":
                        columns = (column, *_NULL_TOGETHER.get((table, column), ()))
                        sets = ", ".join(f"[{c}] = NULL" for c in columns)
                        self.db.execute(
                            f"UPDATE [{table}] SET {sets} WHERE [{column}] = ?", [chat_id]
                        )
        return deleted
