"""``python -m bot [run]``: long polling, webhook server, or local mode with a terminal chat.

Every way the run ends is one log line (redacted, JSON with LOG_FORMAT=json) and an exit status:

====  ==========================================================================================
0     stopped by SIGTERM or SIGINT (the updates in hand finished, the outbox requeued the rest)
1     an unexpected error (the line carries its redacted traceback), or Telegram refused a
      start-up request other than getMe (e.g. setWebhook answered 400)
2     a bad setting (bot/__main__.py: ``configuration error: ...``)
3     Telegram rejected the token: getMe answered 401 (revoked or mistyped TELEGRAM_BOT_TOKEN)
      or 404 (TELEGRAM_API_BASE_URL without its ``/bot`` path)
4     the Bot API could not be reached at start (network down, DNS, timeout, 5xx)
130   Ctrl-C or SIGTERM while still starting (bot/__main__.py)
====  ==========================================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

from bot.app import build_application, start_application, stop_application
from bot.config import Config
from bot.handlers.common import services_of
from bot.logs import loop_exception_handler, setup_logging

if TYPE_CHECKING:
    from telegram.ext import Application

log = logging.getLogger("bot")
LOCAL_USER_ID = 1000001  # the simulated Telegram user of local mode
LOCAL_FIRST_NAME = "You"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2  # returned by bot/__main__.py
EXIT_TOKEN_REJECTED = 3
EXIT_UNREACHABLE = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the bot (the default): polling, webhook, or local mode without a token",
        description="Run the bot. With TELEGRAM_BOT_TOKEN: long polling; with WEBHOOK_URL too: "
        "a webhook server on PORT; with no token: local mode (a local Bot API server and a "
        "terminal chat in which you are a Telegram user).",
    )
    parser.add_argument(
        "--lang",
        choices=["en", "ms", "zh"],
        help="local mode: the Telegram language of your simulated user (default from $LANG)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = Config.from_env()
    if config.local_mode:
        setup_logging(config.log_format, logging.WARNING)
        lang = args.lang or _lang_from_env()
        return _guarded(lambda: _run_async(run_local(config, lang=lang)))
    setup_logging(config.log_format, logging.INFO, config.token, config.webhook_secret)
    return _guarded(lambda: _serve(config))


def _serve(config: Config) -> int:
    app = build_application(config)
    if config.webhook_mode:
        log.info("starting webhook server on port %d", config.port)
        return _run_async(serve_webhook(app, config))
    log.info("starting long polling")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # run_polling uses (and closes) the current loop
    loop.set_exception_handler(loop_exception_handler)
    try:
        # getMe first, by hand: a rejected token or an unreachable API surfaces here as one
        # exception, before PTB's own start-up retry loop would log it with a traceback.
        loop.run_until_complete(app.initialize())
    except BaseException:
        with contextlib.suppress(Exception):
            loop.run_until_complete(app.shutdown())
        loop.close()
        raise
    app.run_polling(allowed_updates=Update.ALL_TYPES)  # initialize() again is a no-op
    return EXIT_OK


async def serve_webhook(app: Application, config: Config) -> int:
    """Run ``app`` behind the webhook server on 0.0.0.0:PORT until SIGTERM or SIGINT."""
    from bot.web import WebhookServer

    assert config.webhook_url is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = WebhookServer(app, config.webhook_url, config.webhook_secret, port=config.port)
    await start_application(app, poll=False)
    try:
        await server.start()
        await stop.wait()
        log.info("stop signal received: finishing the updates in hand")
    finally:
        await server.stop()
        await stop_application(app)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def _run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run`` with :func:`loop_exception_handler` on the loop."""
    with asyncio.Runner() as runner:
        runner.get_loop().set_exception_handler(loop_exception_handler)
        return runner.run(coroutine)


def _not_found(exc: BaseException) -> bool:
    """Whether Telegram's answer behind ``exc`` (PTB re-raises it with the token) was a 404."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "not found" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _guarded(body: Callable[[], int]) -> int:
    """Run ``body``; whatever ends it, log one line (the filter redacts) and return the status."""
    try:
        status = body()
    except InvalidToken as exc:  # its message has the token in clear: never log or chain it
        if _not_found(exc):
            log.critical(
                "Telegram answered 404 Not Found to getMe: check TELEGRAM_API_BASE_URL ends with "
                "/bot (e.g. https://api.telegram.org/bot), then TELEGRAM_BOT_TOKEN"
            )
        else:
            log.critical(
                "Telegram rejected the token (401 Unauthorized): check TELEGRAM_BOT_TOKEN "
                "(revoked or mistyped? @BotFather shows the current token)"
            )
        return EXIT_TOKEN_REJECTED
    except NetworkError as exc:
        if isinstance(exc, BadRequest):
            log.critical("Telegram refused a start-up request: %s", _describe(exc))
            return EXIT_ERROR
        log.critical(
            "cannot reach the Bot API at start (%s): check the network and TELEGRAM_API_BASE_URL",
            _describe(exc),
        )
        return EXIT_UNREACHABLE
    except TelegramError as exc:
        log.critical("Telegram refused a start-up request: %s", _describe(exc))
        return EXIT_ERROR
    except Exception as exc:
        log.critical("stopped by an unexpected error: %s", _describe(exc), exc_info=True)
        return EXIT_ERROR
    log.info("stopped (exit status %d)", status)
    return status


def _lang_from_env() -> str:
    code = (os.environ.get("LANG") or "").lower()
    return "ms" if code.startswith("ms") else "zh" if code.startswith("zh") else "en"


def adopt_language(storage: Any, chat_id: int, lang: str) -> None:
    """``--lang`` (or $LANG) is the simulated user's Telegram language: a returning local user
    who never chose a language in the chat gets it, as a new one would; a choice made with
    /language is kept."""
    storage.adopt_language(chat_id, lang)


async def run_local(config: Config, lang: str = "en") -> int:
    """Start the local Bot API server, the real bot against it, and the terminal chat."""
    from bot.localapi.server import LocalBotAPI
    from bot.localapi.terminal import run_terminal_chat

    async with LocalBotAPI() as server:
        # The local user has "started" the bot before (a returning user): a reminder or a
        # broadcast that falls due before they type anything is delivered, not refused.
        server.add_user(LOCAL_USER_ID, language_code=lang, first_name=LOCAL_FIRST_NAME)
        app = build_application(dataclasses.replace(config, api_base_url=server.base_url))
        adopt_language(services_of(app).storage, LOCAL_USER_ID, lang)
        await start_application(app)
        try:
            print(
                "Local mode: no TELEGRAM_BOT_TOKEN is set, so the bot runs against a local Bot API "
                f"server at {server.base_url.rsplit('/', 1)[0]} and you chat with it here. Type a "
                "message, a number to press a button, /quit to leave. For real Telegram: "
                "export TELEGRAM_BOT_TOKEN=<token from @BotFather> and run again.",
                file=sys.stderr,
                flush=True,
            )
            await run_terminal_chat(
                server, user_id=LOCAL_USER_ID, language_code=lang, first_name=LOCAL_FIRST_NAME
            )
        finally:
            await stop_application(app)
    return 0
