"""CPU per HTTP round trip to the Bot API, three ways: what one getUpdates poll costs the bot.

Run:  python bench/roundtrip.py [--calls 3000] [--rounds 3]

The local Bot API server runs in its own process (``python -m bot localapi``), as Telegram is
elsewhere. This process makes ``--calls`` getUpdates round trips (timeout 0, nothing pending)
one after the other, in turn: with aiohttp alone (``session.post`` and ``json.loads``), through
the bot's transport (``AiohttpRequest.post`` with PTB's request data and its JSON decoding), and
through the whole of PTB (``AppBot.get_updates``). Prints the CPU (user + system) per round
trip of each, per round, and the median. A burst of updates costs about one round trip each
(its reply; one poll fetches 100); updates arriving one by one cost two (a poll each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

import aiohttp  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.request import RequestData  # noqa: E402
from telegram.request._requestparameter import RequestParameter  # noqa: E402

from bench.procstat import stop  # noqa: E402
from bot.appbot import AppBot  # noqa: E402
from bot.transport import AiohttpRequest  # noqa: E402

TOKEN = "123456789:bench-token-not-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def cpu_per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """CPU ms of this process per ``call()``, after 100 unmeasured ones."""
    for _ in range(100):
        await call()
    start = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - start) * 1000 / calls


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "localapi", "--port", str(port), cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert server.stdout is not None
    while b"listening" not in await server.stdout.readline():  # printed once it listens
        pass
    base = f"http://127.0.0.1:{port}/bot"
    url = f"{base}{TOKEN}/getUpdates"
    session = aiohttp.ClientSession()
    transport = AiohttpRequest(connection_pool_size=1)
    bot = AppBot(
        TOKEN,
        base_url=base,
        request=AiohttpRequest(connection_pool_size=1),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )
    params = RequestData(
        [RequestParameter.from_input("offset", 0), RequestParameter.from_input("timeout", 0)]
    )

    async def raw() -> object:
        async with session.post(
            url, data=b'{"offset":0,"timeout":0}', headers={"Content-Type": "application/json"}
        ) as response:
            return json.loads(await response.read())

    async def through_transport() -> object:
        return await transport.post(url, params)

    async def through_ptb() -> object:
        return await bot.get_updates(timeout=0, allowed_updates=Update.ALL_TYPES)

    ways = {
        "aiohttp alone": raw,
        "the bot's transport": through_transport,
        "PTB (AppBot.get_updates)": through_ptb,
    }
    results: dict[str, list[float]] = {name: [] for name in ways}
    try:
        await transport.initialize()
        await bot.initialize()
        for round_no in range(1, args.rounds + 1):
            for name, call in ways.items():
                results[name].append(await cpu_per_call(call, args.calls))
                print(f"round {round_no} {name:30} {results[name][-1]:.3f} ms CPU per round trip",
                      flush=True)  # fmt: skip
    finally:
        await session.close()
        await transport.shutdown()
        await bot.shutdown()
        await stop(server)
    print()
    for name, values in results.items():
        print(f"median {name:30} {statistics.median(values):.3f} ms CPU per round trip")


if __name__ == "__main__":
    asyncio.run(main())
