"""``python -m bot outbox``: the operator's view of the outbox (status, retry) and a drainer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from bot.config import Config
from bot.handlers.common import services_of
from bot.outbox import STATES, Outbox
from bot.storage import Storage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="outbox of unprompted messages: status, retry failed rows, drain",
        description="Inspect and manage the outbox of unprompted messages (reminders, "
        "broadcasts) in the database named by BOT_DB.",
    )
    actions = parser.add_subparsers(dest="outbox_action", metavar="ACTION", required=True)
    actions.add_parser("status", help="counts by kind and state, and the backlog")
    retry = actions.add_parser("retry", help="requeue failed rows")
    retry.add_argument("--kind", help="only rows of this kind (e.g. reminder, broadcast)")
    drain = actions.add_parser(
        "drain",
        help="send queued rows from this process (needs TELEGRAM_BOT_TOKEN; do not run it "
        "while the bot runs on the same database)",
    )
    drain.add_argument(
        "--until-empty",
        action="store_true",
        help="exit once nothing is due within --horizon seconds (default: run until Ctrl-C)",
    )
    drain.add_argument("--workers", type=int, default=8, help="concurrent sends (default 8)")
    drain.add_argument(
        "--horizon",
        type=float,
        default=60.0,
        help="--until-empty also waits for rows due within this many seconds (default 60)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = Config.from_env()
    if args.outbox_action == "drain":
        if config.token is None:
            print("outbox drain needs TELEGRAM_BOT_TOKEN", file=sys.stderr)
            return 2
        if args.workers < 1:
            print("--workers must be at least 1", file=sys.stderr)
            return 2
        return asyncio.run(drain(config, args.workers, args.until_empty, args.horizon))
    storage = Storage(config.db_path)
    try:
        outbox = Outbox(storage)
        if args.outbox_action == "retry":
            count = outbox.retry_failed(args.kind)
            from bot.i18n import n

            if args.kind:
                print(n("cli.requeued_kind", count, "en", kind=args.kind))
            else:
                print(n("cli.requeued", count, "en"))
            return 0
        print(format_status(outbox))
        return 0
    finally:
        storage.close()


def format_status(outbox: Outbox) -> str:
    """The status table: one line per kind, a total line, then the backlog."""
    status = outbox.status()
    header = ["kind", *STATES]
    rows = [[kind, *(str(counts[s]) for s in STATES)] for kind, counts in sorted(status.items())]
    rows.append(["total", *(str(sum(c[s] for c in status.values())) for s in STATES)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    count, age = outbox.backlog()
    lines.append(f"backlog: {count} due now, oldest waiting {age:.0f} s")
    return "\n".join(lines)


async def drain(config: Config, workers: int, until_empty: bool, horizon: float) -> int:
    """Send from the outbox with the bot's own Application until empty (or a signal)."""
    from bot.app import build_application

    app = build_application(config, outbox_sender=False)
    sender = services_of(app).sender
    sender.workers = workers
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with app:
        await sender.start()
        try:
            if until_empty:
                idle = asyncio.create_task(sender.wait_idle(horizon=horizon))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({idle, stopped}, return_when=asyncio.FIRST_COMPLETED)
                idle.cancel()
                stopped.cancel()
            else:
                await stop.wait()
        finally:
            await sender.stop()
    stats = sender.stats
    print(
        f"sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, "
        f"unreachable {stats.unreachable}"
    )
    return 0
