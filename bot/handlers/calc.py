"""The contribution calculator in the chat: /calc, the main-menu button, or a typed salary.

Longer than ~500 lines on purpose: the chat calculator's choices (worker type, age band with
"first registered at 55 or older", month, LINDUNG opt-out), remembered choices and the result
keyboard all read and write the one callback format below; the arithmetic is bot/domain/rates.py.

Every button carries the whole calculation, so it still works after a restart or on an old
message (at most 64 bytes)::

    c:<act>:<wage>:<YYYYMM>:<w>:<a>:<o>[:<YYYYMM anchor>]

``wage`` is ringgit with two decimals (``3500.00``); ``w`` the worker type (``e`` employee, ``f``
foreign, ``dl`` / ``df`` local / foreign domestic worker, ``-`` not chosen); ``a`` the age band
(``-`` not given, ``u55``, ``55`` = 55-59, ``55f`` = 55-59 first registered at 55 or older,
``60`` = 60 and over); ``o`` LINDUNG 24 JAM opt-out
(``0``/``1``). Actions: ``r`` show, ``W`` / ``A`` / ``O`` save the worker type / age band / opt-out
and show, ``w`` / ``a`` / ``m`` open the worker / age / month picker (``m`` adds the page anchor),
``s`` start from the user's saved choices (the answer to an ambiguous amount).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from markupsafe import Markup
from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import CalcAct, CalcAction, GuideStep, Menu, ReminderFromCalc
from bot.contribution_view import FIRST_AT_55, age_band, contribution_html
from bot.contribution_view import age_label as _age_label
from bot.contribution_view import worker_label as _worker_label
from bot.dbhealth import alarm_for
from bot.domain.rates import (
    LINDUNG_OPT_OUT_FROM,
    Contribution,
    WorkerType,
    calculate,
    schedules,
)
from bot.domain.salary import ABSURD_ABOVE, looks_like_salary, parse_salary
from bot.domain.worker_words import WorkerWords, read_worker_words
from bot.handlers.common import BotContext, Button, edit_or_reply, keyboard, lang, reply
from bot.handlers.start import stale_button
from bot.i18n import format_money, format_month, t
from bot.storage import DatabaseError

log = logging.getLogger(__name__)

COMMANDS = [("calc", "cmd.calc")]

WAIT_KEY = "calc_waiting_since"  # chat_data: /calc asked for a salary at this monotonic time
WAIT_SECONDS = 600

AGE_BANDS = ("u55", "55", "60")
AGE_STORED = {"u55": "under55", "55": "55to59", FIRST_AT_55: "55to59first", "60": "60plus"}  # users.age_band
AGE_OF_STORED = {v: k for k, v in AGE_STORED.items()}
AGE_FOR_CALC = {"u55": 30, "55": 55, FIRST_AT_55: 55, "60": 60}  # a representative age of each band
FIRST_AGE_FOR_CALC = {FIRST_AT_55: 55}  # first_contribution_age passed to calculate()
DOMESTIC = (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN)


def _ym(year: int, month: int) -> int:
    return year * 12 + month - 1


def _split(ym: int) -> tuple[int, int]:
    return ym // 12, ym % 12 + 1


def _ym_from_text(text: str) -> int:
    year, month = text.split("-")
    return _ym(int(year), int(month))


def current_month(tz: dt.tzinfo) -> tuple[int, int]:
    """This month (year, month) in ``tz``; tests replace this function to freeze the clock."""
    now = dt.datetime.now(tz)
    return now.year, now.month


def _now_ym(context: BotContext) -> int:
    return _ym(*current_month(context.services.config.tz))


@dataclass(frozen=True)
class CalcState:
    """One calculation as a button carries it."""

    wage: Decimal
    ym: int
    worker: WorkerType | None
    age: str | None  # "u55" | "55" | "60" | None (not given)
    opt_out: bool

    @property
    def year(self) -> int:
        return self.ym // 12

    @property
    def month(self) -> int:
        return self.ym % 12 + 1

    def data(self, act: CalcAct, anchor: int | None = None) -> str:
        """The callback data for ``act`` on this state (bot.callbacks.CalcAction)."""
        return CalcAction(act, self.wage, self.ym, self.worker, self.age, self.opt_out, anchor).pack()


def parse_data(data: str | None) -> tuple[str, CalcState, int | None] | None:
    """(action, state, anchor) from callback data, or None if anything is malformed."""
    pressed = CalcAction.parse(data)
    if pressed is None:
        return None
    state = CalcState(pressed.wage, pressed.ym, pressed.worker, pressed.age, pressed.opt_out)
    return pressed.act, state, pressed.anchor


# --- saved choices ----------------------------------------------------------------------------


def _chat_id(update: Update) -> int | None:
    return update.effective_chat.id if update.effective_chat else None


def load_prefs(context: BotContext, chat_id: int | None) -> tuple[WorkerType | None, str | None, bool]:
    """The user's saved worker type, age band and opt-out (reading never fails the answer)."""
    if chat_id is None:
        return None, None, False
    try:
        row = context.services.storage.get_user(chat_id)
    except DatabaseError as exc:
        alarm_for(context.services.storage).failure(exc, "reading calculator choices")
        row = None
    if not row:
        return None, None, False
    worker = row.get("worker_type")
    worker = WorkerType(worker) if worker in {w.value for w in WorkerType} else None
    return worker, AGE_OF_STORED.get(row.get("age_band") or ""), bool(row.get("lindung_opt_out"))


