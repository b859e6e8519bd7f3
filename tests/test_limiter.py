"""OutboxRateLimiter's pacing on a simulated clock: whole allowance, no 429, no catch-up burst.

The limiter's decision is ``ready_at`` / ``take`` on an injected clock, so these tests replay a
minute of sending in microseconds and never measure wall-clock time. The simulated Telegram
counts requests on *arrival* in a sliding one-second window, like the local Bot API server, and
every request reaches it after a random delay.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Config
from bot.outbox import OutboxRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Telegram:
    """Counts arrivals per sliding second; one over ``limit`` is a 429 (and blocks 1 s)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window: deque[float] = deque()
        self.blocked_until = -1.0
        self.accepted = 0
        self.refused = 0

    def arrive(self, at: float) -> bool:
        if at < self.blocked_until:
            self.refused += 1
            return False
        while self.window and self.window[0] <= at - 1.0:
            self.window.popleft()
        if len(self.window) >= self.limit:
            self.refused += 1
            self.blocked_until = at + 1.0
            return False
        self.window.append(at)
        self.accepted += 1
        return True


def drain(
    limiter: OutboxRateLimiter,
    clock: Clock,
    seconds: float,
    *,
    outbox: bool = True,
    jitter: float = 0.0,
    lateness: float = 0.0,
    telegram: Telegram | None = None,
    seed: int = 1,
) -> list[float]:
    """Release outbox requests back to back for ``seconds``; returns the release times.

    ``jitter``: each request's trip to Telegram takes 1 ms plus up to this much more.
    ``lateness``: each wake-up of the event loop comes up to this late.
    """
    rng = random.Random(seed)
    end = clock.now + seconds
    released: list[float] = []
    arrivals: list[float] = []
    while True:
        ready = limiter.ready_at(outbox)
        clock.now = max(clock.now, ready) + rng.uniform(0, lateness)
        if clock.now >= end:
            break
        limiter.take(clock.now, outbox)
        released.append(clock.now)
        arrivals.append(clock.now + 0.001 + rng.uniform(0, jitter))
    if telegram is not None:
        for at in sorted(arrivals):
            telegram.arrive(at)
    return released


