"""One alarm per database: log a failing database ONCE, summarise while it lasts, note recovery.

A read-only file, a full disk or a lock held by another process makes every write fail. Logging
each failure would write one error per update (and per outbox poll); :class:`DbAlarm` logs the
first failure as an ERROR, then at most one summary ERROR every ``summary_interval`` seconds
while failures continue, and one WARNING when a write succeeds again. ``skip_optional_write()``
lets callers skip writes that are nice to have (``users.last_seen``) for ``cooldown`` seconds
after a failure, so a locked database does not cost every update a full busy timeout.

Get a database's alarm with :func:`alarm_for` (one per :class:`~bot.storage.Storage`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.storage import Storage

log = logging.getLogger("bot.database")

SUMMARY_INTERVAL = 60.0  # seconds between two "still failing" lines
COOLDOWN = 2.0  # seconds during which optional writes are skipped after a failure


class DbAlarm:
    """Rate-limited logging of database failures (see the module docstring)."""

    def __init__(
        self, summary_interval: float = SUMMARY_INTERVAL, cooldown: float = COOLDOWN
    ) -> None:
        self.summary_interval = summary_interval
        self.cooldown = cooldown
        self.failing_since: float | None = None
        self.failures = 0  # since the outage began
        self.total_failures = 0  # since the process started
        self.outages = 0
        self._last_failure = 0.0
        self._last_summary = 0.0
        self._unsummarised = 0

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failure(self, exc: BaseException, doing: str) -> None:
        """Record a failed database operation (``doing``: what the bot was doing)."""
        now = time.monotonic()
        self.failures += 1
        self.total_failures += 1
        self._last_failure = now
        if self.failing_since is None:
            self.failing_since = self._last_summary = now
            self.outages += 1
            self._unsummarised = 0
            log.error(
                "database unavailable (%s: %s) while %s; users get an apology for anything "
                "that must be saved, reading features keep working; further failures are "
                "summarised every %.0f s",
                type(exc).__name__,
                exc,
                doing,
                self.summary_interval,
            )
            return
        self._unsummarised += 1
        if now - self._last_summary >= self.summary_interval:
            log.error(
                "database still unavailable after %.0f s: %d failed operations since the "
                "last report (latest: %s: %s while %s)",
                now - self.failing_since,
                self._unsummarised,
                type(exc).__name__,
                exc,
                doing,
            )
            self._last_summary = now
            self._unsummarised = 0

    def success(self) -> None:
        """A write went through: if the database was failing, say it recovered."""
        if self.failing_since is None:
            return
        log.warning(
            "database available again after %.1f s (%d failed operations)",
            time.monotonic() - self.failing_since,
            self.failures,
        )
        self.failing_since = None
        self.failures = 0
        self._unsummarised = 0

    def skip_optional_write(self) -> bool:
        """True for ``cooldown`` s after a failure: skip writes the bot can do without."""
        return self.failing and time.monotonic() - self._last_failure < self.cooldown


def alarm_for(storage: Storage) -> DbAlarm:
    """The alarm of ``storage``'s database (created on first use)."""
    alarm = getattr(storage, "_db_alarm", None)
    if alarm is None:
        alarm = DbAlarm()
        storage._db_alarm = alarm  # type: ignore[attr-defined]
    return alarm
