"""The reminder rules on plain values: no database, no Telegram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.deadlines import KL, ReminderSettings, mask_from_days, to_utc_text
from bot.domain.reminder_rules import (
    OVERDUE_GRACE,
    DueEvaluator,
    DueReminder,
    Worker,
    earliest_after,
    guide_for,
    hours_between,
    latest_passed,
    next_candidates,
    snooze_moment,
    tomorrow_at,
)


def kl(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KL)


SINCE = to_utc_text(kl("2026-01-01T00:00"))
NONE4 = (None, None, None, None)


def row(*, chat_id: int = 1, hour: int = 9, days: tuple[int, ...] = (3, 1), po: int = 1,
        since: str = SINCE, last: tuple = NONE4, this: tuple = NONE4) -> tuple:
    return (chat_id, "en", hour, mask_from_days(days), po, 17, since, "household", *last, *this)


def test_latest_passed_is_the_last_moment_at_or_before_now() -> None:
    settings = ReminderSettings(True, frozenset({3, 1}), 9)
    # March 2026: open 17 Mar 09:00; deadline 15 Apr -> 12 Apr, 14 Apr; overdue 16 Apr.
    assert latest_passed(settings, 2026, 3, to_utc_text(kl("2026-03-17T08:59"))) is None
    text, moment = latest_passed(settings, 2026, 3, to_utc_text(kl("2026-04-13T10:00")))
    assert (moment.kind, moment.days) == ("deadline", 3)
    assert text == to_utc_text(kl("2026-04-12T09:00"))
    _, moment = latest_passed(settings, 2026, 3, to_utc_text(kl("2026-04-20T00:00")))
    assert moment.kind == "overdue"


def test_evaluator_picks_the_latest_passed_moment_of_each_month() -> None:
    rules = DueEvaluator(kl("2026-04-14T09:00"))
    due = rules.evaluate([row()])
    assert [(d.kind, d.month, d.days, d.days_left) for d in due] == [("deadline", 3, 1, 1)]
    assert due[0].key == "reminder:1:2026-03:deadline:1"


def test_paid_sent_and_since_suppress_a_reminder() -> None:
    now = kl("2026-04-14T09:00")
    rules = DueEvaluator(now)
    paid = (to_utc_text(kl("2026-04-01T00:00")), None, None, None)
    assert rules.evaluate([row(last=paid)]) == []
    sent = (None, None, " deadline:1", None)
    assert rules.evaluate([row(last=sent)]) == []
    assert rules.evaluate([row(since=to_utc_text(now + timedelta(minutes=1)))]) == []
    older_sent = (None, None, " deadline:3", to_utc_text(kl("2026-04-12T09:00")))
    assert [d.days for d in rules.evaluate([row(last=older_sent)])] == [1]


def test_a_passed_snooze_replaces_an_older_moment() -> None:
    rules = DueEvaluator(kl("2026-04-13T10:00"))
    until = to_utc_text(kl("2026-04-13T09:30"))
    due = rules.evaluate([row(last=(None, until, None, None))])
    assert len(due) == 1 and due[0].snoozed and (due[0].kind, due[0].days) == ("deadline", 2)
    future = to_utc_text(kl("2026-04-13T11:00"))
    due = rules.evaluate([row(last=(None, future, None, None))])
    assert [(d.kind, d.days, d.snoozed) for d in due] == [("deadline", 3, False)]


def test_a_deadline_warning_after_the_deadline_is_dropped_and_overdue_expires() -> None:
    # Only the 1-day warning, not sent; asked after the deadline but before the overdue moment.
    rules = DueEvaluator(kl("2026-04-16T08:00"))
    assert rules.evaluate([row(days=(1,), po=0)]) == []
    late = kl("2026-04-16T09:00") + OVERDUE_GRACE + timedelta(minutes=1)
    assert DueEvaluator(late).evaluate([row(days=(1,), po=0)]) == []
    due = DueEvaluator(kl("2026-04-16T09:00")).evaluate([row(days=(1,), po=0)])
    assert [(d.kind, d.days_left) for d in due] == [("overdue", -1)]


def test_snooze_after_the_deadline_becomes_overdue() -> None:
    assert snooze_moment(kl("2026-04-15T09:00"), 2026, 3).kind == "deadline"
    assert snooze_moment(kl("2026-04-16T09:00"), 2026, 3).kind == "overdue"


def test_hours_between() -> None:
    assert hours_between(kl("2026-04-01T08:59"), kl("2026-04-01T10:00")) == {9, 10}
    assert hours_between(kl("2026-04-01T09:00"), kl("2026-04-01T09:59")) == set()
    assert hours_between(kl("2026-04-01T09:00"), kl("2026-04-02T09:00")) is None


def test_evaluator_needs_an_aware_time() -> None:
    with pytest.raises(ValueError):
        DueEvaluator(datetime(2026, 4, 1))


def test_next_candidates_and_earliest_after() -> None:
    settings = ReminderSettings(False, frozenset({1}), 9)
    now = kl("2026-04-13T12:00")
    snooze = kl("2026-04-13T18:00")
    moments = next_candidates(settings, now, [snooze.astimezone(UTC)])
    assert moments[0] == snooze and moments[1] == kl("2026-04-14T09:00")
    assert moments == sorted(moments) and all(m > now for m in moments)
    a = DueReminder(1, "en", "deadline", 2026, 3, 1, 1, kl("2026-04-14T09:00"), "household")
    b = DueReminder(1, "en", "deadline", 2026, 4, 1, 1, kl("2026-04-14T09:00"), "household")
    old = DueReminder(1, "en", "deadline", 2026, 2, 1, 1, kl("2026-04-12T09:00"), "household")
    assert earliest_after([b, old, a], now) == a
    assert earliest_after([old], now) is None


def test_guide_for_and_tomorrow_at() -> None:
    domestic = Worker(1, 1, "Siti", "domestic-foreign", None)
    employee = Worker(2, 1, "Ali", "employee", None)
    assert guide_for([employee, domestic], "employer") == "domestic-pay"
    assert guide_for([employee], "household") == "pay-socso"
    assert guide_for([], "household") == "domestic-pay"
    assert guide_for([], "employer") == "pay-socso"
    assert tomorrow_at(kl("2026-12-31T23:30"), 9) == kl("2027-01-01T09:00")
