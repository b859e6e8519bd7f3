"""Per-user flood control (bot/throttle.py, wired into bot/app.py's update processor)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Config, ConfigError
from bot.i18n import t
from bot.localapi.server import LocalBotAPI
from bot.throttle import Throttle, Verdict
from tests.harness import BotHarness

BURST = 10
RATE = 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the bucket -------------------------------------------------------------------------------


def test_burst_then_one_notice_then_silent_drops() -> None:
    clock = FakeClock()
    throttle = Throttle(BURST, RATE, clock=clock)
    verdicts = [throttle.hit(7) for _ in range(BURST + 5)]
    assert verdicts[:BURST] == [Verdict.ALLOW] * BURST
    assert verdicts[BURST] is Verdict.NOTIFY
    assert verdicts[BURST + 1 :] == [Verdict.DROP] * 4
    assert throttle.hit(8) is Verdict.ALLOW  # another user is not affected


def test_refill_allows_again_but_the_flood_notice_is_not_repeated_until_quiet() -> None:
    clock = FakeClock()
    throttle = Throttle(BURST, RATE, clock=clock)
    for _ in range(BURST + 1):
        throttle.hit(7)
    clock.now += 1 / RATE  # one token back
    assert throttle.hit(7) is Verdict.ALLOW
    assert throttle.hit(7) is Verdict.DROP  # same flood: no second notice
    clock.now += BURST / RATE  # quiet until the bucket is full: the flood is over
    assert [throttle.hit(7) for _ in range(BURST)] == [Verdict.ALLOW] * BURST
    assert throttle.hit(7) is Verdict.NOTIFY


def test_idle_users_are_evicted() -> None:
    clock = FakeClock()
    throttle = Throttle(BURST, RATE, clock=clock)
    for user in range(10_000):
        throttle.hit(user)
    assert len(throttle) == 10_000
    clock.now += throttle.refill_seconds + 0.01
    throttle.hit(123_456)
    assert len(throttle) == 1
    clock.now += throttle.refill_seconds / 2
    throttle.hit(5)  # a user evicted as idle starts again with a full bucket
    assert [throttle.hit(5) for _ in range(BURST - 1)] == [Verdict.ALLOW] * (BURST - 1)


def test_bad_bucket_is_refused() -> None:
    with pytest.raises(ValueError):
        Throttle(0, 1.0)
    with pytest.raises(ValueError):
        Throttle(5, 0.0)


# --- configuration ------------------------------------------------------------------------------


def test_config_defaults_and_env(tmp_path: Path) -> None:
    base = {"BOT_DB": str(tmp_path / "db.sqlite3")}
    config = Config.from_env(base)
    assert (config.throttle_burst, config.throttle_rate) == (20, 3.0)
    config = Config.from_env({**base, "BOT_THROTTLE_BURST": "50", "BOT_THROTTLE_RATE": "0.5"})
    assert (config.throttle_burst, config.throttle_rate) == (50, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOT_THROTTLE_BURST", "0"),
        ("BOT_THROTTLE_BURST", "-3"),
        ("BOT_THROTTLE_BURST", "2.5"),
        ("BOT_THROTTLE_BURST", "lots"),
        ("BOT_THROTTLE_RATE", "0"),
        ("BOT_THROTTLE_RATE", "-1"),
        ("BOT_THROTTLE_RATE", "nan"),
        ("BOT_THROTTLE_RATE", "inf"),
        ("BOT_THROTTLE_RATE", "fast"),
    ],
)
def test_config_rejects_bad_values(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"BOT_DB": str(tmp_path / "db.sqlite3"), name: value})
    assert name in str(info.value)


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(
            server, tmp_path / "bot.sqlite3", throttle_burst=BURST, throttle_rate=RATE
        )
        await harness.start()
        yield harness
        await harness.stop()


FLOODER, CALM_B, CALM_C = 4001, 4002, 4003


def _slow_downs(bot: BotHarness, user: int, lang: str) -> list:
    notice = str(t("throttle.slow_down", lang))
    return [m for m in bot.server.bot_messages(user) if m.text == notice]


async def test_flood_is_throttled_without_starving_others(bot: BotHarness) -> None:
    server = bot.server
    start = time.monotonic()
    for i in range(50):  # a flood of 50 messages ...
        await server.send_text(FLOODER, f"hello {i}", language_code="ms")
        if i % 10 == 5:  # ... while two other users chat normally
            for user in (CALM_B, CALM_C):
                await server.send_text(user, "hello", language_code="en")
        await asyncio.sleep(0.018)

    for user in (CALM_B, CALM_C):
        await server.wait_until(
            lambda u=user: len([r for r in server.sent if r.chat_id == u]) >= 5, timeout=30
        )
        assert len([r for r in server.sent if r.chat_id == user]) == 5  # every one answered
        assert not _slow_downs(bot, user, "en")  # and never throttled

    await server.wait_until(lambda: len(_slow_downs(bot, FLOODER, "ms")) == 1, timeout=30)
    await asyncio.sleep(0.5)  # let every allowed update of the flood be answered
    window = time.monotonic() - start  # every update of the flood was handled within it
    answers = server.bot_messages(FLOODER)
    notices = _slow_downs(bot, FLOODER, "ms")
    assert len(notices) == 1  # exactly one, in the flooder's language
    normal = len(answers) - 1
    # the burst, plus at most what refilled while the flood was handled (RATE per second);
    # the bound follows the measured window, so a slow machine does not change the verdict
    assert BURST <= normal <= BURST + RATE * window + 1, (normal, window)
    assert len(server.chat(FLOODER)) - len(answers) == 50  # all 50 arrived; most were dropped

    await asyncio.sleep(2.5)  # quiet a moment: tokens are back
    (answer,) = await bot.say(FLOODER, "hello again", lang="ms")
    assert answer.text != notices[0].text
    assert len(_slow_downs(bot, FLOODER, "ms")) == 1
    assert not server.stats.rejected


async def test_button_mashing_is_always_answered(bot: BotHarness) -> None:
    server = bot.server
    (menu,) = await bot.say(CALM_B, "/start")
    await asyncio.sleep(1 / RATE)
    query_ids = [
        await server.press_button(CALM_B, menu.message_id, "menu:lang", strict=False)
        for _ in range(BURST + 10)
    ]
    answers = [await server.wait_for_callback_answer(q) for q in query_ids]
    notice = str(t("throttle.slow_down", "en"))
    throttled = [a for a in answers if a["text"] == notice]
    assert len(throttled) >= 9  # every press is answered; the excess ones with the notice
    assert all(a["text"] in (None, notice) for a in answers)
    assert not _slow_downs(bot, CALM_B, "en")  # a toast, not a message in the chat


async def test_normal_use_never_trips_the_defaults(tmp_path: Path) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(server, tmp_path / "bot.sqlite3")  # default burst 20, 3/s
        await harness.start()
        try:
            for _ in range(15):  # a quick typist: 15 messages at once
                await server.send_text(CALM_C, "hello", language_code="en")
            await server.wait_until(lambda: len(server.bot_messages(CALM_C)) >= 15, timeout=10)
            await asyncio.sleep(0.3)
            assert len(server.bot_messages(CALM_C)) == 15
            assert not _slow_downs(harness, CALM_C, "en")
        finally:
            await harness.stop()
