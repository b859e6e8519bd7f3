"""A whole staff list in the chat: an XLSX/CSV document, or pasted lines "name, wage[, type][, age]".

The reply is a summary (people, totals per scheme, employer total, deducted from wages, schedules,
notes, skipped rows with their reasons) and the result file (XLSX; CSV on a button). Nothing of
the list is stored: it is read in memory and kept only in the chat's in-memory ``chat_data`` for
:data:`KEEP_SECONDS`, so the buttons (CSV, another month, save as reminder workers) work. Logs
carry counts only, never a name, an IC number or a wage.

Buttons: ``sl:<act>:<token>[:<YYYYMM>]``; ``act`` is ``c`` (CSV), ``m`` (another month), ``s``
(save the people as reminder workers). ``token`` names the list in memory.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
import time
from typing import Any

from babel import Locale
from markupsafe import Markup
from telegram import InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.callbacks import StaffListAction
from bot.dbhealth import alarm_for
from bot.domain.rates import Note, WorkerType, schedules
from bot.domain.salary import ABSURD_ABOVE
from bot.domain.stafflist import (
    MAX_BYTES,
    MAX_ROWS,
    RESULT_COLUMNS,
    Labels,
    RowError,
    Sheet,
    SheetError,
    StaffResult,
    calculate_all,
    looks_like_staff_lines,
    read_file,
    read_lines,
    write_csv,
    write_xlsx,
)
from bot.handlers import calc as calc_handlers
from bot.handlers.common import BotContext, Button, keyboard, reply
from bot.handlers.start import stale_button
from bot.i18n import BABEL_LOCALES, format_money, format_month, resolve_lang, t
from bot.storage import DatabaseError

log = logging.getLogger(__name__)

KEEP_SECONDS = 15 * 60
MAX_LISTED_ERRORS = 20
MESSAGE_LIMIT = 4096  # Telegram's message length (UTF-16 units; HTML tags count here, not there)
MAX_LISTED_PEOPLE = 10  # a summary lists each person up to this many (the file always does)
DATA_KEY = "stafflist"


# --- texts ------------------------------------------------------------------------------------


def plural(key: str, count: int, lang: str | None = None) -> Markup:
    """``<key>.one`` / ``<key>.other`` (CLDR plural rules of the language) with ``{count}``."""
    form = Locale.parse(BABEL_LOCALES[resolve_lang(lang)]).plural_form(count)
    return t(f"{key}.{form}" if form == "one" else f"{key}.other", lang, count=f"{count:,}")


def _limits() -> dict[str, Any]:
    return {"max_rows": f"{MAX_ROWS:,}", "max_mb": MAX_BYTES // (1024 * 1024)}


def file_error_text(code: str, lang: str | None = None) -> str:
    """The localized answer to a file that cannot be read at all."""
    return str(t(f"stafflist.file.{code}", lang, **_limits()))


def row_error_text(e: RowError, lang: str | None = None) -> Markup:
    return (t(f"stafflist.err.{e.code}", lang, value=e.value, limit=format_money(ABSURD_ABOVE, lang)))


def _plain(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup)))


def labels(lang: str | None = None) -> Labels:
    """The result file's texts in ``lang``."""
    from bot.commands.calc import note_text

    heads = list(RESULT_COLUMNS) + ["totals", "sheet", "skipped_sheet", "skipped_row", "skipped_reason"]
    return Labels(
        headers={h: _plain(t(f"stafflist.col.{h}", lang)) for h in heads},
        worker={w.value: _plain(t(f"calc.worker.{w.value}", lang)) for w in WorkerType},
        category={c: _plain(t(f"stafflist.cat.{c}", lang)) for c in ("first", "second", "none")},
        note=lambda n: note_text(n, lang),
        error=lambda e: _plain(row_error_text(e, lang)),
        type_assumed=_plain(t("stafflist.type_assumed_row", lang)),
    )


def _schedule_names(result: StaffResult) -> list[str]:
    by_id = {s.id: s for group in schedules().values() for s in group}
    keys = {"socso": "calc.sched.socso", "lindung": "calc.sched.lindung", "eis": "calc.sched.eis"}
    out = []
    for sid in result.schedules():
        s = by_id[sid]
        y, m = (int(x) for x in s.effective_from.split("-"))
        out.append(str(t(keys[s.scheme], ceiling=format_money(s.ceiling), start=format_month(y, m), phase=s.phase or "")))
    return out


def _note(note: Note) -> Markup:
    return calc_handlers._note(note)  # the single calculator's sentence for the note


