"""Reminders at scale while users chat: ``send_due`` for a busy slot, interactive latency meanwhile.

Run:  python bench/reminders_live.py [--subscribers 1000000] [--busy 0.7] [--mode async|thread]

Builds the database of ``bench/reminders.py`` (``--subscribers``, ``--busy`` of them at 09:00,
one in five with a saved worker), then in one fresh process runs the local Bot API server and
the real Application (``build_application``, polling it over HTTP; the outbox sender is off, so
this measures enqueueing), and a user asking "hello" every ``--probe-interval`` s, timed from
the update being queued to the reply arriving. After a quiet baseline it enqueues the 09:00 slot
of 2027-01-12 (the per-minute job's call: watermark 08:59) with

* ``--mode async`` (the job's way): ``send_due_async`` on the event loop, in steps of
  ``ASYNC_CHUNK`` subscribers;
* ``--mode thread`` (the old way, for comparison): ``send_due`` in a thread on its own
  connection.

Prints the slot's duration and count, reply latency (p50/p95/max) before and during, and peak
RSS. Server, bot and probes share one process and event loop: the latency includes the
server's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bot.domain.deadlines import KL  # noqa: E402

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=KL)
PROBE_USERS = range(9_000_001, 9_000_021)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


async def run(db: Path, mode: str, probe_interval: float) -> None:
    from bot.app import build_application, start_application, stop_application
    from bot.config import Config
    from bot.handlers.reminders import _send_due_threaded
    from bot.localapi.server import LocalBotAPI
    from bot.reminders import ReminderStore, send_due_async
    from bot.storage import Storage

    storage = Storage(db)
    ReminderStore(storage).set_watermark(datetime(2027, 1, 12, 8, 59, tzinfo=KL))
    async with LocalBotAPI(rate_limit=None) as server:
        config = dataclasses.replace(
            Config(), api_base_url=server.base_url, db_path=db, throttle_burst=100000,
            throttle_rate=100000.0,
        )  # fmt: skip
        app = build_application(config, storage, outbox_sender=False)
        await start_application(app)
        if app.job_queue is not None:  # the real per-minute job would scan "now" meanwhile
            for job in app.job_queue.jobs():
                job.schedule_removal()
        outbox = app.bot_data["services"].outbox
        latencies: dict[str, list[float]] = {"before": [], "during": []}
        phase = "before"
        stop = asyncio.Event()

        async def probes() -> None:
            users = list(PROBE_USERS)
            i = 0
            while not stop.is_set():
                user = users[i % len(users)]
                i += 1
                started = time.monotonic()
                await server.send_text(user, "hello", language_code="en")
                try:
                    await server.wait_for_bot_message(user, timeout=30)
                    latencies[phase].append((time.monotonic() - started) * 1000)
                except Exception:  # noqa: BLE001 - a lost reply counts as 30 s
                    latencies[phase].append(30_000.0)
                await asyncio.sleep(probe_interval)

        task = asyncio.create_task(probes())
        await asyncio.sleep(5.0)
        phase = "during"
        t0 = time.perf_counter()
        if mode == "async":
            count = await send_due_async(storage, outbox, NOW)
        else:
            count = await asyncio.to_thread(_send_due_threaded, db, NOW, outbox)
        duration = time.perf_counter() - t0
        stop.set()
        await task
        await stop_application(app)
    storage.close()
    before, during = latencies["before"], latencies["during"]
    print(f"send_due ({mode}): {count:,} reminders enqueued in {duration:.1f} s "
          f"= {count / duration:,.0f}/s")  # fmt: skip
    print(f"replies before: {len(before)} probes, p50 {statistics.median(before):.1f} ms, "
          f"p95 {pct(before, 95):.1f} ms")  # fmt: skip
    print(f"replies during: {len(during)} probes, p50 {statistics.median(during):.1f} ms, "
          f"p95 {pct(during, 95):.1f} ms, max {max(during):.0f} ms")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (server + bot + probes): {rss:.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--busy", type=float, default=0.7)
    parser.add_argument("--mode", choices=("async", "thread"), default="async")
    parser.add_argument("--probe-interval", type=float, default=0.05)
    parser.add_argument("--db", type=Path, help="reuse (a copy of) this built database")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        asyncio.run(run(args.run, args.mode, args.probe_interval))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "live.sqlite3"
        t0 = time.perf_counter()
        if args.db:
            subprocess.run(["sqlite3", str(args.db), f".backup {db}"], check=True)
        else:
            subprocess.run(
                [sys.executable, str(PROJECT / "bench" / "reminders.py"), "--build", str(db),
                 "--subscribers", str(args.subscribers), "--busy", str(args.busy)],
                check=True,
            )  # fmt: skip
        print(f"database: {args.subscribers:,} subscribers ({args.busy:.0%} at 09:00), "
              f"ready in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        subprocess.run(
            [sys.executable, __file__, "--run", str(db), "--mode", args.mode,
             "--probe-interval", str(args.probe_interval)],
            check=True,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
