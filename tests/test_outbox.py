"""The outbox: table API, the rate limiter, and the sender against the local Bot API server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import RetryAfter
from telegram.ext import Application

from bot.__main__ import main as cli_main
from bot.app import build_application
from bot.config import Config
from bot.localapi.server import FaultPlan, LocalBotAPI
from bot.locks import GuardedSender
from bot.outbox import Outbox, OutboxRateLimiter, OutboxSender
from bot.storage import Storage

TOKEN = "123456:outbox-test-token"


def text(body: str) -> dict:
    return {"type": "text", "text": body}


def item(chat_id: int, key: str, body: str | None = None, **extra: object) -> dict:
    return {"chat_id": chat_id, "kind": "broadcast", "dedupe_key": key,
            "payload": text(body or key), **extra}  # fmt: skip


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    storage = Storage(tmp_path / "bot.sqlite3")
    yield Outbox(storage)
    storage.close()


# --- the table ------------------------------------------------------------------------------


def test_enqueue_dedupes_and_status_counts(outbox: Outbox) -> None:
    assert outbox.enqueue(1, "reminder", "r:1:2026-11", text("Pay by the 15th"), lang="ms")
    assert not outbox.enqueue(1, "reminder", "r:1:2026-11", text("another text"))
    assert outbox.enqueue(2, "reminder", "r:2:2026-11", text("Pay"))
    assert outbox.enqueue(3, "broadcast", "b:7:3", text("News"), group_ref="b7")
    row = outbox.get("r:1:2026-11")
    assert row is not None and row["lang"] == "ms" and row["state"] == "queued"
    assert "Pay by the 15th" in row["payload"], "the first payload is kept, not replaced"
    status = outbox.status()
    assert status["reminder"]["queued"] == 2 and status["broadcast"]["queued"] == 1
    assert set(status["reminder"]) == {
        "queued", "sending", "sent", "failed", "unreachable", "cancelled"
    }  # fmt: skip


def test_enqueue_rejects_bad_payloads(outbox: Outbox) -> None:
    with pytest.raises(ValueError):
        outbox.enqueue(1, "x", "k1", {"type": "video"})
    with pytest.raises(ValueError):
        outbox.enqueue(1, "x", "k2", {"type": "text", "text": "  "})
    with pytest.raises(ValueError):
        outbox.enqueue(1, "x", "k3", {"type": "copy", "from_chat_id": 5})
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Paid", callback_data="paid:1")]])
    assert outbox.enqueue(1, "x", "k4", {"type": "text", "text": "hi", "reply_markup": markup})
    assert '"callback_data":"paid:1"' in outbox.get("k4")["payload"]
    assert outbox.status() == {"x": {**dict.fromkeys(outbox.status()["x"], 0), "queued": 1}}


def test_enqueue_many_is_one_transaction(outbox: Outbox) -> None:
    outbox.enqueue_many([item(i, f"k{i}") for i in range(100)])
    items = [item(i, f"k{i}") for i in range(50_000)]
    statements: list[str] = []
    outbox.conn.set_trace_callback(statements.append)
    try:
        inserted = outbox.enqueue_many(items)
    finally:
        outbox.conn.set_trace_callback(None)
    assert inserted == 49_900, "the 100 existing dedupe keys are no-ops"
    assert outbox.status()["broadcast"]["queued"] == 50_000
    begins = [s for s in statements if s.strip().upper().startswith("BEGIN")]
    commits = [s for s in statements if s.strip().upper().startswith("COMMIT")]
    assert len(begins) == 1 and len(commits) == 1, "50,000 rows in one transaction"


def test_enqueue_many_rolls_back_on_error(outbox: Outbox) -> None:
    with pytest.raises(ValueError):
        outbox.enqueue_many([item(1, "a"), {"chat_id": 2, "kind": "broadcast",
                                            "dedupe_key": "b", "payload": {"type": "?"}}])  # fmt: skip
    assert outbox.status() == {}


def test_claim_one_per_chat_skips_busy_and_blocked(outbox: Outbox) -> None:
    storage = outbox.storage
    storage.touch_user(30, "en")
    storage.set_blocked(30)
    outbox.enqueue_many([item(10, "a1"), item(10, "a2"), item(20, "b1"), item(30, "c1"),
                         item(40, "d1")])  # fmt: skip
    rows, skipped = outbox.claim(10, busy=[40])
    assert sorted((r.chat_id, r.dedupe_key) for r in rows) == [(10, "a1"), (20, "b1")]
    assert skipped == {10, 40}
    assert outbox.get("c1")["state"] == "unreachable", "a blocked chat is never requested"
    assert outbox.get("a1")["state"] == "sending" and outbox.get("a2")["state"] == "queued"


def test_recover_requeues_rows_left_sending(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    outbox = Outbox(storage)
    outbox.enqueue_many([item(i, f"k{i}") for i in range(5)])
    rows, _ = outbox.claim(3)
    outbox.mark_sent(rows[0].id, 99)
    storage.close()  # "crash": two rows are still 'sending'
    again = Outbox(Storage(path))
    assert again.recover() == 2
    assert again.status()["broadcast"] == {
        "queued": 4, "sending": 0, "sent": 1, "failed": 0, "unreachable": 0, "cancelled": 0
    }  # fmt: skip
    assert again.get(rows[0].dedupe_key)["message_id"] == 99
    assert again.recover() == 0


def test_retry_failed_cancel_group_and_progress(outbox: Outbox) -> None:
    outbox.enqueue_many([item(i, f"b{i}", group_ref="b1") for i in range(4)])
    outbox.enqueue(9, "reminder", "r9", text("x"))
    rows, _ = outbox.claim(10)
    by_key = {r.dedupe_key: r for r in rows}
    outbox.mark_failed(by_key["b0"].id, "BadRequest: x")
    outbox.mark_failed(by_key["r9"].id, "NetworkError: y")
    outbox.mark_sent(by_key["b1"].id, 5)
    outbox.requeue([by_key["b2"].id, by_key["b3"].id])
    assert outbox.cancel_group("b1") == 2
    assert outbox.group_progress("b1") == {
        "queued": 0, "sending": 0, "sent": 1, "failed": 1, "unreachable": 0, "cancelled": 2
    }  # fmt: skip
    assert outbox.retry_failed(kind="reminder") == 1
    assert outbox.get("r9")["state"] == "queued" and outbox.get("r9")["attempts"] == 0
    assert outbox.get("b0")["state"] == "failed"
    assert outbox.retry_failed() == 1
    assert outbox.retry_failed() == 0


def test_final_rows_keep_no_text(outbox: Outbox) -> None:
    """Sent, cancelled and unreachable rows drop their text (names, salaries); failed keep it."""
    outbox.storage.touch_user(3, "en")
    outbox.enqueue_many(
        [item(i, f"k{i}", f"Siti RM1,700.00 #{i}", group_ref="g" if i == 2 else None)
         for i in range(5)]
    )  # fmt: skip
    rows, _ = outbox.claim(2)
    by_key = {r.dedupe_key: r for r in rows}
    outbox.mark_sent(by_key["k0"].id, 11)
    outbox.mark_failed(by_key["k1"].id, "BadRequest: x")
    assert outbox.cancel_group("g") == 1
    outbox.mark_unreachable(3, None, "Forbidden: bot was blocked by the user")
    states = {k: outbox.get(k)["state"] for k in ("k0", "k1", "k2", "k3", "k4")}
    assert states == {"k0": "sent", "k1": "failed", "k2": "cancelled", "k3": "unreachable",
                      "k4": "queued"}  # fmt: skip
    for key in ("k0", "k2", "k3"):
        assert json.loads(outbox.get(key)["payload"]) == {"type": "text"}
    for key in ("k1", "k4"):
        assert "Siti RM1,700.00" in outbox.get(key)["payload"]


def test_backlog_counts_only_due_rows(outbox: Outbox) -> None:
    assert outbox.backlog() == (0, 0.0)
    past = datetime.now(UTC) - timedelta(seconds=120)
    future = datetime.now(UTC) + timedelta(hours=1)
    outbox.enqueue(1, "reminder", "due", text("x"), not_before=past)
    outbox.enqueue(2, "reminder", "later", text("x"), not_before=future)
    count, age = outbox.backlog()
    assert count == 1 and 119 <= age <= 180
    rows, _ = outbox.claim(10)
    assert [r.dedupe_key for r in rows] == ["due"], "a scheduled row is not claimed early"
    with pytest.raises(ValueError):
        outbox.enqueue(3, "reminder", "naive", text("x"), not_before=datetime(2026, 1, 1))


def test_unreachable_marks_user_and_queued_rows(outbox: Outbox) -> None:
    outbox.storage.touch_user(5, "en")
    outbox.enqueue_many([item(5, "a"), item(5, "b"), item(6, "c")])
    rows, _ = outbox.claim(10)
    first = next(r for r in rows if r.chat_id == 5)
    outbox.mark_unreachable(5, first.id, "Forbidden: bot was blocked by the user")
    assert outbox.storage.get_user(5)["blocked"] == 1
    assert {outbox.get(k)["state"] for k in ("a", "b")} == {"unreachable"}
    # a chat with no users row is remembered too
    outbox.mark_unreachable(6, None, "BadRequest: chat not found")
    outbox.enqueue(6, "broadcast", "d", text("x"))
    assert outbox.claim(10)[0] == [] and outbox.get("d")["state"] == "unreachable"
    # the user writes to the bot again: reachable again
    outbox.storage.touch_user(5, "en")
    outbox.enqueue(5, "broadcast", "e", text("x"))
    assert [r.dedupe_key for r in outbox.claim(10)[0]] == ["e"]


# --- the rate limiter -------------------------------------------------------------------------


async def _request(limiter: OutboxRateLimiter, log: list, tag: str, chat: int, outbox: bool,
                   fail_first: list | None = None) -> None:  # fmt: skip
    async def callback(*_args: object, **_kwargs: object) -> bool:
        log.append((tag, time.monotonic()))
        if fail_first:
            fail_first.pop()
            raise RetryAfter(1)
        return True

    await limiter.process_request(
        callback, (), {}, "sendMessage", {"chat_id": chat}, {"outbox": True} if outbox else None
    )


async def test_limiter_serves_interactive_before_outbox() -> None:
    limiter = OutboxRateLimiter(overall_rate=20, outbox_rate=20, per_chat_interval=0)
    log: list = []
    tasks = [asyncio.create_task(_request(limiter, log, f"o{i}", i, True)) for i in range(30)]
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await _request(limiter, log, "interactive", 999, False)
    waited = time.monotonic() - started
    assert waited < 0.2, f"an interactive reply waited {waited:.2f} s behind the outbox"
    position = [tag for tag, _ in log].index("interactive")
    assert position < 12, "it jumped the queue of outbox requests"
    await asyncio.gather(*tasks)
    times = [t for _, t in log]
    assert times[-1] - times[0] >= (len(times) - 3) / 20 * 0.9, "the overall rate is kept"


async def test_limiter_caps_outbox_rate_and_per_chat() -> None:
    limiter = OutboxRateLimiter(overall_rate=100, outbox_rate=10, per_chat_interval=1.0)
    log: list = []
    await asyncio.gather(*(_request(limiter, log, f"o{i}", i, True) for i in range(13)))
    assert log[-1][1] - log[0][1] >= 0.9, "13 outbox sends at 10/s take about a second"
    log.clear()
    await asyncio.gather(*(_request(limiter, log, f"same{i}", 7, True) for i in range(3)))
    gaps = [b[1] - a[1] for a, b in zip(log, log[1:], strict=False)]
    assert all(gap >= 0.95 for gap in gaps), f"one message per second per chat: {gaps}"


async def test_limiter_retry_after_pauses_everyone() -> None:
    limiter = OutboxRateLimiter(overall_rate=200, outbox_rate=200, per_chat_interval=0)
    log: list = []
    first = asyncio.create_task(_request(limiter, log, "first", 1, True, fail_first=[1]))
    await asyncio.sleep(0.05)
    others = [asyncio.create_task(_request(limiter, log, f"x{i}", 10 + i, i % 2 == 0))
              for i in range(10)]  # fmt: skip
    await asyncio.gather(first, *others)
    refused_at = log[0][1]
    later = [t for _, t in log[1:]]
    assert len(log) == 12 and limiter.stats.retry_after == 1
    assert min(later) >= refused_at + 1.0, "no request before retry_after has passed"


# --- the sender against the local Bot API server ----------------------------------------------


def make_app(server: LocalBotAPI, tmp_path: Path, rate: float = 250.0) -> Application:
    config = dataclasses.replace(
        Config(), api_base_url=server.base_url, db_path=tmp_path / "bot.sqlite3", outbox_rate=rate
    )
    return build_application(config, Storage(config.db_path), token=TOKEN, outbox_sender=False)


def parts(app: Application) -> tuple[Outbox, OutboxSender]:
    svc = app.bot_data["services"]
    return svc.outbox, svc.sender


@pytest.fixture
async def running() -> AsyncIterator[list]:
    """Apps started by a test; shut down afterwards."""
    apps: list = []
    yield apps
    for app in apps:
        await parts(app)[1].stop()
        await app.shutdown()
        app.bot_data["services"].storage.close()


async def start(app: Application, running: list, **options: object) -> OutboxSender:
    sender = parts(app)[1]
    for name, value in options.items():
        setattr(sender, name, value)
    await app.initialize()
    running.append(app)
    await sender.start()
    return sender


def delivered(server: LocalBotAPI) -> Counter:
    """Text of every bot message in every chat -> how many times it arrived."""
    return Counter(
        m.text for chat_id in {s.chat_id for s in server.sent} for m in server.bot_messages(chat_id)
    )


def test_install_wires_limiter_sender_and_hooks(tmp_path: Path) -> None:
    config = dataclasses.replace(Config(), db_path=tmp_path / "bot.sqlite3")
    app = build_application(config, token=TOKEN)
    svc = app.bot_data["services"]
    assert isinstance(app.bot.rate_limiter, OutboxRateLimiter)
    assert app.bot.rate_limiter.overall_rate == 30 and app.bot.rate_limiter.outbox_rate == 30
    assert isinstance(svc.outbox, Outbox) and svc.sender.bot is app.bot
    # The sender starts and stops under the single-sender lock (a GuardedSender in bot.locks).
    assert isinstance(svc.sender_lock, GuardedSender)
    assert svc.sender_lock.lock.name == "outbox-sender"
    quiet = build_application(config, token=TOKEN, outbox_sender=False)
    assert quiet.bot_data["services"].sender_lock is None  # no lease taken, sender not started
    assert quiet.bot_data["services"].sender.bot is quiet.bot


@pytest.mark.slow
async def test_2000_messages_delivered_exactly_once(tmp_path: Path, running: list) -> None:
    async with LocalBotAPI(rate_limit=300) as server:
        for chat_id in range(1, 2001):
            server.add_user(chat_id)
        app = make_app(server, tmp_path, rate=250)
        outbox, _ = parts(app)
        outbox.enqueue_many(item(c, f"m{c}", f"<b>Reminder</b> {c}") for c in range(1, 2001))
        sender = await start(app, running)
        assert await sender.wait_idle(timeout=40)
        assert sorted(s.chat_id for s in server.sent) == list(range(1, 2001))
        assert server.stats.early_retries == 0
        assert outbox.status()["broadcast"]["sent"] == 2000
        row = outbox.get("m77")
        [message] = server.bot_messages(77)
        assert row["message_id"] == message.message_id and row["attempts"] == 1
        assert message.text == "<b>Reminder</b> 77" and row["sent_at"] is not None


@pytest.mark.slow
async def test_429_honoured_without_early_retries(tmp_path: Path, running: list) -> None:
    async with LocalBotAPI(rate_limit=60) as server:
        for chat_id in range(1, 401):
            server.add_user(chat_id)
        app = make_app(server, tmp_path, rate=120)  # twice the server's limit: 429s happen
        outbox, _ = parts(app)
        outbox.enqueue_many(item(c, f"m{c}") for c in range(1, 401))
        sender = await start(app, running)
        assert await sender.wait_idle(timeout=40)
        assert server.stats.rate_limited > 0, "the test must provoke flood control"
        assert server.stats.early_retries == 0
        assert app.bot.rate_limiter.stats.retry_after == server.stats.rate_limited
        assert delivered(server) == Counter({f"m{c}": 1 for c in range(1, 401)})


async def test_blocked_and_unknown_chats_become_unreachable(tmp_path: Path, running: list) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        for chat_id in range(1, 21):
            server.add_user(chat_id)
        server.block(3)
        server.deactivate(4)
        app = make_app(server, tmp_path, rate=100)
        outbox, _ = parts(app)
        storage = outbox.storage
        for chat_id in (3, 4):
            storage.touch_user(chat_id, "en")
        # three messages each for chats 1, 3, 4 and 999 (unknown to Telegram); one for the rest
        outbox.enqueue_many(item(c, f"m{c}-{n}") for c in (1, 3, 4, 999) for n in range(3))
        outbox.enqueue_many(item(c, f"m{c}-0") for c in range(5, 21))
        sender = await start(app, running)
        assert await sender.wait_idle(timeout=20)
        requests = Counter(params.get("chat_id") for method, params in server.requests
                           if method == "sendMessage")  # fmt: skip
        assert requests[3] == requests[4] == requests[999] == 1, "no request after the refusal"
        assert storage.get_user(3)["blocked"] == 1 and storage.get_user(4)["blocked"] == 1
        for chat_id in (3, 4, 999):
            states = {outbox.get(f"m{chat_id}-{n}")["state"] for n in range(3)}
            assert states == {"unreachable"}
        errors = [outbox.get(f"m3-{n}")["last_error"] for n in range(3)]
        assert sum("blocked by the user" in e for e in errors) == 1, errors
        assert outbox.status()["broadcast"]["sent"] == 3 + 16
        # per chat: one message per second
        times = [s.time for s in server.sent if s.chat_id == 1]
        assert len(times) == 3 and all(b - a >= 0.95 for a, b in zip(times, times[1:], strict=False))
        # later messages to a blocked chat are never requested
        outbox.enqueue(3, "reminder", "later", text("x"))
        assert await sender.wait_idle(timeout=5)
        assert outbox.get("later")["state"] == "unreachable"
        assert sum(1 for m, p in server.requests if p.get("chat_id") == 3) == 1


@pytest.mark.slow
async def test_5xx_and_timeouts_are_retried(tmp_path: Path, running: list) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        for chat_id in range(1, 301):
            server.add_user(chat_id)
        server.faults = FaultPlan(
            rate=0.2, kinds=("500", "502", "timeout"), methods={"sendMessage"}, timeout_delay=0.6
        )
        app = make_app(server, tmp_path, rate=200)
        outbox, _ = parts(app)
        outbox.enqueue_many(item(c, f"m{c}") for c in range(1, 301))
        sender = await start(app, running, backoff_base=0.05, max_attempts=8, send_timeout=0.3)
        assert await sender.wait_idle(timeout=40)
        assert delivered(server) == Counter({f"m{c}": 1 for c in range(1, 301)})
        assert server.stats.faults["500"] + server.stats.faults["502"] > 0
        assert server.stats.faults["timeout"] > 0 and sender.stats.errors.get("TimedOut", 0) > 0
        attempts = Counter(outbox.get(f"m{c}")["attempts"] for c in range(1, 301))
        assert sum(n for a, n in attempts.items() if a > 1) > 0
        assert outbox.status()["broadcast"]["sent"] == 300


async def test_gives_up_after_max_attempts_then_retry(tmp_path: Path, running: list) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(1)
        server.add_user(2)
        server.faults = FaultPlan(rate=1.0, kinds=("500",), methods={"sendMessage"})
        app = make_app(server, tmp_path)
        outbox, _ = parts(app)
        outbox.enqueue(1, "reminder", "r1", text("x"))
        outbox.enqueue(2, "reminder", "bad", text("<b>unclosed"))
        sender = await start(app, running, backoff_base=0.02, max_attempts=3)
        assert await sender.wait_idle(timeout=10)
        row = outbox.get("r1")
        assert row["state"] == "failed" and row["attempts"] == 3
        assert "Internal Server Error" in row["last_error"]
        server.faults = None
        assert outbox.retry_failed("reminder") == 2
        assert await sender.wait_idle(timeout=10)
        assert outbox.get("r1")["state"] == "sent"
        bad = outbox.get("bad")
        assert bad["state"] == "failed" and bad["attempts"] == 1, "a 400 is not retried"


async def test_sender_wakes_on_enqueue_and_polls_other_processes(
    tmp_path: Path, running: list
) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.add_user(1)
        server.add_user(2)
        app = make_app(server, tmp_path)
        outbox, _ = parts(app)
        sender = await start(app, running, poll_interval=30.0)
        await asyncio.sleep(0.2)
        # poll_interval is 30 s: a send within 10 s can only come from the in-process wake-up
        outbox.enqueue(1, "reminder", "in-process", text("now"))
        await server.wait_until(lambda: len(server.sent) == 1, timeout=10)
        await sender.stop()
        sender.poll_interval = 1.0
        await sender.start()
        await asyncio.sleep(0.3)
        other = Storage(tmp_path / "bot.sqlite3")  # e.g. the CLI, another connection
        Outbox(other).enqueue(2, "broadcast", "other-process", text("later"))
        other.close()
        await server.wait_until(lambda: len(server.sent) == 2, timeout=3)


async def test_interactive_reply_does_not_wait_for_the_outbox(tmp_path: Path) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        for chat_id in range(1, 301):
            server.add_user(chat_id)
        config = dataclasses.replace(
            Config(), api_base_url=server.base_url, db_path=tmp_path / "bot.sqlite3",
            outbox_rate=20,
        )  # fmt: skip
        app = build_application(config, token=TOKEN)
        outbox, sender = parts(app)
        outbox.enqueue_many(item(c, f"m{c}") for c in range(1, 301))
        from bot.app import start_application, stop_application

        await start_application(app)
        stopped = False
        try:
            await server.wait_until(lambda: len(server.sent) >= 20)
            started = time.monotonic()
            await server.send_text(5000, "/start")
            await server.wait_for_bot_message(5000)
            latency = time.monotonic() - started
            backlog = 300 - len([s for s in server.sent if s.chat_id <= 300])
            assert backlog > 100, "the outbox was still draining"
            assert latency < 0.5, f"the reply took {latency:.2f} s"
            await stop_application(app)
            stopped = True
            assert not sender.running
            assert outbox.status()["broadcast"]["sending"] == 0, "stop() requeues claimed rows"
        finally:
            if not stopped:
                await stop_application(app)
            app.bot_data["services"].storage.close()


def test_cli_status_and_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    db = tmp_path / "bot.sqlite3"
    storage = Storage(db)
    outbox = Outbox(storage)
    outbox.enqueue_many([item(i, f"b{i}") for i in range(3)])
    outbox.enqueue(9, "reminder", "r9", text("x"))
    rows, _ = outbox.claim(10)
    for row in rows:
        if row.dedupe_key in ("b0", "r9"):
            outbox.mark_failed(row.id, "NetworkError")
        else:
            outbox.mark_sent(row.id, 1)
    storage.close()
    monkeypatch.setenv("BOT_DB", str(db))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert cli_main(["outbox", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == ["kind", "queued", "sending", "sent", "failed", "unreachable", "cancelled"]
    table = {line.split()[0]: line.split()[1:] for line in lines[1:4]}
    assert table["broadcast"] == ["0", "0", "2", "1", "0", "0"]
    assert table["reminder"] == ["0", "0", "0", "1", "0", "0"]
    assert table["total"] == ["0", "0", "2", "2", "0", "0"]
    assert cli_main(["outbox", "retry", "--kind", "reminder"]) == 0
    assert capsys.readouterr().out.strip() == "requeued 1 failed reminder row"
    assert cli_main(["outbox", "retry"]) == 0
    assert capsys.readouterr().out.strip() == "requeued 1 failed row"
    assert cli_main(["outbox", "drain"]) == 2, "drain needs a token"