def most_in_any_window(times: list[float], width: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.parametrize("rate", [30, 1000])
def test_uses_at_least_97_percent_of_the_allowance_without_a_429(rate: int) -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(rate, rate, per_chat_interval=0, clock=clock)
    telegram = Telegram(rate)
    released = drain(limiter, clock, 60.0, jitter=0.02, lateness=0.0005, telegram=telegram)
    assert telegram.refused == 0
    assert telegram.accepted == len(released)
    assert len(released) >= 0.97 * rate * 60
    assert len(released) <= rate * 60


def test_the_same_traffic_with_a_plain_one_second_window_is_refused() -> None:
    """The margin is what keeps jitter from tripping Telegram's window (the test can fail)."""
    clock = Clock()
    limiter = OutboxRateLimiter(30, 30, per_chat_interval=0, window_margin=0.0, clock=clock)
    telegram = Telegram(30)
    drain(limiter, clock, 60.0, jitter=0.02, telegram=telegram)
    assert telegram.refused > 0


def test_steady_pace_not_bursts() -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(30, 30, per_chat_interval=0, clock=clock)
    released = drain(limiter, clock, 10.0)
    gaps = sorted(b - a for a, b in zip(released, released[1:], strict=False))
    interval = 1.025 / 30
    assert gaps[0] >= 0.5 * interval - 1e-9, "never two outbox messages at once"
    assert gaps[len(gaps) // 2] == pytest.approx(interval)
    assert most_in_any_window(released, 1.0) <= 30


def test_late_wake_ups_are_made_up_but_never_exceed_the_window() -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(30, 30, per_chat_interval=0, clock=clock)
    released = drain(limiter, clock, 60.0, lateness=0.03)
    assert most_in_any_window(released, 1.025) <= 30
    # without the GCRA slack, wake-ups up to 30 ms late would cost ~30 % of the allowance
    assert len(released) >= 0.9 * 30 * 60


def test_after_a_429_sending_resumes_at_the_steady_pace() -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(30, 30, per_chat_interval=0, clock=clock)
    drain(limiter, clock, 3.0)
    limiter.pause(2.0)  # Telegram said retry_after=2
    resume = clock.now + 2.0 + limiter.retry_margin
    assert limiter.ready_at(True) == pytest.approx(resume)
    assert limiter.ready_at(False) == pytest.approx(resume)
    assert limiter.paused_for == pytest.approx(2.0 + limiter.retry_margin)
    after = drain(limiter, clock, resume - clock.now + 2.0)
    assert after[0] == pytest.approx(resume)
    gaps = [b - a for a, b in zip(after, after[1:], strict=False)]
    assert min(gaps) == pytest.approx(1.025 / 30), "no catch-up burst after the pause"
    assert most_in_any_window(after, 1.0) <= 30


def test_interactive_requests_share_the_window_with_the_outbox() -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(30, 20, per_chat_interval=0, clock=clock)
    rng = random.Random(3)
    released: list[float] = []
    outbox_count = 0
    for _ in range(3000):
        outbox = rng.random() < 0.7
        clock.now = max(clock.now, limiter.ready_at(outbox)) + rng.uniform(0, 0.01)
        limiter.take(clock.now, outbox)
        released.append(clock.now)
        outbox_count += outbox
    span = released[-1] - released[0]
    assert most_in_any_window(released, 1.025) <= 30
    assert limiter.stats.outbox == outbox_count
    assert outbox_count / span <= 20.0  # the outbox never takes more than its own rate


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    arrivals=st.lists(st.floats(min_value=0, max_value=0.2), min_size=1, max_size=300),
    outbox=st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_never_more_than_the_rate_in_any_stretched_window(
    rate: float, arrivals: list[float], outbox: list[bool]
) -> None:
    clock = Clock()
    limiter = OutboxRateLimiter(rate, rate, per_chat_interval=0, clock=clock)
    released: list[float] = []
    for i, gap in enumerate(arrivals):
        kind = outbox[i % len(outbox)]
        clock.now = max(clock.now + gap, limiter.ready_at(kind))
        limiter.take(clock.now, kind)
        released.append(clock.now)
    count = max(1, int(rate))
    window = count / rate * 1.025
    assert most_in_any_window(released, window * (1 - 1e-9)) <= count


def test_config_default_is_telegrams_free_limit_and_1000_is_allowed(tmp_path) -> None:
    env = {"BOT_DB": str(tmp_path / "b.sqlite3")}
    assert Config.from_env(env).outbox_rate == 30
    limiter = OutboxRateLimiter.for_config(Config.from_env(env))
    assert (limiter.overall_rate, limiter.outbox_rate) == (30, 30)
    paid = OutboxRateLimiter.for_config(Config.from_env({**env, "OUTBOX_RATE": "1000"}))
    assert (paid.overall_rate, paid.outbox_rate) == (1000, 1000)


async def test_acquire_keeps_one_message_per_second_per_chat() -> None:
    """The async path on the injected clock: a second message to a chat waits for the clock."""
    clock = Clock()
    limiter = OutboxRateLimiter(1000, 1000, per_chat_interval=1.0, clock=clock)
    await limiter.acquire(outbox=True, chat_id=7)
    second = asyncio.create_task(limiter.acquire(outbox=True, chat_id=7))
    other = asyncio.create_task(limiter.acquire(outbox=True, chat_id=8))
    await asyncio.wait_for(other, 1.0)  # another chat is not held up
    for _ in range(5):
        await asyncio.sleep(0)
    assert not second.done()
    clock.now += 1.0
    await asyncio.wait_for(second, 5.0)  # its sleep (1 s on the loop) ends, the clock allows it
    await limiter.shutdown()
