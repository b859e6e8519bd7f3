"""Which reminder is due, decided on plain values (no database, no Telegram).

The store (:mod:`bot.reminder_store`) reads one row per subscriber with the state of the two
contribution months a reminder can be about (last month and this month); this module decides,
for a moment ``now``, which of them is due:

* the *latest* reminder moment of the month that has passed (:func:`latest_passed`), or a snooze
  that ended later than it (:func:`snooze_moment`);
* nothing when the month is paid, when that moment was sent already (``sent`` / ``last_sent_at``)
  or when it is older than the subscription's ``since``;
* a "deadline" reminder whose deadline has passed is dropped (the "overdue" one follows), and an
  "overdue" one missed for longer than :data:`OVERDUE_GRACE` is not sent any more.

:func:`next_candidates` and :func:`earliest_after` are the two halves of "the next reminder":
the moments worth asking at, and the choice among what is due there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.domain.clock import local_minutes, parse_utc, utc_text
from bot.domain.deadlines import (
    KL,
    Moment,
    ReminderSettings,
    add_months,
    days_from_mask,
    deadline,
    moments_for_month,
    month_key,
    reminder_suffix,
)

__all__ = [
    "AUDIENCES",
    "DueEvaluator",
    "DueReminder",
    "OVERDUE_GRACE",
    "Worker",
    "earliest_after",
    "guide_for",
    "hours_between",
    "latest_passed",
    "next_candidates",
    "snooze_moment",
    "tomorrow_at",
]

AUDIENCES = ("household", "employer")
OVERDUE_GRACE = timedelta(days=7)  # an "overdue" reminder missed for longer is not sent any more


@dataclass(frozen=True, slots=True)
class Worker:
    """A saved worker of a subscriber (the amounts in a reminder)."""

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
            "at": local_minutes(self.at, KL),
            "snoozed": self.snoozed,
            "key": self.key,
        }


def hours_between(start: datetime, end: datetime) -> set[int] | None:
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


def snooze_moment(until: datetime, year: int, month: int) -> Moment:
    """A snoozed reminder: a deadline reminder, or the overdue one once the deadline has passed."""
    local = until.astimezone(KL)
    left = (deadline(year, month) - local.date()).days
    if left < 0:
        return Moment(local, "overdue", year, month)
    return Moment(local, "deadline", year, month, left)


def latest_passed(
    settings: ReminderSettings, year: int, month: int, now_text: str
) -> tuple[str, Moment] | None:
    """The latest reminder moment of (year, month) at or before ``now_text`` (UTC text, see
    :func:`bot.domain.clock.utc_text`), with its UTC text; None when none has passed."""
    found = None
    for m in moments_for_month(settings, year, month):
        text = utc_text(m.at)
        if text <= now_text:
            found = (text, m)
    return found


class DueEvaluator:
    """The due reminders at one moment ``now``, for subscriber rows of plain values.

    A row is ``(chat_id, lang, hour, days_mask, payment_open, open_day, since, audience)``
    followed, for last month then this month (:attr:`months`), by
    ``(paid_at, snooze_until, sent, last_sent_at)``: UTC texts (or None), ``sent`` the
    space-separated suffixes already sent. The latest passed moment is computed once per
    distinct settings.
    """

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now_utc = now.astimezone(UTC)
        self.now_text = utc_text(self.now_utc)
        local = now.astimezone(KL)
        self.today: date = local.date()
        self.months: list[tuple[int, int]] = [
            add_months(local.year, local.month, -1),
            (local.year, local.month),
        ]
        self.keys = [month_key(*m) for m in self.months]
        self.deadlines = [deadline(*m) for m in self.months]
        self._latest: dict[tuple[int, int, int, int, int], tuple[str, Moment] | None] = {}

    def latest(self, po: int, open_day: int, mask: int, hour: int, index: int) -> tuple[str, Moment] | None:
        cache_key = (po, open_day, mask, hour, index)
        if cache_key not in self._latest:
            settings = ReminderSettings(bool(po), days_from_mask(mask), hour, open_day)
            self._latest[cache_key] = latest_passed(settings, *self.months[index], self.now_text)
        return self._latest[cache_key]

    def evaluate(self, rows: Iterable[Sequence[Any]]) -> list[DueReminder]:
        now_text, now_utc, months = self.now_text, self.now_utc, self.months
        out: list[DueReminder] = []
        for row in rows:
            (chat_id, lang, hour, mask, po, open_day, since, audience) = row[:8]
            for index in (0, 1):
                paid_at, snooze_until, sent, last_sent = row[8 + 4 * index : 12 + 4 * index]
                if paid_at is not None:
                    continue
                found = self.latest(po, open_day, mask, hour, index)
                snoozed = False
                if snooze_until is not None and snooze_until <= now_text and (
                    found is None or snooze_until > found[0]
                ):
                    found = (snooze_until, snooze_moment(parse_utc(snooze_until),
                                                         *months[index]))
                    snoozed = True
                if found is None:
                    continue
                text, moment = found
                if text < since or (last_sent is not None and text <= last_sent):
                    continue
                if sent and f" {moment.suffix}" in f"{sent} ":
                    continue
                left = (self.deadlines[index] - self.today).days
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


def next_candidates(
    settings: ReminderSettings, now: datetime, snooze_ends: Iterable[datetime] = ()
) -> list[datetime]:
    """The moments after ``now`` at which a reminder may come, in time order: the subscription's
    reminder moments of the months around now, and the ends of pending snoozes."""
    local = now.astimezone(KL)
    moments = {
        m.at
        for k in (-1, 0, 1, 2, 3)
        for m in moments_for_month(settings, *add_months(local.year, local.month, k))
        if m.at > local
    }
    moments.update(until.astimezone(KL) for until in snooze_ends)
    return sorted(moments)


def earliest_after(due: Iterable[DueReminder], now: datetime) -> DueReminder | None:
    """Of the reminders due at a candidate moment, the first one later than ``now``."""
    later = [d for d in due if d.at > now]
    return min(later, key=lambda d: (d.at, d.year, d.month)) if later else None


def guide_for(workers: Sequence[Worker], audience: str) -> str:
    """The "How to pay" guide: domestic-pay when any saved worker is domestic (or, with no saved
    worker, for a household), else pay-socso."""
    if workers:
        return "domestic-pay" if any(w.worker_type.startswith("domestic") for w in workers) else "pay-socso"
    return "domestic-pay" if audience == "household" else "pay-socso"


def tomorrow_at(now: datetime, hour: int) -> datetime:
    """Tomorrow (Kuala Lumpur) at ``hour``:00, for "Remind me tomorrow"."""
    local = now.astimezone(KL)
    day: date = local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=KL)
