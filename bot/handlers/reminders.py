"""/remind: monthly payment reminder settings, saved workers, and the reminder buttons.

Longer than ~500 lines on purpose: the settings screen and every button on it (days, hour by
button or typed, audience), the add-a-worker conversation and the Paid/Snooze/Stop buttons share
one callback namespace (``rm:``) and one settings view; the rules are in
bot/domain/reminder_rules.py and the message text in bot/reminder_views.py.

Callback data (all under ``rm:``): ``rm:open``, ``rm:on``, ``rm:off``, ``rm:po`` (payment-open
reminder on/off), ``rm:d:<days>`` (deadline reminder days), ``rm:h:<hour>``, ``rm:a:<audience>``,
``rm:w:add`` / ``rm:w:del:<id>`` / ``rm:w:cancel`` / ``rm:wt:<worker type>`` (add-a-worker
conversation), and on the reminders themselves ``rm:paid:<YYYY-MM>``, ``rm:snooze:<YYYY-MM>``,
``rm:stop``; from a calculator result, ``rm:c:<worker type>:<salary>`` (turn reminders on and
save a worker with that salary once named). While the settings were shown in the last
10 minutes, a typed time ("20:00", "8pm", "jam 8 malam", "晚上8点") sets the hour. The one scheduler job (every minute, on the minute) calls :func:`bot.reminders.send_due`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import (
    REMINDERS,
    Menu,
    ReminderAudience,
    ReminderDay,
    ReminderFromCalc,
    ReminderHour,
    ReminderOff,
    ReminderOn,
    ReminderOpen,
    ReminderPaid,
    ReminderPaymentOpen,
    ReminderSnooze,
    ReminderStop,
    ReminderWorkerAdd,
    ReminderWorkerCancel,
    ReminderWorkerDelete,
    ReminderWorkerType,
)
from bot.dbhealth import alarm_for
from bot.domain.clock import utc_now
from bot.domain.deadlines import (
    DEADLINE_DAYS_CHOICES,
    HOUR_CHOICES,
    KL,
    TYPED_HOUR_FIRST,
    TYPED_HOUR_LAST,
    days_from_mask,
    mask_from_days,
    next_moment,
    parse_month_key,
    parse_time_of_day,
)
from bot.domain.rates import WorkerType
from bot.handlers.common import BotContext, edit_or_reply, keyboard, reply
from bot.i18n import format_date, format_money, format_month, t
from bot.reminders import (
    AUDIENCES,
    MAX_WORKERS,
    DueReminder,
    ReminderStore,
    Worker,
    next_reminder,
    row_settings,
    send_due,
    send_due_async,
    tomorrow_at,
)
from bot.storage import DatabaseError

log = logging.getLogger(__name__)

COMMANDS = [("remind", "cmd.remind")]
WORKER_TYPES = ("domestic-foreign", "domestic-local", "employee", "foreign")
MAX_NAME = 32
JOB_NAME = "reminders.send_due"
SHOWN_KEY = "remind_settings_shown"  # chat_data: the settings were shown at this monotonic time
TYPED_HOUR_SECONDS = 600
_UNSET: Any = object()


def _store(context: BotContext) -> ReminderStore:
    return ReminderStore(context.services.storage)


def _hour_text(hour: int) -> str:
    return f"{hour:02d}:00"


def _type_label(worker_type: str) -> str:
    return str(t(f"remind.type.{worker_type}"))


# --- the settings screen ----------------------------------------------------------------------


def settings_text(
    row: dict[str, Any], workers: list[Worker], now: datetime | None = None, upcoming: Any = _UNSET
) -> str:
    """The settings summary in the current language. ``upcoming`` is the next reminder that
    will really be sent (:func:`bot.reminders.next_reminder`, None for none); without it, the
    next moment of the settings alone."""
    enabled = bool(row["enabled"])
    title = str(t("remind.settings_title"))
    gap = "" if title.endswith(("：", "，")) else " "  # no space after full-width punctuation
    parts = [title + gap + str(t("remind.status_on" if enabled else "remind.status_off"))]
    lines = []
    if row["payment_open"]:
        lines.append(str(t("remind.line_open", day=row["open_day"])))
    days = sorted(days_from_mask(row["days_mask"]), reverse=True)
    if days:
        labels = str(t("remind.list_sep")).join(_day_label(d) for d in days)
        lines.append(str(t("remind.line_deadline", days=labels)))
    if not lines:
        lines.append(str(t("remind.line_only_overdue")))
    lines.append(str(t("remind.line_hour", time=_hour_text(row["hour"]))))
    lines.append(str(t(f"remind.line_for.{row['audience']}")))
    parts.append("\n".join(f"• {line}" for line in lines))
    if workers:
        worker_lines = [
            str(t("remind.worker_item", name=w.name, type=_type_label(w.worker_type),
                  salary=format_money(w.salary) if w.salary is not None else "—"))
            for w in workers
        ]
        parts.append(str(t("remind.workers_title")) + "\n" + "\n".join(worker_lines))
    else:
        parts.append(str(t("remind.no_workers")))
    if enabled:
        if upcoming is _UNSET:
            upcoming = next_moment(row_settings(row), now or utc_now())
        if upcoming is not None:
            local = upcoming.at.astimezone(KL)
            parts.append(str(t("remind.next", date=format_date(local.date()), time=_hour_text(local.hour),
                               month=format_month(upcoming.year, upcoming.month))))
        else:
            parts.append(str(t("remind.next_none")))
    parts.append(str(t("remind.ask_hour", first=_hour_text(TYPED_HOUR_FIRST), last=_hour_text(TYPED_HOUR_LAST))))
    return "\n\n".join(parts)


def _day_label(days: int) -> str:
    if days == 0:
        return str(t("remind.day_on_the_day"))
    if days == 1:
        return str(t("remind.day_one"))
    return str(t("remind.day_many", days=days))


def _check(flag: bool) -> str:
    return "✅" if flag else "⬜"


def settings_keyboard(row: dict[str, Any], workers: list[Worker]) -> InlineKeyboardMarkup:
    enabled = bool(row["enabled"])
    days = days_from_mask(row["days_mask"])
    rows: list[list[tuple[str, str]]] = [
        [(str(t("remind.btn_off" if enabled else "remind.btn_on")), (ReminderOff() if enabled else ReminderOn()).pack())],
        [(f"{_check(bool(row['payment_open']))} {t('remind.btn_open', day=row['open_day'])}", ReminderPaymentOpen().pack())],
        [(f"{_check(d in days)} {_day_label(d)}", ReminderDay(d).pack()) for d in DEADLINE_DAYS_CHOICES],
        [((f"• {_hour_text(h)}" if h == row["hour"] else _hour_text(h)), ReminderHour(h).pack())
         for h in sorted({*HOUR_CHOICES, row["hour"]})],
        [(f"{_check(row['audience'] == a)} {t(f'remind.btn_for.{a}')}", ReminderAudience(a).pack()) for a in AUDIENCES],
    ]
    if len(workers) < MAX_WORKERS:
        rows.append([(str(t("remind.btn_add_worker")), ReminderWorkerAdd().pack())])
    for chunk_start in range(0, len(workers), 3):
        rows.append([(f"🗑 {w.name}", ReminderWorkerDelete(w.id).pack()) for w in workers[chunk_start : chunk_start + 3]])
    rows.append([(str(t("menu.main")), Menu("main").pack())])
    return keyboard(rows)


async def show_settings(update: Update, context: BotContext, *, edit: bool = True) -> None:
    """/remind and the main menu's Reminders button."""
    chat = update.effective_chat
    if chat is None:
        return
    store = _store(context)
    row = store.ensure(chat.id)
    workers = store.workers(chat.id)
    upcoming: DueReminder | None = None
    if row["enabled"]:
        try:
            upcoming = next_reminder(context.services.storage, chat.id, utc_now())
        except DatabaseError as exc:  # the settings still show; the next date is left out
            alarm_for(context.services.storage).failure(exc, "computing the next reminder")
    text, markup = settings_text(row, workers, upcoming=upcoming), settings_keyboard(row, workers)
    if context.chat_data is not None:
        context.chat_data[SHOWN_KEY] = time.monotonic()
    if edit:
        await edit_or_reply(update, context, text, markup)
    else:
        await reply(update, context, text, markup)


