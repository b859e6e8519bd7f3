"""``python -m bot``: run the bot (polling, webhook or local mode) and the operator subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from typing import Any

from bot.config import Config, ConfigError
from bot.logs import install_last_resort, log_line

# Subcommand modules under bot/commands/, each with register(subparsers) and run(args) -> int.
SUBCOMMANDS = ["run", "localapi"]
OPTIONAL_SUBCOMMANDS = [
    "calc",
    "ask",
    "check_content",
    "unanswered",
    "outbox",
    "reminders",
    "broadcast",
    "backup",
    "stats",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=(
            "PERKESO/SOCSO and EIS Telegram bot. Without a subcommand: run the bot "
            "(long polling with TELEGRAM_BOT_TOKEN, a webhook server with WEBHOOK_URL too, "
            "or local mode with a terminal chat when no token is set)."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS + OPTIONAL_SUBCOMMANDS:
        try:
            module = importlib.import_module(f"bot.commands.{name}")
        except ModuleNotFoundError as exc:
            if name in SUBCOMMANDS or exc.name != f"bot.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
            argv.insert(0, "run")  # no subcommand: run the bot
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


__all__ = ["main", "build_parser", "Config"]
