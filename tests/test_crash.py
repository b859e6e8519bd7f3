"""Crash and deploy safety of the real bot: ``python -m bot run`` killed and restarted.

The local Bot API server runs in the test's event loop and counts every delivery per chat; the
bot is a real subprocess polling it over HTTP. A broadcast of 5,000 messages (queued with the
``broadcast`` command) and a reminder run (queued with ``reminders send-due``) are delivered while
the bot is killed with SIGKILL at seeded random moments and restarted each time, or stopped with
SIGTERM as a deploy does. Expected (bot/outbox.py's promise): every recipient gets the message,
a kill duplicates at most ``workers`` (8) messages, a SIGTERM none, and nothing stays ``sending``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import PROJECT_DIR
from bot.domain.deadlines import KL, deadline
from bot.localapi.server import LocalBotAPI
from bot.storage import Storage
from tests import procs

WORKERS = 8  # bot.app.OUTBOX_WORKERS: the in-flight bound per crash
# SIGKILLs per run: 3 in the default suite; bench/crash.py runs the full 20 (CRASH_KILLS=20).
KILLS = int(os.environ.get("CRASH_KILLS", "3"))
HANG = 120  # seconds before a wait is declared hung (a guard, not a speed target)
TOKEN = "123456:crash-test-token"
LANGS = ("en", "ms", "zh")
TEXTS = {
    "en": "Contribution rates change on 1 December. Check your payroll.",
    "ms": "Kadar caruman berubah pada 1 Disember. Semak gaji anda.",
}


def _env(server: LocalBotAPI, db: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": server.base_url,
        "BOT_DB": str(db),
        "OUTBOX_RATE": "1000",
        "PYTHONPATH": str(PROJECT_DIR),
    }
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "PORT"):
        env.pop(name, None)
    return env


async def _spawn_bot(server: LocalBotAPI, db: Path) -> asyncio.subprocess.Process:
    return await procs.spawn(
        sys.executable, "-m", "bot", "run",
        cwd=str(PROJECT_DIR), env=_env(server, db),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _cli(server: LocalBotAPI, db: Path, *args: str) -> str:
    proc = await procs.spawn(
        sys.executable, "-m", "bot", *args,
        cwd=str(PROJECT_DIR), env=_env(server, db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=HANG)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


def _insert_users(db: Path, server: LocalBotAPI, chats: range) -> dict[int, str]:
    """Users of the bot in three languages, known to the server; returns chat -> language."""
    storage = Storage(db)
    langs = {chat: LANGS[chat % 3] for chat in chats}
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with storage.transaction():
        storage.db.conn.executemany(
            "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            [(chat, lang, stamp, stamp) for chat, lang in langs.items()],
        )
    storage.close()
    for chat, lang in langs.items():
        server.add_user(chat, language_code=lang)
    return langs


def _states(db: Path, kind: str) -> Counter[str]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return Counter(
            dict(conn.execute("SELECT state, count(*) FROM outbox WHERE kind = ? GROUP BY state", [kind]))
        )
    finally:
        conn.close()


def _sending_chats(db: Path, kind: str) -> set[int]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return {c for (c,) in conn.execute(
            "SELECT chat_id FROM outbox WHERE kind = ? AND state = 'sending'", [kind])}
    finally:
        conn.close()


def _payload_texts(db: Path, kind: str) -> dict[int, str]:
    import json

    conn = sqlite3.connect(db, timeout=5)
    try:
        return {c: json.loads(p)["text"] for c, p in conn.execute(
            "SELECT chat_id, payload FROM outbox WHERE kind = ?", [kind])}
    finally:
        conn.close()


async def _drained(server: LocalBotAPI, db: Path, kind: str, timeout: float) -> None:
    deadline_at = time.monotonic() + timeout
    while time.monotonic() < deadline_at:
        states = _states(db, kind)
        if states and states["queued"] + states["sending"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"outbox not drained in {timeout} s: {dict(_states(db, kind))}")


async def _stop(proc: asyncio.subprocess.Process) -> int:
    """SIGTERM, as a deploy does; returns the exit status."""
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = await asyncio.wait_for(proc.communicate(), timeout=HANG)
    assert proc.returncode == 0, err.decode()[-3000:]
    print(f"\nSIGTERM to exit: {time.monotonic() - started:.2f} s (target < 5 s, see bench/crash.py)")
    return proc.returncode


async def _kill_loop(
    server: LocalBotAPI, db: Path, kind: str, total: int, kills: int, rng: random.Random,
    proc: asyncio.subprocess.Process | None = None,
) -> tuple[asyncio.subprocess.Process, list[int]]:
    """Kill the bot with SIGKILL ``kills`` times at random delivery counts, restarting it each
    time; returns the last (running) process and, per kill, how many rows it left ``sending``
    after delivering them (the duplicates that kill causes)."""
    start = len(server.sent)
    marks = sorted(rng.sample(range(total // 40, total - total // 40), kills))
    unrecorded = []
    for mark in marks:
        if proc is None:
            proc = await _spawn_bot(server, db)
        begun = len(server.sent)
        await server.wait_until(lambda m=mark: len(server.sent) - start >= m, timeout=HANG)
        await asyncio.sleep(rng.uniform(0, 0.03))  # anywhere between two deliveries
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        proc = None
        await asyncio.sleep(0.05)  # requests already on the wire reach the server
        delivered = {r.chat_id for r in server.sent[begun:]}
        unrecorded.append(len(_sending_chats(db, kind) & delivered))
        states = _states(db, kind)
        assert states["queued"] + states["sending"] > 0, f"killed mid-run: {dict(states)}"
    proc = await _spawn_bot(server, db)
    return proc, unrecorded


def _copies(server: LocalBotAPI, chats: range) -> Counter[int]:
    wanted = set(chats)
    return Counter(r.chat_id for r in server.sent if r.chat_id in wanted)


@pytest.mark.slow
async def test_sigkill_during_a_5000_broadcast(tmp_path: Path) -> None:
    total, kills = 5000, KILLS
    db = tmp_path / "bot.sqlite3"
    chats = range(10_001, 10_001 + total)
    rng = random.Random(20261125)
    async with LocalBotAPI(rate_limit=None, seed=7) as server:
        langs = _insert_users(db, server, chats)
        (tmp_path / "en.txt").write_text(TEXTS["en"], encoding="utf-8")
        (tmp_path / "ms.txt").write_text(TEXTS["ms"], encoding="utf-8")
        out = await _cli(server, db, "broadcast", "--all", "--text-file", str(tmp_path / "en.txt"),
                         "--lang-file", f"ms={tmp_path / 'ms.txt'}", "--yes")
        assert f"{total} messages queued" in out
        started = time.monotonic()
        proc, unrecorded = await _kill_loop(server, db, "broadcast", total, kills, rng)
        await _drained(server, db, "broadcast", timeout=HANG)
        assert await _stop(proc) == 0
        elapsed = time.monotonic() - started

        states = _states(db, "broadcast")
        assert states == Counter({"sent": total}), dict(states)  # nothing stuck "sending"
        copies = _copies(server, chats)
        assert set(copies) == set(chats), "every recipient got the broadcast"
        duplicates = sum(copies.values()) - total
        print(f"\nbroadcast of {total}: {kills} SIGKILLs in {elapsed:.1f} s, {duplicates} duplicates "
              f"(per kill {unrecorded}, bound {WORKERS} per kill)")
        assert max(unrecorded) <= WORKERS, unrecorded
        assert duplicates == sum(unrecorded) <= WORKERS * kills
        # Each chat got its language's version (Chinese users fall back to English), every copy equal.
        for chat in chats:
            texts = {m.text for m in server.bot_messages(chat)}
            assert texts == {TEXTS["ms"] if langs[chat] == "ms" else TEXTS["en"]}, chat
        assert server.stats.early_retries == 0


@pytest.mark.slow
async def test_sigkill_during_a_reminder_run_and_sigterm_mid_broadcast(tmp_path: Path) -> None:
    """Reminders: KILLS kills while the running bot delivers what ``reminders send-due`` queued.
    Then a deploy: SIGTERM mid-broadcast exits 0 with nothing ``sending``; the restart finishes
    it with exactly one copy each."""
    subscribers, kills = 2000, KILLS
    db = tmp_path / "bot.sqlite3"
    chats = range(20_001, 20_001 + subscribers)
    rng = random.Random(4242)
    async with LocalBotAPI(rate_limit=None, seed=11) as server:
        _insert_users(db, server, chats)
        # Reminders at an hour the real clock cannot reach during the test (so the bot's own
        # minute job enqueues nothing), for the "3 days before the deadline" moment of this month.
        hour = (datetime.now(KL).hour + 12) % 24
        storage = Storage(db)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with storage.transaction():
            storage.db.conn.executemany(
                "INSERT INTO reminder_subs (chat_id, enabled, hour, since, created_at, updated_at) "
                "VALUES (?, 1, ?, ?, ?, ?)",
                [(chat, hour, stamp, stamp, stamp) for chat in chats],
            )
        storage.close()
        today = datetime.now(KL)
        due_day = deadline(today.year, today.month) - timedelta(days=3)
        now_arg = datetime(due_day.year, due_day.month, due_day.day, hour, tzinfo=KL).isoformat()

        out = await _cli(server, db, "reminders", "send-due", "--now", now_arg)
        assert out.strip() == f"enqueued {subscribers} reminders"
        # Read the texts before the bot starts: a sent row keeps no text (privacy).
        expected = _payload_texts(db, "reminder")
        proc = await _spawn_bot(server, db)
        proc, unrecorded = await _kill_loop(server, db, "reminder", subscribers, kills, rng, proc)
        await _drained(server, db, "reminder", timeout=HANG)
        assert _states(db, "reminder") == Counter({"sent": subscribers})
        copies = _copies(server, chats)
        assert set(copies) == set(chats), "every subscriber got the reminder"
        duplicates = sum(copies.values()) - subscribers
        print(f"\nreminders to {subscribers}: {kills} SIGKILLs, {duplicates} duplicates "
              f"(per kill {unrecorded}, bound {WORKERS} per kill)")
        assert max(unrecorded) <= WORKERS and duplicates == sum(unrecorded)
        for chat in chats:
            assert {m.text for m in server.bot_messages(chat)} == {expected[chat]}, chat

        # A deploy: SIGTERM while a broadcast to the same users is half-way.
        before = len(server.sent)
        (tmp_path / "en.txt").write_text(TEXTS["en"], encoding="utf-8")
        out = await _cli(server, db, "broadcast", "--all", "--text-file", str(tmp_path / "en.txt"), "--yes")
        assert f"{subscribers} messages queued" in out
        await server.wait_until(lambda: len(server.sent) - before >= subscribers // 2, timeout=HANG)
        await _stop(proc)  # exit status 0: PTB's SIGTERM handler stopped it cleanly
        states = _states(db, "broadcast")
        assert states["sending"] == 0 and states["queued"] > 0, dict(states)
        assert states["sent"] == len(server.sent) - before, "every delivery was recorded"
        proc = await _spawn_bot(server, db)
        await _drained(server, db, "broadcast", timeout=HANG)
        await _stop(proc)
        assert _states(db, "broadcast") == Counter({"sent": subscribers})
        broadcast = Counter(r.chat_id for r in server.sent[before:])
        assert broadcast == Counter(dict.fromkeys(chats, 1)), "exactly one copy each after SIGTERM"
