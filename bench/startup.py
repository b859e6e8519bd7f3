"""Start-up: wall and CPU time from spawning ``python -m bot run`` to its first getUpdates.

Run:  python bench/startup.py [--runs 10] [--http-client aiohttp] [--reply] [--versus DIR]

Each run spawns the bot (long polling, as bench/versus.py does: the local Bot API server runs
in this process, a fresh database per run) and polls the server every 2 ms for the first
getUpdates. At that moment it reads the child's CPU time (user + system, from /proc) and its
resident memory. CPU seconds hardly depend on the machine's load; wall seconds do, so both are
printed, with the 1-minute load average before and after.

Before the runs, each project's ``bot`` package is byte-compiled (``compileall``) as an installed
deployment is: with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` every start would compile
the bot's own modules from source (~0.2 s more CPU). ``--no-compile`` skips that.

``--python-args "-X importtime"`` runs the bot under those interpreter options (stderr goes to
``--stderr FILE``, e.g. for the import-time table; ``-m cProfile -o FILE`` also works: the
profile is written when the bot stops on SIGTERM).

``--reply`` also sends one message (``--text``, by default a question the guide matcher answers)
right after the first getUpdates and reports the time to
its answer (the first reply pays for anything still loading) and the CPU spent by then.
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

from bench.offer import bot_env  # noqa: E402
from bench.procstat import cpu_seconds, rss_mb, stop  # noqa: E402
from bot.localapi.server import LocalBotAPI  # noqa: E402


async def poll(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.002)


async def one(args: argparse.Namespace, db: Path, project: Path = PROJECT) -> dict[str, float]:
    async with LocalBotAPI(rate_limit=None) as server:
        env = bot_env(
            server, db, project=project, unthrottled=False, BOT_HTTP_CLIENT=args.http_client
        )
        stderr = open(args.stderr, "ab") if args.stderr else asyncio.subprocess.DEVNULL  # noqa: SIM115, ASYNC230
        spawned = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args.python_args.split(), "-m", "bot", "run", cwd=project, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            await poll(lambda: server.stats.calls.get("getUpdates", 0) > 0, 60)
            result = {
                "wall_s": time.monotonic() - spawned,
                "cpu_s": cpu_seconds(proc.pid),
                "rss_mb": rss_mb(proc.pid),
            }
            if args.idle:
                await asyncio.sleep(args.idle)  # the warm-up after start is done by then
                result["idle_rss_mb"] = rss_mb(proc.pid)
                result["idle_cpu_s"] = cpu_seconds(proc.pid)
            if args.reply:
                await asyncio.sleep(args.wait)
                asked = time.monotonic()
                await server.send_text(7_000_001, args.text, language_code="en")
                await poll(lambda: len(server.sent) > 0, 30)
                result["reply_ms"] = (time.monotonic() - asked) * 1000
                result["cpu_reply_s"] = cpu_seconds(proc.pid)
        finally:
            await stop(proc)
            if args.stderr:
                stderr.close()
    return result


def _directory(path: str) -> Path:
    return Path(path).resolve()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--http-client", choices=["aiohttp", "httpx"], default="aiohttp")
    parser.add_argument("--python-args", default="", help='e.g. "-X importtime"')
    parser.add_argument("--stderr", help="append the bot's stderr to this file")
    parser.add_argument(
        "--versus",
        metavar="DIR",
        type=_directory,
        help="another checkout of the project (e.g. git worktree of main): "
        "its runs alternate with this one's",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also read RSS and CPU this long after the first getUpdates "
        "(bench/versus.py reads its idle RSS after 2 s)",
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="do not byte-compile the bot package first"
    )
    parser.add_argument("--reply", action="store_true", help="time the first reply too")
    parser.add_argument(
        "--text",
        default="how do I register my company with PERKESO",
        help="the first message (with --reply)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="seconds between the first getUpdates and the message (with --reply)",
    )
    args = parser.parse_args()
    projects = {"this": PROJECT}
    if args.versus:
        projects["versus"] = args.versus
    if not args.no_compile:
        for project in projects.values():
            compileall.compile_dir(project / "bot", quiet=1)
    load0 = os.getloadavg()[0]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in projects}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, project in projects.items():  # alternating: the load hits both alike
                res = await one(args, Path(tmp) / f"{name}{i}.sqlite3", project)
                results[name].append(res)
                extra = ""
                if args.idle:
                    extra += f", after {args.idle:g} s RSS {res['idle_rss_mb']:.0f} MB CPU {res['idle_cpu_s']:.2f} s"
                if args.reply:
                    extra += (f", first reply {res['reply_ms']:.0f} ms "
                             f"(CPU by then {res['cpu_reply_s']:.2f} s)")  # fmt: skip
                print(f"run {i + 1:2} {name:6}: wall {res['wall_s']:.2f} s, CPU {res['cpu_s']:.2f} s, "
                      f"RSS {res['rss_mb']:.0f} MB{extra} (load {os.getloadavg()[0]:.1f})",
                      flush=True)  # fmt: skip
    load1 = os.getloadavg()[0]
    print(
        f"\n{args.runs} runs, load average 1 min {load0:.1f} -> {load1:.1f} on {os.cpu_count()} CPUs"
    )
    for name, rs in results.items():
        print(f"{name} ({projects[name]}):")
        for key, unit in (("wall_s", "s"), ("cpu_s", "s"), ("rss_mb", "MB"), ("idle_rss_mb", "MB"),
                          ("idle_cpu_s", "s"), ("reply_ms", "ms")):  # fmt: skip
            if key in rs[0]:
                values = [r[key] for r in rs]
                print(f"  {key:9} median {statistics.median(values):.2f} {unit}, "
                      f"min {min(values):.2f}, max {max(values):.2f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