def _save_prefs(context: BotContext, chat_id: int | None, **prefs: Any) -> None:
    if chat_id is None:
        return
    try:
        context.services.storage.set_calc_prefs(chat_id, **prefs)
    except DatabaseError as exc:  # the answer still works, it just isn't remembered
        alarm_for(context.services.storage).failure(exc, "saving calculator choices")


# --- rendering --------------------------------------------------------------------------------


def result_text(state: CalcState) -> tuple[str, Contribution]:
    """The breakdown message for ``state`` (worker chosen) in the current language
    (rendered by :mod:`bot.contribution_view`, as the command line's is)."""
    assert state.worker is not None
    age = AGE_FOR_CALC[state.age] if state.age else None
    first_age = FIRST_AGE_FOR_CALC.get(state.age or "")
    c = calculate(state.wage, state.year, state.month, state.worker, age=age,
                  first_contribution_age=first_age, lindung_opt_out=state.opt_out)
    return contribution_html(c, state.age), c


def _lindung_toggle_applies(state: CalcState, c: Contribution) -> bool:
    """Local employees may opt out from July 2026 (L5); foreign workers never."""
    return (
        state.worker is WorkerType.EMPLOYEE
        and state.ym >= _ym_from_text(LINDUNG_OPT_OUT_FROM)
        and (c.lindung is not None or c.has_note("lindung-opted-out"))
    )


def result_keyboard(state: CalcState, c: Contribution, now_ym: int) -> InlineKeyboardMarkup:
    months: list[Button] = [(str(t("calc.btn.prev", month=format_month(*_split(state.ym - 1)))),
                             replace(state, ym=state.ym - 1).data("r"))]
    if state.ym < now_ym:
        months.append((str(t("calc.btn.next", month=format_month(*_split(state.ym + 1)))),
                       replace(state, ym=state.ym + 1).data("r")))
    rows: list[list[Button]] = [
        months,
        [(str(t("calc.btn.choose_month")), state.data("m", anchor=max(now_ym, state.ym))),
         (str(t("calc.btn.age", band=_age_label(state.age))), state.data("a"))],
        [(str(t("calc.btn.worker")), state.data("w"))],
    ]
    if _lindung_toggle_applies(state, c):
        label = "calc.btn.optout_on" if state.opt_out else "calc.btn.optout_off"
        rows.append([(str(t(label)), replace(state, opt_out=not state.opt_out).data("O"))])
    guide = "domestic-pay" if state.worker in DOMESTIC else "pay-socso"
    rows.append([(str(t("calc.btn.how_to_pay")), GuideStep(guide, 1, lang()).pack())])
    rows.extend(next_step_rows(state))
    return keyboard(rows)


def next_step_rows(state: CalcState) -> list[list[Button]]:
    """The way on from a result: a reminder for this amount, another calculation, the menu."""
    assert state.worker is not None
    rows: list[list[Button]] = []
    if state.wage > 0:  # a reminder of nothing to pay would be no help
        rows.append([(str(t("calc.btn.remind")), ReminderFromCalc(state.worker, state.wage).pack())])
    rows.append([(str(t("calc.btn.another")), Menu("calc").pack()), (str(t("calc.btn.main_menu")), Menu("main").pack())])
    return rows


