"""``python -m bot reminders``: what monthly payment reminders are due, and enqueue them.

    python -m bot reminders due --now 2026-12-14T09:00+08:00 [--json]
    python -m bot reminders send-due --now 2026-12-14T09:00+08:00

``due`` lists the reminders due at that moment without sending anything; ``send-due`` enqueues
them in the outbox (idempotent: running it twice enqueues nothing new) for the running bot's
sender to deliver. ``--now`` defaults to the current time; a time without a UTC offset is read as
Malaysia time. A bad ``--now`` prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from bot.config import Config
from bot.domain.clock import local_minutes, utc_now
from bot.domain.deadlines import KL


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``reminders`` subcommand with ``due`` and ``send-due``."""
    parser = subparsers.add_parser(
        "reminders",
        help="monthly payment reminders: list what is due, or enqueue it",
        description="Monthly payment reminders (state in the bot's SQLite database, BOT_DB).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    due = actions.add_parser("due", help="list the reminders due at --now, without sending")
    send = actions.add_parser("send-due", help="enqueue the reminders due at --now in the outbox")
    for sub in (due, send):
        sub.add_argument(
            "--now",
            help="ISO time, e.g. 2026-12-14T09:00+08:00 (default: now; no offset = Malaysia time)",
        )
        sub.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=run)


def parse_now(text: str | None) -> datetime:
    """``--now`` as an aware datetime; ValueError with a readable message if malformed."""
    if text is None:
        return utc_now()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--now: not an ISO date-time: {text!r} (e.g. 2026-12-14T09:00+08:00)") from None
    return moment.replace(tzinfo=KL) if moment.tzinfo is None else moment


def run(args: argparse.Namespace) -> int:
    try:
        now = parse_now(args.now)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    from bot.reminders import due_reminders, send_due
    from bot.storage import Storage

    config = Config.from_env()
    storage = Storage(config.db_path)
    try:
        if args.action == "due":
            rows = due_reminders(storage, now)
            for row in rows:
                data = row.to_json()
                if args.json:
                    print(json.dumps(data, ensure_ascii=False))
                else:
                    n = data["days"]
                    days = "" if n is None else " (on the day)" if n == 0 else f" ({n} day{'s' * (n != 1)} before)"
                    print(f"{data['chat_id']}\t{data['month']}\t{data['kind']}{days}\t"
                          f"days_left={data['days_left']}\t{data['lang']}")
            if not args.json:
                print(f"{len(rows)} due at {local_minutes(now, KL)}",
                      file=sys.stderr)
            return 0
        from bot.outbox import Outbox

        count = send_due(storage, Outbox(storage), now)
        if args.json:
            print(json.dumps({"enqueued": count, "now": now.isoformat()}))
        else:
            from bot.i18n import n

            print(n("cli.enqueued_reminders", count, "en"))
        return 0
    finally:
        storage.close()
