"""``python -m bot stats [--json]``: users, followers, reminders and the outbox, at a glance.

Sections whose tables do not exist in the database (an older schema) are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.domain.clock import utc_now
from bot.domain.deadlines import add_months, month_key
from bot.storage import LANGS, Storage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="users by language, followers by agency, reminders, outbox backlog",
        description="Counts from the database named by BOT_DB: users by language, followers "
        "by agency, reminder subscriptions for this month's deadline, and the outbox.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def collect(storage: Storage, now: datetime) -> dict[str, Any]:
    """Every count, as a dict (the --json output). ``now`` is aware, in the bot's time zone."""
    tables = storage.table_names()
    by_lang = storage.users_by_language()
    users: dict[str, Any] = {"by_language": {lang: by_lang.get(lang, 0) for lang in LANGS}}
    users["total"] = sum(by_lang.values())
    users["blocked"] = storage.blocked_users()
    stats: dict[str, Any] = {"users": users}

    if {"agencies", "follows"} <= tables:
        from bot.agencies import AgencyService

        stats["followers_by_agency"] = AgencyService(storage).followers_by_agency()

    if "reminder_subs" in tables:
        # This month's deadline (the 15th) is for the previous month's contributions.
        year, month = add_months(now.year, now.month, -1)
        ym = month_key(year, month)
        from bot.reminder_store import ReminderStore

        reminders = ReminderStore(storage)
        active = reminders.active_subscriptions()
        paid = reminders.paid_count(ym) if "reminder_months" in tables else 0
        stats["reminders"] = {
            "contribution_month": ym,
            "active_subscriptions": active,
            "marked_paid": paid,
            "still_to_remind": active - paid,
        }

    if "outbox" in tables:
        from bot.outbox import STATES, Outbox

        outbox = Outbox(storage)
        counts = dict.fromkeys(STATES, 0)
        for by_state in outbox.status().values():  # per kind, then per state
            for state, n in by_state.items():
                counts[state] += n
        backlog, age = outbox.backlog()
        stats["outbox"] = {
            "by_state": counts,
            "backlog": backlog,
            "oldest_queued_age_s": round(age, 1),
        }
    return stats


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
        ).rstrip()
        for row in [header, *rows]
    ]


def format_stats(stats: dict[str, Any]) -> str:
    """The readable tables."""
    users = stats["users"]
    lines = ["Users by language"]
    rows = [[lang, str(n)] for lang, n in users["by_language"].items()]
    rows += [["total", str(users["total"])], ["blocked the bot", str(users["blocked"])]]
    lines += _table(["language", "users"], rows)
    if "followers_by_agency" in stats:
        lines += ["", "Followers by agency"]
        agencies = stats["followers_by_agency"]
        if agencies:
            lines += _table(
                ["agency", "name", "followers"],
                [
                    [
                        a["code"],
                        a["name"] + (" (revoked)" if a["revoked"] else ""),
                        str(a["followers"]),
                    ]
                    for a in agencies
                ],
            )
        else:
            lines.append("(no agencies)")
    if "reminders" in stats:
        rem = stats["reminders"]
        lines += [
            "",
            f"Reminders for this month's deadline (contributions of {rem['contribution_month']})",
        ]
        lines += _table(
            ["", "count"],
            [
                ["active subscriptions", str(rem["active_subscriptions"])],
                ["marked paid", str(rem["marked_paid"])],
                ["still to remind", str(rem["still_to_remind"])],
            ],
        )
    if "outbox" in stats:
        out = stats["outbox"]
        lines += ["", "Outbox"]
        lines += _table(["state", "rows"], [[s, str(n)] for s, n in out["by_state"].items()])
        lines.append(
            f"backlog: {out['backlog']} due now, oldest waiting {out['oldest_queued_age_s']:.0f} s"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = Config.from_env(create_dirs=False)
    if not config.db_path.is_file():
        print(f"no database at {config.db_path} (set BOT_DB)", file=sys.stderr)
        return 2
    storage = Storage(config.db_path)
    try:
        stats = collect(storage, utc_now().astimezone(config.tz))
    finally:
        storage.close()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
    else:
        print(format_stats(stats))
    return 0
