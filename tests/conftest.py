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
# No deadline in either: hypothesis's default (200 ms an example) is a wall-clock bound, and the
# suite runs in parallel workers (pytest-xdist) on a machine that may be busy.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
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
