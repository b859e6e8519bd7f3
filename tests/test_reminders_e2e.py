"""Reminders end to end: the real Application, the local Bot API server, the real outbox sender.

A Malay-speaking household turns reminders on, saves a worker, gets the "3 days left" reminder
and the "payment is open" one (time travel through ``send_due(now=...)``), presses Paid, and gets
nothing more for that month. The Application restarts between the steps, on the same database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.domain.deadlines import KL, add_months, deadline, payment_open_date
from bot.i18n import format_month, t
from bot.reminders import send_due
from tests.harness import BotHarness

USER = 501


def at9(day) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=KL)


def _send_due(bot: BotHarness, now: datetime) -> int:
    assert bot.app is not None and bot.storage is not None
    return send_due(bot.storage, bot.app.bot_data["services"].outbox, now)


async def test_malay_household_reminders_survive_restarts(bot: BotHarness) -> None:
    server = bot.server
    # 1. /remind in Malay: settings, off; turn on.
    (settings,) = await bot.say(USER, "/remind", lang="ms")
    assert t("remind.status_off", "ms") in settings.text
    await bot.press(USER, settings, "rm:on")
    settings = await server.wait_for_edit(USER, settings.message_id)
    assert t("remind.status_on", "ms") in settings.text

    # 2. Save a worker: name -> type button -> salary typed (a bad one first).
    await bot.press(USER, settings, "rm:w:add")
    ask_name = await server.wait_for_bot_message(USER)
    assert ask_name.text == t("remind.ask_name", "ms")
    (bad_name,) = await bot.say(USER, "1700", lang="ms")
    assert bad_name.text == t("remind.bad_name", "ms", max=32)
    (ask_type,) = await bot.say(USER, "Siti", lang="ms")
    assert ask_type.text == t("remind.ask_type", "ms", name="Siti")
    (tap,) = await bot.say(USER, "pembantu", lang="ms")
    assert tap.text == t("remind.tap_type", "ms")
    await bot.press(USER, ask_type, "rm:wt:domestic-foreign")
    ask_salary = await server.wait_for_bot_message(USER)
    assert ask_salary.text == t("remind.ask_salary", "ms", name="Siti")
    (bad,) = await bot.say(USER, "entah", lang="ms")
    assert bad.text == t("remind.salary_unreadable", "ms")
    saved, shown = await bot.say(USER, "RM1,700", lang="ms", count=2)
    assert saved.text == t("remind.worker_saved", "ms", name="Siti", salary="RM1,700.00")
    assert "Siti" in shown.text and t("remind.type.domestic-foreign", "ms") in shown.text

    # This month M0 and the next, M1 (Kuala Lumpur), whatever day the test runs.
    today = datetime.now(UTC).astimezone(KL)
    m0 = (today.year, today.month)
    m1 = add_months(*m0, 1)

    # 3. Restart; 3 days before M0's deadline (15th of M1): one reminder, in Malay, with the amount.
    await bot.restart()
    before = len(server.bot_messages(USER))
    assert _send_due(bot, at9(deadline(*m0) - timedelta(days=3))) == 1
    reminder = await _next_bot_message(bot, before)
    month0 = format_month(*m0, "ms")
    assert t("remind.deadline_title", "ms", month=month0, days=3) in reminder.text
    # Foreign domestic helper on RM1,700: band 1,600-1,700, midpoint 1,650; 2.25% -> RM37.10 (FACTS §2).
    split = t("remind.split", "ms", employer="RM28.85", employee="RM8.25")
    assert t("remind.amount_line", "ms", month=month0, name="Siti", amount="RM37.10", split=split) in reminder.text
    assert reminder.callback_data == [
        f"rm:paid:{m0[0]:04d}-{m0[1]:02d}", f"rm:snooze:{m0[0]:04d}-{m0[1]:02d}",
        "g:domestic-pay:1:ms", "rm:stop",
    ]
    await bot.press(USER, reminder, f"rm:paid:{m0[0]:04d}-{m0[1]:02d}")
    confirm = await server.wait_for_bot_message(USER)
    assert confirm.text == t("remind.paid", "ms", month=month0)
    assert confirm.callback_data == ["rm:open", "menu:main"]  # a way on

    # 4. Restart; the rest of M0's reminders (1 day left, overdue) are not sent: it is paid.
    await bot.restart()
    assert _send_due(bot, at9(deadline(*m0) - timedelta(days=1))) == 0
    assert _send_due(bot, at9(deadline(*m0) + timedelta(days=1))) == 0

    # 5. The 17th of M1: "payment is open" for M1.
    before = len(server.bot_messages(USER))
    assert _send_due(bot, at9(payment_open_date(*m1))) == 1
    opened = await _next_bot_message(bot, before)
    month1 = format_month(*m1, "ms")
    assert t("remind.open_title", "ms", month=month1) in opened.text

    # 6. Restart; 3 days before M1's deadline; press Paid; then silence for M1.
    await bot.restart()
    before = len(server.bot_messages(USER))
    assert _send_due(bot, at9(deadline(*m1) - timedelta(days=3))) == 1
    second = await _next_bot_message(bot, before)
    assert t("remind.deadline_title", "ms", month=month1, days=3) in second.text
    ym1 = f"{m1[0]:04d}-{m1[1]:02d}"
    await bot.press(USER, second, f"rm:paid:{ym1}")
    await server.wait_for_bot_message(USER)
    await bot.restart()
    count = len(server.bot_messages(USER))
    for now in (deadline(*m1) - timedelta(days=1), deadline(*m1), deadline(*m1) + timedelta(days=1)):
        assert _send_due(bot, at9(now)) == 0
    await asyncio.sleep(0.5)
    assert len(server.bot_messages(USER)) == count
    assert bot.storage is not None
    sent = bot.storage.db.execute(
        "SELECT count(*) FROM outbox WHERE chat_id = ? AND kind = 'reminder'", [USER]
    ).fetchone()[0]
    assert sent == 3


async def _next_bot_message(bot: BotHarness, before: int, timeout: float = 10.0):  # noqa: ASYNC109
    """The first bot message after the first ``before`` ones (delivered by the outbox sender)."""
    server = bot.server

    def found():
        msgs = server.bot_messages(USER)
        return msgs[before] if len(msgs) > before else None

    return await server.wait_until(found, timeout)


async def test_menu_button_job_and_employer_reminder_buttons(bot: BotHarness) -> None:
    from bot.handlers.reminders import JOB_NAME, _send_due_threaded
    from bot.reminders import ReminderStore

    server = bot.server
    user = 502
    assert bot.app is not None and bot.storage is not None
    assert len(bot.app.job_queue.get_jobs_by_name(JOB_NAME)) == 1  # one job, whatever the users
    (menu,) = await bot.say(user, "/start", lang="en")
    await bot.press(user, menu, "menu:remind")
    settings = await server.wait_for_bot_message(user)
    assert t("remind.status_off", "en") in settings.text
    await bot.press(user, settings, "rm:a:employer")
    settings = await server.wait_for_edit(user, settings.message_id)
    assert "rm:on" in settings.callback_data
    await bot.press(user, settings, "rm:on")
    await server.wait_for_edit(user, settings.message_id)
    assert ReminderStore(bot.storage).get(user)["audience"] == "employer"

    # The job's path: send_due on its own connection in a thread; the app's sender delivers.
    today = datetime.now(UTC).astimezone(KL)
    m1 = add_months(today.year, today.month, 1)
    # This month is already paid (otherwise its overdue notice would be caught up too).
    ReminderStore(bot.storage).mark_paid(user, f"{today.year:04d}-{today.month:02d}")
    before = len(server.bot_messages(user))
    outbox = bot.app.bot_data["services"].outbox
    count = await asyncio.to_thread(
        _send_due_threaded, bot.storage.path, at9(payment_open_date(*m1)), outbox
    )
    assert count == 1
    reminder = await _next_bot_message_of(bot, user, before)
    assert t("remind.open_title", "en", month=format_month(*m1, "en")) in reminder.text
    assert t("remind.no_salary", "en") in reminder.text
    assert "g:pay-socso:1:en" in reminder.callback_data and "menu:calc" in reminder.callback_data

    ym = f"{m1[0]:04d}-{m1[1]:02d}"
    await bot.press(user, reminder, f"rm:snooze:{ym}")
    snoozed = await server.wait_for_bot_message(user)
    assert snoozed.text.startswith("⏰") and snoozed.callback_data == ["rm:open", "menu:main"]
    assert ReminderStore(bot.storage).month_state(user, ym)["snooze_until"] is not None
    await bot.press(user, reminder, "rm:stop")
    stopped = await server.wait_for_bot_message(user)
    assert stopped.text == t("remind.stopped", "en") and stopped.callback_data == ["rm:open", "menu:main"]
    assert ReminderStore(bot.storage).get(user)["enabled"] == 0


async def _next_bot_message_of(bot: BotHarness, user: int, before: int, timeout: float = 10.0):  # noqa: ASYNC109
    def found():
        msgs = bot.server.bot_messages(user)
        return msgs[before] if len(msgs) > before else None

    return await bot.server.wait_until(found, timeout)
