"""/mydata and /forget: what the bot stores about a user, and deleting it (PDPA 2010).

/mydata sends every stored row about the user (:meth:`bot.storage.Storage.export_user`) as
readable messages: localized headings, every value HTML-escaped, split to stay under Telegram's
4,096-character limit. /forget asks first; its buttons carry the chat id (``pv:yes:<chat>`` /
``pv:no:<chat>``) and do nothing unless pressed by that very user in that very chat. "Yes,
delete" runs :meth:`bot.storage.Storage.forget_user` (one transaction) and drops the in-memory
conversation state of the chat (broadcast drafts, ``user_data``/``chat_data``).
"""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import escape
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    filters,
)

from bot.handlers.common import keyboard, reply, services
from bot.i18n import LANG_NAMES, format_money, t

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


def render_export(data: dict[str, Any]) -> list[str]:
    """The sections of the /mydata answer (current language), values escaped."""
    users = data.get("users") or []
    profile = [dict(u) for u in users]
    blocks = [str(t("privacy.mydata_title"))]
    profile_lines: list[str] = []
    calc_lines: list[str] = []
    for row in profile:
        if row.get("lang") in LANG_NAMES:
            row["lang"] = f"{row['lang']} ({LANG_NAMES[row['lang']]})"
        profile_lines += _fields(row, CALC_FIELDS)
        worker = row.get("worker_type")
        calc_lines.append(f"<code>worker_type</code>: {_worker_type(worker) if worker else '—'}")
        calc_lines += [f"<code>{k}</code>: {_value(row.get(k))}" for k in CALC_FIELDS[1:]]
    blocks.append(_section("privacy.h_profile", profile_lines))
    blocks.append(_section("privacy.h_calc", calc_lines))
    blocks.append(_section("privacy.h_reminders",
                           [line for row in data.get("reminder_subs") or [] for line in _fields(row)]))
    workers = [
        str(t("privacy.worker_line", name=w["name"], type=_worker_type(w["worker_type"]),
              salary=_money(w["salary"]) if w.get("salary") is not None else "—"))
        for w in data.get("reminder_workers") or []
    ]
    blocks.append(_section("privacy.h_workers", workers))
    months = [", ".join(_fields(row, ("chat_id",))) for row in data.get("reminder_months") or []]
    blocks.append(_section("privacy.h_months", months))
    follows = [
        str(t("privacy.agency_line", name=f.get("agency_name") or f["agency"], code=f["agency"],
              since=f["created_at"]))
        for f in data.get("follows") or []
    ]
    blocks.append(_section("privacy.h_follows", follows))
    staff = [
        str(t("privacy.agency_line", name=s.get("agency_name") or s["agency"], code=s["agency"],
              since=s["joined_at"]))
        for s in data.get("staff") or []
    ]
    blocks.append(_section("privacy.h_staff", staff))
    invites = [", ".join(_fields(row, ("token_hash",))) for row in data.get("staff_invites") or []]
    blocks.append(_section("privacy.h_invites", invites))
    created = [", ".join(_fields(row)) for row in data.get("agencies") or []]
    blocks.append(_section("privacy.h_agencies", created))
    blocks.append(_section("privacy.h_outbox", _outbox_lines(data)))
    broadcasts = [
        ", ".join(_fields({k: row.get(k) for k in ("id", "agency", "state", "audience", "recipients",
                                                    "scheduled_at", "created_at", "finished_at")}))
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


async def mydata_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    data = services(context).storage.export_user(chat.id)
    for text in split_messages(render_export(data)):
        await reply(update, context, text)


# --- /forget ---------------------------------------------------------------------------------


async def forget_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    buttons = keyboard(
        [[(str(t("privacy.btn_yes")), f"pv:yes:{chat.id}"), (str(t("privacy.btn_cancel")), f"pv:no:{chat.id}")]]
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


async def on_forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``pv:yes:<chat>`` deletes, ``pv:no:<chat>`` keeps; only for the chat named in the data."""
    query = update.callback_query
    chat = update.effective_chat
    user = update.effective_user
    assert query is not None and query.data is not None
    parts = query.data.split(":")
    target = parts[2] if len(parts) == 3 else ""
    if (
        chat is None
        or user is None
        or chat.type != "private"
        or parts[1] not in ("yes", "no")
        or target != str(chat.id)
        or user.id != chat.id
    ):
        await query.answer(str(t("privacy.not_yours")))
        return
    await query.answer()
    try:
        await query.edit_message_reply_markup(None)
    except TelegramError as exc:  # the old buttons staying is harmless
        log.debug("could not remove the /forget buttons: %s", exc)
    if parts[1] == "no":
        await reply(update, context, t("privacy.forget_cancelled"))
        return
    deleted = services(context).storage.forget_user(chat.id)
    _end_conversations(context.application, chat.id)
    log.info("a user deleted their data (%d rows)", sum(deleted.values()))
    await reply(update, context, t("privacy.forgotten"))


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("mydata", mydata_command, filters=private))
    app.add_handler(CommandHandler("forget", forget_command, filters=private))
    app.add_handler(CallbackQueryHandler(on_forget_button, pattern=r"^pv:"))
