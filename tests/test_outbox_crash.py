"""Crash safety: kill -9 the process draining the outbox, restart it, lose nothing.

The local Bot API server runs in the test's event loop; the sender is a real subprocess
(``python -m bot outbox drain --until-empty``) talking to it over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bot.config import PROJECT_DIR
from bot.localapi.server import LocalBotAPI
from bot.outbox import Outbox
from bot.storage import Storage
from tests import procs

WORKERS = 8
MESSAGES = 1200
CHATS = 400  # three messages per chat: the per-chat pacing is exercised too


async def _spawn(server: LocalBotAPI, db: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "123456:crash-test-token",
        "TELEGRAM_API_BASE_URL": server.base_url,
        "BOT_DB": str(db),
        "OUTBOX_RATE": "150",
        "PYTHONPATH": str(PROJECT_DIR),
    }
    env.pop("WEBHOOK_URL", None)
    return await procs.spawn(
        sys.executable, "-m", "bot", "outbox", "drain", "--until-empty",
        "--workers", str(WORKERS), "--horizon", "30",
        cwd=str(PROJECT_DIR), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
async def test_kill_9_mid_run_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    storage = Storage(db)
    outbox = Outbox(storage)
    outbox.enqueue_many(
        {"chat_id": 1 + i % CHATS, "kind": "broadcast", "dedupe_key": f"m{i}",
         "payload": {"type": "text", "text": f"message {i}"}, "group_ref": "b1"}
        for i in range(MESSAGES)
    )  # fmt: skip
    async with LocalBotAPI(rate_limit=300) as server:
        for chat_id in range(1, CHATS + 1):
            server.add_user(chat_id)
        kills = []
        for kill_at in (250, 650):
            proc = await _spawn(server, db)
            await server.wait_until(lambda n=kill_at: len(server.sent) >= n, timeout=30)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills.append(len(server.sent))
            progress = outbox.group_progress("b1")
            assert progress["queued"] + progress["sending"] > 0, "killed mid-run"
        proc = await _spawn(server, db)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]

        texts = Counter(
            m.text for chat_id in range(1, CHATS + 1) for m in server.bot_messages(chat_id)
        )
        assert set(texts) == {f"message {i}" for i in range(MESSAGES)}, "every message arrived"
        duplicates = sum(texts.values()) - MESSAGES
        print(f"kills at {kills} sends: {duplicates} duplicates")
        assert duplicates <= WORKERS * len(kills), f"{duplicates} duplicates after {kills}"
        assert outbox.group_progress("b1")["sent"] == MESSAGES
        assert server.stats.early_retries == 0
    storage.close()
