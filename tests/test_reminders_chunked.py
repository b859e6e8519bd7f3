"""Reminders read and enqueued in chunks give exactly what one big read gives.

``iter_due_reminders`` / ``send_due(chunk=...)`` / ``send_due_async`` against the same data as
one unchunked pass: the same reminders, the same outbox rows, the same recorded state, over
hour slots, snoozes, paid months, blocked users and saved workers.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.deadlines import KL, mask_from_days
from bot.outbox import Outbox
from bot.reminders import (
    ReminderStore,
    due_reminders,
    iter_due_reminders,
    send_due,
    send_due_async,
)
from bot.storage import Storage

SUBSCRIBERS = 90


def kl(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KL)


def populate(storage: Storage, seed: int = 5) -> None:
    rng = random.Random(seed)
    store = ReminderStore(storage)
    for chat_id in range(1, SUBSCRIBERS + 1):
        lang = rng.choice(("en", "ms", "zh"))
        storage.touch_user(chat_id, lang)
        storage.set_language(chat_id, lang)
        store.update(
            chat_id,
            now=kl("2026-12-01T00:00"),
            enabled=int(rng.random() < 0.9),
            days_mask=mask_from_days(set(rng.sample([0, 1, 3, 7], rng.randint(1, 4)))),
            hour=rng.choice((8, 9, 9, 9, 12, 21)),
            payment_open=int(rng.random() < 0.7),
            open_day=rng.choice((17, 20)),
            audience=rng.choice(("household", "employer")),
        )
        if rng.random() < 0.2:
            store.add_worker(chat_id, "Siti", "domestic-foreign", Decimal("1700"))
        if rng.random() < 0.1:
            store.mark_paid(chat_id, "2026-12")
        if rng.random() < 0.15:  # snoozed to a moment at another hour than the subscriber's
            store.snooze(chat_id, "2026-12", kl("2027-01-12T10:00") + timedelta(minutes=chat_id))
    with storage.transaction():
        storage.db.execute("UPDATE users SET blocked = 1 WHERE chat_id % 17 = 0")


@pytest.fixture
def two(tmp_path: Path) -> tuple[Storage, Storage]:
    a, b = Storage(tmp_path / "a.sqlite3"), Storage(tmp_path / "b.sqlite3")
    populate(a)
    populate(b)
    yield a, b
    a.close()
    b.close()


def key(reminder) -> tuple:
    return (reminder.chat_id, reminder.month_key, reminder.suffix, reminder.snoozed)


def state(storage: Storage) -> tuple[list, list]:
    outbox = storage.db.execute(
        "SELECT chat_id, kind, dedupe_key, payload, lang FROM outbox ORDER BY dedupe_key"
    ).fetchall()
    months = storage.db.execute(
        "SELECT chat_id, ym, sent, last_sent_at FROM reminder_months ORDER BY chat_id, ym"
    ).fetchall()
    return outbox, months


def set_watermark(storage: Storage, moment: datetime | None) -> None:
    with storage.transaction():
        storage.db.execute("DELETE FROM reminder_meta")
    if moment is not None:
        ReminderStore(storage).set_watermark(moment)


@pytest.mark.parametrize("watermark", [None, "2027-01-12T08:59", "2027-01-12T10:30"])
@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_pieces_add_up_to_the_whole(
    two: tuple[Storage, Storage], watermark: str | None, chunk: int
) -> None:
    storage = two[0]
    now = kl("2027-01-12T11:00")
    set_watermark(storage, kl(watermark) if watermark else None)
    whole = due_reminders(storage, now)
    pieces = list(iter_due_reminders(storage, now, chunk=chunk))
    flat = [r for piece in pieces for r in piece]
    assert sorted(map(key, flat)) == sorted(map(key, whole))
    assert len(set(map(key, flat))) == len(flat), "nobody read twice"
    assert whole, "the data has something due"
    assert all(len(piece) <= 2 * chunk for piece in pieces), "a piece is at most chunk subscribers"
    if watermark is None:
        assert len(pieces) >= SUBSCRIBERS * 0.8 // chunk  # read piece by piece
    if watermark == "2027-01-12T10:30":  # only snoozes in (10:30, 11:00] are due (no 11:00 slot)
        assert {r.snoozed for r in flat} == {True}


@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_send_due_chunked_equals_unchunked(two: tuple[Storage, Storage], chunk: int) -> None:
    a, b = two
    moments = ["2027-01-08T09:00", "2027-01-12T08:00", "2027-01-12T09:00", "2027-01-12T11:00",
               "2027-01-12T21:00", "2027-01-16T09:00", "2027-01-17T12:00"]  # fmt: skip
    totals = ([], [])
    for text in moments:
        totals[0].append(send_due(a, Outbox(a), kl(text), chunk=100_000))
        totals[1].append(send_due(b, Outbox(b), kl(text), chunk=chunk))
    assert totals[0] == totals[1]
    assert sum(totals[0]) > SUBSCRIBERS // 2
    assert state(a) == state(b)
    # and once more at the same moment: nothing new either way
    assert send_due(b, Outbox(b), kl(moments[-1]), chunk=chunk) == 0


async def test_send_due_async_equals_send_due_and_gives_the_loop_back(
    two: tuple[Storage, Storage],
) -> None:
    a, b = two
    now = kl("2027-01-12T09:00")
    expected = send_due(a, Outbox(a), now)
    turns = 0
    done = asyncio.Event()

    async def other_work() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    turns = 0
    got = await send_due_async(b, Outbox(b), now, chunk=4, step=0.0, rest=0.0)
    done.set()
    await other
    assert got == expected > 0
    assert state(a) == state(b)
    assert turns >= SUBSCRIBERS // 4 // 2, "the loop ran other work between chunks"