async def remind_command(update: Update, context: BotContext) -> None:
    """/remind: the settings (an unfinished add-a-worker conversation is dropped)."""
    if update.effective_chat is not None:
        _store(context).set_pending(update.effective_chat.id, None)
    await show_settings(update, context, edit=False)


async def menu_remind(update: Update, context: BotContext) -> None:
    """The main menu's Reminders button (bot/handlers/menu.py)."""
    await remind_command(update, context)


# --- buttons ----------------------------------------------------------------------------------


async def on_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    # Forged or mangled data ("rm:on:x", "rm:h:٩", "rm:d:1_4") parses to None: stale, never a near guess.
    pressed = REMINDERS.parse(query.data)
    store = _store(context)
    try:
        match pressed:
            case ReminderOpen():
                await query.answer()
                await show_settings(update, context, edit=False)
            case ReminderOn() | ReminderOff():
                on = isinstance(pressed, ReminderOn)
                store.update(chat.id, enabled=int(on))
                await query.answer(t("remind.turned_on" if on else "remind.turned_off"))
                await show_settings(update, context)
            case ReminderPaymentOpen():
                row = store.ensure(chat.id)
                store.update(chat.id, payment_open=0 if row["payment_open"] else 1)
                await query.answer()
                await show_settings(update, context)
            case ReminderDay(days):
                if days not in DEADLINE_DAYS_CHOICES:
                    raise ValueError(days)
                row = store.ensure(chat.id)
                chosen = set(days_from_mask(row["days_mask"])) ^ {days}
                store.update(chat.id, days_mask=mask_from_days(chosen))
                await query.answer()
                await show_settings(update, context)
            case ReminderHour(hour):
                if hour not in HOUR_CHOICES and not TYPED_HOUR_FIRST <= hour <= TYPED_HOUR_LAST:
                    raise ValueError(hour)
                store.update(chat.id, hour=hour)
                await query.answer()
                await show_settings(update, context)
            case ReminderAudience(audience):
                if audience not in AUDIENCES:
                    raise ValueError(audience)
                store.update(chat.id, audience=audience)
                await query.answer()
                await show_settings(update, context)
            case ReminderWorkerAdd():
                await _worker_button(update, context, ["add"])
            case ReminderWorkerCancel():
                await _worker_button(update, context, ["cancel"])
            case ReminderWorkerDelete(worker_id):
                await _worker_button(update, context, ["del", str(worker_id)])
            case ReminderWorkerType(worker):
                await _worker_type_chosen(update, context, worker.value)
            case ReminderPaid(month):
                await _paid(update, context, month)
            case ReminderSnooze(month):
                await _snooze(update, context, month)
            case ReminderFromCalc(worker, wage):
                await _from_calculator(update, context, worker.value, f"{wage:.2f}")
            case ReminderStop():
                store.update(chat.id, enabled=0)
                await query.answer()
                await reply(update, context, t("remind.stopped"), _onward_keyboard())
            case _:
                raise ValueError(query.data)
    except (ValueError, IndexError):
        await query.answer(t("error.stale_button"))


