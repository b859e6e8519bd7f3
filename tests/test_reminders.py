"""Monthly payment reminders: dates (FACTS F11, F15), what is due when, rendering, idempotency.

Expected dates come from the rules, not from the code: a month's contribution is payable on the
portal after the 16th (reminder on the 17th, F15) and due by the 15th of the next month (F11).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.commands.reminders import parse_now
from bot.commands.reminders import run as cli_run
from bot.domain.deadlines import (
    KL,
    ReminderSettings,
    add_months,
    clamp_day,
    days_left,
    deadline,
    mask_from_days,
    moments_for_month,
    next_moment,
    payment_open_date,
)
from bot.i18n import LANGS, format_date, format_month, t
from bot.outbox import Outbox
from bot.reminders import (
    DueReminder,
    ReminderStore,
    Worker,
    due_reminders,
    render_reminder,
    send_due,
)
from bot.storage import Storage


def kl(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KL)


def subscribe(
    storage: Storage,
    chat_id: int,
    *,
    lang: str = "en",
    since: str = "2026-01-01T00:00",
    days: tuple[int, ...] = (3, 1),
    hour: int = 9,
    payment_open: bool = True,
    open_day: int = 17,
    audience: str = "household",
) -> ReminderStore:
    storage.touch_user(chat_id, lang)
    storage.set_language(chat_id, lang)
    store = ReminderStore(storage)
    store.update(
        chat_id,
        now=kl(since),
        enabled=1,
        days_mask=mask_from_days(set(days)),
        hour=hour,
        payment_open=int(payment_open),
        open_day=open_day,
        audience=audience,
    )
    return store


def due_set(storage: Storage, now: datetime) -> set[tuple[int, str, str]]:
    return {(r.chat_id, r.month_key, r.suffix) for r in due_reminders(storage, now)}


# --- domain -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 11, date(2026, 12, 15)),
        (2026, 12, date(2027, 1, 15)),  # December -> January of the next year
        (2027, 1, date(2027, 2, 15)),
        (2028, 1, date(2028, 2, 15)),
    ],
)
def test_deadline_is_15th_of_next_month(year: int, month: int, expected: date) -> None:
    assert deadline(year, month) == expected


def test_payment_open_is_17th_and_clamps_to_nearest_valid_day() -> None:
    assert payment_open_date(2026, 11) == date(2026, 11, 17)
    assert payment_open_date(2027, 2, 31) == date(2027, 2, 28)
    assert payment_open_date(2028, 2, 31) == date(2028, 2, 29)  # leap year
    assert payment_open_date(2026, 4, 31) == date(2026, 4, 30)
    assert clamp_day(2026, 6, 0) == date(2026, 6, 1)


def test_add_months_and_days_left() -> None:
    assert add_months(2026, 12, 1) == (2027, 1)
    assert add_months(2027, 1, -1) == (2026, 12)
    assert days_left(2026, 12, date(2027, 1, 12)) == 3
    assert days_left(2026, 12, date(2027, 1, 16)) == -1


def test_moments_for_month_in_order() -> None:
    settings = ReminderSettings(payment_open=True, deadline_days=frozenset({7, 3, 1, 0}), hour=21)
    moments = moments_for_month(settings, 2026, 12)
    assert [(m.at, m.suffix) for m in moments] == [
        (kl("2026-12-17T21:00"), "payment-open"),
        (kl("2027-01-08T21:00"), "deadline:7"),
        (kl("2027-01-12T21:00"), "deadline:3"),
        (kl("2027-01-14T21:00"), "deadline:1"),
        (kl("2027-01-15T21:00"), "deadline:0"),
        (kl("2027-01-16T21:00"), "overdue"),
    ]
    assert all(m.month_key == "2026-12" for m in moments)
    nxt = next_moment(settings, kl("2027-01-12T21:00"))
    assert nxt is not None and nxt.suffix == "deadline:1"


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError):
        ReminderSettings(hour=24)
    with pytest.raises(ValueError):
        ReminderSettings(deadline_days=frozenset({5}))


# --- what is due ---------------------------------------------------------------------------------

CASES = [
    # (label, subscription kwargs, now, expected {(ym, suffix)})
    ("payment open on the 17th", {"since": "2026-11-16T12:00"}, "2026-11-17T09:00", {("2026-11", "payment-open")}),
    ("not before the hour", {"since": "2026-11-16T12:00"}, "2026-11-17T08:59", set()),
    ("three days before 15 Jan (Dec month)", {"since": "2026-12-20T00:00"}, "2027-01-12T09:00", {("2026-12", "deadline:3")}),
    ("one day before", {"since": "2026-12-20T00:00"}, "2027-01-14T09:00", {("2026-12", "deadline:1")}),
    ("on the day", {"since": "2026-12-20T00:00", "days": (0,)}, "2027-01-15T09:00", {("2026-12", "deadline:0")}),
    ("seven days before", {"since": "2026-12-20T00:00", "days": (7,)}, "2027-01-08T09:00", {("2026-12", "deadline:7")}),
    ("overdue the day after", {"since": "2026-12-20T00:00"}, "2027-01-16T09:00", {("2026-12", "overdue")}),
    ("stale deadline reminder is dropped", {"since": "2026-12-20T00:00"}, "2027-01-16T05:00", set()),
    ("overdue too old, next month's opening instead", {"since": "2026-12-20T00:00"}, "2027-01-24T09:00",
     {("2027-01", "payment-open")}),
    ("hour 21: nothing at 09:00", {"since": "2026-12-16T22:00", "hour": 21}, "2026-12-17T09:00", set()),
    ("hour 21 at 21:00", {"since": "2026-12-16T22:00", "hour": 21}, "2026-12-17T21:00", {("2026-12", "payment-open")}),
    ("payment-open off", {"since": "2026-12-16T12:00", "payment_open": False}, "2026-12-17T09:00", set()),
    ("day 31 in February -> 28th", {"since": "2027-02-01T00:00", "open_day": 31}, "2027-02-28T09:00",
     {("2027-02", "payment-open")}),
    ("catch-up: two months at once", {"since": "2026-11-10T00:00"}, "2026-11-17T09:00",
     {("2026-10", "overdue"), ("2026-11", "payment-open")}),
    ("before since: nothing", {"since": "2027-01-12T10:00"}, "2027-01-12T10:00", set()),
]


@pytest.mark.parametrize(("label", "kwargs", "now", "expected"), CASES, ids=[c[0] for c in CASES])
def test_due_reminders_table(storage: Storage, label: str, kwargs: dict, now: str, expected: set) -> None:
    subscribe(storage, 7, **kwargs)
    assert {(ym, suffix) for _, ym, suffix in due_set(storage, kl(now))} == expected


def test_days_left_and_language_in_due(storage: Storage) -> None:
    for chat_id, lang in ((1, "en"), (2, "ms"), (3, "zh")):
        subscribe(storage, chat_id, lang=lang, since="2026-12-20T00:00")
    rows = due_reminders(storage, kl("2027-01-12T09:00"))
    assert [(r.chat_id, r.lang, r.kind, r.days_left, r.month_key) for r in rows] == [
        (1, "en", "deadline", 3, "2026-12"),
        (2, "ms", "deadline", 3, "2026-12"),
        (3, "zh", "deadline", 3, "2026-12"),
    ]
    assert rows[0].key == "reminder:1:2026-12:deadline:3"


def test_paid_stopped_and_blocked_get_nothing(storage: Storage) -> None:
    store = subscribe(storage, 1, since="2026-12-20T00:00")
    subscribe(storage, 2, since="2026-12-20T00:00")
    subscribe(storage, 3, since="2026-12-20T00:00")
    subscribe(storage, 4, since="2026-12-20T00:00")
    store.mark_paid(1, "2026-12")
    store.update(2, enabled=0)
    storage.set_blocked(3)
    now = kl("2027-01-12T09:00")
    assert due_set(storage, now) == {(4, "2026-12", "deadline:3")}
    # Paid stays paid: no deadline-1 and no overdue for that month either.
    assert {c for c, _, _ in due_set(storage, kl("2027-01-16T09:00"))} == {4}


def test_send_due_is_idempotent_and_renders_each_language(storage: Storage) -> None:
    for chat_id, lang in ((1, "en"), (2, "ms"), (3, "zh")):
        subscribe(storage, chat_id, lang=lang, since="2026-12-20T00:00")
    outbox = Outbox(storage)
    now = kl("2027-01-12T09:00")
    assert send_due(storage, outbox, now) == 3
    assert send_due(storage, outbox, now) == 0
    assert due_reminders(storage, now) == []
    for chat_id, lang in ((1, "en"), (2, "ms"), (3, "zh")):
        row = outbox.get(f"reminder:{chat_id}:2026-12:deadline:3")
        assert row is not None and row["lang"] == lang and row["kind"] == "reminder"
        payload = json.loads(row["payload"])
        month = format_month(2026, 12, lang)
        assert t("remind.deadline_title", lang, month=month, days=3) in payload["text"]
        assert format_date(date(2027, 1, 15), lang) in payload["text"]
        data = [b["callback_data"] for r in payload["reply_markup"]["inline_keyboard"] for b in r]
        assert data[:2] == ["rm:paid:2026-12", "rm:snooze:2026-12"]
        assert f"g:domestic-pay:1:{lang}" in data and "rm:stop" in data and "menu:calc" in data
    count = storage.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert count == 3


def test_downtime_catch_up_sends_latest_once(storage: Storage) -> None:
    subscribe(storage, 1, since="2026-12-20T00:00", days=(7, 3, 1))
    outbox = Outbox(storage)
    assert send_due(storage, outbox, kl("2027-01-08T09:00")) == 1  # deadline:7
    # Down from 09:30 on the 8th until 10:00 on the 14th: deadline:3 and deadline:1 were missed;
    # only the latest (1 day left) is sent, once.
    rows = due_reminders(storage, kl("2027-01-14T10:00"))
    assert [(r.suffix, r.days_left) for r in rows] == [("deadline:1", 1)]
    assert send_due(storage, outbox, kl("2027-01-14T10:00")) == 1
    assert send_due(storage, outbox, kl("2027-01-14T10:01")) == 0
    # A clock jump backwards repeats nothing.
    assert send_due(storage, outbox, kl("2027-01-12T09:00")) == 0
    # Down again over the deadline: the overdue notice, once, then silence for that month.
    assert [r.kind for r in due_reminders(storage, kl("2027-01-16T12:00"))] == ["overdue"]
    assert send_due(storage, outbox, kl("2027-01-16T12:00")) == 1
    later = due_set(storage, kl("2027-01-18T09:00"))
    assert later == {(1, "2027-01", "payment-open")}  # nothing more about December


def test_incremental_scan_matches_full_scan(storage: Storage) -> None:
    for chat_id, hour in enumerate((8, 9, 12, 18, 21), start=1):
        subscribe(storage, chat_id, since="2026-12-20T00:00", hour=hour, days=(7, 3, 1, 0))
    outbox = Outbox(storage)
    moment = kl("2027-01-07T23:59")
    send_due(storage, outbox, moment)
    sent_total = 0
    while moment < kl("2027-01-18T00:00"):
        moment = moment.replace(minute=0) if moment.minute else moment
        moment = datetime.fromtimestamp(moment.timestamp() + 3600 * 3 + 60, UTC).astimezone(KL)
        incremental = due_set(storage, moment)
        mark = storage.db.execute("SELECT value FROM reminder_meta").fetchone()[0]
        storage.db.execute("DELETE FROM reminder_meta")
        assert due_set(storage, moment) == incremental, moment  # full scan
        storage.db.execute("INSERT INTO reminder_meta VALUES ('watermark', ?)", [mark])
        sent_total += send_due(storage, outbox, moment)
    # 5 subscribers x (December: deadline 7, 3, 1, 0 + overdue; January: payment open on the 17th),
    # nothing lost or doubled.
    assert sent_total == 5 * 6


def test_snooze_once_tomorrow(storage: Storage) -> None:
    store = subscribe(storage, 1, since="2026-12-20T00:00")
    outbox = Outbox(storage)
    assert send_due(storage, outbox, kl("2027-01-12T09:00")) == 1
    store.snooze(1, "2026-12", kl("2027-01-13T09:00"))
    assert due_set(storage, kl("2027-01-13T08:59")) == set()
    rows = due_reminders(storage, kl("2027-01-13T09:00"))
    assert [(r.kind, r.days_left, r.snoozed) for r in rows] == [("deadline", 2, True)]
    assert send_due(storage, outbox, kl("2027-01-13T09:00")) == 1
    assert send_due(storage, outbox, kl("2027-01-13T12:00")) == 0
    # Snoozed from the deadline day to after it: the overdue notice comes instead.
    store.snooze(1, "2026-12", kl("2027-01-16T08:00"))
    assert [r.kind for r in due_reminders(storage, kl("2027-01-16T08:00"))] == ["overdue"]


def test_settings_change_does_not_resend(storage: Storage) -> None:
    store = subscribe(storage, 1, since="2026-12-20T00:00")
    outbox = Outbox(storage)
    assert send_due(storage, outbox, kl("2027-01-12T09:00")) == 1
    store.update(1, now=kl("2027-01-12T10:00"), hour=21)
    assert due_set(storage, kl("2027-01-12T21:00")) == set()
    assert due_set(storage, kl("2027-01-14T21:00")) == {(1, "2026-12", "deadline:1")}


# --- rendering ----------------------------------------------------------------------------------


def _due(kind: str, lang: str, *, year: int = 2026, month: int = 12, days: int | None = None,
         left: int = 3, audience: str = "household") -> DueReminder:
    return DueReminder(1, lang, kind, year, month, days, left, kl("2027-01-12T09:00"), audience)


@pytest.mark.parametrize("lang", LANGS)
def test_amount_for_saved_domestic_worker(lang: str) -> None:
    # Foreign domestic helper, RM1,700, December 2026: SOCSO first category (Invalidity Scheme since
    # Jul 2024, F5/F6), band 1,600-1,700, midpoint 1,650 (FACTS §2): total 2.25% -> 37.125 -> RM37.10,
    # employee 0.5% -> 8.25, employer 28.85; no EIS for foreign workers, no LINDUNG for domestic (L7).
    worker = Worker(1, 1, "Siti", "domestic-foreign", Decimal("1700"))
    payload = render_reminder(_due("deadline", lang, days=3), [worker])
    text = payload["text"]
    split = t("remind.split", lang, employer="RM28.85", employee="RM8.25")
    assert t("remind.amount_line", lang, month=format_month(2026, 12, lang), name="Siti",
             amount="RM37.10", split=split) in text
    data = [b["callback_data"] for r in payload["reply_markup"]["inline_keyboard"] for b in r]
    assert f"g:domestic-pay:1:{lang}" in data and "menu:calc" not in data


def test_employer_only_amount_and_socso_guide() -> None:
    # Foreign worker, May 2024 (before the Invalidity Scheme reached foreign workers, F5):
    # employer only, 1.25% of the band midpoint 1,350 = 16.875 -> RM16.90 (10-sen half-up, §2).
    worker = Worker(1, 1, "Ravi", "foreign", Decimal("1400"))
    payload = render_reminder(_due("payment-open", "en", year=2024, month=5), [worker])
    assert "RM16.90" in payload["text"] and t("remind.split_employer_only", "en") in payload["text"]
    data = [b["callback_data"] for r in payload["reply_markup"]["inline_keyboard"] for b in r]
    assert "g:pay-socso:1:en" in data


def test_employer_without_salary_gets_calculator_button() -> None:
    payload = render_reminder(_due("payment-open", "ms", audience="employer"), [])
    assert t("remind.no_salary", "ms") in payload["text"]
    data = [b["callback_data"] for r in payload["reply_markup"]["inline_keyboard"] for b in r]
    assert "menu:calc" in data and "g:pay-socso:1:ms" in data


@pytest.mark.parametrize("lang", LANGS)
def test_overdue_says_what_late_payment_costs(lang: str) -> None:
    payload = render_reminder(_due("overdue", lang, left=-1), [])
    text = payload["text"]
    assert t("remind.late_interest", lang) in text
    assert "6%" in text and "RM5" in text and "1-300-22-8000" in text  # F13, F14, F16
    data = [b["callback_data"] for r in payload["reply_markup"]["inline_keyboard"] for b in r]
    assert "rm:snooze:2026-12" not in data and "rm:paid:2026-12" in data


def test_reminder_keys_exist_in_every_language() -> None:
    from bot.i18n import catalogs, placeholders

    en = {k: v for k, v in catalogs().messages["en"].items() if k.startswith("remind.")}
    assert len(en) > 40
    for lang in ("ms", "zh"):
        other = catalogs().messages[lang]
        for key, text in en.items():
            assert key in other, (lang, key)
            assert placeholders(other[key]) == placeholders(text), (lang, key)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_due_json_and_bad_now(tmp_path, monkeypatch, capsys) -> None:
    import argparse
    import json

    db = tmp_path / "cli.sqlite3"
    storage = Storage(db)
    subscribe(storage, 5, lang="zh", since="2026-11-01T00:00")
    storage.close()
    monkeypatch.setenv("BOT_DB", str(db))
    assert cli_run(argparse.Namespace(action="due", now="2026-12-14T09:00+08:00", json=True)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [rows[0]] and {k: rows[0][k] for k in ("chat_id", "kind", "month", "days_left")} == {
        "chat_id": 5, "kind": "deadline", "month": "2026-11", "days_left": 1}
    assert cli_run(argparse.Namespace(action="due", now="14/12/2026", json=False)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert cli_run(argparse.Namespace(action="send-due", now="2026-12-14T09:00+08:00", json=False)) == 0
    assert cli_run(argparse.Namespace(action="send-due", now="2026-12-14T09:00+08:00", json=True)) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["enqueued"] == 0
    assert parse_now("2026-12-14T09:00").utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20:00", (20, 0)), ("8pm", (20, 0)), ("8 PM", (20, 0)), ("8.00", (8, 0)), ("7am", (7, 0)),
        ("jam 8 malam", (20, 0)), ("pukul 9 pagi", (9, 0)), ("jam 1 tengah hari", (13, 0)),
        ("jam 3 petang", (15, 0)), ("jam 12 malam", (0, 0)), ("12pm", (12, 0)), ("12am", (0, 0)),
        ("晚上8点", (20, 0)), ("下午3点半", (15, 30)), ("20点", (20, 0)), ("八点", (8, 0)),
        ("早上7点", (7, 0)), ("中午12点", (12, 0)), ("20:30", (20, 30)),
        # not a time: a bare number may be a salary; nonsense is refused
        ("8", None), ("3500", None), ("RM20:00", None), ("25:00", None), ("13pm", None),
        ("20:75", None), ("", None), ("jam", None), ("8 malam esok pagi", None),
    ],
)
def test_parse_time_of_day(text: str, expected: tuple[int, int] | None) -> None:
    from bot.domain.deadlines import parse_time_of_day

    assert parse_time_of_day(text) == expected


def test_next_reminder_skips_paid_months_and_follows_snoozes(storage: Storage) -> None:
    """/remind's "Next reminder" comes from due_reminders itself, not from the settings alone."""
    from bot.reminders import next_reminder

    store = subscribe(storage, 42, days=(3, 1), payment_open=True)
    now = kl("2026-12-10T10:00")  # November's deadline (15 December) reminders still to come
    first = next_reminder(storage, 42, now)
    assert first is not None and (first.year, first.month, first.kind, first.days) == (2026, 11, "deadline", 3)
    assert first.at == kl("2026-12-12T09:00")
    store.mark_paid(42, "2026-11")  # "✅ Paid" for November: its reminders will not come
    after = next_reminder(storage, 42, now)
    assert after is not None and (after.year, after.month, after.kind) == (2026, 12, "payment-open")
    assert after.at == kl("2026-12-17T09:00")
    store.snooze(42, "2026-12", kl("2026-12-11T09:00"))  # a snooze comes first, for December
    snoozed = next_reminder(storage, 42, now)
    assert snoozed is not None and snoozed.snoozed and snoozed.at == kl("2026-12-11T09:00")
    store.update(42, enabled=0)
    assert next_reminder(storage, 42, now) is None
