"""``python -m bot [run]``: long polling, webhook server, or local mode with a terminal chat."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from typing import Any

from telegram import Update

from bot.app import build_application, start_application, stop_application
from bot.config import Config
from bot.logs import setup_logging

log = logging.getLogger("bot")
LOCAL_USER_ID = 1000001  # the simulated Telegram user of local mode
LOCAL_FIRST_NAME = "You"


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
        return asyncio.run(run_local(config, lang=args.lang or _lang_from_env()))
    setup_logging(config.log_format, logging.INFO, config.token, config.webhook_secret)
    app = build_application(config)
    if config.webhook_mode:
        from bot.web import serve_webhook

        log.info("starting webhook server on port %d", config.port)
        return asyncio.run(serve_webhook(app, config))
    else:
        log.info("starting long polling")
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


def _lang_from_env() -> str:
    code = (os.environ.get("LANG") or "").lower()
    return "ms" if code.startswith("ms") else "zh" if code.startswith("zh") else "en"


def adopt_language(storage: Any, chat_id: int, lang: str) -> None:
    """``--lang`` (or $LANG) is the simulated user's Telegram language: a returning local user
    who never chose a language in the chat gets it, as a new one would; a choice made with
    /language is kept."""
    with storage.transaction():
        storage.db.execute(
            "UPDATE users SET lang = ? WHERE chat_id = ? AND lang_chosen = 0", [lang, chat_id]
        )


async def run_local(config: Config, lang: str = "en") -> int:
    """Start the local Bot API server, the real bot against it, and the terminal chat."""
    from bot.localapi.server import LocalBotAPI
    from bot.localapi.terminal import run_terminal_chat

    async with LocalBotAPI() as server:
        # The local user has "started" the bot before (a returning user): a reminder or a
        # broadcast that falls due before they type anything is delivered, not refused.
        server.add_user(LOCAL_USER_ID, language_code=lang, first_name=LOCAL_FIRST_NAME)
        app = build_application(dataclasses.replace(config, api_base_url=server.base_url))
        adopt_language(app.bot_data["services"].storage, LOCAL_USER_ID, lang)
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