def summary_text(result: StaffResult, minutes: int | None = None) -> str:
    """The summary message (HTML) in the current language, within Telegram's 4,096 characters:
    skipped rows (then people) beyond what fits are left to the file."""
    for errors, people in ((MAX_LISTED_ERRORS, True), (10, True), (5, True), (5, False), (0, False)):
        text = _summary(result, minutes, errors, people)
        if len(text.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT:
            break
    return text


def _summary(result: StaffResult, minutes: int | None, max_errors: int, list_people: bool) -> str:
    parts: list[str] = []
    month = format_month(result.year, result.month)
    n = len(result.people)
    if n:
        tt = result.totals
        head = [
            str(t("stafflist.title", month=month, people=plural("stafflist.people", n))),
            str(t("stafflist.line.wages", amount=format_money(tt.wages))),
        ]
        parts.append("\n".join(head))
        if list_people and n <= MAX_LISTED_PEOPLE:  # a short list: each person's share, as on the payslip
            parts.append("\n".join(
                str(t("stafflist.person_line",
                      name=p.row.name or t("stafflist.unnamed", row=p.row.row),
                      employer=format_money(p.c.employer_total), employee=format_money(p.c.employee_total)))
                for p in result.people
            ))
        schemes = [str(t("stafflist.line.socso", employer=format_money(tt.socso_employer),
                         employee=format_money(tt.socso_employee)))]
        if any(p.c.lindung for p in result.people):
            schemes.append(str(t("stafflist.line.lindung", employee=format_money(tt.lindung_employee))))
        if any(p.c.eis for p in result.people):
            schemes.append(str(t("stafflist.line.eis", employer=format_money(tt.eis_employer),
                                 employee=format_money(tt.eis_employee))))
        parts.append("\n".join(schemes))
        parts.append("\n".join([
            str(t("calc.total.employer", amount=format_money(tt.employer))),
            str(t("calc.total.employee", amount=format_money(tt.employee))),
            str(t("calc.total.all", amount=format_money(tt.total))),
        ]))
        names = _schedule_names(result)
        if names:
            parts.append("\n".join([f"<i>{t('calc.schedules')}</i>"] + [f"• {x}" for x in names]))
        notes = []
        assumed = sum(1 for p in result.people if p.row.type_assumed)
        if assumed:
            notes.append("ℹ️ " + str(t("stafflist.type_assumed", people=plural("stafflist.people", assumed))))
        for note, count in result.note_counts():
            notes.append(str(t("stafflist.note_line", people=plural("stafflist.people", count), note=_note(note))))
        if notes:
            parts.append("\n".join(notes))
    else:
        parts.append(str(t("stafflist.nobody")))
    if result.errors:
        lines = [str(t("stafflist.skipped", rows=plural("stafflist.rows", len(result.errors))))]
        for e in result.errors[:max_errors]:
            lines.append(str(t("stafflist.skipped_line", row=e.row, reason=row_error_text(e))))
        more = len(result.errors) - max_errors
        if more > 0:
            lines.append(str(t("stafflist.skipped_more", rows=plural("stafflist.rows", more))))
        parts.append("\n".join(lines))
    if not n:
        parts.append(str(t("stafflist.format_hint")))
    if minutes is not None:
        parts.append(str(t("stafflist.privacy", minutes=minutes)))
    return "\n\n".join(parts)


def file_name(result: StaffResult, ext: str, lang: str | None = None) -> str:
    return f"{_plain(t('stafflist.filename', lang))}-{result.year:04d}-{result.month:02d}.{ext}"


# --- memory -----------------------------------------------------------------------------------


def _remember(context: BotContext, sheet: Sheet) -> str:
    token = secrets.token_hex(4)
    if context.chat_data is not None:
        context.chat_data[DATA_KEY] = {"token": token, "sheet": sheet, "at": time.monotonic()}
    return token


def _recall(context: BotContext, token: str) -> Sheet | None:
    data = context.chat_data.get(DATA_KEY) if context.chat_data is not None else None
    if not data or data.get("token") != token:
        return None
    if time.monotonic() - data["at"] > KEEP_SECONDS:
        context.chat_data.pop(DATA_KEY, None)
        return None
    return data["sheet"]


def _keyboard(token: str, result: StaffResult, now_ym: int) -> InlineKeyboardMarkup:
    ym = result.year * 12 + result.month - 1
    first = schedules()["socso"][0].effective_from.split("-")
    first_ym = int(first[0]) * 12 + int(first[1]) - 1

    def mdata(v: int) -> str:
        return StaffListAction("m", token, v).pack()

    months: list[Button] = []
    if ym - 1 >= first_ym:
        months.append((str(t("stafflist.btn.prev", month=format_month(*divmod_ym(ym - 1)))), mdata(ym - 1)))
    if ym < now_ym:
        months.append((str(t("stafflist.btn.next", month=format_month(*divmod_ym(ym + 1)))), mdata(ym + 1)))
    rows: list[list[Button]] = []
    if months:
        rows.append(months)
    if result.people:
        rows.append([(str(t("stafflist.btn.csv")), StaffListAction("c", token, ym).pack())])
        rows.append([(str(t("stafflist.btn.save")), StaffListAction("s", token).pack())])
    return keyboard(rows)


def divmod_ym(ym: int) -> tuple[int, int]:
    return ym // 12, ym % 12 + 1


# --- answering --------------------------------------------------------------------------------


async def _answer(update: Update, context: BotContext, sheet: Sheet, ym: int, token: str) -> None:
    """Calculate ``sheet`` for month ``ym``; send the summary, then the XLSX file."""
    year, month = divmod_ym(ym)
    result = await asyncio.to_thread(calculate_all, sheet, year, month)  # CPU off the event loop
    now_ym = calc_handlers._now_ym(context)
    await reply(update, context, summary_text(result, KEEP_SECONDS // 60), _keyboard(token, result, now_ym))
    log.info("staff list: %d people, %d rows skipped", len(result.people), len(result.errors))
    if result.people:
        await _send_file(update, context, result, "xlsx")


async def _send_file(update: Update, context: BotContext, result: StaffResult, ext: str) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_DOCUMENT)
    writer = write_xlsx if ext == "xlsx" else write_csv
    data = await asyncio.to_thread(writer, result, labels())  # the thread keeps the language
    await context.bot.send_document(
        chat.id,
        InputFile(data, filename=file_name(result, ext)),
        caption=str(t("stafflist.file_caption", month=format_month(result.year, result.month))),
        parse_mode="HTML",
    )


async def on_document(update: Update, context: BotContext) -> None:
    """An XLSX/CSV document: read it in memory and answer."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    doc = message.document
    if doc.file_size is not None and doc.file_size > MAX_BYTES:
        await reply(update, context, file_error_text("too-large"))
        return
    try:
        tg_file = await doc.get_file()
        data = bytes(await tg_file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("staff list: could not download the document: %s", type(exc).__name__)
        await reply(update, context, file_error_text("download"))
        return
    try:
        sheet = await asyncio.to_thread(read_file, data, doc.file_name)
    except SheetError as exc:
        log.info("staff list: file refused (%s)", exc.code)
        await reply(update, context, file_error_text(exc.code))
        return
    del data
    await _answer(update, context, sheet, calc_handlers._now_ym(context), _remember(context, sheet))


async def on_lines(update: Update, context: BotContext) -> None:
    """Pasted lines, one person each."""
    message = update.effective_message
    if message is None or not message.text:
        return
    try:
        sheet = read_lines(message.text)
    except SheetError as exc:
        await reply(update, context, file_error_text(exc.code))
        return
    await _answer(update, context, sheet, calc_handlers._now_ym(context), _remember(context, sheet))


class _StaffLines(filters.MessageFilter):
    def __init__(self) -> None:
        super().__init__(name="stafflist.lines")

    def filter(self, message: Message) -> bool:
        return bool(message.text) and looks_like_staff_lines(message.text)


async def on_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    assert query is not None
    pressed = StaffListAction.parse(query.data)
    if pressed is None:
        await stale_button(update, context)
        return
    sheet = _recall(context, pressed.token)
    if sheet is None:
        await query.answer()
        await reply(update, context, t("stafflist.expired", minutes=KEEP_SECONDS // 60))
        return
    act, ym = pressed.act, pressed.ym
    await query.answer()
    if act == "m":
        assert ym is not None
        await _answer(update, context, sheet, ym, pressed.token)
    elif act == "c":
        assert ym is not None
        result = await asyncio.to_thread(calculate_all, sheet, *divmod_ym(ym))
        await _send_file(update, context, result, "csv")
    else:
        await _save_workers(update, context, sheet)


async def _save_workers(update: Update, context: BotContext, sheet: Sheet) -> None:
    """Save the listed people as reminder workers (the user asked, with the button)."""
    from bot.handlers.reminders import MAX_NAME
    from bot.reminders import MAX_WORKERS, ReminderStore

    chat = update.effective_chat
    if chat is None:
        return
    store = ReminderStore(context.services.storage)
    try:
        room = max(0, MAX_WORKERS - len(store.workers(chat.id)))
        existing = {(w.name, w.worker_type, w.salary) for w in store.workers(chat.id)}
        saved = 0
        skipped = 0
        for r in sheet.rows:
            name = " ".join("".join(ch for ch in r.name if not ch.isdigit()).split())[:MAX_NAME]
            name = name or _plain(t("stafflist.unnamed", row=r.row))
            if (name, r.worker.value, r.wage) in existing:
                continue  # pressed twice: not saved again
            if saved >= room:
                skipped += 1
                continue
            store.add_worker(chat.id, name, r.worker.value, r.wage)
            saved += 1
    except DatabaseError as exc:
        alarm_for(context.services.storage).failure(exc, "saving staff-list workers")
        await reply(update, context, t("error.storage"))
        return
    text = str(t("stafflist.saved", people=plural("stafflist.people", saved)))
    if skipped:
        text += "\n" + str(t("stafflist.saved_partly", people=plural("stafflist.people", skipped), max=MAX_WORKERS))
    log.info("staff list: %d saved as reminder workers, %d over the limit", saved, skipped)
    await reply(update, context, text)


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED
    app.add_handler(MessageHandler(private & filters.Document.ALL, on_document))
    app.add_handler(
        MessageHandler(private & filters.TEXT & ~filters.COMMAND & _StaffLines(), on_lines)
    )
    app.add_handler(CallbackQueryHandler(on_button, pattern=StaffListAction.pattern()))


__all__ = ["file_error_text", "labels", "plural", "register", "row_error_text", "summary_text"]
