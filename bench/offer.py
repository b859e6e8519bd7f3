"""Offering text updates to a bot through the local Bot API server and timing its replies
(bench/updates.py and bench/versus.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from bot.localapi.server import LocalBotAPI


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