def _headline(state: CalcState) -> Markup:
    return t("calc.title", wage=format_money(state.wage), month=format_month(state.year, state.month))


def worker_picker(
    state: CalcState, *, back: bool, only: tuple[WorkerType, ...] = tuple(WorkerType)
) -> tuple[str, InlineKeyboardMarkup]:
    text = f"{t('calc.ask_worker')}\n{_headline(state)}"
    rows: list[list[Button]] = [
        [(str(t(f"calc.pick.{w.value}")), replace(state, worker=w).data("W"))]
        for w in WorkerType
        if w in only
    ]
    if back:
        rows.append([(str(t("calc.btn.back")), state.data("r"))])
    return text, keyboard(rows)


def age_picker(state: CalcState) -> tuple[str, InlineKeyboardMarkup]:
    text = f"{t('calc.ask_age')}\n{_headline(state)}"
    rows: list[list[Button]] = [
        [(str(t(f"calc.pick.age.{a}")), replace(state, age=a).data("A")) for a in AGE_BANDS],
        [(str(t(f"calc.pick.age.{FIRST_AT_55}")), replace(state, age=FIRST_AT_55).data("A"))],
        [(str(t("calc.pick.age.unknown")), replace(state, age=None).data("A"))],
        [(str(t("calc.btn.back")), state.data("r"))],
    ]
    return text, keyboard(rows)


def _first_ym() -> int:
    return _ym_from_text(schedules()["socso"][0].effective_from)


def month_picker(state: CalcState, anchor: int, now_ym: int) -> tuple[str, InlineKeyboardMarkup]:
    """Twelve months ending at ``anchor`` (newest first), with older/newer pages."""
    first = _first_ym()
    months = [ym for ym in range(anchor, anchor - 12, -1) if ym >= first]
    buttons: list[Button] = []
    for ym in months:
        label = format_month(*_split(ym))
        buttons.append((f"• {label}" if ym == state.ym else label, replace(state, ym=ym).data("r")))
    rows: list[list[Button]] = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    nav: list[Button] = []
    if anchor - 12 >= first:
        nav.append((str(t("calc.btn.older")), state.data("m", anchor=anchor - 12)))
    if anchor < now_ym:
        nav.append((str(t("calc.btn.newer")), state.data("m", anchor=min(anchor + 12, now_ym))))
    if nav:
        rows.append(nav)
    rows.append([(str(t("calc.btn.back")), state.data("r"))])
    text = f"{t('calc.ask_month')}\n{_headline(state)}"
    return text, keyboard(rows)


