"""``python -m bot unanswered [--limit N] [--json]``: the questions the bot could not answer.

Rows come from ``Storage.unanswered_summary()`` (questions with no matching guide and 👎
answers, grouped by text), most frequent first. No user ids are stored or shown. The database
is the one named by ``BOT_DB``.
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.config import Config
from bot.storage import Storage

EMPTY = "No unanswered questions."


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``unanswered`` subcommand."""
    parser = subparsers.add_parser(
        "unanswered",
        help="list questions the bot could not answer and 👎 answers, most frequent first",
        description="List the questions the bot could not answer and the guides users marked "
        "👎 (database named by BOT_DB), most frequent first.",
    )
    parser.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.set_defaults(func=run)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def format_rows(rows: list[dict]) -> str:
    """The rows as an aligned text table: count, lang, reason, text."""
    if not rows:
        return EMPTY
    reasons = [
        f"{row['reason']} ({row['guide_id']})" if row.get("guide_id") else str(row["reason"])
        for row in rows
    ]
    width_count = max(len("COUNT"), *(len(str(row["count"])) for row in rows))
    width_reason = max(len("REASON"), *(len(r) for r in reasons))
    lines = [f"{'COUNT':>{width_count}}  LANG  {'REASON':<{width_reason}}  TEXT"]
    for row, reason in zip(rows, reasons, strict=True):
        lines.append(
            f"{row['count']:>{width_count}}  {row['lang']:<4}  {reason:<{width_reason}}  "
            f"{_one_line(row['text'])}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the summary; exit 0 (2 on a bad --limit)."""
    if args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return 2
    config = Config.from_env()
    if str(config.db_path) != ":memory:" and not config.db_path.exists():
        print(f"note: no database at {config.db_path}", file=sys.stderr)
        rows: list[dict] = []
    else:
        storage = Storage(config.db_path)
        try:
            rows = storage.unanswered_summary(limit=args.limit)
        finally:
            storage.close()
    if args.json:
        for row in rows:
            print(
                json.dumps(
                    {
                        "count": row["count"],
                        "lang": row["lang"],
                        "reason": row["reason"],
                        "guide_id": row["guide_id"],
                        "text": row["text"],
                        "last_asked": row["last_asked"],
                    },
                    ensure_ascii=False,
                )
            )
        return 0
    print(format_rows(rows))
    return 0
