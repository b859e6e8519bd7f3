"""Logging set-up: text or one JSON object per line, with every secret redacted.

:func:`install_last_resort` routes whatever would otherwise reach stderr as a raw traceback
(an exception nobody caught, in the main thread, another thread, an event loop callback, or
a finaliser) through :func:`log_line`: one redacted line in the configured format.

:func:`install_update_logging` adds one INFO line per update (logger ``bot.updates``) with the
update id, the chat as a salted hash (never the raw id), the handler that took it and the
latency; never the message text, a salary or the token.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.config import redact

if TYPE_CHECKING:
    from telegram.ext import Application, BaseHandler, ContextTypes


class RedactingFilter(logging.Filter):
    """Removes the bot token and webhook secret from every record, whatever logged it."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, *self.secrets)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = redact(text, *self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("update_id", "chat", "handler", "latency_ms", "event", "counters"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


def setup_logging(fmt: str = "text", level: int = logging.INFO, *secrets: str | None) -> None:
    _known_secrets.update(s for s in secrets if s)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(*secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a warning is a log line too (JSON with LOG_FORMAT=json)
    # httpx logs every request URL, which contains the token: keep it quiet.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- the last line: whatever ends the process ---------------------------------------------

# Secrets given to setup_logging; the hooks below also read them from the environment, so they
# redact even before the configuration is read (or when reading it failed).
_known_secrets: set[str] = set()


def env_secrets(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """TELEGRAM_BOT_TOKEN and WEBHOOK_SECRET as the environment has them (stripped, non-empty)."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    values = (env.get(name, "").strip() for name in ("TELEGRAM_BOT_TOKEN", "WEBHOOK_SECRET"))
    return tuple(value for value in values if value)


def env_log_format() -> str:
    """"json" when LOG_FORMAT asks for it, else "text" (also when LOG_FORMAT itself is invalid)."""
    return "json" if os.environ.get("LOG_FORMAT", "").strip().lower() == "json" else "text"


def _all_secrets() -> tuple[str, ...]:
    return (*env_secrets(), *_known_secrets)


def log_line(
    message: str,
    *,
    level: int = logging.CRITICAL,
    exc_info: tuple[type[BaseException], BaseException, Any] | None = None,
    logger: str = "bot",
    to_stderr: bool = False,
) -> None:
    """One redacted log record: through the logging set-up if there is one, else straight to
    stderr in LOG_FORMAT (a JSON object, or the bare message for text). A traceback, if given,
    is redacted text inside the record (the ``exc`` field in JSON), never raw on stderr.
    ``to_stderr``: skip the logging set-up (for errors found before it exists)."""
    secrets = _all_secrets()
    record = logging.LogRecord(logger, level, __file__, 0, redact(message, *secrets), None, None)
    if exc_info is not None:
        text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
        record.exc_text = redact(text, *secrets)
    if logging.getLogger().handlers and not to_stderr:
        logging.getLogger(logger).handle(record)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(*secrets))
    handler.setFormatter(JsonFormatter() if env_log_format() == "json" else logging.Formatter())
    handler.handle(record)
    handler.flush()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    try:
        detail = str(exc)
    except Exception:  # a broken __str__ must not hide the error
        detail = ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        log_line("interrupted", level=logging.WARNING)
        return
    log_line(f"stopped by an unexpected error: {_describe(exc)}", exc_info=(exc_type, exc, tb))


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    log_line(
        f"thread {name} failed: {_describe(args.exc_value)}",
        level=logging.ERROR,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _unraisable_hook(args: Any) -> None:
    exc = args.exc_value
    what = args.err_msg or "exception ignored"
    log_line(
        f"{what}: {_describe(exc)}",
        level=logging.ERROR,
        exc_info=(args.exc_type, exc, args.exc_traceback) if exc is not None else None,
    )


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """``loop.set_exception_handler``: an error no task awaited, as one redacted record."""
    exc = context.get("exception")
    message = context.get("message") or "unhandled exception in the event loop"
    if isinstance(exc, BaseException):
        log_line(
            f"event loop: {message}: {_describe(exc)}",
            level=logging.ERROR,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    else:
        log_line(f"event loop: {message}", level=logging.ERROR)


def install_last_resort() -> None:
    """Replace the hooks that print raw tracebacks (sys.excepthook, threading.excepthook,
    sys.unraisablehook) by :func:`log_line`. Event loops get :func:`loop_exception_handler`
    where they are created."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_hook
    sys.unraisablehook = _unraisable_hook


# --- one line per update ----------------------------------------------------------------------

update_log = logging.getLogger("bot.updates")

# The handlers that ran for the update being processed (a list shared with child tasks).
_handled_by: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("handled_by", default=None)


def chat_hash(chat_id: int | None, salt: str) -> str | None:
    """First 12 hex digits of sha256(salt + ":" + chat id): stable per deployment, not reversible
    without the salt."""
    if chat_id is None:
        return None
    return hashlib.sha256(f"{salt}:{chat_id}".encode()).hexdigest()[:12]


def deployment_salt(token: str, log_salt: str | None = None) -> str:
    """LOG_SALT if set, else derived from the bot token (secret, and different per bot)."""
    return log_salt or hashlib.sha256(b"chat-hash-salt:" + token.encode()).hexdigest()


def handler_name(callback: Callable[..., Any]) -> str:
    """"calc.on_salary" for bot.handlers.calc.on_salary: the feature, then the function."""
    module = getattr(callback, "__module__", None) or "?"
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    return f"{module.rsplit('.', 1)[-1]}.{name}"


def _wrap_callback(callback: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    name = handler_name(callback)

    @functools.wraps(callback)
    async def named(update: object, context: ContextTypes.DEFAULT_TYPE) -> Any:
        handled = _handled_by.get()
        if handled is not None:
            handled.append(name)
        return await callback(update, context)

    named.__ops_named__ = True  # type: ignore[attr-defined]
    return named


def _name_handlers(handlers: list[BaseHandler]) -> None:
    for handler in handlers:
        # ConversationHandler: name the handlers inside it.
        for attr in ("entry_points", "fallbacks"):
            inner = getattr(handler, attr, None)
            if isinstance(inner, list):
                _name_handlers(inner)
        states = getattr(handler, "states", None)
        if isinstance(states, dict):
            for inner in states.values():
                _name_handlers(list(inner))
        callback = getattr(handler, "callback", None)
        if callback is None or getattr(callback, "__ops_named__", False):
            continue
        if getattr(callback, "__module__", "") == "bot.app":
            continue  # the pre-handler that records the user: not a feature
        if asyncio.iscoroutinefunction(callback):
            handler.callback = _wrap_callback(callback)


def install_update_logging(app: Application) -> None:
    """Log one line per update. Call after every handler is registered. Idempotent."""
    from telegram import Update

    from bot.metrics import metrics_for

    extras = app.bot_data["services"].extras
    if extras.get("update_logging_installed"):
        return
    extras["update_logging_installed"] = True
    for group in app.handlers.values():
        _name_handlers(group)
    salt = deployment_salt(app.bot.token, app.bot_data["services"].config.log_salt)
    metrics = metrics_for(app)
    processor = app.update_processor
    original = processor.process_update

    async def process_update(update: object, coroutine: Awaitable[Any]) -> None:
        metrics.inc("updates_in")
        started = time.perf_counter()
        handled: list[str] = []
        token = _handled_by.set(handled)
        try:
            await original(update, coroutine)
        finally:
            _handled_by.reset(token)
            latency = round((time.perf_counter() - started) * 1000, 1)
            update_id = getattr(update, "update_id", None)
            chat = update.effective_chat if isinstance(update, Update) else None
            hashed = chat_hash(chat.id if chat else None, salt)
            name = ",".join(dict.fromkeys(handled)) or "none"
            update_log.info(
                "update %s chat %s handled by %s in %.1f ms",
                update_id,
                hashed,
                name,
                latency,
                extra={
                    "event": "update",
                    "update_id": update_id,
                    "chat": hashed,
                    "handler": name,
                    "latency_ms": latency,
                },
            )

    try:
        processor.process_update = process_update  # type: ignore[method-assign]
    except AttributeError:
        update_log.warning("per-update logging unavailable: %s has __slots__", type(processor).__name__)
