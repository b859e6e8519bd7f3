"""``python -m bot``: run the bot (polling, webhook or local mode) and the operator subcommands.

Subcommands live in ``bot/commands/<module>.py``, each with ``register(subparsers)`` and
``run(args) -> int``. Only the module of the subcommand being run is imported, so that
``python -m bot calc 3500`` does not pay for Telegram, aiohttp and the guide matcher; the other
subcommands are listed in ``--help`` from the table below.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from typing import Any

from bot.config import ConfigError
from bot.logs import install_last_resort, log_line

# name on the command line -> (module under bot.commands, one-line help as the module gives it)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the bot (the default): polling, webhook, or local mode without a token"),
    "localapi": (
        "localapi",
        "serve the local Bot API server on 127.0.0.1 (point TELEGRAM_API_BASE_URL at it)",
    ),
    "calc": ("calc", "SOCSO, LINDUNG 24 JAM and EIS contribution for one or more monthly wages"),
    "ask": ("ask", "match a question to a guide"),
    "check-content": ("check_content", "check the guide files for problems"),
    "unanswered": (
        "unanswered",
        "list questions the bot could not answer and 👎 answers, most frequent first",
    ),
    "outbox": ("outbox", "outbox of unprompted messages: status, retry failed rows, drain"),
    "reminders": ("reminders", "monthly payment reminders: list what is due, or enqueue it"),
    "broadcast": (
        "broadcast",
        "send a text broadcast to an agency's followers or to every user (via the outbox)",
    ),
    "backup": (
        "backup",
        "copy the database (BOT_DB) to PATH while the bot runs, and check the copy",
    ),
    "stats": ("stats", "users by language, followers by agency, reminders, outbox backlog"),
}
DEFAULT_COMMAND = "run"


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser. ``load`` names the one subcommand whose module is imported (its full
    arguments registered); the others get a placeholder with their help line. ``None``
    imports every subcommand module."""
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=(
            "PERKESO/SOCSO and EIS Telegram bot. Without a subcommand: run the bot "
            "(long polling with TELEGRAM_BOT_TOKEN, a webhook server with WEBHOOK_URL too, "
            "or local mode with a terminal chat when no token is set)."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if load is None or name == load:
            importlib.import_module(f"bot.commands.{module_name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
            argv.insert(0, DEFAULT_COMMAND)  # no subcommand: run the bot
        parser = build_parser(load=argv[0] if argv[0] in COMMANDS else DEFAULT_COMMAND)
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except ConfigError as exc:  # before logging is set up: one line in LOG_FORMAT, redacted
        log_line(f"configuration error: {exc}", to_stderr=True)
        return 2
    except KeyboardInterrupt:
        log_line("interrupted (exit status 130)", level=logging.WARNING)
        return 130


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    install_last_resort()  # no raw traceback (which may carry the token) ever reaches stderr
    # SIGTERM before the bot's event loop handles it (imports, migrations, getMe) stops like
    # Ctrl-C, with its log line, instead of a silent kill.
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())


__all__ = ["COMMANDS", "build_parser", "main"]
