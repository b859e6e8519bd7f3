"""Python function calls per update of ``python -m bot run`` (cProfile call counts), in a burst
and at a steady rate: a measure of the work per update that this machine's speed drift does not
move, unlike CPU seconds.

Run:  python bench/calls.py [--updates 3000] [--rate 150]

Three runs of the bot under cProfile against the local Bot API server, each after the same
start and warm-up (every user's first message): one with nothing more (the baseline), one with
``--updates`` text updates queued at once, one with as many offered at a steady ``--rate`` per
second. Calls per update = (the run's calls - the baseline's) / updates. Also prints how many
getUpdates calls the bot made per update: in a burst one fetches up to 100 updates, at a low
steady rate each update comes with its own.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.offer import bot_env, offer  # noqa: E402
from bench.procstat import stop  # noqa: E402
from bot.localapi.server import LocalBotAPI  # noqa: E402

TEXTS = ["hello", "hi there", "good morning", "thanks", "ok", "apa khabar", "terima kasih"]


async def profiled_run(tmp: Path, name: str, updates: int, rate: float | None) -> tuple[int, int]:
    """Total calls the bot made, and its getUpdates calls after the warm-up."""
    out = tmp / f"{name}.prof"
    async with LocalBotAPI(rate_limit=None) as server:
        env = bot_env(server, tmp / f"{name}.sqlite3")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bot", "run",
            cwd=PROJECT, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await server.wait_until(lambda: server.stats.calls.get("getUpdates", 0) > 0, timeout=60)
            await asyncio.sleep(3.0)  # the warm-up job (guides, matcher) runs in these seconds
            users = list(range(5_000_000, 5_000_000 + 250))
            await offer(server, users, TEXTS, len(users), None, strict=False)
            polls = server.stats.calls["getUpdates"]
            if updates:
                await offer(server, users, TEXTS, updates, rate, first=1, strict=False)
            polls = server.stats.calls["getUpdates"] - polls
        finally:
            await stop(proc)  # SIGTERM: a clean exit, so cProfile writes its file
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    return sum(entry[1] for entry in stats.values()), polls


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=150.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, _ = await profiled_run(Path(tmp), "baseline", 0, None)
        for name, rate in (("burst", None), (f"steady {args.rate:g}/s", args.rate)):
            calls, polls = await profiled_run(Path(tmp), name.split()[0], args.updates, rate)
            print(
                f"{name:14} {(calls - base) / args.updates:7.0f} calls per update, "
                f"{polls / args.updates:.2f} getUpdates per update",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
