"""The main menu's buttons (``menu:<item>``): each opens its feature, named here explicitly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler

from bot.callbacks import Menu
from bot.handlers import calc, guides, reminders, start
from bot.handlers.common import BotContext, send_main_menu

MenuAction = Callable[[Update, BotContext], Awaitable[None]]

ITEMS: dict[str, MenuAction] = {
    "guides": guides.menu_guides,
    "calc": calc.menu_calc,
    "remind": reminders.menu_remind,
    "lang": start.language_command,
}


async def main_menu_button(update: Update, context: BotContext) -> None:
    """A main-menu button; an unknown item (an old or forged button) shows the menu again."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    pressed = Menu.parse(query.data)
    action = ITEMS.get(pressed.item) if pressed else None
    if action is None:
        await send_main_menu(update, context)
        return
    await action(update, context)


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(main_menu_button, pattern=Menu.pattern()))
