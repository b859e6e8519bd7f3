"""Builds the python-telegram-bot Application: settings, handlers, command menus, jobs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ContextTypes,
    TypeHandler,
)

from bot.config import Config
from bot.handlers import agency, broadcast, calc, guides, reminders, start, text
from bot.handlers.common import Services
from bot.i18n import LANGS, current_lang, t
from bot.outbox import OutboxRateLimiter
from bot.outbox import install as install_outbox
from bot.storage import Storage, lang_from_telegram
from bot.web import install_ops

log = logging.getLogger(__name__)

LOCAL_TOKEN = "1000000001:local-mode-token"

# Feature modules, each with register(app) and optionally COMMANDS = [(command, key)].
# Order matters: PTB gives an update to the first matching handler of a group.
FEATURES: list[Any] = [start, reminders, agency, broadcast, calc, guides, text]


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handle updates of different chats concurrently, but each chat's in order."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat_id = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else 0
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:
                del self._waiting[chat_id]
                self._locks.pop(chat_id, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


async def _before_every_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Group -100: record the user and set the language every later handler uses."""
    user = update.effective_user
    chat = update.effective_chat
    language_code = user.language_code if user else None
    current_lang.set(lang_from_telegram(language_code))
    if chat is None or chat.type != "private":
        return
    storage: Storage = context.application.bot_data["services"].storage
    try:
        row = storage.touch_user(chat.id, language_code)
    except sqlite3.Error as exc:
        # Degrade: reading features (guides, calculator) still work; writes apologise.
        log.error("database unavailable, answering without saving: %s", exc)
        try:
            row = storage.get_user(chat.id)
        except sqlite3.Error:
            row = None
        if row is None:
            return
    current_lang.set(row["lang"])


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure without secrets and tell the user something useful."""
    error = context.error
    if isinstance(error, Forbidden):
        if isinstance(update, Update) and update.effective_chat:
            _mark_blocked(context, update.effective_chat.id)
        return
    key = "error.storage" if isinstance(error, sqlite3.Error) else "error.generic"
    log.error("handler failed: %s: %s", type(error).__name__, error, exc_info=not isinstance(error, sqlite3.Error))
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(t(key), show_alert=False)
        await context.bot.send_message(update.effective_chat.id, t(key), parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        log.warning("could not send the error message: %s", exc)


def _mark_blocked(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
    try:
        context.application.bot_data["services"].storage.set_blocked(chat_id)
    except sqlite3.Error as exc:
        log.error("could not mark chat as blocked: %s", exc)


async def set_command_menus(app: Application) -> None:
    """Register the command menu once per language: default (English), ``ms`` and ``zh``."""
    commands = [c for feature in FEATURES for c in getattr(feature, "COMMANDS", [])]
    for lang in LANGS:
        menu = [BotCommand(name, str(t(key, lang))) for name, key in commands]
        await app.bot.set_my_commands(menu, language_code=None if lang == "en" else lang)


def build_application(
    config: Config,
    storage: Storage | None = None,
    *,
    token: str | None = None,
    post_init: Callable[[Application], Awaitable[None]] | None = None,
    outbox_sender: bool = True,
) -> Application:
    """Build the Application for ``config`` (token and API base URL may be overridden for local mode).

    ``outbox_sender=False``: the outbox exists but its sender is not started with the app.
    """
    token = token or config.token or LOCAL_TOKEN
    storage = storage or Storage(config.db_path)
    base_url = config.api_base_url
    file_url = base_url[: -len("bot")] + "file/bot" if base_url.endswith("/bot") else base_url

    async def _post_init(app: Application) -> None:
        await set_command_menus(app)
        for hook in app.bot_data["services"].extras.get("post_init", []):
            await hook(app)
        if post_init is not None:
            await post_init(app)

    async def _post_stop(app: Application) -> None:
        for hook in app.bot_data["services"].extras.get("post_stop", []):
            await hook(app)

    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(file_url)
        .concurrent_updates(PerChatUpdateProcessor(256))
        .connection_pool_size(64)
        .pool_timeout(10)
        .get_updates_connection_pool_size(2)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .rate_limiter(OutboxRateLimiter.for_config(config))
        .build()
    )
    app.bot_data["services"] = Services(config=config, storage=storage)
    install_outbox(app, start_sender=outbox_sender)  # extras["outbox"], ["outbox_sender"]
    app.add_handler(TypeHandler(Update, _before_every_update), group=-100)
    for feature in FEATURES:
        feature.register(app)
    start.register_fallbacks(app)
    app.add_error_handler(_on_error)
    install_ops(app)  # counters, one log line per update, single-sender lock (after every handler)
    return app


async def start_application(app: Application, *, poll: bool = True) -> None:
    """Start ``app`` by hand as ``run_polling`` would: initialize, post_init, start, poll.

    Used by local mode and the tests, which run the bot inside their own event loop.
    """
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    if poll:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)


async def stop_application(app: Application) -> None:
    """The reverse of :func:`start_application`, with post_stop and post_shutdown."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    if app.post_stop is not None:
        await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
