"""The broadcast lifecycle decided by the agencies service, without Telegram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.agencies import AgencyService
from bot.outbox import Outbox
from bot.storage import Storage


def setup(storage: Storage, when: datetime | None) -> tuple[AgencyService, Outbox, int]:
    service, outbox = AgencyService(storage), Outbox(storage)
    agency, _ = service.create_agency("A", 1)
    for chat in (1, 2):
        storage.touch_user(chat, "en")
        service.follow(agency.code, chat)
    broadcast_id, _ = service.create_broadcast(
        outbox, agency=agency.code, created_by=9, versions={"en": [1, 1]}, scheduled_at=when,
        progress_chat_id=9, progress_message_id=None if when else 77,
    )
    return service, outbox, broadcast_id


def test_scheduled_waits_then_starts_sends_and_finishes(storage: Storage) -> None:
    now = datetime.now(UTC)
    service, outbox, bid = setup(storage, now + timedelta(hours=1))
    [row] = service.pending_reports()
    assert service.start_if_due(row, now) is None  # still waiting
    assert service.get_broadcast(bid)["state"] == "scheduled"
    assert service.start_if_due(row, now + timedelta(hours=2)) is True
    assert row["state"] == "sending" == service.get_broadcast(bid)["state"]
    step = service.progress_step(outbox, row)
    assert not step.finished and step.counts["queued"] == 2
    for item in storage.db.query("SELECT id FROM outbox"):
        outbox.mark_sent(item["id"], 5)
    step = service.progress_step(outbox, row)
    assert step.finished and step.counts["sent"] == 2
    assert service.finish(row) is True  # a started broadcast always reports
    done = service.get_broadcast(bid)
    assert done["state"] == "done" and done["finished_at"] is not None
    assert service.pending_reports() == []


def test_progress_edit_only_when_the_text_changes(storage: Storage) -> None:
    service, _, bid = setup(storage, None)
    [row] = service.pending_reports()
    assert service.start_if_due(row, datetime.now(UTC)) is False  # not scheduled: sending already
    assert service.needs_progress_edit(row, "1/2")
    service.set_last_progress(bid, "1/2")
    [row] = service.pending_reports()
    assert not service.needs_progress_edit(row, "1/2")
    assert service.needs_progress_edit(row, "2/2")


def test_cancelled_before_start_finishes_without_a_report(storage: Storage) -> None:
    now = datetime.now(UTC)
    service, outbox, bid = setup(storage, now + timedelta(hours=1))
    assert service.cancel(outbox, bid) == 2
    [row] = service.pending_reports()  # cancelled, report not decided yet
    assert service.start_if_due(row, now) is False
    assert service.progress_step(outbox, row).finished
    assert service.finish(row) is False  # never started, no progress message: no report
    assert service.get_broadcast(bid)["state"] == "cancelled"
    assert service.pending_reports() == []
