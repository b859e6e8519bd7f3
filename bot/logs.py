"""Logging set-up: text or one JSON object per line, with every secret redacted.

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
import sys
import time
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
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(*secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, which contains the token: keep it quiet.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