async def _worker_button(update: Update, context: BotContext, args: list[str]) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    store = _store(context)
    if args[0] == "add":
        if len(store.workers(chat.id)) >= MAX_WORKERS:
            await query.answer(t("remind.too_many_workers", max=MAX_WORKERS), show_alert=True)
            return
        store.set_pending(chat.id, {"step": "name"})
        await query.answer()
        await reply(update, context, t("remind.ask_name"), _cancel_keyboard())
    elif args[0] == "cancel":
        store.set_pending(chat.id, None)
        await query.answer()
        await reply(update, context, t("remind.cancelled"))
        await show_settings(update, context, edit=False)
    elif args[0] == "del":
        removed = store.delete_worker(chat.id, int(args[1]))
        await query.answer(t("remind.worker_removed") if removed else t("error.stale_button"))
        await show_settings(update, context)
    else:
        raise ValueError(args[0])


async def _from_calculator(update: Update, context: BotContext, worker_type: str, salary: str) -> None:
    """"Set a reminder with this amount" under a calculator result: reminders on, then the
    worker's name is all that is asked; the type and salary come from the calculation."""
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    amount = Decimal(salary)
    if worker_type not in WORKER_TYPES or amount <= 0:
        raise ValueError(worker_type)
    store = _store(context)
    if len(store.workers(chat.id)) >= MAX_WORKERS:
        await query.answer(t("remind.too_many_workers", max=MAX_WORKERS), show_alert=True)
        return
    row = store.ensure(chat.id)
    changes: dict[str, Any] = {} if row["enabled"] else {"enabled": 1}
    if not store.workers(chat.id):  # the first worker says who the reminders are for
        audience = "household" if worker_type.startswith("domestic") else "employer"
        if row["audience"] != audience:
            changes["audience"] = audience
    if changes:
        store.update(chat.id, **changes)
    store.set_pending(chat.id, {"step": "name", "type": worker_type, "salary": f"{amount:.2f}"})
    await query.answer()
    await reply(update, context, t("remind.from_calc", salary=format_money(amount)), _cancel_keyboard())


