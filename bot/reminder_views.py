"""The text and buttons of a payment reminder, in the subscriber's language.

:func:`render_reminder` turns a :class:`bot.domain.reminder_rules.DueReminder` (and the
subscriber's saved workers) into the outbox payload; :mod:`bot.reminders` calls it when it
enqueues what is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bot.callbacks import GuideStep, Menu, ReminderPaid, ReminderSnooze, ReminderStop
from bot.domain.deadlines import deadline
from bot.domain.reminder_rules import DueReminder, Worker, guide_for
from bot.i18n import format_date, format_money, format_month, t

__all__ = ["render_reminder"]


def _amount_lines(reminder: DueReminder, workers: Sequence[Worker], lang: str) -> tuple[list[str], Decimal]:
    from bot.domain.rates import WorkerType, calculate

    lines: list[str] = []
    total = Decimal("0.00")
    month = format_month(reminder.year, reminder.month, lang)
    for worker in workers:
        if worker.salary is None:
            continue
        try:
            result = calculate(worker.salary, reminder.year, reminder.month, WorkerType(worker.worker_type))
        except ValueError:
            continue
        amount = result.employer_total + result.employee_total
        total += amount
        if result.employee_total == 0:
            split = t("remind.split_employer_only", lang)
        else:
            split = t(
                "remind.split",
                lang,
                employer=format_money(result.employer_total, lang),
                employee=format_money(result.employee_total, lang),
            )
        lines.append(
            str(t("remind.amount_line", lang, month=month, name=worker.name,
                  amount=format_money(amount, lang), split=split))
        )
    return lines, total


def render_reminder(reminder: DueReminder, workers: Sequence[Worker]) -> dict[str, Any]:
    """The outbox payload: ``{"type": "text", "text": html, "reply_markup": dict}``."""
    lang = reminder.lang
    month = format_month(reminder.year, reminder.month, lang)
    due = deadline(reminder.year, reminder.month)
    due_text = format_date(due, lang)
    parts: list[str] = []
    if reminder.kind == "overdue":
        parts.append(str(t("remind.overdue_title", lang, month=month)))
        parts.append(str(t("remind.overdue_body", lang, deadline=due_text)))
        parts.append(str(t("remind.late_interest", lang)))
    else:
        if reminder.kind == "payment-open" and not reminder.snoozed:
            parts.append(str(t("remind.open_title", lang, month=month)))
            parts.append(str(t("remind.open_body", lang, month=month, deadline=due_text)))
        else:
            if reminder.days_left == 0:
                title = t("remind.deadline_today_title", lang, month=month)
            elif reminder.days_left == 1:
                title = t("remind.deadline_one_title", lang, month=month)
            else:
                title = t("remind.deadline_title", lang, month=month, days=reminder.days_left)
            parts.append(str(title))
            parts.append(str(t("remind.deadline_body", lang, deadline=due_text)))
        if due.weekday() >= 5:
            parts.append(str(t("remind.weekend_note", lang, deadline=due_text)))
    lines, total = _amount_lines(reminder, workers, lang)
    if lines:
        block = "\n".join(f"• {line}" for line in lines)
        if len(lines) > 1:
            block += "\n" + str(t("remind.total_line", lang, amount=format_money(total, lang)))
        parts.append(block)
    elif reminder.kind != "overdue":
        parts.append(str(t("remind.no_salary", lang)))
    if reminder.kind == "overdue":
        parts.append(str(t("remind.overdue_last", lang, month=month)))

    ym = reminder.month_key
    guide = guide_for(workers, reminder.audience)
    rows: list[list[dict[str, str]]] = [[{"text": str(t("remind.btn_paid", lang)), "callback_data": ReminderPaid(ym).pack()}]]
    if reminder.kind != "overdue":
        rows[0].append({"text": str(t("remind.btn_snooze", lang)), "callback_data": ReminderSnooze(ym).pack()})
    second = [{"text": str(t("remind.btn_howto", lang)), "callback_data": GuideStep(guide, 1, lang).pack()}]
    if not lines:
        second.append({"text": str(t("remind.btn_calc", lang)), "callback_data": Menu("calc").pack()})
    rows.append(second)
    rows.append([{"text": str(t("remind.btn_stop", lang)), "callback_data": ReminderStop().pack()}])
    return {"type": "text", "text": "\n\n".join(parts), "reply_markup": {"inline_keyboard": rows}}