async def _show(
    update: Update, context: BotContext, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edit the pressed message (or reply); a double tap that changes nothing is not an error."""
    try:
        await edit_or_reply(update, context, text, markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def show_result(update: Update, context: BotContext, state: CalcState) -> None:
    text, c = result_text(state)
    await _show(update, context, text, result_keyboard(state, c, _now_ym(context)))


def _remembered_line(worker: WorkerType | None, age: str | None) -> Markup | None:
    """"Using your earlier choice: ..." for the saved choices applied to this answer."""
    parts = []
    if worker is not None:
        parts.append(str(_worker_label(worker)))
    if age is not None:
        parts.append(str(t("understand.age", band=_age_label(age))))
    if not parts:
        return None
    return t("understand.remembered", choices=", ".join(parts))


async def start_calculation(
    update: Update,
    context: BotContext,
    wage: Decimal,
    ym: int | None = None,
    words: WorkerWords | None = None,
) -> None:
    """Answer with what the message said, then the saved choices that do not contradict it
    (named on the result, with the buttons to change them); ask for the worker type when
    neither settles it, offering only the types the words leave open."""
    words = words or WorkerWords(None, None, "")
    saved_worker, saved_age, opt_out = load_prefs(context, _chat_id(update))
    choices = words.choices
    worker = choices[0] if len(choices) == 1 else None
    used_worker = used_age = None
    if worker is None and saved_worker in choices:
        worker = used_worker = saved_worker
    age = age_band(words.age) if words.age is not None else None
    if age is None and saved_age is not None:
        age = used_age = saved_age
    state = CalcState(wage, ym if ym is not None else _now_ym(context), worker, age, opt_out)
    if worker is None:
        await _show(update, context, *worker_picker(state, back=False, only=choices))
        return
    text, c = result_text(state)
    note = _remembered_line(used_worker, used_age)
    if note is not None:
        text = f"{text}\n\n{note}"
    await _show(update, context, text, result_keyboard(state, c, _now_ym(context)))


# --- typed input ------------------------------------------------------------------------------


async def answer_salary(update: Update, context: BotContext, text: str) -> None:
    """Answer a typed salary (from /calc, after the prompt, or the free-text router)."""
    if context.chat_data is not None:
        context.chat_data.pop(WAIT_KEY, None)
    words = read_worker_words(text)
    p = parse_salary(words.rest if words.said_anything else text)
    if p.kind == "ok" and p.amount is not None:
        await start_calculation(update, context, p.amount, words=words)
        return
    if p.kind == "ambiguous":
        ym = _now_ym(context)
        choices = [c for c in p.candidates if 0 < c <= ABSURD_ABOVE][:4]
        if choices:
            buttons = [
                [(format_money(c), CalcState(c, ym, None, None, False).data("s")) for c in choices]
            ]
            question = t("calc.ambiguous", options=str(t("calc.or")).join(format_money(c) for c in choices))
            await _show(update, context, question, keyboard(buttons))
            return
        p = replace(p, kind="none")
    params: dict[str, Any] = {"example": "3500"}
    if p.amount is not None:
        params["amount"] = format_money(p.amount)
    params["limit"] = format_money(ABSURD_ABOVE)
    await _show(update, context, t(f"calc.bad.{p.kind}", **params))


async def ask_for_salary(update: Update, context: BotContext) -> None:
    """"Type the monthly salary" (a new message): the next text message is read as a salary."""
    if context.chat_data is not None:
        context.chat_data[WAIT_KEY] = time.monotonic()
    await reply(update, context, t("calc.prompt"))


async def calc_command(update: Update, context: BotContext) -> None:
    """``/calc`` asks for the salary; ``/calc 3500`` answers at once."""
    if context.args:
        await answer_salary(update, context, " ".join(context.args))
        return
    await ask_for_salary(update, context)


async def menu_calc(update: Update, context: BotContext) -> None:
    """The main menu's calculator button (the query is already answered)."""
    await ask_for_salary(update, context)


async def on_salary_text(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None or message.text is None:
        return
    await answer_salary(update, context, message.text)


class _SalaryText(filters.MessageFilter):
    """A text that looks like a salary, or a text with digits right after /calc asked for one."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="calc.salary_text")
        self._app = app

    def filter(self, message: Message) -> bool:
        text = message.text
        if not text or text.startswith("/"):
            return False
        if looks_like_salary(text):
            return True
        if not any(ch.isdigit() for ch in text):
            return False  # a question typed after /calc goes to the guides
        data = self._app.chat_data.get(message.chat_id)
        since = data.get(WAIT_KEY) if data else None
        return since is not None and time.monotonic() - since < WAIT_SECONDS


# --- buttons ----------------------------------------------------------------------------------


async def on_button(update: Update, context: BotContext) -> None:
    """Every ``c:`` button; forged or truncated data changes nothing."""
    query = update.callback_query
    assert query is not None
    parsed = parse_data(query.data)
    if parsed is None:
        await stale_button(update, context)
        return
    act, state, anchor = parsed
    chat_id = _chat_id(update)
    await query.answer()
    if act == "s":
        await start_calculation(update, context, state.wage, state.ym)
        return
    assert state.worker is not None
    if act == "W":
        _save_prefs(context, chat_id, worker_type=state.worker.value)
    elif act == "A":
        _save_prefs(context, chat_id, age_band=AGE_STORED.get(state.age) if state.age else None)
    elif act == "O":
        _save_prefs(context, chat_id, lindung_opt_out=int(state.opt_out))
    if act == "w":
        await _show(update, context, *worker_picker(state, back=True))
    elif act == "a":
        await _show(update, context, *age_picker(state))
    elif act == "m":
        assert anchor is not None
        await _show(update, context, *month_picker(state, anchor, _now_ym(context)))
    else:
        await show_result(update, context, state)


def register(app: Application) -> None:
    app.add_handler(CommandHandler("calc", calc_command))
    app.add_handler(CallbackQueryHandler(on_button, pattern=CalcAction.pattern()))
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
            & _SalaryText(app),
            on_salary_text,
        )
    )


__all__ = ["COMMANDS", "CalcState", "answer_salary", "parse_data", "register", "result_text"]
