"""In-process counters: updates in, messages out, 429s, failures. Shown by /healthz and logged.

One :class:`Metrics` per Application, made by ``build_application`` and kept in
``services.metrics`` (see :func:`metrics_for`). Nobody patches anything to count: the
classes that see the events are given the Metrics at construction and call it —
``PerChatUpdateProcessor`` (bot/app.py) counts each update in, ``OutboxRateLimiter``
(bot/outbox) reports each Bot API attempt it runs to :meth:`Metrics.api_call`, and the app's
error handler counts failed updates. Nothing here is persisted: counters restart at zero with
the process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

from telegram.error import RetryAfter, TelegramError

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

    def api_call(self, endpoint: str, paced: bool, error: BaseException | None) -> None:
        """One Bot API attempt (retries too) ended: a message out, a 429 or another API error.

        ``paced``: ``endpoint`` sends or edits a message (it counts against Telegram's limits).
        """
        if error is None:
            if paced:
                self.counts["messages_out"] += 1
        elif isinstance(error, RetryAfter):
            self.counts["api_429"] += 1
        elif isinstance(error, TelegramError):
            self.counts["api_errors"] += 1

    def update_failed(self, update: object) -> None:
        """An error reached the error handler: an update's (``updates_failed``) or a job's."""
        self.counts["updates_failed" if update is not None else "errors"] += 1

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started


def metrics_for(app: Application) -> Metrics:
    """The app's Metrics (built with its Services)."""
    return app.bot_data["services"].metrics


async def _log_summary(context: ContextTypes.DEFAULT_TYPE) -> None:
    log_summary(context.application)


def log_summary(app: Application) -> None:
    """One INFO line with every counter (event "metrics")."""
    counts = metrics_for(app).snapshot()
    text = " ".join(f"{k}={v}" for k, v in counts.items())
    log.info("metrics: %s", text, extra={"event": "metrics", "counters": counts})


def schedule_summary(app: Application, *, interval: float = SUMMARY_INTERVAL) -> None:
    """Log :func:`log_summary` every ``interval`` seconds on the app's job queue (if any)."""
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            _log_summary, interval=interval, first=interval, name="metrics-summary"
        )
