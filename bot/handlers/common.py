"""What every handler shares: the services object, the user's language, keyboards, replies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import Application, CallbackContext, ContextTypes

from bot.appbot import AppBot
from bot.callbacks import Menu
from bot.i18n import Catalogs, catalogs, current_lang, resolve_lang, t

if TYPE_CHECKING:
    from bot.config import Config
    from bot.domain.guides import GuideLibrary
    from bot.domain.matcher import Matcher
    from bot.handlers.guides import GuideData
    from bot.locks import GuardedSender
    from bot.metrics import Metrics
    from bot.outbox import Outbox, OutboxSender
    from bot.storage import Storage


@dataclass
class Services:
    """The objects handlers call; one per Application, built in ``bot.app.build_application``
    and reached as ``context.services`` (:class:`BotContext`)."""

    config: Config
    storage: Storage
    metrics: Metrics
    outbox: Outbox
    sender: OutboxSender
    sender_lock: GuardedSender | None = None  # None: the sender does not run in this process
    commands: list[tuple[str, str]] = field(default_factory=list)  # /help and the command menu
    # The guides and their matcher, loaded on first use (or by the warm-up after start); set by
    # the guides feature (handlers/guides.py). Read them as ``guides`` and ``matcher`` below.
    guide_data: GuideData | None = None
    _guides: GuideLibrary | None = field(default=None, init=False, repr=False)
    _matcher: Matcher | None = field(default=None, init=False, repr=False)

    def _data(self) -> GuideData:
        if self.guide_data is None:
            raise RuntimeError("the guides feature is not registered on this Application")
        return self.guide_data

    @property
    def guides(self) -> GuideLibrary:
        """The guide library (loaded on first use unless set)."""
        return self._guides if self._guides is not None else self._data().library

    @guides.setter
    def guides(self, value: GuideLibrary) -> None:
        self._guides = value

    @property
    def matcher(self) -> Matcher:
        """The question matcher (built on first use unless set)."""
        return self._matcher if self._matcher is not None else self._data().matcher

    @matcher.setter
    def matcher(self, value: Matcher) -> None:
        self._matcher = value


class BotContext(CallbackContext[AppBot, dict[Any, Any], dict[Any, Any], dict[str, Any]]):
    """The context every handler and job receives (PTB's documented ``ContextTypes`` hook);
    ``context.bot`` is the Application's :class:`~bot.appbot.AppBot`."""

    @property
    def services(self) -> Services:
        return self.application.bot_data["services"]


CONTEXT_TYPES = ContextTypes(context=BotContext)


def services_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    return app.bot_data["services"]


def lang() -> str:
    """The language of the update being handled (set by the pre-handler)."""
    return current_lang.get()


Button = tuple[str, str]  # (label, callback_data)


def keyboard(rows: Iterable[Sequence[Button | InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    """Build an inline keyboard from rows of (label, callback_data) pairs or ready buttons."""
    return InlineKeyboardMarkup(
        [
            [
                b if isinstance(b, InlineKeyboardButton) else InlineKeyboardButton(b[0], callback_data=b[1])
                for b in row
            ]
            for row in rows
        ]
    )


def main_menu_keyboard() -> InlineKeyboardMarkup:
    """The main menu's buttons in the current language (built once per language and catalogs:
    PTB's keyboard objects are immutable, so every reply can share one)."""
    return _main_menu(resolve_lang(None), catalogs())


@lru_cache(maxsize=8)
def _main_menu(lang: str, _catalogs: Catalogs) -> InlineKeyboardMarkup:
    return keyboard(
        [
            [(t("menu.guides", lang), Menu("guides").pack()), (t("menu.calc", lang), Menu("calc").pack())],
            [
                (t("menu.reminders", lang), Menu("remind").pack()),
                (t("menu.language", lang), Menu("lang").pack()),
            ],
        ]
    )


@lru_cache(maxsize=256)
def _wire_markup(markup: InlineKeyboardMarkup) -> dict[str, Any]:
    """``markup`` as the Bot API's JSON object. A keyboard sent again (the main menu on most
    replies) is serialized once, not on every message."""
    return markup.to_dict()


async def reply(
    update: Update,
    context: BotContext,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Send an HTML message to the chat the update came from."""
    chat = update.effective_chat
    if chat is None:
        return
    # The keyboard's JSON comes from the cache when it was sent before; Telegram's answer is
    # not turned into a Message (AppBot.send_html).
    await context.bot.send_html(chat.id, text, _wire_markup(markup) if markup is not None else None)


_QUOTES = (("&#x27;", "'"), ("&#39;", "'"), ("&quot;", '"'), ("&#34;", '"'))


def _same_html(current: str | None, text: str) -> bool:
    """True when two HTML sources show the same (quotes may be escaped either way)."""
    if current is None:
        return False
    for entity, char in _QUOTES:
        current, text = current.replace(entity, char), text.replace(entity, char)
    return current == text


async def edit_or_reply(
    update: Update,
    context: BotContext,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Edit the message whose button was pressed, or send a new message otherwise."""
    query = update.callback_query
    if query is not None and query.message is not None:
        current = getattr(query.message, "text_html", None)
        if _same_html(current, text) and query.message.reply_markup == markup:
            return  # an edit to the same content is a 400 "message is not modified"
        try:
            await query.edit_message_text(
                text, parse_mode=ParseMode.HTML, reply_markup=markup, disable_web_page_preview=True
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
        return
    await reply(update, context, text, markup)


async def send_main_menu(update: Update, context: BotContext, intro: str | None = None) -> None:
    text = f"{intro}\n\n{t('start.menu_prompt')}" if intro else str(t("start.menu_prompt"))
    await reply(update, context, text, main_menu_keyboard())
