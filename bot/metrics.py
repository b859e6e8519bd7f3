"""In-process counters: updates in, messages out, 429s, failures. Shown by /healthz and logged.

One :class:`Metrics` per Application, in ``services.extras["metrics"]`` (see :func:`metrics_for`).
Counting is hooked in by :func:`install_metrics`: an error handler counts failed updates and a
wrapper around the bot's rate limiter counts every Bot API call it paces (messages out, 429s,
other API errors). Nothing here is persisted: counters restart at zero with the process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from telegram.error import RetryAfter, TelegramError

from bot.outbox import PACED_METHODS

if TYPE_CHECKING:
    from telegram.ext import Application, ContextTypes

log = logging.getLogger("bot.metrics")

SUMMARY_INTERVAL = 300.0  # seconds between two "metrics" log lines
NAMES = (
    "updates_in",
    "updates_failed",
    "messages_out",
    "api_429",
    "api_errors",
    "webhook_rejected",
)


class Metrics:
    """A Counter with a start time; ``snapshot()`` always lists every name in :data:`NAMES`."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def snapshot(self) -> dict[str, int]:
        data = dict.fromkeys(NAMES, 0)
        data.update(self.counts)
        return data

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started


def metrics_for(app: Application) -> Metrics:
    """The app's Metrics (created on first use)."""
    extras = app.bot_data["services"].extras
    metrics = extras.get("metrics")
    if metrics is None:
        metrics = extras["metrics"] = Metrics()
    return metrics


async def _count_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    name = "updates_failed" if update is not None else "errors"
    metrics_for(context.application).inc(name)


def _wrap_rate_limiter(app: Application, metrics: Metrics) -> bool:
    """Count each Bot API attempt the rate limiter runs (it sees every request, retries too)."""
    limiter = getattr(app.bot, "rate_limiter", None)
    if limiter is None or getattr(limiter, "_metrics_wrapped", False):
        return False
    original = limiter.process_request

    async def process_request(
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Any,
    ) -> Any:
        async def counted(*a: Any, **kw: Any) -> Any:
            try:
                result = await callback(*a, **kw)
            except RetryAfter:
                metrics.inc("api_429")
                raise
            except TelegramError:
                metrics.inc("api_errors")
                raise
            if endpoint in PACED_METHODS:
                metrics.inc("messages_out")
            return result

        return await original(counted, args, kwargs, endpoint, data, rate_limit_args)

    try:
        limiter.process_request = process_request
        limiter._metrics_wrapped = True
    except AttributeError:  # a limiter class with __slots__: counts stay at zero
        log.warning("metrics: cannot count API calls through %s", type(limiter).__name__)
        return False
    return True


async def _log_summary(context: ContextTypes.DEFAULT_TYPE) -> None:
    log_summary(context.application)


def log_summary(app: Application) -> None:
    """One INFO line with every counter (event "metrics")."""
    counts = metrics_for(app).snapshot()
    text = " ".join(f"{k}={v}" for k, v in counts.items())
    log.info("metrics: %s", text, extra={"event": "metrics", "counters": counts})


def install_metrics(app: Application, *, interval: float = SUMMARY_INTERVAL) -> Metrics:
    """Create the counters, hook them in, schedule the summary line. Idempotent."""
    extras = app.bot_data["services"].extras
    metrics = metrics_for(app)
    if extras.get("metrics_installed"):
        return metrics
    extras["metrics_installed"] = True
    app.add_error_handler(_count_error)
    _wrap_rate_limiter(app, metrics)
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            _log_summary, interval=interval, first=interval, name="metrics-summary"
        )
    return metrics
