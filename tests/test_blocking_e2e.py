"""A user blocks or unblocks the bot: Telegram's my_chat_member update is recorded at once
(handlers/start.py), so queued messages skip a blocked chat without a refused send, and reach
the user again once they unblock the bot, even if they never write. Neither is a visit: a user
the bot holds nothing about stays unrecorded."""

from __future__ import annotations

import pytest

from bot.handlers.common import services_of
from bot.localapi.server import LocalBotAPI
from tests.harness import BotHarness, until

USER = 5550777


def blocked(bot: BotHarness) -> int | None:
    assert bot.storage is not None
    row = bot.storage.get_user(USER)
    return None if row is None else row["blocked"]


async def queue_and_settle(bot: BotHarness, key: str) -> str:
    """Queue one broadcast message to USER; the state the outbox leaves it in."""
    assert bot.app is not None
    outbox = services_of(bot.app).outbox
    assert outbox.enqueue(USER, "broadcast", key, {"type": "text", "text": f"news {key}"})
    before = dict(outbox.status()["broadcast"])

    def settled() -> str | None:
        now = outbox.status()["broadcast"]
        grown = [s for s, n in now.items() if s not in ("queued", "sending") and n > before[s]]
        return grown[0] if grown else None

    return await until(settled)


async def test_blocking_is_recorded_at_once_and_nothing_is_sent_to_the_chat(
    bot: BotHarness, local_api: LocalBotAPI
) -> None:
    assert await bot.say(USER, "hello")
    assert blocked(bot) == 0
    await local_api.block_bot(USER)
    await until(lambda: blocked(bot) == 1)
    sends = local_api.stats.calls["sendMessage"]
    assert await queue_and_settle(bot, "1") == "unreachable"
    assert local_api.stats.calls["sendMessage"] == sends  # skipped, not refused with a 403


async def test_unblocking_without_writing_lets_messages_through_again(
    bot: BotHarness, local_api: LocalBotAPI
) -> None:
    assert await bot.say(USER, "hello")
    await local_api.block_bot(USER)
    await until(lambda: blocked(bot) == 1)
    shown = len(local_api.bot_messages(USER))
    await local_api.unblock_bot(USER)
    await until(lambda: blocked(bot) == 0)
    assert await queue_and_settle(bot, "2") == "sent"
    assert local_api.bot_messages(USER)[-1].text == "news 2"
    assert len(local_api.bot_messages(USER)) == shown + 1  # no other answer to the unblock


async def test_a_block_whose_update_was_missed_is_still_learnt_from_the_refused_send(
    bot: BotHarness, local_api: LocalBotAPI
) -> None:
    assert await bot.say(USER, "hello")
    local_api.block(USER)  # sends answer 403, no my_chat_member update
    assert blocked(bot) == 0
    assert await queue_and_settle(bot, "3") == "unreachable"
    assert blocked(bot) == 1


async def test_blocking_is_not_a_visit_and_creates_no_row(
    bot: BotHarness, local_api: LocalBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A user the bot holds nothing about (never wrote, or had their data deleted with /forget)
    blocks and unblocks the bot: nothing about them is stored."""
    caplog.set_level("INFO", logger="bot.updates")
    local_api.add_user(USER)

    def membership_updates_done() -> int:
        return sum(getattr(r, "handler", "") == "start.membership_changed" for r in caplog.records)

    await local_api.block_bot(USER)
    await until(lambda: membership_updates_done() == 1)
    assert blocked(bot) is None
    await local_api.unblock_bot(USER)
    await until(lambda: membership_updates_done() == 2)
    assert blocked(bot) is None
