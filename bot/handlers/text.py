"""Free text: small talk gets a friendly answer, a salary (or a question about one) goes to the
calculator, anything else is a question for the guides."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.domain.salary import looks_like_salary
from bot.domain.smalltalk import small_talk
from bot.domain.smalltalk import warm_up as warm_small_talk
from bot.domain.worker_words import salary_question
from bot.handlers import calc, guides
from bot.handlers.common import BotContext, send_main_menu
from bot.i18n import current_lang, t, use_lang


async def route_text(update: Update, context: BotContext) -> None:
    """Send a salary to the calculator and a question to the guides."""
    message = update.effective_message
    if message is None or not message.text:
        return
    text = message.text.strip()
    if not text:
        return
    chat = small_talk(text)
    if chat is not None:
        # A short friendly answer and the menu; not a question, so not logged as unanswered.
        with use_lang(chat.lang or current_lang.get()):
            await send_main_menu(update, context, intro=t(f"understand.{chat.kind}"))
        return
    if looks_like_salary(text) or salary_question(text) is not None:
        await calc.answer_salary(update, context, text)
        return
    await guides.answer_question(update, context, text)


def warm(app: Application) -> None:
    """Compile the small-talk phrases (run by ``bot.app`` in a worker thread after start)."""
    warm_small_talk()


def register(app: Application) -> None:
    """Register last among the features (before start's fallbacks)."""
    app.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, route_text)
    )
