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
import logging
import secrets
import time

from telegram import InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.callbacks import StaffListAction
from bot.contribution_view import file_error_text, labels, plain, plural, summary_text
from bot.dbhealth import alarm_for
from bot.domain.rates import schedules
from bot.domain.stafflist import (
    MAX_BYTES,
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
from bot.i18n import format_month, t
from bot.storage import DatabaseError

log = logging.getLogger(__name__)

KEEP_SECONDS = 15 * 60
DATA_KEY = "stafflist"


# --- texts (the summary, the file's labels and the error sentences: bot/contribution_view.py) ---


def file_name(result: StaffResult, ext: str, lang: str | None = None) -> str:
    return f"{plain(t('stafflist.filename', lang))}-{result.year:04d}-{result.month:02d}.{ext}"


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
            name = name or plain(t("stafflist.unnamed", row=r.row))
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


__all__ = ["file_name", "register"]
