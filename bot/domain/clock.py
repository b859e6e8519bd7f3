"""The one time module: the current moment, and times as the database stores them.

Pure Python (no ``bot.*`` outside domain). Every stored time is ISO 8601 text in UTC with an
explicit ``+00:00`` offset, so that text order is time order and SQLite compares them as
strings:

* :func:`utc_text` — **seconds** precision, the stored form of every event time (users, reminders,
  agencies, broadcasts, feedback): ``2026-04-13T01:00:00+00:00``;
* :func:`utc_text_ms` — milliseconds, only where several writes in one second must stay ordered
  (the outbox queue and the sender lease);
* :func:`parse_utc` — the inverse of both (an aware datetime).

Times shown to people are local (Asia/Kuala_Lumpur, see :data:`bot.domain.deadlines.KL`): in
chat they are formatted where they are shown (Babel in :mod:`bot.i18n`); in CLI and JSON output
they are :func:`local_minutes` (ISO 8601 to the minute, with the offset).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

__all__ = [
    "local_minutes",
    "now_text",
    "parse_utc",
    "parse_utc_or_none",
    "utc_now",
    "utc_text",
    "utc_text_ms",
]


def utc_now() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


def utc_text(moment: datetime) -> str:
    """An aware datetime as stored: UTC, ISO 8601, seconds precision."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def utc_text_ms(moment: datetime) -> str:
    """An aware datetime as the outbox and the lease store it: UTC, milliseconds precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def now_text() -> str:
    """:func:`utc_text` of :func:`utc_now`."""
    return utc_text(utc_now())


def parse_utc(text: str) -> datetime:
    """A stored time (:func:`utc_text` or :func:`utc_text_ms`) back as a datetime."""
    return datetime.fromisoformat(text)


def parse_utc_or_none(text: str | None) -> datetime | None:
    """:func:`parse_utc`, with None (or an empty text) for a time not set."""
    return parse_utc(text) if text else None


def local_minutes(moment: datetime, tz: tzinfo) -> str:
    """An aware datetime in ``tz``, ISO 8601 to the minute: ``2026-12-14T09:00+08:00``."""
    return moment.astimezone(tz).isoformat(timespec="minutes")
