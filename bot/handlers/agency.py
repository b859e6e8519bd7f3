"""/agency (operators), /agencies (followers), the staff-invite and follow deep links.

Deep links (``/start <payload>``): ``staff-<token>`` makes the user staff of the token's agency
(single use); ``f-<code>`` follows agency ``code``. Callback data: ``af:u:<code>`` stops following
(it only ever changes the chat of the user who pressed it).
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.agencies import (
    FOLLOW_PREFIX,
    STAFF_PREFIX,
    AgencyError,
    AgencyService,
    is_operator,
    plain_text,
)
from bot.callbacks import AgencyUnfollow, Menu
from bot.handlers.common import BotContext, keyboard, lang, reply, send_main_menu
from bot.i18n import n, t

log = logging.getLogger(__name__)

COMMANDS = [("agencies", "agency.cmd_agencies")]
MAX_MESSAGE = 4096  # Telegram's limit on a message's text


def agencies(context: BotContext) -> AgencyService:
    return AgencyService(context.services.storage)


def _user_id(update: Update) -> int | None:
    return update.effective_user.id if update.effective_user else None


def operator(update: Update, context: BotContext) -> bool:
    return is_operator(_user_id(update), context.services.config.admin_ids)


def deep_link(context: BotContext, payload: str) -> str:
    return f"https://t.me/{context.bot.username}?start={payload}"


# --- operators: /agency ------------------------------------------------------------------------


async def agency_command(update: Update, context: BotContext) -> None:
    """``/agency new NAME | list | invite CODE | revoke CODE`` (operators only)."""
    if not operator(update, context):
        await reply(update, context, t("agency.not_allowed"))
        return
    args = list(context.args or [])
    action = args[0].lower() if args else ""
    service = agencies(context)
    user_id = _user_id(update)
    try:
        if action == "new" and len(args) > 1:
            found, token = service.create_agency(" ".join(args[1:]), user_id)
            await reply(
                update,
                context,
                t(
                    "agency.created",
                    name=found.name,
                    code=found.code,
                    staff_link=deep_link(context, STAFF_PREFIX + token),
                    follow_link=deep_link(context, FOLLOW_PREFIX + found.code),
                ),
            )
        elif action == "list":
            rows = service.list_agencies()
            if not rows:
                await reply(update, context, t("agency.list_empty"))
                return
            lines = [str(t("agency.list_header"))]
            for row in rows:
                lines.append(
                    str(
                        t(
                            "agency.list_line",
                            name=row["name"],
                            code=row["code"],
                            followers=n("plural.followers", row["followers"]),
                            staff=n("plural.staff", row["staff"]),
                            invites=n("plural.unused_invites", row["open_invites"]),
                        )
                    )
                )
            for text in _chunks(lines):  # many agencies: several messages, each under the limit
                await reply(update, context, text)
        elif action == "invite" and len(args) == 2:
            token = service.new_invite(args[1], user_id)
            found = service.get_agency(args[1])
            assert found is not None
            await reply(
                update,
                context,
                t("agency.invite_created", name=found.name,
                  staff_link=deep_link(context, STAFF_PREFIX + token)),
            )
        elif action == "revoke" and len(args) == 2:
            invites, staff = service.revoke(args[1])
            found = service.get_agency(args[1])
            assert found is not None
            await reply(
                update, context, t("agency.revoked", name=found.name, invites=n("plural.invites", invites),
                  staff=n("plural.staff", staff))
            )
        else:
            await reply(update, context, t("agency.usage"))
    except AgencyError as exc:
        await reply(update, context, t(exc.key))


def _chunks(lines: list[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join HTML lines into as few messages as fit ``limit`` characters (measured on the HTML
    source, which is never shorter than the text Telegram counts)."""
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


# --- deep links -------------------------------------------------------------------------------


async def start_payload_hook(update: Update, context: BotContext, payload: str) -> bool:
    """``/start staff-<token>`` and ``/start f-<code>``; True when the payload was ours."""
    chat = update.effective_chat
    user_id = _user_id(update)
    if chat is None or user_id is None:
        return False
    service = agencies(context)
    if payload.startswith(STAFF_PREFIX):
        context.services.storage.set_start_payload(chat.id, None)  # never keep the token
        found = service.redeem_invite(payload[len(STAFF_PREFIX):], user_id)
        if found is None:
            await send_main_menu(update, context, intro=t("agency.invite_invalid"))
        else:
            log.info("user joined agency %s as staff", found.code)
            await send_main_menu(update, context, intro=t("agency.staff_welcome", agency=found.name))
        return True
    if payload.startswith(FOLLOW_PREFIX):
        result = service.follow(payload[len(FOLLOW_PREFIX):], chat.id)
        if result is None:
            await send_main_menu(update, context, intro=t("agency.unknown_link"))
        else:
            found, added = result
            key = "agency.welcome" if added else "agency.already_following"
            await send_main_menu(update, context, intro=t(key, agency=found.name))
        return True
    return False


# --- followers: /agencies and the unfollow button ---------------------------------------------


async def agencies_command(update: Update, context: BotContext) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    followed = agencies(context).followed(chat.id)
    menu_row = [(str(t("menu.main")), Menu("main").pack())]
    if not followed:
        await reply(update, context, t("agency.following_none"), keyboard([menu_row]))
        return
    lines = [str(t("agency.following_header"))] + [f"• {t('agency.item', agency=a.name)}" for a in followed]
    buttons = [
        [(plain_text("broadcast.unfollow_button", lang(), agency=a.name)[:64], AgencyUnfollow(a.code).pack())]
        for a in followed
    ] + [menu_row]
    *first, last = _chunks(lines)
    for text in first:
        await reply(update, context, text)
    await reply(update, context, last, keyboard(buttons))


async def unfollow_button(update: Update, context: BotContext) -> None:
    """``af:u:<code>``: the presser stops following; nobody else's data is touched."""
    query = update.callback_query
    chat = update.effective_chat
    assert query is not None
    if chat is None:
        await query.answer()
        return
    pressed = AgencyUnfollow.parse(query.data)
    found = agencies(context).unfollow(pressed.code, chat.id) if pressed else None
    if found is None:
        await query.answer(plain_text("agency.not_following", lang()))
        return
    await reply(update, context, t("agency.unfollowed_next", agency=found.name),
                keyboard([[(str(t("menu.main")), Menu("main").pack())]]))
    await query.answer(plain_text("agency.unfollowed", lang(), agency=found.name))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("agency", agency_command))
    app.add_handler(CommandHandler("agencies", agencies_command))
    app.add_handler(CallbackQueryHandler(unfollow_button, pattern=AgencyUnfollow.pattern()))
