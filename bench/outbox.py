"""Benchmark: drain a large outbox through the local Bot API server while users chat with the bot.

    python bench/outbox.py [--messages 20000] [--server-rate 300] [--bot-rate 290]

The server (with its global flood limit) runs in this process; the bot runs as a real
``python -m bot run`` subprocess (long polling + outbox sender, as in production) pointed at it.
Every ``--probe-interval`` seconds a user sends /start and we time the bot's reply.

Prints: achieved outbox rate and its ratio to the bot's configured rate, total sends per second
against the server's limit, 429 answers (all, and after the first second), peak RSS of the bot
process (and of this process), and p50/p95 latency of the interactive replies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.offer import bot_env  # noqa: E402
from bench.procstat import stop  # noqa: E402
from bot.localapi.server import LocalBotAPI  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.storage import Storage  # noqa: E402

PROBE_USERS = range(900_001, 900_051)


async def probe(server: LocalBotAPI, user_id: int, latencies: list[float]) -> None:
    started = time.monotonic()
    await server.send_text(user_id, "/start")
    try:
        await server.wait_for_bot_message(user_id, timeout=15)
    except Exception:  # noqa: BLE001 - a lost reply counts as a 15 s one
        latencies.append(15.0)
        return
    latencies.append(time.monotonic() - started)


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    db = workdir / "bot.sqlite3"
    storage = Storage(db)
    outbox = Outbox(storage)
    started = time.perf_counter()
    outbox.enqueue_many(
        {"chat_id": 1 + i, "kind": "broadcast", "dedupe_key": f"bench:{i}",
         "payload": {"type": "text", "text": f"<b>Broadcast</b> number {i}"}, "group_ref": "bench"}
        for i in range(args.messages)
    )  # fmt: skip
    enqueue_seconds = time.perf_counter() - started
    storage.close()

    async with LocalBotAPI(rate_limit=args.server_rate) as server:
        for chat_id in range(1, args.messages + 1):
            server.add_user(chat_id)
        env = bot_env(server, db, unthrottled=False, OUTBOX_RATE=str(args.bot_rate))
        with open(workdir / "bot.log", "wb") as log:  # noqa: ASYNC230
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=str(PROJECT_DIR), env=env,
                stdout=log, stderr=log,
            )  # fmt: skip
            outbox_chats = args.messages

            def outbox_sent() -> int:
                return sum(1 for s in server.sent if s.chat_id <= outbox_chats)

            await server.wait_until(lambda: outbox_sent() > 0, timeout=30)
            first = next(s.time for s in server.sent if s.chat_id <= outbox_chats)
            latencies: list[float] = []
            probes: list[asyncio.Task[None]] = []
            limited_after_1s: int | None = None
            users = iter(PROBE_USERS)
            deadline = time.monotonic() + args.timeout
            while outbox_sent() < args.messages and time.monotonic() < deadline:
                if limited_after_1s is None and time.monotonic() - first >= 1.0:
                    limited_after_1s = server.stats.rate_limited
                user = next(users, None)
                if user is None:
                    users = iter(PROBE_USERS)
                    user = next(users)
                probes.append(asyncio.create_task(probe(server, user, latencies)))
                await asyncio.sleep(args.probe_interval)
            await asyncio.gather(*probes)
            sends = [s.time for s in server.sent if s.chat_id <= outbox_chats]
            last = sends[-1]
            all_sends = [s.time for s in server.sent if first <= s.time <= last]
            await stop(proc)

        duration = last - first
        outbox_rate = (len(sends) - 1) / duration if duration > 0 else 0.0
        total_rate = (len(all_sends) - 1) / duration if duration > 0 else 0.0
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        bot_rss = child.ru_maxrss / 1024
        own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        p50 = statistics.median(latencies) if latencies else float("nan")
        p95 = (
            statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else max(latencies)
        )
        after = server.stats.rate_limited - (limited_after_1s or 0)
        counts = {}
        for s in server.sent:
            if s.chat_id <= outbox_chats:
                counts[s.chat_id] = counts.get(s.chat_id, 0) + 1
        print(f"messages            {args.messages} (enqueued in {enqueue_seconds:.2f} s)")
        print(f"delivered           {len(counts)} chats, duplicates {sum(counts.values()) - len(counts)}")
        print(f"server limit        {args.server_rate:g}/s   bot outbox rate {args.bot_rate:g}/s")
        print(f"outbox drained in   {duration:.1f} s")
        print(f"outbox rate         {outbox_rate:.1f}/s = {outbox_rate / args.bot_rate:.3f} of the bot's rate")
        print(f"all sends           {total_rate:.1f}/s = {total_rate / args.server_rate:.3f} of the server's limit "
              f"({total_rate / args.bot_rate:.3f} of the bot's)")  # fmt: skip
        print(f"429 answers         {server.stats.rate_limited} (after the first second: {after}), "
              f"early retries {server.stats.early_retries}")  # fmt: skip
        print(f"peak RSS            bot process {bot_rss:.0f} MB, server+bench process {own_rss:.0f} MB")
        print(f"interactive replies {len(latencies)} probes, p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")  # fmt: skip
        print(f"CPU time            bot process {child.ru_utime + child.ru_stime:.1f} s, "
              f"server+bench process {own.ru_utime + own.ru_stime:.1f} s, "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
        print(f"bot log             {workdir / 'bot.log'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--server-rate", type=float, default=300.0)
    parser.add_argument("--bot-rate", type=float, default=290.0, help="OUTBOX_RATE for the bot")
    parser.add_argument("--probe-interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=300.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
