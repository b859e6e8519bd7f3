"""A bot under the local Bot API server, for the benchmarks: the environment of its process
(:func:`bot_env`), and offering it text updates while timing its replies (:func:`offer`)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

from bot.localapi.server import LocalBotAPI

PROJECT = Path(__file__).resolve().parent.parent
BENCH_TOKEN = "123456789:bench-token-not-secret"


def bot_env(
    server: LocalBotAPI,
    db: Path,
    *,
    project: Path = PROJECT,
    unthrottled: bool = True,
    **settings: str,
) -> dict[str, str]:
    """The environment of a ``python -m bot run`` that polls ``server``: its own database
    ``db``, ``project`` on PYTHONPATH, no webhook, then ``settings`` (e.g. ``OUTBOX_RATE``).
    ``unthrottled``: the outbox rate and the per-user flood guard raised out of the way, so
    that the benchmark measures the bot, not its limits."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": BENCH_TOKEN,
        "TELEGRAM_API_BASE_URL": server.base_url,
        "BOT_DB": str(db),
        "PYTHONPATH": str(project),
    }
    env.pop("WEBHOOK_URL", None)
    if unthrottled:
        env |= {"OUTBOX_RATE": "1000", "BOT_THROTTLE_BURST": "100000", "BOT_THROTTLE_RATE": "100000"}
    return env | settings


async def offer(
    server: LocalBotAPI,
    users: list[int],
    texts: Sequence[str],
    total: int,
    rate: float | None,
    *,
    first: int = 0,
    timeout: float = 300.0,
    strict: bool = True,
) -> tuple[float, list[float]]:
    """Offer ``total`` text updates round-robin over ``users`` (all at once, or at ``rate``/s),
    the i-th being ``texts[(i + first) % len(texts)]``; wait for as many replies. Returns the
    seconds until the last reply and each reply's latency in ms (each chat answers in order, so
    the k-th reply in a chat answers its k-th message; ``strict``: as many replies as messages)."""
    asked: dict[int, list[float]] = {u: [] for u in users}
    start_index = len(server.sent)
    t0 = time.perf_counter()
    for i in range(total):
        user = users[i % len(users)]
        if rate:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        asked[user].append(time.monotonic())
        await server.send_text(user, texts[(i + first) % len(texts)], language_code="en")
    await server.wait_until(lambda: len(server.sent) - start_index >= total, timeout=timeout)
    elapsed = time.perf_counter() - t0
    replies: dict[int, list[float]] = {u: [] for u in users}
    for record in server.sent[start_index:]:
        replies[record.chat_id].append(record.time)
    latencies = [
        (reply - when) * 1000
        for user in users
        for when, reply in zip(asked[user], replies[user], strict=strict)
    ]
    return elapsed, latencies