async def _typed_hour(update: Update, context: BotContext, text: str) -> bool:
    """A time typed soon after the settings were shown: set the hour. False if it is no time."""
    chat = update.effective_chat
    assert chat is not None
    shown = context.chat_data.get(SHOWN_KEY) if context.chat_data is not None else None
    if shown is None or time.monotonic() - shown > TYPED_HOUR_SECONDS:
        return False
    parsed = parse_time_of_day(text)
    if parsed is None:
        return False
    hour, minute = parsed
    first, last = _hour_text(TYPED_HOUR_FIRST), _hour_text(TYPED_HOUR_LAST)
    if minute != 0 or not TYPED_HOUR_FIRST <= hour <= TYPED_HOUR_LAST:
        await reply(update, context, t("remind.hour_out_of_range", first=first, last=last))
        return True
    _store(context).update(chat.id, hour=hour)
    await reply(update, context, t("remind.hour_set", time=_hour_text(hour)))
    await show_settings(update, context, edit=False)
    return True


def _onward_keyboard() -> InlineKeyboardMarkup:
    """Under an answer to a reminder's button: the settings and the main menu."""
    return keyboard([[(str(t("remind.btn_settings")), ReminderOpen().pack()), (str(t("menu.main")), Menu("main").pack())]])


def _cancel_keyboard() -> InlineKeyboardMarkup:
    return keyboard([[(t("remind.btn_cancel"), ReminderWorkerCancel().pack())]])


def _type_keyboard() -> InlineKeyboardMarkup:
    return keyboard(
        [[(_type_label(w), ReminderWorkerType(WorkerType(w)).pack())] for w in WORKER_TYPES]
        + [[(t("remind.btn_cancel"), ReminderWorkerCancel().pack())]]
    )


async def _worker_type_chosen(update: Update, context: BotContext, worker_type: str) -> None:
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    store = _store(context)
    state = store.pending(chat.id)
    if worker_type not in WORKER_TYPES or state is None or state.get("step") != "type":
        raise ValueError(worker_type)
    store.set_pending(chat.id, {"step": "salary", "name": state["name"], "type": worker_type})
    await query.answer()
    await edit_or_reply(update, context, t("remind.type_chosen", name=state["name"], type=_type_label(worker_type)))
    await reply(update, context, t("remind.ask_salary", name=state["name"]), _cancel_keyboard())


async def on_text(update: Update, context: BotContext) -> None:
    """Group -10: the typed answers of the add-a-worker conversation; otherwise let others run."""
    chat = update.effective_chat
    message = update.effective_message
    if chat is None or message is None or message.text is None or chat.type != "private":
        return
    store = _store(context)
    try:
        state = store.pending(chat.id)
    except DatabaseError:
        return  # the database is down: let the reading features answer
    text = message.text.strip()
    if state is None:
        if await _typed_hour(update, context, text):
            raise ApplicationHandlerStop
        return
    step = state.get("step")
    if step == "name":
        name = " ".join(text.split())
        if not name or len(name) > MAX_NAME or any(ch.isdigit() for ch in name):
            await reply(update, context, t("remind.bad_name", max=MAX_NAME), _cancel_keyboard())
        elif state.get("type") in WORKER_TYPES and state.get("salary"):
            amount = Decimal(str(state["salary"]))  # from the calculator: nothing else to ask
            store.add_worker(chat.id, name, state["type"], amount)
            store.set_pending(chat.id, None)
            await reply(update, context, t("remind.worker_saved", name=name, salary=format_money(amount)))
            await show_settings(update, context, edit=False)
        else:
            store.set_pending(chat.id, {"step": "type", "name": name})
            await reply(update, context, t("remind.ask_type", name=name), _type_keyboard())
    elif step == "type":
        await reply(update, context, t("remind.tap_type"), _type_keyboard())
    elif step == "salary":
        await _salary_typed(update, context, state, text)
    raise ApplicationHandlerStop


