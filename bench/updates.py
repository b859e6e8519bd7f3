"""Updates benchmark: text updates through the local Bot API server into the running bot.

Run:  python bench/updates.py [--updates 5000] [--users 250] [--rate 300]

The bot's own rate limiter normally paces every send at Telegram's ~30 messages/s; the local
server here has no limit, so the benchmark raises the bot's limit (OUTBOX_RATE=1000) to measure
the bot itself; per-user flood control (BOT_THROTTLE_*) is raised out of the way too, since
phase 1 queues ~20 updates per user at once.

Phase 1 (throughput): all updates are queued at once; updates/s = updates / time until the
last reply arrived. Phase 2 (latency): updates are offered at a steady ``--rate`` per second;
latency = from the update being queued on the server to the bot's reply being received.
Each user's replies come in order (the bot handles one chat's updates in order), so the
k-th reply in a chat answers the k-th message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.offer import bot_env, offer  # noqa: E402
from bot.localapi.server import LocalBotAPI  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent

TEXTS = ["hello", "hi there", "good morning", "thanks", "ok", "apa khabar", "你好"]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--users", type=int, default=250)
    parser.add_argument("--rate", type=float, default=300.0, help="offered rate in phase 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with LocalBotAPI(rate_limit=None) as server:
            env = bot_env(server, Path(tmp) / "bench.sqlite3")
            bot = await asyncio.create_subprocess_exec(
                *(os.environ.get("BENCH_BOT_CMD") or f"{sys.executable} -m bot run").split(), cwd=PROJECT, env=env,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await server.wait_until(lambda: server.stats.calls.get("getUpdates", 0) > 0, timeout=60)
            users = list(range(5_000_000, 5_000_000 + args.users))
            await offer(server, users, TEXTS, len(users), None, timeout=120)  # warm-up: first contact of every user
            elapsed, burst = await offer(server, users, TEXTS, args.updates, None, timeout=120)
            print(f"throughput: {args.updates} updates in {elapsed:.2f} s = {args.updates / elapsed:.0f} updates/s")
            _, paced = await offer(server, users, TEXTS, args.updates, args.rate, timeout=120)
            print(
                f"latency at {args.rate:.0f} updates/s offered: p50 {statistics.median(paced):.1f} ms, "
                f"p95 {_percentile(paced, 95):.1f} ms (burst p50 {statistics.median(burst):.0f} ms)"
            )
            bot.send_signal(signal.SIGTERM)
            await bot.wait()


if __name__ == "__main__":
    asyncio.run(main())
