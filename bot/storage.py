"""The bot's one storage module: SQLite through sqlite-utils, WAL mode, versioned migrations.

Every table the bot uses is created by a numbered migration in :data:`MIGRATIONS`; the
database's ``PRAGMA user_version`` records the last one applied, and :class:`Storage`
applies the missing ones at start-up, each in its own transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

LANGS = ("en", "ms", "zh")
BUSY_TIMEOUT_MS = 5000


def utcnow() -> str:
    """Now as an ISO 8601 UTC string, the format every timestamp column uses."""
    return datetime.now(UTC).isoformat(timespec="seconds")


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


MIGRATIONS: list[tuple[int, Callable[[sqlite_utils.Database], None]]] = [
    (1, _m1_users),
    (2, _m2_questions),
]


class StorageError(RuntimeError):
    """The database could not be read or written (read-only file, full disk, corruption)."""


class Storage:
    """All reads and writes of the bot's state. One instance per process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(self.path) != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA foreign_keys = ON")
        self.migrate()

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> list[int]:
        """Apply every migration newer than the database; return the versions applied."""
        applied = []
        for version, migration in MIGRATIONS:
            if version <= self.schema_version:
                continue
            with self.transaction():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {int(version)}")
            applied.append(version)
        return applied

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
        self.db.conn.close()

    # -- users ----------------------------------------------------------------------------

    def get_user(self, chat_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM users WHERE chat_id = ?", [chat_id]))
        return rows[0] if rows else None

    def touch_user(self, chat_id: int, language_code: str | None) -> dict[str, Any]:
        """Record that a user wrote to the bot; on first contact take their Telegram language."""
        now = utcnow()
        with self.transaction():
            self.db.execute(
                "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET last_seen = excluded.last_seen, blocked = 0",
                [chat_id, lang_from_telegram(language_code), now, now],
            )
        user = self.get_user(chat_id)
        assert user is not None
        return user

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

    def users_by_language(self) -> dict[str, int]:
        return {
            row["lang"]: row["n"]
            for row in self.db.query("SELECT lang, count(*) AS n FROM users GROUP BY lang")
        }

    # -- questions and feedback -------------------------------------------------------------

    def log_unanswered(self, text: str, lang: str, reason: str, guide_id: str | None = None) -> None:
        """Keep a question the bot could not answer, or a 👎 (no user id is stored)."""
        with self.transaction():
            self.db["unanswered"].insert(
                {
                    "text": text[:500],
                    "lang": lang,
                    "reason": reason,
                    "guide_id": guide_id,
                    "created_at": utcnow(),
                }
            )

    def record_feedback(self, guide_id: str, lang: str, helpful: bool) -> None:
        with self.transaction():
            self.db["feedback"].insert(
                {"guide_id": guide_id, "lang": lang, "helpful": int(helpful), "created_at": utcnow()}
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
