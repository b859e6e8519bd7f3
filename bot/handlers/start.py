"""/start, /help, /language, the main menu, the answer to anything not understood, and the
user blocking or unblocking the bot."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import LanguageChoice
from bot.dbhealth import alarm_for
from bot.handlers import agency
from bot.handlers.common import (
    BotContext,
    edit_or_reply,
    keyboard,
    main_menu_keyboard,
    reply,
    send_main_menu,
)
from bot.i18n import LANG_NAMES, LANGS, current_lang, t
from bot.storage import DatabaseError

COMMANDS = [("start", "cmd.start"), ("help", "cmd.help"), ("language", "cmd.language")]


async def start(update: Update, context: BotContext) -> None:
    """Greet in the user's language with the main menu; keep a deep-link payload for later."""
    chat = update.effective_chat
    if chat is None:
        return
    payload = context.args[0][:64] if context.args else None
    if payload:
        if await agency.start_payload_hook(update, context, payload):
            return  # agency/staff links live in their own tables: not kept as a payload
        context.services.storage.set_start_payload(chat.id, payload)
    user = update.effective_user
    name = user.first_name if user and user.first_name else ""
    await send_main_menu(update, context, intro=t("start.greeting", name=name).strip())


def help_text(commands: list[tuple[str, str]], *, staff: bool, operator: bool) -> str:
    """/help in the current language: how to ask, every public command with its menu
    description, then the staff and operator commands for those who hold the role."""
    lines = [str(t("help.text")), "", str(t("help.commands_title"))]
    lines += [f"/{name} – {t(key)}" for name, key in commands]
    if staff or operator:
        lines += ["", str(t("help.staff_title")), str(t("help.cmd_broadcast"))]
    if operator:
        lines += ["", str(t("help.operator_title")), str(t("help.cmd_agency"))]
    return "\n".join(lines)


async def help_command(update: Update, context: BotContext) -> None:
    """/help: the commands this user may use, with the main menu under it."""
    from bot.agencies import AgencyService, is_operator  # the agency feature's roles

    svc = context.services
    user = update.effective_user
    operator = user is not None and is_operator(user.id, svc.config.admin_ids)
    staff = False
    if user is not None and not operator:
        try:
            staff = bool(AgencyService(svc.storage).staff_agencies(user.id))
        except DatabaseError:  # the database is down: the public help still answers
            staff = False
    commands = svc.commands
    await reply(update, context, help_text(commands, staff=staff, operator=operator), main_menu_keyboard())


def language_keyboard():
    return keyboard([[(LANG_NAMES[code], LanguageChoice(code).pack()) for code in LANGS]])


async def language_command(update: Update, context: BotContext) -> None:
    await edit_or_reply(update, context, t("language.choose"), language_keyboard())


async def language_chosen(update: Update, context: BotContext) -> None:
    """A language button: store the choice and answer in the new language."""
    query = update.callback_query
    assert query is not None
    chosen = LanguageChoice.parse(query.data)
    if chosen is None:
        await query.answer(t("error.stale_button"))
        return
    code = chosen.lang
    context.services.storage.set_language(update.effective_chat.id, code)
    current_lang.set(code)
    await query.answer()
    await edit_or_reply(update, context, t("language.set"))
    await send_main_menu(update, context)


async def not_understood(update: Update, context: BotContext) -> None:
    """Anything no feature handled: a short localized answer and the menu."""
    message = update.effective_message
    if message is not None and message.text is None:
        await send_main_menu(update, context, intro=t("fallback.unsupported"))
        return
    await send_main_menu(update, context, intro=t("fallback.not_understood"))


async def stale_button(update: Update, context: BotContext) -> None:
    """A button no handler recognises (old, forged or from a removed feature)."""
    query = update.callback_query
    if query is None:
        return
    await query.answer(t("error.stale_button"))
    await send_main_menu(update, context)


async def membership_changed(update: Update, context: BotContext) -> None:
    """The user blocked or unblocked the bot in their private chat (Telegram's my_chat_member).

    Recorded at once: reminders and broadcasts skip a blocked chat instead of learning it from a
    refused send, and start again when the user unblocks the bot, even without writing to it.
    Only a user the bot already has a row for changes: neither is a visit, so neither creates a
    row (a user who had their data deleted with /forget and then blocks the bot stays gone)."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    blocked = change.new_chat_member.status == ChatMemberStatus.BANNED
    storage = context.services.storage
    try:
        storage.set_blocked(change.chat.id, blocked)
    except DatabaseError as exc:
        alarm_for(storage).failure(exc, "recording that a user blocked or unblocked the bot")


def register(app: Application) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(ChatMemberHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("language", language_command))
    app.add_handler(CallbackQueryHandler(language_chosen, pattern=LanguageChoice.pattern()))


def register_fallbacks(app: Application) -> None:
    """Added after every feature: PTB picks the first matching handler of a group."""
    app.add_handler(MessageHandler(filters.ALL & ~filters.UpdateType.EDITED, not_understood))
    app.add_handler(CallbackQueryHandler(stale_button))
