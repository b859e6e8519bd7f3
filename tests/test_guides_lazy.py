"""The guides and their matcher are not built at start-up but on first use (or by the warm-up
just after the bot starts polling): built once, shared, and answering exactly as a matcher built
up front does.

Each test copies the content folder, so nothing another test loaded is in the process's cache.
"""

from __future__ import annotations

import dataclasses
import gc
import shutil
import threading
from pathlib import Path

import pytest

from bot import app as app_module
from bot.app import build_application
from bot.config import CONTENT_DIR, Config
from bot.domain.guides import load_guides
from bot.domain.matcher import Matcher
from bot.handlers import guides
from bot.handlers.common import services_of
from bot.localapi.server import LocalBotAPI
from tests.harness import BotHarness, until

QUESTIONS = [
    ("how do I pay EIS", "en"),
    ("how to bayar sosco for my maid", "en"),
    ("macam mana nak daftar maid dengan PERKESO", "ms"),
    ("外佣社险怎么付", "zh"),
    ("what is the weather today", "en"),
    ("caruman SIP untuk pekerja asing", "ms"),
]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    copy = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, copy)
    return copy


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts Matcher.build and load_guides calls made through the guides feature."""
    calls: list[int] = []
    real_build = Matcher.build.__func__  # type: ignore[attr-defined]
    real_load = guides.load_guides

    def counting_build(cls: type[Matcher], library: object) -> Matcher:
        calls.append(1)
        return real_build(cls, library)

    def counting_load(content_dir: Path) -> object:
        calls.append(0)
        return real_load(content_dir)

    monkeypatch.setattr(Matcher, "build", classmethod(counting_build))
    monkeypatch.setattr(guides, "load_guides", counting_load)
    return calls


def test_building_the_application_loads_no_guide(
    tmp_path: Path, content: Path, builds: list[int]
) -> None:
    config = dataclasses.replace(Config(), db_path=tmp_path / "bot.sqlite3", content_dir=content)
    app = build_application(config)
    svc = services_of(app)
    assert builds == []
    assert svc.guide_data is not None and not svc.guide_data.ready
    library = svc.guides
    assert builds == [0]  # the library alone: the matcher is not needed for the guides menu
    matcher = svc.matcher
    assert builds == [0, 1]
    assert svc.guide_data.ready
    assert svc.guides is library and svc.matcher is matcher
    # A second Application on the same files shares both.
    other = services_of(build_application(config))
    assert other.guides is library and other.matcher is matcher
    assert builds == [0, 1]


def test_concurrent_first_uses_build_once(content: Path, builds: list[int]) -> None:
    data = guides.GuideData(content)
    start = threading.Barrier(4)
    got: list[Matcher] = []

    def ask() -> None:
        start.wait()
        got.append(data.matcher)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and all(m is got[0] for m in got)
    assert builds == [0, 1]


def test_lazy_matcher_answers_as_one_built_up_front(content: Path) -> None:
    up_front = Matcher.build(load_guides(CONTENT_DIR))
    lazy = guides.GuideData(content)
    for question, lang in QUESTIONS:
        assert (
            lazy.matcher.match(question, lang).as_dict() == up_front.match(question, lang).as_dict()
        )


def test_a_broken_content_folder_is_reported_on_use_not_at_build(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "en" / "guides").mkdir(parents=True)
    data = guides.GuideData(empty)
    assert len(data.library) == 0
    assert data.matcher.match("how do I pay EIS", "en").guide is None


async def test_warm_up_builds_after_start_and_first_question_answers_as_later_ones(
    tmp_path: Path, content: Path, builds: list[int]
) -> None:
    async with (
        LocalBotAPI(rate_limit=None) as server,
        BotHarness(server, tmp_path / "bot.sqlite3", content_dir=content) as harness,
    ):
        assert harness.app is not None
        data = services_of(harness.app).guide_data
        assert data is not None
        # The very first question, at once: it waits for (or does) the one build.
        (first,) = await harness.say(300, QUESTIONS[0][0], lang="en", timeout=30)
        await until(lambda: data.ready)
        (later,) = await harness.say(301, QUESTIONS[0][0], lang="en")
        assert first.text == later.text and first.callback_data == later.callback_data
        assert first.plain_text.startswith(load_guides(CONTENT_DIR).get("pay-eis", "en").title)
        assert builds.count(1) == 1


async def test_warm_up_alone_builds_the_matcher_then_freezes_the_heap(
    tmp_path: Path, content: Path, builds: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.unfreeze()  # as in a fresh process (an earlier test's warm-up may have frozen it)
    monkeypatch.setattr(app_module, "_frozen", False)
    assert gc.get_freeze_count() == 0
    async with (
        LocalBotAPI(rate_limit=None) as server,
        BotHarness(server, tmp_path / "bot.sqlite3", content_dir=content) as harness,
    ):
        assert harness.app is not None
        data = services_of(harness.app).guide_data
        assert data is not None
        await until(lambda: data.ready)  # nobody asked anything
        assert builds == [0, 1]
        # After the warm-up, the start-up's long-lived objects are out of the collector's way.
        await until(lambda: gc.get_freeze_count() > 0)
