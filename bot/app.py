"""Builds the python-telegram-bot Application: settings, handlers, command menus, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    ContextTypes,
    TypeHandler,
)
from telegram.request import BaseRequest

from bot.appbot import AppBot
from bot.config import Config
from bot.dbhealth import alarm_for
from bot.handlers import (
    agency,
    broadcast,
    calc,
    guides,
    menu,
    privacy,
    reminders,
    stafflist,
    start,
    text,
)
from bot.handlers.common import CONTEXT_TYPES, Services, main_menu_keyboard, services_of
from bot.i18n import LANGS, catalogs, current_lang, set_content_dir, t
from bot.i18n import warm_up as i18n_warm_up
from bot.locks import SENDER_LOCK, GuardedSender, SenderLock
from bot.logs import UpdateLog, deployment_salt, name_handler
from bot.metrics import Metrics, metrics_for, schedule_summary
from bot.outbox import Outbox, OutboxRateLimiter, OutboxSender
from bot.storage import Storage, lang_from_telegram
from bot.throttle import Throttle, Verdict
from bot.transport import make_request

log = logging.getLogger(__name__)

LOCAL_TOKEN = "1000000001:local-mode-token"

# Bot API timeouts (seconds). Interactive answers are retried by OutboxRateLimiter after a
# 5xx/timeout, so one slow request must fail fast enough for a retry to still be quick.
API_CONNECT_TIMEOUT = 5.0
API_READ_TIMEOUT = 7.0
API_WRITE_TIMEOUT = 7.0
API_MEDIA_WRITE_TIMEOUT = 20.0
# Interactive updates running at once; the HTTP pool has room for them plus the outbox's
# workers, so no request waits for a connection.
HTTP_POOL_SIZE = 16
OUTBOX_WORKERS = 8
SENDER_LOCK_TTL = 30.0  # seconds; the lease is refreshed every third of it
WARM_AFTER = 0.2  # seconds after the Application starts (the first getUpdates goes out first)

Hook = Callable[[Application], Awaitable[Any]]

# Feature modules, each with register(app) and optionally COMMANDS = [(command, key)] and
# warm(app) (see start_warm_up). Order matters: PTB gives an update to the first matching
# handler of a group.
FEATURES: list[Any] = [
    start, menu, reminders, agency, broadcast, privacy, stafflist, calc, guides, text,
]  # fmt: skip


class BotApplication(Application):
    """PTB's Application, with every handler named as it is registered (for the update log).

    Built by ``ApplicationBuilder.application_class`` (PTB's documented way to use a subclass).
    ``add_handler`` passes each handler through :func:`bot.logs.name_handler` first, so the log
    line of an update says which feature took it; ``named=False`` for the pre-handler.

    It also owns the HTTP transports it is built with (``transports``): when ``initialize``
    fails (getMe refused or unreachable), PTB leaves them open, so they are closed here.
    """

    def __init__(self, *, transports: tuple[BaseRequest, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transports = transports

    async def initialize(self) -> None:
        try:
            await super().initialize()
        except BaseException:
            for transport in self.transports:  # reopened by the next initialize
                with contextlib.suppress(Exception):
                    await transport.shutdown()
            raise

    def add_handler(self, handler: Any, group: int = 0, *, named: bool = True) -> None:
        super().add_handler(name_handler(handler) if named else handler, group)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handle updates of different chats concurrently, but each chat's in order.

    At most ``max_running`` updates run at once, and an update takes its running slot only
    after its chat's lock: updates queued behind a busy chat hold no slot. Keeping
    ``max_running`` at the HTTP pool size means a reply never queues inside httpcore, whose
    pool bookkeeping grows with the queue (measured: ~270 -> ~350 updates/s at 16).

    Every update is counted (``metrics``: ``updates_in``) and, with ``update_log``, logged in
    one line when it is done — here, in PTB's documented ``do_process_update`` override.
    """

    def __init__(
        self,
        max_running: int = 16,
        throttle: Throttle | None = None,
        *,
        max_waiting: int = 4096,
        metrics: Metrics | None = None,
        update_log: UpdateLog | None = None,
        on_throttled: Callable[[Update, bool], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(max_waiting)  # PTB's own bound: updates waiting or running
        self._running = asyncio.Semaphore(max_running)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}
        self.throttle = throttle
        self.metrics = metrics
        self.update_log = update_log
        # (update, first drop of the flood) -> the answer to a dropped update.
        self.on_throttled = on_throttled

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.metrics is not None:
            self.metrics.inc("updates_in")
        if self.update_log is None:
            await self._process(update, coroutine)
        else:
            await self.update_log.run(update, self._process(update, coroutine))

    async def _process(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.throttle is not None and isinstance(update, Update) and update.effective_user:
            verdict = self.throttle.hit(update.effective_user.id)
            if verdict is not Verdict.ALLOW:
                # Dropped before it waits for the chat: a flood never holds the other chats' slots.
                getattr(coroutine, "close", lambda: None)()
                if self.on_throttled is None:
                    return
                notify = verdict is Verdict.NOTIFY
                if not notify or update.callback_query is not None:
                    await self.on_throttled(update, notify)  # a toast: nothing to keep in order
                    return
                coroutine = self.on_throttled(update, True)  # "slow down", after the earlier answers
        chat_id = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else 0
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        try:
            async with lock, self._running:
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
    if update.callback_query is not None and chat is None:
        # Every button of this bot is on a message in a chat: a press without one (an inline
        # message, a forged query) is not ours. Answer it, so it doesn't spin, and stop.
        try:
            await update.callback_query.answer(t("error.stale_button"))
        except TelegramError as exc:
            log.warning("could not answer a button press without a chat: %s", exc)
        raise ApplicationHandlerStop
    if chat is None or chat.type != "private":
        return
    if update.my_chat_member is not None:
        return  # blocking or unblocking the bot is not a visit: handlers/start.py records it
    storage: Storage = services_of(context.application).storage
    alarm = alarm_for(storage)
    row = None
    try:
        if alarm.skip_optional_write():  # failed a moment ago: don't wait on it again
            row = storage.get_user(chat.id)
        else:
            row = storage.touch_user(chat.id, language_code)
            alarm.success()
    except sqlite3.Error as exc:
        # Degrade: reading features (guides, calculator) still work; writes apologise.
        alarm.failure(exc, "recording a user's visit")
        try:
            row = storage.get_user(chat.id)
        except sqlite3.Error:
            row = None
    if row is not None:
        current_lang.set(row["lang"])


def _undeliverable(error: BaseException) -> bool:
    """Telegram could not take the answer even after the rate limiter's retries."""
    if isinstance(error, BadRequest):
        text = error.message.lower()
        return "chat not found" in text or "user not found" in text
    return isinstance(error, NetworkError | RetryAfter)


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Count and log the failure without secrets and tell the user something useful."""
    metrics_for(context.application).update_failed(update)
    error = context.error
    if isinstance(error, Forbidden):
        if isinstance(update, Update) and update.effective_chat:
            _mark_blocked(context, update.effective_chat.id)
        return
    key = "error.generic"
    if isinstance(error, sqlite3.Error):
        key = "error.storage"
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.IntegrityError | sqlite3.ProgrammingError
    ):  # read-only file, disk full, locked, I/O error: logged once per outage
        alarm_for(services_of(context.application).storage).failure(error, "handling an update")
    elif _undeliverable(error):  # Telegram trouble, already retried: ask the user to try again
        log.warning("could not answer an update: %s: %s", type(error).__name__, error)
    else:
        log.error("handler failed: %s: %s", type(error).__name__, error, exc_info=True)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(t(key), show_alert=False)
        except TelegramError as exc:  # already answered, or too old: the message below says it
            log.debug("could not answer the button press: %s", exc)
    try:
        await context.bot.send_message(update.effective_chat.id, t(key), parse_mode=ParseMode.HTML,
                                       reply_markup=main_menu_keyboard())  # a way on from an error
    except TelegramError as exc:
        log.warning("could not send the error message: %s", exc)


async def _on_throttled(app: Application, update: Update, notify: bool) -> None:
    """A dropped update: one "slow down" per flood in the chat; a dropped button press is answered."""
    metrics_for(app).inc("updates_throttled")
    query, chat = update.callback_query, update.effective_chat
    if query is None and (not notify or chat is None):
        return
    user = update.effective_user
    lang = lang_from_telegram(user.language_code if user else None)
    if chat is not None and chat.type == "private":
        try:
            row = services_of(app).storage.get_user(chat.id)
        except sqlite3.Error:
            row = None
        lang = row["lang"] if row else lang
    text = t("throttle.slow_down", lang)
    try:
        if query is not None:
            await query.answer(str(text))
        elif chat is not None:
            await app.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        log.warning("could not answer a throttled update: %s", exc)


def _mark_blocked(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
    storage = services_of(context.application).storage
    try:
        storage.set_blocked(chat_id)
    except sqlite3.Error as exc:
        alarm_for(storage).failure(exc, "marking a chat as blocked")


async def set_command_menus(app: Application) -> None:
    """Register the command menu once per language: default (English), ``ms`` and ``zh``."""
    commands = [c for feature in FEATURES for c in getattr(feature, "COMMANDS", [])]
    for lang in LANGS:
        menu = [BotCommand(name, str(t(key, lang))) for name, key in commands]
        try:
            await app.bot.set_my_commands(menu, language_code=None if lang == "en" else lang)
        except TelegramError as exc:  # cosmetic: never keep the bot from starting
            log.warning("could not set the %s command menu: %s", lang, exc)


async def _warm_up(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Each feature's ``warm(app)``, in a worker thread: what start-up left to first use (the
    guides and the matcher, the small-talk table, Jinja2) is built before a user needs it."""
    app = context.application
    warms: list[tuple[str, Callable[[], object]]] = [("bot.i18n", i18n_warm_up)]
    for feature in FEATURES:
        warm = getattr(feature, "warm", None)
        if warm is not None:
            warms.append((feature.__name__, functools.partial(warm, app)))
    for name, warm_one in warms:
        try:
            await asyncio.to_thread(warm_one)
        except Exception as exc:  # the first use meets (and reports) the same problem
            log.error("warming up %s failed: %s: %s", name, type(exc).__name__, exc)
    freeze_heap()


_frozen = False


def freeze_heap() -> None:
    """Move every object alive now (modules, catalogs, guides, the matcher's indexes: they live
    as long as the process) out of the garbage collector's sight with ``gc.freeze()``, once per
    process. Without it each full collection under load walks them all again: measured 50-150 ms
    pauses (gen 2, a few per minute at 400 updates/s), the bulk of the p95 reply latency."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


async def start_warm_up(app: Application) -> None:
    """Schedule :func:`_warm_up` WARM_AFTER seconds after start: the bot polls first."""
    if app.job_queue is not None:
        app.job_queue.run_once(_warm_up, when=WARM_AFTER, name="warm-up")


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
    Everything that runs at start and stop is in the two lists ``on_start`` and ``on_stop``
    below, in order.
    """
    token = token or config.token or LOCAL_TOKEN
    storage = storage or Storage(config.db_path)
    if config.content_dir.resolve() != catalogs().content_dir.resolve():
        set_content_dir(config.content_dir)  # BOT_CONTENT_DIR moves the UI strings too
    base_url = config.api_base_url
    file_url = base_url[: -len("bot")] + "file/bot" if base_url.endswith("/bot") else base_url

    metrics = Metrics()
    processor = PerChatUpdateProcessor(
        HTTP_POOL_SIZE,
        Throttle(config.throttle_burst, config.throttle_rate),
        metrics=metrics,
        update_log=UpdateLog(deployment_salt(token, config.log_salt)),
        on_throttled=lambda update, notify: _on_throttled(app, update, notify),  # app: below
    )

    async def _post_init(app: Application) -> None:
        for hook in on_start:
            await hook(app)

    async def _post_stop(app: Application) -> None:
        for hook in on_stop:
            await hook(app)

    transports = (
        make_request(
            config.http_client,
            connection_pool_size=HTTP_POOL_SIZE + OUTBOX_WORKERS,
            pool_timeout=10,
            connect_timeout=API_CONNECT_TIMEOUT,
            read_timeout=API_READ_TIMEOUT,
            write_timeout=API_WRITE_TIMEOUT,
            media_write_timeout=API_MEDIA_WRITE_TIMEOUT,
        ),
        make_request(config.http_client, connection_pool_size=2),  # getUpdates
    )
    bot = AppBot(
        token,
        base_url=base_url,
        base_file_url=file_url,
        request=transports[0],
        get_updates_request=transports[1],
        rate_limiter=OutboxRateLimiter.for_config(config, observer=metrics),
        batch_hold=config.poll_hold,
    )
    app = (
        ApplicationBuilder()
        .application_class(BotApplication, {"transports": transports})
        .bot(bot)
        .concurrent_updates(processor)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .context_types(CONTEXT_TYPES)
        .build()
    )
    # The outbox and its sender; the sender runs only while this process holds the lease.
    outbox = Outbox(storage)
    sender = OutboxSender(app.bot, outbox, workers=OUTBOX_WORKERS)
    guard: GuardedSender | None = None
    if outbox_sender:
        guard = GuardedSender(
            SenderLock(storage, SENDER_LOCK, SENDER_LOCK_TTL), sender.start, sender.stop
        )
    app.bot_data["services"] = Services(
        config=config,
        storage=storage,
        metrics=metrics,
        outbox=outbox,
        sender=sender,
        sender_lock=guard,
        # /help lists the same public commands as Telegram's command menu
        commands=[c for feature in FEATURES for c in getattr(feature, "COMMANDS", [])],
    )

    assert isinstance(app, BotApplication)
    app.add_handler(TypeHandler(Update, _before_every_update), group=-100, named=False)
    for feature in FEATURES:
        feature.register(app)
    start.register_fallbacks(app)
    app.add_error_handler(_on_error)
    schedule_summary(app)

    async def start_checkpoints(_app: Application) -> None:
        storage.checkpoint_in_background()  # WAL fsyncs off the event loop while the bot runs

    async def stop_checkpoints(_app: Application) -> None:
        storage.stop_background_checkpoints()

    async def start_sender(_app: Application) -> None:
        if guard is not None:
            await guard.start()

    async def stop_sender(_app: Application) -> None:
        if guard is not None:
            await guard.stop()

    async def run_post_init(app: Application) -> None:
        if post_init is not None:
            await post_init(app)

    # Everything that runs when the app starts and stops, in this order.
    on_start: list[Hook] = [
        start_checkpoints,
        set_command_menus,
        start_sender,
        reminders.start_job,  # the per-minute reminder run
        broadcast.start_job,  # scheduled broadcasts and their progress messages
        start_warm_up,  # the features' warm(app): the guides and matcher, just after polling starts
        run_post_init,
    ]
    on_stop: list[Hook] = [stop_sender, stop_checkpoints]
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
