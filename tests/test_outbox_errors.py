"""The outbox sender when sending raises something unexpected: no row stays ``sending``.

Against the local Bot API server, with the real Application's bot (helpers from
tests/test_outbox.py). A row whose request ended in an exception that is not a TelegramError
(a bug, a malformed stored payload, a request cancelled underneath) goes back to ``queued``
with backoff at once, or to ``failed`` after its attempts; the worker lives on; a stop
requeues the rows still in hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.localapi.server import LocalBotAPI
from bot.outbox import OutboxRow
from tests import test_outbox
from tests.harness import until
from tests.test_outbox import delivered, item, make_app, parts, start, text

running = test_outbox.running  # the fixture: apps started by a test, shut down afterwards


def _state(outbox: Any, key: str) -> tuple[str, int]:
    row = outbox.get(key)
    return row["state"], row["attempts"]


async def test_malformed_payload_retried_with_backoff_then_failed(
    tmp_path: Path, running: list, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored reply_markup PTB cannot read raises TypeError/KeyError inside the send."""
    async with LocalBotAPI(rate_limit=None) as server:
        for chat in (1, 2):
            server.add_user(chat)
        app = make_app(server, tmp_path)
        outbox, _ = parts(app)
        broken = {**text("x"), "reply_markup": {"inline_keyboard": [[{"no_text": 1}]]}}
        outbox.enqueue(1, "reminder", "broken", broken)
        sender = await start(app, running, backoff_base=0.3, max_attempts=3)
        # After the first failure the row is back in the queue, due later: not 'sending'.
        await until(lambda: _state(outbox, "broken")[1] >= 1, timeout=10.0)
        row = outbox.get("broken")
        assert row["state"] == "queued" and row["attempts"] == 1
        assert row["not_before"] > row["updated_at"], "retried after a backoff, not at once"
        assert row["last_error"].split(":")[0] in ("TypeError", "KeyError", "ValueError")
        # The worker is alive: another chat's message goes out meanwhile.
        outbox.enqueue(2, "reminder", "fine", text("fine"))
        await until(lambda: outbox.get("fine")["state"] == "sent", timeout=10.0)
        assert await sender.wait_idle(timeout=20)
        assert _state(outbox, "broken") == ("failed", 3)
        assert server.calls("sendMessage") and all(
            c.get("chat_id") in (2, "2") for c in server.calls("sendMessage")
        )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "bot.outbox"]
    assert len(errors) == 3 and all("unexpected error sending row" in r.getMessage() for r in errors)


async def test_unexpected_exceptions_requeue_then_the_row_is_sent_once(
    tmp_path: Path, running: list
) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        for chat in range(1, 11):
            server.add_user(chat)
        app = make_app(server, tmp_path)
        outbox, sender = parts(app)
        failures: Counter[int] = Counter()
        plan: list[type[BaseException]] = [RuntimeError, asyncio.CancelledError, LookupError]
        real_send = sender._send

        async def flaky(row: OutboxRow) -> int | None:
            if row.chat_id <= 3 and failures[row.chat_id] < len(plan):
                failures[row.chat_id] += 1
                raise plan[failures[row.chat_id] - 1]("boom")
            return await real_send(row)

        sender._send = flaky  # type: ignore[method-assign]
        outbox.enqueue_many(item(c, f"m{c}") for c in range(1, 11))
        await start(app, running, backoff_base=0.05, max_attempts=5)
        # Between attempts the failing rows are queued, never left 'sending'.
        await until(lambda: failures[1] >= 1, timeout=10.0)
        await until(lambda: outbox.get("m1")["state"] == "queued", timeout=10.0)
        assert await sender.wait_idle(timeout=20)
        assert failures == Counter({1: 3, 2: 3, 3: 3})
        assert delivered(server) == Counter({f"m{c}": 1 for c in range(1, 11)})
        for chat in range(1, 4):
            row = outbox.get(f"m{chat}")
            assert row["state"] == "sent" and row["attempts"] == 4 and row["last_error"] is None
        assert sender.stats.errors["RuntimeError"] == 3 and sender.stats.errors["LookupError"] == 3
        assert all(task.done() is False for task in sender._tasks), "every worker still runs"


async def test_stop_requeues_rows_in_hand(tmp_path: Path, running: list) -> None:
    """SIGTERM's path (the sender's stop): requests that do not end in the grace are requeued."""
    async with LocalBotAPI(rate_limit=None) as server:
        for chat in range(1, 21):
            server.add_user(chat)
        app = make_app(server, tmp_path)
        outbox, sender = parts(app)
        hang = asyncio.Event()
        started = asyncio.Event()

        async def stuck(row: OutboxRow) -> int | None:
            started.set()
            await hang.wait()  # a request that never ends
            return None

        sender._send = stuck  # type: ignore[method-assign]
        outbox.enqueue_many(item(c, f"m{c}") for c in range(1, 21))
        await start(app, running, stop_grace=0.2)
        await asyncio.wait_for(started.wait(), 10)
        assert outbox.status()["broadcast"]["sending"] > 0
        await sender.stop()
        states = outbox.status()["broadcast"]
        assert states.get("sending", 0) == 0 and states["queued"] == 20, states
        assert all(outbox.get(f"m{c}")["attempts"] == 0 for c in range(1, 21))
