"""/mydata and /forget: what the bot stores about a user, and deleting it (PDPA 2010).

/mydata sends every stored row about the user (:meth:`bot.storage.Storage.export_user`) as
readable messages: localized headings, every value HTML-escaped, split to stay under Telegram's
4,096-character limit. /forget asks first; its buttons carry the chat id (``pv:yes:<chat>`` /
``pv:no:<chat>``) and do nothing unless pressed by that very user in that very chat. "Yes,
delete" runs :meth:`bot.storage.Storage.forget_user` (one transaction) and drops the in-memory
conversation state of the chat (broadcast drafts, ``user_data``/``chat_data``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup, escape
from telegram import InputFile, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    filters,
)

from bot.callbacks import Menu, PrivacyAction
from bot.domain.clock import parse_utc
from bot.domain.deadlines import KL, days_from_mask
from bot.handlers.calc import AGE_OF_STORED
from bot.handlers.common import BotContext, keyboard, reply
from bot.i18n import LANG_NAMES, format_date, format_money, format_month, n, t

log = logging.getLogger(__name__)

COMMANDS = [("mydata", "cmd.mydata"), ("forget", "cmd.forget")]
MAX_MESSAGE = 4096
CALC_FIELDS = ("worker_type", "age_band", "lindung_opt_out")
QUEUED_STATES = ("queued", "sending")
OUTBOX_KINDS = ("reminder", "broadcast")
# Tables shown by their own section; any other table with rows is listed under "Other records".
SECTIONS = (
    "users",
    "reminder_subs",
    "reminder_workers",
    "reminder_months",
    "follows",
    "staff",
    "staff_invites",
    "agencies",
    "outbox",
    "outbox_unreachable",
    "broadcasts",
)


# --- /mydata ---------------------------------------------------------------------------------


def _value(value: Any) -> str:
    return "—" if value is None or value == "" else str(escape(str(value)))


def _fields(row: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    return [f"<code>{escape(k)}</code>: {_value(v)}" for k, v in row.items() if k not in skip]


def _section(key: str, lines: list[str]) -> str:
    body = "\n".join(f"• {line}" for line in lines) if lines else str(t("privacy.none"))
    return f"<b>{t(key)}</b>\n{body}"


def _money(raw: Any) -> str:
    try:
        return format_money(Decimal(str(raw)))
    except (InvalidOperation, ValueError):
        return _value(raw)


def _worker_type(value: Any) -> str:
    key = f"remind.type.{value}"
    text = str(t(key))
    return _value(value) if text == key else text


def _when(value: Any) -> str:
    """A stored UTC ISO time as a date and time in Malaysia, in the current language."""
    try:
        moment = parse_utc(str(value))
    except (TypeError, ValueError):
        return _value(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(KL)
    return f"{format_date(local.date())} {local:%H:%M}"


def _yes_no(flag: Any) -> str:
    return str(t("privacy.s.yes" if flag else "privacy.s.no"))


def _profile_lines(row: dict[str, Any]) -> list[str]:
    code = row.get("lang")
    how = t("privacy.s.lang_chosen" if row.get("lang_chosen") else "privacy.s.lang_detected")
    lines = [
        str(t("privacy.s.language", language=LANG_NAMES.get(code, code or "—"), how=how)),
        str(t("privacy.s.seen", first=_when(row.get("first_seen")), last=_when(row.get("last_seen")))),
    ]
    if row.get("start_payload"):
        lines.append(str(t("privacy.s.payload", payload=row["start_payload"])))
    if row.get("blocked"):
        lines.append(str(t("privacy.s.blocked")))
    return lines


def _calc_lines(row: dict[str, Any]) -> list[str]:
    worker = row.get("worker_type")
    band = AGE_OF_STORED.get(row.get("age_band") or "")
    age = str(t(f"calc.age.{band}")) if band else str(t("privacy.s.not_chosen"))
    return [
        str(t("privacy.s.calc_worker", value=_worker_type(worker) if worker else t("privacy.s.not_chosen"))),
        str(t("privacy.s.calc_age", value=age)),
        str(t("privacy.s.calc_optout", value=_yes_no(row.get("lindung_opt_out")))),
    ]


def _reminder_lines(row: dict[str, Any]) -> list[str]:
    what: list[str] = []
    if row.get("payment_open"):
        what.append(str(t("privacy.s.open_day", day=row.get("open_day"))))
    days = sorted(days_from_mask(int(row.get("days_mask") or 0)), reverse=True)
    if days:
        labels = str(t("remind.list_sep")).join(
            str(n("plural.days", d)) for d in days if d
        )
        if labels:
            what.append(str(t("privacy.s.days_before", days=labels)))
        if 0 in days:
            what.append(str(t("remind.day_on_the_day")))
    if not what:
        what.append(str(t("privacy.s.only_overdue")))
    audience = t(f"remind.line_for.{row.get('audience')}")
    lines = [
        str(t("privacy.s.reminders", state=t("privacy.s.on" if row.get("enabled") else "privacy.s.off"),
              what=Markup(str(t("remind.list_sep")).join(what)),
              time=f"{int(row.get('hour') or 0):02d}:00", audience=audience))
    ]
    if row.get("pending"):
        lines.append(str(t("privacy.s.pending", since=_when(row.get("pending_at")))))
    return lines


def _month_line(row: dict[str, Any]) -> str:
    try:
        year, month = (int(x) for x in str(row.get("ym")).split("-"))
        label = format_month(year, month)
    except ValueError:
        label = _value(row.get("ym"))
    states = []
    if row.get("paid_at"):
        states.append(str(t("privacy.s.month_paid", date=_when(row["paid_at"]))))
    if row.get("snooze_until"):
        states.append(str(t("privacy.s.month_snoozed", date=_when(row["snooze_until"]))))
    sent = str(row.get("sent") or "").split()
    if sent:
        states.append(str(t("privacy.s.month_sent", count=len(sent))))
    return str(t("privacy.s.month", month=Markup(label), state=Markup(str(t("remind.list_sep")).join(states) or "—")))


def render_export(data: dict[str, Any]) -> list[str]:
    """The sections of the /mydata answer (current language), each item a labelled sentence,
    values escaped. The raw rows are the JSON download."""
    users = data.get("users") or []
    blocks = [str(t("privacy.mydata_title"))]
    profile_lines: list[str] = []
    calc_lines: list[str] = []
    for row in users:
        profile_lines += _profile_lines(dict(row))
        calc_lines += _calc_lines(dict(row))
    blocks.append(_section("privacy.h_profile", profile_lines))
    blocks.append(_section("privacy.h_calc", calc_lines))
    blocks.append(_section("privacy.h_reminders",
                           [line for row in data.get("reminder_subs") or [] for line in _reminder_lines(row)]))
    workers = [
        str(t("privacy.worker_line", name=w["name"], type=_worker_type(w["worker_type"]),
              salary=_money(w["salary"]) if w.get("salary") is not None else "—"))
        for w in data.get("reminder_workers") or []
    ]
    blocks.append(_section("privacy.h_workers", workers))
    months = [_month_line(row) for row in data.get("reminder_months") or []]
    blocks.append(_section("privacy.h_months", months))
    follows = [
        str(t("privacy.agency_line", name=f.get("agency_name") or f["agency"], code=f["agency"],
              since=_when(f["created_at"])))
        for f in data.get("follows") or []
    ]
    blocks.append(_section("privacy.h_follows", follows))
    staff = [
        str(t("privacy.agency_line", name=s.get("agency_name") or s["agency"], code=s["agency"],
              since=_when(s["joined_at"])))
        for s in data.get("staff") or []
    ]
    blocks.append(_section("privacy.h_staff", staff))
    invites = [
        str(t("privacy.s.invite" if row.get("used_at") else "privacy.s.invite_created",
              agency=row.get("agency"), date=_when(row.get("used_at") or row.get("created_at"))))
        for row in data.get("staff_invites") or []
    ]
    blocks.append(_section("privacy.h_invites", invites))
    created = [
        str(t("privacy.s.agency", name=row.get("name"), code=row.get("code"), date=_when(row.get("created_at"))))
        for row in data.get("agencies") or []
    ]
    blocks.append(_section("privacy.h_agencies", created))
    blocks.append(_section("privacy.h_outbox", _outbox_lines(data)))
    broadcasts = [
        str(t("privacy.s.broadcast", id=row.get("id"),
              target=row.get("agency") or t("privacy.s.everyone"),
              state=t(f"privacy.s.bstate.{row.get('state')}"),
              recipients=n("plural.recipients", int(row.get("recipients") or 0)),
              date=_when(row.get("created_at"))))
        for row in data.get("broadcasts") or []
    ]
    blocks.append(_section("privacy.h_broadcasts", broadcasts))
    other = [
        f"<code>{escape(table)}</code>: " + ", ".join(_fields(row))
        for table, rows in data.items()
        if table not in SECTIONS
        for row in rows
    ]
    if other:
        blocks.append(_section("privacy.h_other", other))
    blocks.append(str(t("privacy.mydata_footer")))
    return blocks


def _outbox_lines(data: dict[str, Any]) -> list[str]:
    rows = data.get("outbox") or []
    queued = [r for r in rows if r["state"] in QUEUED_STATES]
    lines = []
    if queued:
        kinds = Counter(r["kind"] for r in queued)
        names = ", ".join(
            f"{t(f'privacy.kind.{kind}') if kind in OUTBOX_KINDS else _value(kind)}: {n}"
            for kind, n in sorted(kinds.items())
        )
        lines.append(str(t("privacy.outbox_queued", count=len(queued), kinds=names)))
    if len(rows) > len(queued):
        lines.append(str(t("privacy.outbox_kept", count=len(rows) - len(queued))))
    for row in data.get("outbox_unreachable") or []:
        lines.append(str(t("privacy.unreachable", since=row["since"])))
    return lines


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_messages(blocks: list[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join ``blocks`` with blank lines into messages of at most ``limit`` UTF-16 units (the
    HTML counted too, so the visible text is shorter); a block too long alone is cut at lines."""
    pieces: list[str] = []
    for block in blocks:
        if _utf16(block) <= limit:
            pieces.append(block)
            continue
        current = ""
        for line in block.split("\n"):
            while _utf16(line) > limit:  # one absurd line: cut it (values are escaped per line)
                pieces.append(line[: limit // 2])
                line = line[limit // 2 :]
            candidate = f"{current}\n{line}" if current else line
            if _utf16(candidate) > limit:
                pieces.append(current)
                candidate = line
            current = candidate
        if current:
            pieces.append(current)
    messages: list[str] = []
    for piece in pieces:
        if messages and _utf16(f"{messages[-1]}\n\n{piece}") <= limit:
            messages[-1] = f"{messages[-1]}\n\n{piece}"
        else:
            messages.append(piece)
    return messages


async def mydata_command(update: Update, context: BotContext) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    data = context.services.storage.export_user(chat.id)
    *first, last = split_messages(render_export(data))
    for text in first:
        await reply(update, context, text)
    await reply(update, context, last, keyboard([
        [(str(t("privacy.json_button")), PrivacyAction("json", chat.id).pack())],
        [(str(t("menu.main")), Menu("main").pack())],
    ]))


async def _send_json(update: Update, context: BotContext) -> None:
    """The raw export as a JSON file (the press is already checked to be the user's own)."""
    chat = update.effective_chat
    assert chat is not None
    data = context.services.storage.export_user(chat.id)
    raw = json.dumps(data, ensure_ascii=False, indent=1, default=str).encode()
    await context.bot.send_document(
        chat.id, InputFile(raw, filename="mydata.json"), caption=str(t("privacy.json_caption"))
    )


# --- /forget ---------------------------------------------------------------------------------


async def forget_command(update: Update, context: BotContext) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    buttons = keyboard(
        [[(str(t("privacy.btn_yes")), PrivacyAction("yes", chat.id).pack()), (str(t("privacy.btn_cancel")), PrivacyAction("no", chat.id).pack())]]
    )
    await reply(update, context, t("privacy.forget_confirm"), buttons)


def _end_conversations(app: Application, chat_id: int) -> None:
    """Forget every in-memory conversation and data of the chat (e.g. a broadcast draft)."""
    for group in app.handlers.values():
        for handler in group:
            conversations = getattr(handler, "_conversations", None)
            if isinstance(handler, ConversationHandler) and isinstance(conversations, dict):
                for key in [k for k in conversations if isinstance(k, tuple) and chat_id in k]:
                    conversations.pop(key, None)
    app.drop_user_data(chat_id)
    app.drop_chat_data(chat_id)


async def on_forget_button(update: Update, context: BotContext) -> None:
    """``pv:yes:<chat>`` deletes, ``pv:no:<chat>`` keeps; only for the chat named in the data."""
    query = update.callback_query
    chat = update.effective_chat
    user = update.effective_user
    assert query is not None
    pressed = PrivacyAction.parse(query.data)
    if (
        pressed is None
        or chat is None
        or user is None
        or chat.type != "private"
        or pressed.chat_id != chat.id
        or user.id != chat.id
    ):
        await query.answer(str(t("privacy.not_yours")))
        return
    await query.answer()
    if pressed.act == "json":
        await _send_json(update, context)
        return
    try:
        await query.edit_message_reply_markup(None)
    except TelegramError as exc:  # the old buttons staying is harmless
        log.debug("could not remove the /forget buttons: %s", exc)
    if pressed.act == "no":
        await reply(update, context, t("privacy.forget_cancelled"), _menu_keyboard())
        return
    deleted = context.services.storage.forget_user(chat.id)
    _end_conversations(context.application, chat.id)
    log.info("a user deleted their data (%d rows)", sum(deleted.values()))
    await reply(update, context, t("privacy.forgotten"), _menu_keyboard())


def _menu_keyboard():  # noqa: ANN202 - an InlineKeyboardMarkup
    return keyboard([[(str(t("menu.main")), Menu("main").pack())]])


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("mydata", mydata_command, filters=private))
    app.add_handler(CommandHandler("forget", forget_command, filters=private))
    app.add_handler(CallbackQueryHandler(on_forget_button, pattern=PrivacyAction.pattern()))