async def _salary_typed(update: Update, context: BotContext, state: dict[str, Any], text: str) -> None:
    from bot.domain.salary import parse_salary

    chat = update.effective_chat
    assert chat is not None
    parsed = parse_salary(text)
    if parsed.kind == "ok" and parsed.amount is not None:
        store = _store(context)
        store.add_worker(chat.id, state["name"], state["type"], parsed.amount)
        store.set_pending(chat.id, None)
        await reply(update, context, t("remind.worker_saved", name=state["name"], salary=format_money(parsed.amount)))
        await show_settings(update, context, edit=False)
        return
    if parsed.kind == "ambiguous" and parsed.candidates:
        options = " / ".join(format_money(c) for c in parsed.candidates)
        answer = t("remind.salary_ambiguous", options=options)
    elif parsed.kind in ("hourly", "daily"):
        answer = t("remind.salary_not_monthly")
    elif parsed.kind in ("zero", "negative"):
        answer = t("remind.salary_zero")
    elif parsed.kind == "absurd":
        answer = t("remind.salary_absurd")
    else:
        answer = t("remind.salary_unreadable")
    await reply(update, context, answer, _cancel_keyboard())


async def _unpaid_month(
    update: Update, context: BotContext, ym: str
) -> tuple[CallbackQuery, int, ReminderStore] | None:
    """The press, chat id and store for a reminder button of month ``ym``; None (and the
    "already paid" answer) when that month is marked paid: a later press changes nothing."""
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None and chat is not None
    store = _store(context)
    state = store.month_state(chat.id, ym)
    if state is not None and state["paid_at"] is not None:
        await query.answer(t("remind.already_paid"))
        return None
    return query, chat.id, store


async def _paid(update: Update, context: BotContext, ym: str) -> None:
    year, month = parse_month_key(ym)
    found = await _unpaid_month(update, context, ym)
    if found is None:  # pressed again: keep the first answer
        return
    query, chat_id, store = found
    store.mark_paid(chat_id, ym)
    month_text = format_month(year, month)
    await query.answer(t("remind.paid_toast"))
    try:
        if getattr(query.message, "reply_markup", None) is not None:
            await query.edit_message_reply_markup(None)
    except TelegramError as exc:
        log.debug("could not remove the reminder's buttons: %s", exc)
    await reply(update, context, t("remind.paid", month=month_text), _onward_keyboard())


async def _snooze(update: Update, context: BotContext, ym: str) -> None:
    year, month = parse_month_key(ym)
    found = await _unpaid_month(update, context, ym)
    if found is None:
        return
    query, chat_id, store = found
    row = store.ensure(chat_id)
    until = tomorrow_at(utc_now(), row["hour"])
    store.snooze(chat_id, ym, until)
    await query.answer(t("remind.snoozed_toast"))
    await reply(update, context, t("remind.snoozed", date=format_date(until.date()), time=_hour_text(until.hour),
                                   month=format_month(year, month)), _onward_keyboard())


# --- the scheduler job ------------------------------------------------------------------------


async def reminder_tick(context: BotContext) -> None:
    """Every minute: enqueue the reminders that are due now."""
    svc = context.services
    outbox = svc.outbox
    if outbox is None:
        log.warning("no outbox installed: reminders are not sent")
        return
    now = utc_now()
    try:
        # On the event loop in small chunks (bot.reminders.send_due_async): a thread would hold
        # the GIL for most of a big slot and stall interactive replies meanwhile.
        count = await send_due_async(svc.storage, outbox, now)
    except DatabaseError as exc:  # read-only, disk full, locked: logged once per outage
        alarm_for(svc.storage).failure(exc, "enqueuing due reminders")
        return
    except Exception:  # noqa: BLE001 - a failed tick must not stop the job
        log.exception("sending due reminders failed")
        return
    if count:
        log.info("enqueued %d reminders", count)  # the outbox sender polls and delivers them


def _send_due_threaded(path: Any, now: datetime, outbox: Any) -> int:
    """Run send_due on its own connection (in a thread: for tools; the job uses send_due_async)."""
    from bot.storage import Storage

    storage = Storage(path)
    try:
        thread_outbox = type(outbox)(storage)
        return send_due(storage, thread_outbox, now)
    finally:
        storage.close()


async def start_job(app: Application) -> None:
    if app.job_queue is None:
        log.warning("no job queue: reminders are not scheduled")
        return
    now = utc_now()
    first = (now.replace(second=0, microsecond=0) + timedelta(minutes=1) - now).total_seconds()
    app.job_queue.run_repeating(reminder_tick, interval=60, first=first, name=JOB_NAME)


def install(app: Application) -> None:
    """Menu entry and the scheduler job (started after the Application is initialized)."""


def register(app: Application) -> None:
    app.add_handler(CommandHandler("remind", remind_command))
    app.add_handler(CallbackQueryHandler(on_button, pattern=REMINDERS.pattern()))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, on_text), group=-10)
    install(app)


__all__ = ["COMMANDS", "install", "register", "send_due", "settings_text", "show_settings"]
