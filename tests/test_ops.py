"""Operations: webhook server and /healthz, single-sender lock, per-update logs, backup, stats."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.app import build_application, start_application, stop_application
from bot.config import PROJECT_DIR, Config
from bot.localapi.server import LocalBotAPI
from bot.locks import GuardedSender, SenderLock
from bot.logs import JsonFormatter, RedactingFilter, chat_hash, deployment_salt
from bot.metrics import metrics_for
from bot.storage import Storage
from bot.web import WebhookServer

SECRET = "s3cret-Webhook_token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class WebhookBot:
    server: LocalBotAPI
    app: object
    web: WebhookServer
    storage: Storage
    base: str  # http://127.0.0.1:<port>
    log: io.StringIO


@pytest.fixture
async def webhook_bot(local_api: LocalBotAPI, tmp_path: Path) -> AsyncIterator[WebhookBot]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    config = dataclasses.replace(
        Config(),
        api_base_url=local_api.base_url,
        db_path=tmp_path / "bot.sqlite3",
        webhook_url=url,
        webhook_secret=SECRET,
        port=port,
    )
    storage = Storage(config.db_path)
    app = build_application(config, storage)
    # Capture the per-update log lines as the JSON formatter writes them.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(app.bot.token, SECRET))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.updates")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    web = WebhookServer(app, url, SECRET, host="127.0.0.1", port=port)
    await start_application(app, poll=False)
    await web.start()
    try:
        yield WebhookBot(local_api, app, web, storage, f"http://127.0.0.1:{port}", stream)
    finally:
        await web.stop()
        await stop_application(app)
        storage.close()
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _update(update_id: int, user_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "X"},
            "from": {"id": user_id, "is_bot": False, "first_name": "X", "language_code": "en"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def test_webhook_start_is_answered(webhook_bot: WebhookBot) -> None:
    server = webhook_bot.server
    assert server.webhook_url == webhook_bot.web.url  # setWebhook was called with our URL
    assert server.calls("setWebhook")[-1]["secret_token"] == SECRET
    await server.send_text(4242, "/start", language_code="en")
    replies = await server.wait_for_bot_messages(4242, 1)
    assert replies and replies[0].text
    assert server.stats.webhook_deliveries >= 1
    assert webhook_bot.storage.get_user(4242) is not None  # processed by the real handlers


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}])
async def test_webhook_refuses_missing_or_wrong_secret(
    webhook_bot: WebhookBot, headers: dict
) -> None:
    metrics = metrics_for(webhook_bot.app)
    before = metrics.snapshot()["updates_in"]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            webhook_bot.base + "/telegram/hook", json=_update(9001, 5151, "/start"), headers=headers
        ) as resp:
            assert resp.status == 403
    await asyncio.sleep(0.3)
    assert webhook_bot.server.calls("sendMessage") == [] or all(
        c.get("chat_id") not in (5151, "5151") for c in webhook_bot.server.calls("sendMessage")
    )
    assert webhook_bot.storage.get_user(5151) is None
    assert metrics.snapshot()["updates_in"] == before
    assert metrics.snapshot()["webhook_rejected"] >= 1
    # The right secret on the same request is accepted and processed.
    async with aiohttp.ClientSession() as http:
        async with http.post(
            webhook_bot.base + "/telegram/hook",
            json=_update(9002, 5151, "/start"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as resp:
            assert resp.status == 200
    await webhook_bot.server.wait_until(lambda: webhook_bot.storage.get_user(5151))


async def test_healthz_ok_then_503_when_database_unreachable(webhook_bot: WebhookBot) -> None:
    server = webhook_bot.server
    await server.send_text(77, "/start")
    await server.wait_for_bot_messages(77, 1)
    async with aiohttp.ClientSession() as http:
        async with http.get(webhook_bot.base + "/healthz") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["ok"] is True and body["database"] is True and body["scheduler"] is True
        assert body["outbox"] == {"backlog": 0, "oldest_queued_age_s": 0.0}
        assert body["sender"]["state"] == "running"
        assert body["sender"]["lock_owner"] == body["sender"]["owner"]
        assert body["counters"]["updates_in"] >= 1 and body["counters"]["messages_out"] >= 1
        webhook_bot.storage.db.conn.close()  # the database goes away
        async with http.get(webhook_bot.base + "/healthz") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body["ok"] is False and body["database"] is False and body["scheduler"] is True


async def test_update_log_lines_hash_the_chat_and_hide_the_text(webhook_bot: WebhookBot) -> None:
    server = webhook_bot.server
    user = 987654321
    await server.send_text(user, "/start")
    await server.wait_for_bot_messages(user, 1)
    await server.send_text(user, "my salary is 3456.78 ringgit")
    await server.wait_for_bot_messages(user, 1)
    await asyncio.sleep(0.1)
    lines = [json.loads(line) for line in webhook_bot.log.getvalue().splitlines()]
    updates = [line for line in lines if line.get("event") == "update"]
    assert len(updates) >= 2
    expected = chat_hash(user, deployment_salt(webhook_bot.app.bot.token))
    assert len(expected) == 12
    for line in updates:
        assert isinstance(line["update_id"], int)
        assert line["chat"] == expected
        assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert updates[0]["handler"] == "start.start"
    assert updates[1]["handler"] not in ("none", "start.start")
    raw = webhook_bot.log.getvalue()
    assert str(user) not in raw
    assert "3456" not in raw and "ringgit" not in raw and "my salary" not in raw


# --- the single-sender lock -------------------------------------------------------------------


def test_sender_lock_one_holder_expiry_and_release(tmp_path: Path) -> None:
    a_store, b_store = Storage(tmp_path / "db.sqlite3"), Storage(tmp_path / "db.sqlite3")
    try:
        a, b = SenderLock(a_store, ttl=30), SenderLock(b_store, ttl=30)
        assert a.owner != b.owner
        now = datetime.now(UTC)
        assert a.acquire(now) is True
        assert b.acquire(now + timedelta(seconds=1)) is False
        assert b.holder()["owner"] == a.owner
        assert a.acquire(now + timedelta(seconds=2)) is True  # re-entrant for the owner
        assert a.refresh(now + timedelta(seconds=10)) is True
        # Not yet expired (refresh moved the expiry to now+40 s): b still refuses.
        assert b.acquire(now + timedelta(seconds=35)) is False
        # Expired: b takes over, a's refresh and release now fail.
        assert b.acquire(now + timedelta(seconds=41)) is True
        assert b.holder()["owner"] == b.owner
        assert a.refresh(now + timedelta(seconds=42)) is False
        assert a.release() is False
        assert b.release() is True
        assert a.holder() is None
        assert a.acquire() is True
    finally:
        a_store.close()
        b_store.close()


async def test_guarded_sender_standby_logs_and_takes_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores = [Storage(tmp_path / "db.sqlite3"), Storage(tmp_path / "db.sqlite3")]
    events: list[str] = []

    def guard(i: int) -> GuardedSender:
        async def start() -> None:
            events.append(f"start{i}")

        async def stop() -> None:
            events.append(f"stop{i}")

        return GuardedSender(SenderLock(stores[i], ttl=3), start, stop, interval=0.05)

    first, second = guard(0), guard(1)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.locks"):
            assert await first.start() is True
            assert await second.start() is False
        assert first.state == "running" and second.state == "standby"
        assert events == ["start0"]
        refusal = [r.getMessage() for r in caplog.records if "will not send" in r.getMessage()]
        assert len(refusal) == 1
        assert f"owner {first.lock.owner}" in refusal[0]
        await asyncio.sleep(0.2)  # heartbeats: the second stays in standby, silently
        assert second.state == "standby" and events == ["start0"]
        assert len([r for r in caplog.records if "will not send" in r.getMessage()]) == 1
        await first.stop()  # clean stop releases the lock: the standby takes over
        for _ in range(50):
            if second.state == "running":
                break
            await asyncio.sleep(0.05)
        assert second.state == "running"
        assert events == ["start0", "stop0", "start1"]
    finally:
        await first.stop()
        await second.stop()
        for store in stores:
            store.close()
    assert events[-1] == "stop1"


async def test_second_bot_process_does_not_start_the_outbox_sender(
    local_api: LocalBotAPI, tmp_path: Path
) -> None:
    config = dataclasses.replace(
        Config(), api_base_url=local_api.base_url, db_path=tmp_path / "db.sqlite3"
    )
    apps, stores = [], []
    try:
        for _ in range(2):
            store = Storage(config.db_path)
            app = build_application(config, store)
            guard = app.bot_data["services"].sender_lock
            assert isinstance(guard, GuardedSender) and guard.state == "stopped"
            stores.append(store)
            apps.append(app)
            await start_application(app)
        senders = [a.bot_data["services"].sender for a in apps]
        assert senders[0].running and not senders[1].running
        assert apps[1].bot_data["services"].sender_lock.state == "standby"
        # The second process still answers users.
        await local_api.send_text(31, "/start")
        assert await local_api.wait_for_bot_messages(31, 1)
    finally:
        for app in apps:
            await stop_application(app)
        for store in stores:
            store.close()


# --- backup and stats (the real CLI) ------------------------------------------------------------


def _cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "WEBHOOK_URL")}
    env["BOT_DB"] = str(db)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_backup_of_a_live_database(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite3"
    Storage(db).close()
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=5, isolation_level=None)
        try:
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                for _ in range(20):
                    written[0] += 1
                    conn.execute(
                        "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, 'en', 'x', 'x')",
                        [written[0]],
                    )
                conn.execute("COMMIT")
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 200:
            time.sleep(0.01)
        result = _cli("backup", str(tmp_path / "copy.sqlite3"), db=db)
        at_end = written[0]
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    size = (tmp_path / "copy.sqlite3").stat().st_size
    assert (
        result.stdout.strip()
        == f"backup written to {tmp_path / 'copy.sqlite3'} ({size} bytes, integrity ok)"
    )
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = copy.execute("SELECT count(*) FROM users").fetchone()[0]
        ids = [r[0] for r in copy.execute("SELECT chat_id FROM users ORDER BY chat_id")]
    finally:
        copy.close()
    # A snapshot: whole transactions only, rows 1..n without holes, taken during the writes.
    assert count % 20 == 0 and 200 <= count <= at_end
    assert ids == list(range(1, count + 1))
    assert not (tmp_path / "copy.sqlite3-wal").exists()

    again = _cli("backup", str(tmp_path / "copy.sqlite3"), db=db)
    assert again.returncode == 2 and "--force" in again.stderr and again.stdout == ""
    assert len(again.stderr.strip().splitlines()) == 1
    forced = _cli("backup", "--force", str(tmp_path / "copy.sqlite3"), db=db)
    assert forced.returncode == 0 and "integrity ok" in forced.stdout
    bad = _cli("backup", str(tmp_path / "missing-folder" / "b.sqlite3"), db=db)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_stats_command(tmp_path: Path) -> None:
    db = tmp_path / "stats.sqlite3"
    store = Storage(db)
    try:
        codes = ["ms", "ms-MY", "zh-hans", "en", "fr", None, "zh-hant"]  # -> ms 2, zh 2, en 3
        for i, code in enumerate(codes, start=1):
            store.touch_user(i, code)
        store.set_blocked(7)
        now = "2026-01-01T00:00:00+00:00"
        with store.transaction():
            store.db.execute(
                "INSERT INTO agencies (code, name, created_at) VALUES ('kl', 'KL Helpers', ?)",
                [now],
            )
            store.db.execute(
                "INSERT INTO agencies (code, name, created_at) VALUES ('pg', 'Penang Aid', ?)",
                [now],
            )
            for chat in (1, 2, 3):
                store.db.execute(
                    "INSERT INTO follows (agency, chat_id, created_at) VALUES ('kl', ?, ?)",
                    [chat, now],
                )
            for chat in (1, 2, 7):  # 7 blocked the bot: not counted as active
                store.db.execute(
                    "INSERT INTO reminder_subs (chat_id, since, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    [chat, now, now, now],
                )
    finally:
        store.close()
    text = _cli("stats", db=db)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "Users by language" in out and "Followers by agency" in out and "Outbox" in out
    assert [line.split() for line in out.splitlines()[2:5]] == [
        ["en", "3"],
        ["ms", "2"],
        ["zh", "2"],
    ]
    assert any(line.split() == ["kl", "KL", "Helpers", "3"] for line in out.splitlines())
    assert any(line.split() == ["pg", "Penang", "Aid", "0"] for line in out.splitlines())
    as_json = _cli("stats", "--json", db=db)
    data = json.loads(as_json.stdout)
    assert data["users"] == {"by_language": {"en": 3, "ms": 2, "zh": 2}, "total": 7, "blocked": 1}
    assert data["reminders"]["active_subscriptions"] == 2
    assert data["outbox"]["backlog"] == 0 and sum(data["outbox"]["by_state"].values()) == 0


def test_lock_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that no longer runs
    store = Storage(tmp_path / "db.sqlite3")
    try:
        dead = SenderLock(store, owner=f"{socket.gethostname()}:{proc.pid}:abc123")
        other_host = SenderLock(store, owner=f"elsewhere.example:{proc.pid}:abc123")
        live = SenderLock(store)
        assert other_host.acquire() is True
        assert live.acquire() is False  # another host: only expiry frees it
        store.db.execute("DELETE FROM locks")
        assert dead.acquire() is True
        assert live.acquire() is True  # same host, process gone: no need to wait for expiry
        assert live.holder()["owner"] == live.owner
    finally:
        store.close()
