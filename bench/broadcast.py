"""Broadcast benchmark: one agency with 50,000 followers, sent through the real outbox sender.

Run:  python bench/broadcast.py [--followers 50000] [--cap 20000] [--server-rate 300]
                                [--bot-rate 290] [--blocked 0.0]

Telegram allows a bot ~30 messages/s; this benchmark scales that by 10, as bench/outbox.py
does: the local Bot API server (in a child process, so its CPU and memory do not count) answers
429 above ``--server-rate`` requests/s (a sliding one-second window), and the bot's OUTBOX_RATE is
``--bot-rate`` (a little under it, so the limiter's burst never trips the server's window).
Steps, in the bot's process:

1. the database (built in another child process) holds ``--followers`` users in three
   languages following one agency; the staff member's two messages (en, ms) are on the server;
2. ``AgencyService.create_broadcast`` (broadcasts row + one outbox row per follower in one
   transaction) is timed;
3. the app's outbox sender copies the messages until ``--cap`` rows are done (sent, unreachable
   or failed), then the rest is cancelled with ``cancel_group`` and the time until nothing is
   in flight any more is measured.

Targets: creation < 3 s, achieved rate >= 0.95 of the allowed rate, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.storage import Storage  # noqa: E402

STAFF = 7
SINCE = "2026-12-01T00:00:00+00:00"
TOKEN = "123456:bench-broadcast-token"


def build(path: Path, followers: int) -> str:
    """Users 1000..: a third each in en/ms/zh, all following one agency; return its code."""
    from bot.agencies import AgencyService

    rng = random.Random(7)
    storage = Storage(path)
    agency, token = AgencyService(storage).create_agency("Bench Agency", 1)
    AgencyService(storage).redeem_invite(token, STAFF)
    users = [(1000 + i, rng.choice(("en", "ms", "zh")), SINCE, SINCE) for i in range(followers)]
    with storage.transaction():
        storage.db.conn.executemany(
            "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, ?, ?, ?)", users
        )
        storage.db.conn.executemany(
            "INSERT INTO follows (agency, chat_id, created_at) VALUES (?, ?, ?)",
            [(agency.code, u[0], SINCE) for u in users],
        )
    storage.db.execute("ANALYZE")
    storage.close()
    return agency.code


async def serve(followers: int, rate: float, blocked: float) -> None:
    """The local Bot API server with every follower registered; prints its port and source ids."""
    from bot.localapi.server import LocalBotAPI

    rng = random.Random(11)
    server = LocalBotAPI(rate_limit=rate, token=TOKEN)
    await server.start()
    for i in range(followers):
        server.add_user(1000 + i)
        if rng.random() < blocked:
            server.block(1000 + i)
    en = await server.send_text(STAFF, "Contribution rates change on 1 December.")
    ms = await server.send_media(STAFF, photo=True, caption="Kadar caruman berubah pada 1 Disember.")
    print(json.dumps({"port": server.port, "en": en["message_id"], "ms": ms["message_id"]}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        print(json.dumps({"rate_limited": server.stats.rate_limited, "sent": len(server.sent)}), flush=True)


async def measure(db: Path, code: str, server: dict, rate: float, cap: int, workers: int) -> dict:
    from bot.agencies import AgencyService, group_ref
    from bot.app import build_application, start_application, stop_application
    from bot.config import Config

    config = dataclasses.replace(
        Config(), api_base_url=f"http://127.0.0.1:{server['port']}/bot", db_path=db, outbox_rate=rate
    )
    storage = Storage(db)
    app = build_application(config, storage, token=TOKEN)
    if workers:
        app.bot_data["services"].sender.workers = workers
    await start_application(app, poll=False)
    outbox = app.bot_data["services"].outbox
    service = AgencyService(storage)
    results: dict = {}
    t0 = time.perf_counter()
    broadcast_id, count = service.create_broadcast(
        outbox,
        agency=code,
        created_by=STAFF,
        versions={"en": [STAFF, server["en"]], "ms": [STAFF, server["ms"]]},
    )
    results["create_s"] = round(time.perf_counter() - t0, 3)
    results["recipients"] = count
    ref = group_ref(broadcast_id)
    start = time.perf_counter()
    target = min(cap, count)
    done = 0
    progress: dict = {}
    while done < target:
        await asyncio.sleep(0.5)
        progress = outbox.group_progress(ref)
        done = progress["sent"] + progress["unreachable"] + progress["failed"]
    elapsed = time.perf_counter() - start
    results["done"] = done
    results["elapsed_s"] = round(elapsed, 2)
    results["progress_at_cap"] = progress
    t1 = time.perf_counter()
    results["cancelled_rows"] = service.cancel(outbox, broadcast_id)
    while outbox.group_progress(ref)["sending"]:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    results["cancel_settled_s"] = round(time.perf_counter() - t1, 3)
    results["final"] = outbox.group_progress(ref)
    limiter = app.bot.rate_limiter
    results["retry_after"] = limiter.stats.retry_after
    await stop_application(app)
    storage.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=50_000)
    parser.add_argument("--cap", type=int, default=20_000, help="stop after this many sends")
    parser.add_argument("--server-rate", type=float, default=300.0, help="server's 429 limit")
    parser.add_argument("--bot-rate", type=float, default=290.0, help="the bot's OUTBOX_RATE")
    parser.add_argument("--workers", type=int, default=0,
                        help="outbox sender workers (default: the app's own, 8)")
    parser.add_argument("--blocked", type=float, default=0.0, help="share of followers who blocked the bot")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(build(args.build, args.followers))
        return 0
    if args.serve:
        try:
            asyncio.run(serve(args.followers, args.server_rate, args.blocked))
        except KeyboardInterrupt:
            pass
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        t0 = time.perf_counter()
        code = subprocess.run(
            [sys.executable, __file__, "--build", str(db), "--followers", str(args.followers)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        build_s = time.perf_counter() - t0
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--followers", str(args.followers),
             "--server-rate", str(args.server_rate), "--blocked", str(args.blocked)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            server = json.loads(proc.stdout.readline())
            results = asyncio.run(measure(db, code, server, args.bot_rate, args.cap, args.workers))
        finally:
            proc.send_signal(signal.SIGINT)
            tail = proc.communicate(timeout=10)[0].strip().splitlines()
        server_stats = json.loads(tail[-1]) if tail else {}
    achieved = results["done"] / results["elapsed_s"]
    ratio = achieved / args.bot_rate
    print(f"followers: {args.followers:,} (database built in {build_s:.1f} s)")
    print(f"create broadcast (1 transaction, {results['recipients']:,} outbox rows): {results['create_s']} s")
    print(f"sent until the cap: {results['done']:,} in {results['elapsed_s']} s = {achieved:.1f}/s; "
          f"bot's allowed rate {args.bot_rate:.0f}/s (server {args.server_rate:.0f}/s); "
          f"ratio {ratio:.3f} ({achieved / args.server_rate:.3f} of the server's)")
    print(f"state at the cap: {results['progress_at_cap']}")
    print(f"cancel: {results['cancelled_rows']:,} rows cancelled; nothing in flight after "
          f"{results['cancel_settled_s']} s; final {results['final']}")
    print(f"server: {server_stats.get('sent', '?')} messages stored, 429 answers: "
          f"{server_stats.get('rate_limited', '?')}; bot RetryAfter seen: {results['retry_after']}")
    print(f"peak RSS (bot process): {results['peak_rss_mb']} MB; bot CPU {results['cpu_s']} s")
    ok = results["create_s"] < 3 and ratio >= 0.95 and results["peak_rss_mb"] < 200
    print("targets (create < 3 s, >= 0.95 of the rate, RSS < 200 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
