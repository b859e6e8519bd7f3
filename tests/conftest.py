"""Shared fixtures: a temporary database, the local Bot API server, the running bot."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from bot.localapi.server import LocalBotAPI
from bot.storage import Storage
from tests import procs
from tests.harness import BotHarness

# Property tests draw the same examples on every run ("ci", the default), so that a gate such as
# .ci/run passes or fails on the code, not on the draw; a failure hypothesis once found by chance
# is kept as an @example. HYPOTHESIS_PROFILE=explore draws new examples each run, to hunt.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _kill_children() -> Iterator[None]:
    """Every process a test started through tests.procs is killed when the test ends."""
    yield
    procs.kill_all()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    store = Storage(tmp_path / "bot.sqlite3")
    yield store
    store.close()


@pytest.fixture
async def local_api() -> AsyncIterator[LocalBotAPI]:
    async with LocalBotAPI(rate_limit=None) as server:
        yield server


@pytest.fixture
async def bot(local_api: LocalBotAPI, tmp_path: Path) -> AsyncIterator[BotHarness]:
    harness = BotHarness(local_api, tmp_path / "bot.sqlite3")
    await harness.start()
    yield harness
    await harness.stop()
