"""Things that go wrong on purpose: flood limits and random fault injection.

``FaultPlan`` describes random faults (5xx, timeouts, lost answers, 429, 403, …) seeded by
the server; ``FaultsMixin`` is the part of ``LocalBotAPI`` that rolls the dice before a
method runs and enforces Telegram's flood limits (global and per chat) on sending methods,
with ``retry_after`` and a count of retries that came too early.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bot.localapi.model import SENDING_METHODS, ApiError, bad
from bot.localapi.state import ServerState

__all__ = ["SENDING_METHODS", "FaultPlan", "FaultsMixin"]


@dataclass
class FaultPlan:
    """Random fault injection (seeded by the server's ``seed``).

    ``kinds``: "500", "502", "timeout" (hold ``timeout_delay`` s then 504), "429"
    (retry_after=``retry_after``), "403" (blocked), "chat_not_found", and
    "deliver_then_timeout" (the send is performed, then the answer is held like "timeout":
    a lost response), "401" (Unauthorized: a revoked token) and "404" (Not Found: what
    Telegram answers when the base URL lacks its ``/bot`` path). ``methods=None`` means
    every method except ``exclude``.
    """

    rate: float = 0.1
    kinds: tuple[str, ...] = ("500", "502", "timeout", "429", "403", "chat_not_found")
    methods: set[str] | frozenset[str] | None = None
    exclude: frozenset[str] = frozenset({"getUpdates"})
    timeout_delay: float = 10.0
    retry_after: int = 1

    def applies_to(self, method: str) -> bool:
        """Whether this plan may fault ``method``."""
        if method in self.exclude:
            return False
        return self.methods is None or method in self.methods


class FaultsMixin(ServerState):
    """Flood limits and fault injection of ``LocalBotAPI`` (state lives in ``ServerState``)."""

    async def _inject_fault(self, method: str) -> FaultPlan | None:
        """Roll the dice for ``method`` under ``self.faults``; raise the fault it draws.

        A drawn "deliver_then_timeout" is not raised: the plan is returned and the caller
        performs the method, then calls ``_raise_fault("timeout", plan)``.
        """
        plan = self.faults
        if plan is not None and plan.rate > 0 and plan.applies_to(method):
            if self.random.random() < plan.rate:
                fault = self.random.choice(plan.kinds)
                self.stats.faults[fault] += 1
                if fault == "deliver_then_timeout":
                    return plan
                await self._raise_fault(fault, plan)
        return None

    async def _raise_fault(self, kind: str, plan: FaultPlan) -> None:
        if kind == "500":
            raise ApiError(500, "Internal Server Error")
        if kind == "502":
            raise ApiError(502, "Bad Gateway")
        if kind == "429":
            now = time.monotonic()
            retry = max(1, int(plan.retry_after))
            self._blocked_until = max(self._blocked_until, now + retry)
            self._blocked_since = now
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        if kind == "403":
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if kind == "chat_not_found":
            raise bad("chat not found")
        if kind == "401":
            raise ApiError(401, "Unauthorized")
        if kind == "404":
            raise ApiError(404, "Not Found")
        if kind == "timeout":
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), plan.timeout_delay)
            raise ApiError(504, "Gateway Timeout")
        raise ApiError(500, f"Internal Server Error: unknown fault {kind}")

    def _check_rate(self, params: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.rate_limit is not None:
            if now < self._blocked_until:
                self._too_many(now, self._blocked_until, self._blocked_since)
            window = self._window
            cutoff = now - 1.0
            while window and window[0] <= cutoff:
                window.popleft()
            if len(window) >= self.rate_limit:
                retry = max(1, math.ceil(window[0] + 1.0 - now))
                self._blocked_until = now + retry
                self._blocked_since = now
                self.stats.rate_limited += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
        chat_window = None
        chat_id = params.get("chat_id")
        if self.per_chat_rate is not None and isinstance(chat_id, int):
            blocked = self._chat_blocked.get(chat_id)
            if blocked and now < blocked[0]:
                self._too_many(now, blocked[0], blocked[1])
            chat_window = self._chat_windows.setdefault(chat_id, deque())
            cutoff = now - 1.0
            while chat_window and chat_window[0] <= cutoff:
                chat_window.popleft()
            if len(chat_window) >= self.per_chat_rate:
                retry = max(1, math.ceil(chat_window[0] + 1.0 - now))
                self._chat_blocked[chat_id] = (now + retry, now)
                self.stats.rate_limited += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
        if self.rate_limit is not None:
            self._window.append(now)
        if chat_window is not None:
            chat_window.append(now)

    def _too_many(self, now: float, until: float, since: float) -> None:
        if now - since > self.early_retry_grace:
            self.stats.early_retries += 1
        self.stats.rate_limited += 1
        retry = max(1, math.ceil(until - now))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
