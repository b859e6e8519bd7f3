"""Pacing every Bot API request of the bot: :class:`OutboxRateLimiter`, PTB's rate limiter.

Installed with ``ApplicationBuilder.rate_limiter``, it sees every request: interactive replies
go first, outbox requests (``rate_limit_args={"outbox": True}``) get what is left, a 429 pauses
everything, transient failures of interactive requests are tried again. It reports the outcome
of every attempt to the ``observer`` it is given (``bot.metrics.Metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger("bot.outbox")

TELEGRAM_GLOBAL_RATE = 30.0  # messages per second Telegram allows a bot overall

# Methods that count against Telegram's message limits (everything else is only paused on 429).
PACED_METHODS = frozenset(
    {
        "sendMessage", "copyMessage", "copyMessages", "forwardMessage", "forwardMessages",
        "sendPhoto", "sendDocument", "sendAudio", "sendVideo", "sendAnimation", "sendVoice",
        "sendVideoNote", "sendMediaGroup", "sendLocation", "sendVenue", "sendContact",
        "sendPoll", "sendDice", "sendSticker", "sendInvoice", "sendGame", "sendPaidMedia",
        "editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup",
        "editMessageLiveLocation",
    }
)  # fmt: skip


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter's delay in seconds (int or timedelta, depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


MIN_SLACK = 0.005  # seconds of pacing slack at least (see OutboxRateLimiter)


class ApiObserver(Protocol):
    """Told the outcome of every Bot API attempt the limiter runs (bot.metrics.Metrics is one)."""

    def api_call(self, endpoint: str, paced: bool, error: BaseException | None) -> None: ...


@dataclass
class LimiterStats:
    interactive: int = 0
    outbox: int = 0
    retry_after: int = 0
    paused_seconds: float = 0.0
    transient_retries: int = 0  # interactive requests tried again after a 5xx/timeout


class OutboxRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """PTB rate limiter: one global budget, interactive requests first, outbox gets the rest.

    ``overall_rate``: sending requests per second for the whole bot. ``outbox_rate``: the most
    the outbox may take of it. Each budget is kept two ways at once, on the time the request is
    *released* (the request reaches Telegram a little later, by a varying delay):

    - a sliding window: at most ``N = floor(rate)`` requests in any ``N / rate * (1 +
      window_margin)`` seconds (for whole rates: ``1 + window_margin``). Telegram counts in a
      one-second window on *arrival*; the margin absorbs up to ``window_margin`` s of jitter
      between two requests' trips, so the window never overflows at Telegram's end. At 30/s
      the bot uses 30 / 1.025 = 29.3 requests/s, 0.976 of the allowance;
    - even spacing (GCRA at the same rate): a queue is drained at a steady pace instead of N
      requests at once and then a pause. Interactive replies have a slack of ``burst``
      requests (a few answers at once are not delayed); the outbox only half an interval (at
      least ``MIN_SLACK``), enough to make up for a late wake-up of a busy event loop.

    A RetryAfter pauses every request (all methods, all callers) until ``retry_after`` (plus
    ``retry_margin``) has passed; afterwards sending resumes at the steady pace, with no
    catch-up burst (the slack is spent), and the request is tried again (at most ``max_retries``
    times). Outbox requests (``rate_limit_args={"outbox": True}``) also keep
    ``per_chat_interval`` seconds between two messages to the same chat.

    Transient failures (5xx, gateway timeouts, network errors, read timeouts) of *interactive*
    requests are tried again up to ``interactive_retries`` times after a short backoff
    (``retry_backoff`` s, doubled each time), so handlers stay thin and a user still gets an
    answer. Outbox requests are not retried here: the sender persists its own backoff. A 4xx
    other than 429 is never retried (403 blocked, 400 bad request / chat not found are final).

    ``clock`` (default ``time.monotonic``) is injectable: :meth:`ready_at` and :meth:`take` are
    the whole pacing decision, so tests can replay hours of sending on a simulated clock.
    """

    def __init__(
        self,
        overall_rate: float = TELEGRAM_GLOBAL_RATE,
        outbox_rate: float | None = None,
        *,
        per_chat_interval: float = 1.0,
        max_retries: int = 3,
        burst: int = 3,
        retry_margin: float = 0.05,
        window_margin: float = 0.025,
        interactive_retries: int = 2,
        retry_backoff: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        observer: ApiObserver | None = None,
    ) -> None:
        if window_margin < 0:
            raise ValueError("window_margin must not be negative")
        self.per_chat_interval = per_chat_interval
        self.observer = observer
        self.max_retries = max_retries
        self.interactive_retries = interactive_retries
        self.retry_backoff = retry_backoff
        self.burst = max(1, burst)
        self.retry_margin = retry_margin
        self.window_margin = window_margin
        self.clock = clock
        self.stats = LimiterStats()
        self._tat = 0.0  # GCRA theoretical arrival times: global and outbox
        self._otat = 0.0
        self._sent: deque[float] = deque()  # release times in the window: global and outbox
        self._osent: deque[float] = deque()
        self._pause_until = -math.inf
        self._interactive: deque[asyncio.Future[None]] = deque()
        self._outbox: deque[asyncio.Future[None]] = deque()
        self._chat_last: dict[Any, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.configure(overall_rate, outbox_rate)

    @classmethod
    def for_config(cls, config: Config, observer: ApiObserver | None = None) -> OutboxRateLimiter:
        """Telegram's 30/s overall (or the outbox rate if higher); the outbox gets config's rate."""
        rate = float(config.outbox_rate)
        return cls(max(TELEGRAM_GLOBAL_RATE, rate), rate, observer=observer)

    def configure(
        self, overall_rate: float | None = None, outbox_rate: float | None = None
    ) -> None:
        """Change the rates (requests per second); the outbox rate is capped by the overall."""
        if overall_rate is not None:
            if overall_rate <= 0:
                raise ValueError("overall_rate must be positive")
            self.overall_rate = float(overall_rate)
        if outbox_rate is not None:
            if outbox_rate <= 0:
                raise ValueError("outbox_rate must be positive")
            self.outbox_rate = float(outbox_rate)
        elif not hasattr(self, "outbox_rate"):
            self.outbox_rate = self.overall_rate
        stretch = 1.0 + self.window_margin
        self._count = max(1, math.floor(self.overall_rate))
        self._ocount = max(1, math.floor(self.outbox_rate))
        self._window = self._count / self.overall_rate * stretch
        self._owindow = self._ocount / self.outbox_rate * stretch
        self._interval = stretch / self.overall_rate
        self._ointerval = stretch / self.outbox_rate
        # Slack: interactive replies may go ``burst`` at once; the outbox only makes up for late
        # wake-ups (half an interval, at least 5 ms: at 1000/s the event loop's timer is ~1 ms).
        self._tau = max((self.burst - 1) * self._interval, MIN_SLACK)
        self._otau = min(max(0.5 * self._ointerval, MIN_SLACK), self._tau)
        self._sent = deque(self._sent, maxlen=self._count)
        self._osent = deque(self._osent, maxlen=self._ocount)
        if self._wake is not None:
            self._wake.set()

    def ready_at(self, outbox: bool = False) -> float:
        """The earliest clock time the next request (interactive or outbox) may be released."""
        ready = max(self._pause_until, self._tat - self._tau)
        if len(self._sent) == self._count:
            ready = max(ready, self._sent[0] + self._window)
        if outbox:
            ready = max(ready, self._otat - self._otau)
            if len(self._osent) == self._ocount:
                ready = max(ready, self._osent[0] + self._owindow)
        return ready

    def take(self, now: float, outbox: bool = False) -> None:
        """Record a request released at ``now`` (call only once ``now >= ready_at(outbox)``)."""
        self._tat = max(self._tat, now) + self._interval
        self._sent.append(now)
        if outbox:
            self._otat = max(self._otat, now) + self._ointerval
            self._osent.append(now)
            self.stats.outbox += 1
        else:
            self.stats.interactive += 1

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for fut in (*self._interactive, *self._outbox):
            fut.cancel()
        self._interactive.clear()
        self._outbox.clear()

    # -- pause on 429 ------------------------------------------------------------------------

    @property
    def paused_for(self) -> float:
        return max(0.0, self._pause_until - self.clock())

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (plus a small margin) from now.

        When the pause ends, sending restarts at the steady pace: the GCRA slack is used up, so
        requests that queued meanwhile do not go out in a burst (which would trip the next 429).
        """
        now = self.clock()
        until = now + seconds + self.retry_margin
        if until > self._pause_until:
            self.stats.paused_seconds += until - max(self._pause_until, now)
            self._pause_until = until
        self._tat = max(self._tat, self._pause_until + self._tau)
        self._otat = max(self._otat, self._pause_until + self._otau)
        if self._wake is not None:
            self._wake.set()

    async def wait_pause(self) -> None:
        while (delay := self._pause_until - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)  # a deadline that may move later: re-check after

    # -- tokens ------------------------------------------------------------------------------

    async def acquire(self, *, outbox: bool = False, chat_id: Any = None) -> None:
        """Wait for a sending slot (interactive first; outbox: per-chat spacing too)."""
        if outbox and chat_id is not None and self.per_chat_interval > 0:
            while True:
                delay = self._chat_last.get(chat_id, -math.inf) + self.per_chat_interval
                if (delay := delay - self.clock()) <= 0:
                    break
                await asyncio.sleep(delay)
            self._chat_last[chat_id] = self.clock()  # reserve the chat
        now = self.clock()
        if not self._interactive and not self._outbox and self.ready_at(outbox) <= now:
            self.take(now, outbox)  # nobody waiting and a slot free: no queue, no dispatcher turn
            if chat_id is not None:
                self._note_chat(chat_id, now)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        (self._outbox if outbox else self._interactive).append(fut)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name="outbox-rate-limiter")
        else:
            self._wake.set()
        await fut
        if chat_id is not None:
            self._note_chat(chat_id, self.clock())

    def _note_chat(self, chat_id: Any, now: float) -> None:
        self._chat_last[chat_id] = now
        if len(self._chat_last) > 20000:
            cutoff = now - self.per_chat_interval
            self._chat_last = {c: t for c, t in self._chat_last.items() if t > cutoff}

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        wake = self._wake
        while True:
            for waiters in (self._interactive, self._outbox):
                while waiters and waiters[0].done():  # cancelled while waiting
                    waiters.popleft()
            if not self._interactive and not self._outbox:
                self._task = None
                return
            now = self.clock()
            is_outbox = not self._interactive
            ready = self.ready_at(is_outbox)
            if ready <= now:
                fut = (self._outbox if is_outbox else self._interactive).popleft()
                self.take(now, is_outbox)
                fut.set_result(None)
                continue
            wake.clear()
            handle = loop.call_later(ready - now, wake.set)
            try:
                await wake.wait()
            finally:
                handle.cancel()

    async def _attempt(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        paced: bool,
    ) -> Any:
        """One try of a request; its outcome goes to ``observer`` (counters), if any."""
        try:
            result = await callback(*args, **kwargs)
        except BaseException as exc:
            if self.observer is not None:
                self.observer.api_call(endpoint, paced, exc)
            raise
        if self.observer is not None:
            self.observer.api_call(endpoint, paced, None)
        return result

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        outbox = isinstance(rate_limit_args, dict) and bool(rate_limit_args.get("outbox"))
        paced = endpoint in PACED_METHODS
        chat_id = data.get("chat_id") if paced else None
        retries = 0  # after RetryAfter (everyone)
        transient = 0  # after a 5xx / timeout (interactive requests only)
        while True:
            if paced:
                await self.acquire(outbox=outbox, chat_id=chat_id)
            else:
                await self.wait_pause()
            try:
                return await self._attempt(callback, args, kwargs, endpoint, paced)
            except RetryAfter as exc:
                self.stats.retry_after += 1
                self.pause(retry_after_seconds(exc))
                log.warning(
                    "Telegram flood control: pausing all sends for %s s", retry_after_seconds(exc)
                )
                if retries >= self.max_retries:
                    raise
                retries += 1
            except BadRequest:  # a 4xx (NetworkError's subclass): retrying cannot help
                raise
            except NetworkError as exc:  # 5xx, 504, TimedOut, connection errors
                if outbox or transient >= self.interactive_retries:
                    raise
                transient += 1
                self.stats.transient_retries += 1
                delay = self.retry_backoff * 2 ** (transient - 1) * random.uniform(0.8, 1.2)
                log.info(
                    "%s failed (%s: %s); trying again in %.2f s",
                    endpoint,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
