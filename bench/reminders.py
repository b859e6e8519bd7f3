"""Reminders benchmark: ``due_reminders`` with 100,000 subscribers at a busy slot.

Run:  python bench/reminders.py [--subscribers 100000] [--busy 0.7] [--db PATH]

Builds a database (in a child process, so its memory does not count) with ``--subscribers``
users in three languages; ``--busy`` of them receive reminders at 09:00 (the default hour), the
rest at 08:00/12:00/18:00/21:00; one in five has a saved worker. Then, in a fresh process, it
times at 2027-01-12 09:00 Malaysia time (the "3 days left" reminder of the December month):

* the per-minute job's call: the watermark (previous run) is 08:59, so only the 09:00
  subscribers are read (index on hour);
* a full scan (no watermark: first start, or after a long downtime);
* ``send_due`` for the whole slot (rendering + enqueueing in the outbox), for information.

Targets: ``due_reminders`` < 2 s, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.deadlines import KL, mask_from_days  # noqa: E402
from bot.storage import Storage  # noqa: E402

NOW = datetime(2027, 1, 12, 9, 0, tzinfo=KL)
SINCE = "2026-12-01T00:00:00+00:00"


def build(path: Path, subscribers: int, busy: float) -> None:
    rng = random.Random(42)
    storage = Storage(path)
    users, subs, workers = [], [], []
    mask = mask_from_days({7, 3, 1})
    for chat_id in range(1, subscribers + 1):
        lang = rng.choice(("en", "ms", "zh"))
        users.append((chat_id, lang, 1, SINCE, SINCE))
        hour = 9 if rng.random() < busy else rng.choice((8, 12, 18, 21))
        subs.append((chat_id, hour, mask, rng.choice(("household", "employer")), SINCE, SINCE, SINCE))
        if chat_id % 5 == 0:
            workers.append((chat_id, "Siti", "domestic-foreign", "1700", SINCE))
    with storage.transaction():
        storage.db.conn.executemany(
            "INSERT INTO users (chat_id, lang, lang_chosen, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
            users,
        )
        storage.db.conn.executemany(
            "INSERT INTO reminder_subs (chat_id, enabled, hour, days_mask, audience, since, created_at, "
            "updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
            subs,
        )
        storage.db.conn.executemany(
            "INSERT INTO reminder_workers (chat_id, name, worker_type, salary, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            workers,
        )
    storage.db.execute("ANALYZE")
    storage.close()


def measure(path: Path) -> dict:
    from bot.outbox import Outbox
    from bot.reminders import ReminderStore, due_reminders, send_due

    storage = Storage(path)
    store = ReminderStore(storage)
    results: dict = {}
    store.set_watermark(datetime(2027, 1, 12, 8, 59, tzinfo=KL))
    t0 = time.perf_counter()
    due = due_reminders(storage, NOW)
    results["due_incremental_s"] = round(time.perf_counter() - t0, 3)
    results["due_count"] = len(due)
    storage.db.execute("DELETE FROM reminder_meta")
    t0 = time.perf_counter()
    full = due_reminders(storage, NOW)
    results["due_full_scan_s"] = round(time.perf_counter() - t0, 3)
    results["full_scan_count"] = len(full)
    del due, full
    results["rss_after_due_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    store.set_watermark(datetime(2027, 1, 12, 8, 59, tzinfo=KL))
    t0 = time.perf_counter()
    sent = send_due(storage, Outbox(storage), NOW)
    results["send_due_s"] = round(time.perf_counter() - t0, 2)
    results["send_due_enqueued"] = sent
    t0 = time.perf_counter()
    again = due_reminders(storage, datetime(2027, 1, 12, 9, 1, tzinfo=KL))
    results["next_minute_due_s"] = round(time.perf_counter() - t0, 4)
    results["next_minute_count"] = len(again)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    storage.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--busy", type=float, default=0.7, help="share of subscribers at 09:00")
    parser.add_argument("--db", type=Path)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.build, args.subscribers, args.busy)
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.sqlite3"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--build", str(db), "--subscribers", str(args.subscribers),
             "--busy", str(args.busy)],
            check=True,
        )
        build_s = time.perf_counter() - t0
        out = subprocess.run([sys.executable, __file__, "--measure", str(db)], check=True,
                             capture_output=True, text=True).stdout
        results = json.loads(out)
    print(f"subscribers: {args.subscribers:,} ({args.busy:.0%} at 09:00), database built in {build_s:.1f} s")
    print(f"due_reminders, per-minute job at the busy slot: {results['due_incremental_s']} s "
          f"({results['due_count']:,} due)")
    print(f"due_reminders, full scan (no watermark):        {results['due_full_scan_s']} s "
          f"({results['full_scan_count']:,} due)")
    print(f"peak RSS after due_reminders: {results['rss_after_due_mb']} MB")
    print(f"send_due for the slot (render + enqueue): {results['send_due_s']} s "
          f"({results['send_due_enqueued']:,} enqueued)")
    print(f"the next minute: {results['next_minute_due_s']} s ({results['next_minute_count']} due)")
    print(f"peak RSS overall: {results['peak_rss_mb']} MB")
    ok = results["due_incremental_s"] < 2 and results["due_full_scan_s"] < 2 and results["rss_after_due_mb"] < 300
    print("targets (< 2 s, < 300 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
