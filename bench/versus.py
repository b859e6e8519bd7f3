"""Side by side: this bot against a bare python-telegram-bot echo bot, alternating in one run.

Run:  python bench/versus.py [--rounds 3] [--updates 3000] [--users 250] [--loads 0.6 0.7 0.8]
                            [--only bot bot-nohold] [--background 0 1 2]

Contenders (each a subprocess polling the local Bot API server, which runs in this process
with no flood limit): ``bot`` = ``python -m bot run`` (default transport, aiohttp),
``bot-httpx`` = the same with ``BOT_HTTP_CLIENT=httpx``, ``bot-nohold`` = the same with
``BOT_POLL_HOLD_MS=0`` (it polls again at once after every answer), ``bot-hold2`` and
``bot-hold5`` = ``BOT_POLL_HOLD_MS=2`` and ``5``, ``echo`` = ``bench/echo_bot.py`` (one
MessageHandler, PTB's defaults); ``bot``, ``bot-httpx`` and ``echo`` unless ``--only`` names
others. Each round starts every contender in turn (the order rotates), so a
change in the machine's load hits them all alike. Per start:

* start-up: from spawning the process to its first getUpdates;
* idle RSS: the process's resident memory 2 s after its first getUpdates;
* throughput: ``--updates`` text updates queued at once; updates/s = updates / time until
  the last reply; CPU ms per update from /proc (user + system of the process), and the share
  of a core it used, beside the one this process (the server and the driver) used;
* latency: then, for each of ``--loads`` (default 0.8), ``--updates / 2`` updates offered at
  that steady fraction of the contender's own throughput of this round; p50/p95 from the update
  being queued to the reply arriving; the CPU per update, the share of a core and the
  getUpdates calls per update at that rate, and how many of the machine's cores were busy
  meanwhile (everything on it: the contender, this process, anything else running);
* the throughput again after them ("after"): how much the machine's speed moved meanwhile.

``--background 0 1 2``: a busy machine, reproducibly (``bench/background.py``, seeded): for
the whole run, phases of 0.5-3 s each with 0, 1 or 2 processes spinning on a core.

Prints a line per start, then medians per contender and the ratio bot / echo. The bot's
limits are raised out of the way (OUTBOX_RATE=1000, flood control off): this measures the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.background import background  # noqa: E402
from bench.offer import bot_env, offer  # noqa: E402
from bench.procstat import busy_cores, cores_busy_since, cpu_seconds, rss_mb, stop  # noqa: E402
from bot.localapi.server import LocalBotAPI  # noqa: E402

TEXTS = ["hello", "hi there", "good morning", "thanks", "ok", "apa khabar", "terima kasih"]
BOT_RUN = [sys.executable, "-m", "bot", "run"]
CONTENDERS = {  # name -> (command, environment on top of bench.offer.bot_env())
    "bot": (BOT_RUN, {"BOT_HTTP_CLIENT": "aiohttp"}),
    "bot-httpx": (BOT_RUN, {"BOT_HTTP_CLIENT": "httpx"}),
    "echo": ([sys.executable, str(PROJECT / "bench" / "echo_bot.py")], {}),
    "bot-nohold": (BOT_RUN, {"BOT_POLL_HOLD_MS": "0"}),
    "bot-hold2": (BOT_RUN, {"BOT_POLL_HOLD_MS": "2"}),
    "bot-hold5": (BOT_RUN, {"BOT_POLL_HOLD_MS": "5"}),
}


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


async def one(name: str, args: argparse.Namespace, tmp: Path, round_no: int) -> dict[str, float]:
    cmd, extra = CONTENDERS[name]
    async with LocalBotAPI(rate_limit=None) as server:
        env = bot_env(server, tmp / f"{name}-{round_no}.sqlite3", **extra)
        spawned = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=PROJECT, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await server.wait_until(lambda: server.stats.calls.get("getUpdates", 0) > 0, timeout=60)
            startup = time.monotonic() - spawned
            await asyncio.sleep(2.0)
            idle = rss_mb(proc.pid)
            users = list(range(5_000_000, 5_000_000 + args.users))
            # warm-up: every user's first contact
            await offer(server, users, TEXTS, len(users), None, strict=False)
            rate, cpu_ms, server_core = await burst(server, proc.pid, users, args.updates)
            paced: dict[str, float] = {}
            for load in args.loads:
                cpu0 = cpu_seconds(proc.pid)
                polls0 = server.stats.calls["getUpdates"]
                machine0 = busy_cores()
                n = args.updates // 2
                seconds, latencies = await offer(
                    server, users, TEXTS, n, load * rate, first=2, strict=False
                )
                cpu = cpu_seconds(proc.pid) - cpu0
                machine = cores_busy_since(machine0)
                polls = server.stats.calls["getUpdates"] - polls0
                paced |= {
                    f"polls@{load}": polls / n,  # getUpdates calls per update
                    f"p50_ms@{load}": statistics.median(latencies),
                    f"p95_ms@{load}": pct(latencies, 95),
                    f"cpu_ms@{load}": cpu * 1000 / n,  # CPU per update at this steady rate
                    f"core@{load}": cpu / seconds,  # the share of a core it kept busy
                    f"machine@{load}": machine,  # cores busy on the whole machine meanwhile
                }
            rate_after, _, _ = await burst(server, proc.pid, users, args.updates)
        finally:
            await stop(proc)
    return {
        "startup_s": startup,
        "idle_rss_mb": idle,
        "updates_per_s": rate,
        "cpu_ms_per_update": cpu_ms,
        "burst_core": cpu_ms * rate / 1000,  # the contender's share of a core in the burst
        "server_core": server_core,  # the local server's and driver's, in the same burst
        "updates_per_s_after": rate_after,
        **paced,
    }


async def burst(
    server: LocalBotAPI, pid: int, users: list[int], n: int
) -> tuple[float, float, float]:
    """``n`` text updates queued at once: the updates per second, CPU ms per update, and the
    share of a core this process (the local server and the driver) used meanwhile."""
    cpu0, own0 = cpu_seconds(pid), time.process_time()
    elapsed, _ = await offer(server, users, TEXTS, n, None, first=1, strict=False)
    own = time.process_time() - own0
    return n / elapsed, (cpu_seconds(pid) - cpu0) * 1000 / n, own / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--users", type=int, default=250)
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS),
                        default=["bot", "bot-httpx", "echo"])  # fmt: skip
    parser.add_argument("--loads", nargs="*", type=float, default=[0.8],
                        help="steady rates to time replies at, as fractions of the burst rate")  # fmt: skip
    parser.add_argument("--background", nargs="*", type=int, default=[0], metavar="N",
                        help="spinning processes per 0.5-3 s phase, one count drawn per phase "
                             "(bench/background.py); 0 alone: none")  # fmt: skip
    args = parser.parse_args()
    if any(n < 0 for n in args.background):
        parser.error("--background takes counts of processes (>= 0)")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in args.only}
    # Byte-compile the bot as an installed deployment has it: with PYTHONDONTWRITEBYTECODE=1 and
    # no __pycache__, every start would compile its modules from source (~0.2 s of CPU).
    compileall.compile_dir(PROJECT / "bot", quiet=1)
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, background(args.background):
        for r in range(args.rounds):
            order = args.only[r % len(args.only) :] + args.only[: r % len(args.only)]
            for name in order:
                res = await one(name, args, Path(tmp), r)
                results[name].append(res)
                loads.append(os.getloadavg()[0])
                paced = "; ".join(
                    f"at {load:.0%} p50 {res[f'p50_ms@{load}']:.1f} ms p95 "
                    f"{res[f'p95_ms@{load}']:.1f} ms, {res[f'cpu_ms@{load}']:.2f} ms CPU/update, "
                    f"{res[f'core@{load}']:.2f} of a core, {res[f'polls@{load}']:.2f} polls/update, "
                    f"machine {res[f'machine@{load}']:.2f} cores busy"
                    for load in args.loads
                )
                print(
                    f"round {r + 1} {name:10} start-up {res['startup_s']:.2f} s, idle RSS "
                    f"{res['idle_rss_mb']:.0f} MB, {res['updates_per_s']:.0f} updates/s "
                    f"({res['updates_per_s_after']:.0f} after), {res['cpu_ms_per_update']:.2f} ms "
                    f"CPU/update, {res['burst_core']:.2f} of a core (server {res['server_core']:.2f}); "
                    f"{paced} (load {loads[-1]:.1f})",
                    flush=True,
                )
    extra = f"; background {' '.join(map(str, args.background))}" if any(args.background) else ""
    print(f"\nmedians over {args.rounds} rounds (load average 1 min: {min(loads):.1f}-{max(loads):.1f}"
          f" on {os.cpu_count()} CPUs{extra})")  # fmt: skip
    med = {n: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for n, rs in results.items()}
    for name, m in med.items():
        p95 = ", ".join(f"{m[f'p95_ms@{load}']:.1f} ms at {load:.0%}" for load in args.loads)
        print(f"  {name:10} {m['updates_per_s']:.0f} updates/s, {m['cpu_ms_per_update']:.2f} ms CPU/update, "
              f"p95 {p95}, start-up {m['startup_s']:.2f} s, idle RSS {m['idle_rss_mb']:.0f} MB")  # fmt: skip
    if "bot" in med and "echo" in med:
        ratios = [b["updates_per_s"] / e["updates_per_s"]
                  for b, e in zip(results["bot"], results["echo"], strict=True)]  # fmt: skip
        print("  ratio bot / echo (updates/s, per round): "
              + ", ".join(f"{x:.2f}" for x in ratios)
              + f"; median {statistics.median(ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
