"""Per-user flood control: a token bucket per user, checked before an update is handled.

Each user has a bucket of ``burst`` tokens that refills at ``rate`` tokens per second; every
update costs one token. An update that finds the bucket empty is dropped. The first drop of a
flood says so (:attr:`Verdict.NOTIFY`, the caller sends one "slow down" message); later drops of
the same flood are silent (:attr:`Verdict.DROP`). A flood ends when the bucket is full again,
i.e. after ``burst / rate`` seconds without updates. A full bucket carries no information, so
idle users' buckets are evicted and the map holds only users seen in the last ``burst / rate``
seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

__all__ = ["Throttle", "Verdict"]


class Verdict(Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # drop, and tell the user to slow down (once per flood)
    DROP = "drop"


class _Bucket:
    __slots__ = ("notified", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.notified = False


class Throttle:
    """Token buckets keyed by user id (``burst`` tokens, refilled at ``rate`` per second)."""

    def __init__(
        self, burst: int, rate: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("burst must be >= 1 and rate > 0")
        self.burst = float(burst)
        self.rate = float(rate)
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._last_sweep = clock()

    @property
    def refill_seconds(self) -> float:
        """How long an empty bucket takes to become full again."""
        return self.burst / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, user_id: int) -> Verdict:
        """Spend one token of ``user_id``; say whether the update may be handled."""
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= self.burst:
                bucket.notified = False  # quiet long enough: the flood is over
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict.ALLOW
        if bucket.notified:
            return Verdict.DROP
        bucket.notified = True
        return Verdict.NOTIFY

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full again (at most once per refill period)."""
        if now - self._last_sweep < self.refill_seconds:
            return
        self._last_sweep = now
        full_after = self.refill_seconds
        idle = [uid for uid, b in self._buckets.items() if now - b.stamp >= full_after]
        for uid in idle:
            del self._buckets[uid]
