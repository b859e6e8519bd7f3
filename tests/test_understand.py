"""The matcher's calibrated confidence on the labelled sets (issue 16): the targets bench/ask.py
reports, asserted per language, plus the domain rules behind them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bench.ask import read_out_of_scope, read_questions
from bot.config import CONTENT_DIR
from bot.domain.guides import load_guides
from bot.domain.matcher import OPEN_AT, UNSURE_AT, Match, Matcher, names_other_topic, normalize

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.build(load_guides(CONTENT_DIR))


def test_targets_on_the_labelled_sets(matcher: Matcher) -> None:
    total: dict[str, int] = defaultdict(int)
    right: dict[str, int] = defaultdict(int)
    unsure: dict[str, int] = defaultdict(int)
    for lang, gid, q in read_questions(DATA / "questions.tsv"):
        m = matcher.match(q)
        total[lang] += 1
        right[lang] += m.guide == gid
        unsure[lang] += m.band == "unsure"
    assert set(total) == {"en", "ms", "zh"}
    for lang in total:
        assert right[lang] / total[lang] >= 0.95, (lang, right[lang], total[lang])
        assert unsure[lang] / total[lang] <= 0.05, (lang, unsure[lang], total[lang])
    oos = read_out_of_scope(DATA / "out_of_scope.tsv")
    assert len(oos) >= 150
    per_lang: dict[str, list[Match]] = defaultdict(list)
    for lang, q in oos:
        per_lang[lang].append(matcher.match(q))
    for lang, answers in per_lang.items():
        assert len(answers) >= 50, lang
        opened = sum(1 for m in answers if m.guide is not None)
        assert opened / len(answers) <= 0.05, (lang, opened, len(answers))


def test_bands_follow_the_thresholds(matcher: Matcher) -> None:
    assert 0 < UNSURE_AT <= OPEN_AT < 1
    for q in ("how to pay socso by text file", "maid", "how do i check my epf balance", "zzzz"):
        m = matcher.match(q)
        if m.score >= OPEN_AT:
            assert m.band == "open" and m.guide is not None
        elif m.score >= UNSURE_AT:
            assert m.band == "unsure" and m.guide is None and 2 <= len(m.suggestions) <= 3
        else:
            assert m.band == "none" and m.guide is None and m.suggestions == ()


def test_naming_another_agency_lowers_the_confidence(matcher: Matcher) -> None:
    socso = matcher.match("employer contribution rate for socso")
    epf = matcher.match("employer contribution rate for epf")
    assert socso.guide == "contribution-rates"
    assert epf.guide is None and epf.score < socso.score


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("kwsp", True),
        ("cukai pendapatan", True),
        ("公积金", True),
        ("my ic 800101-10-1234", True),
        ("socso", False),
        ("pay eis", False),
        ("女佣护照", False),  # a passport is a document for registering a maid
    ],
)
def test_names_other_topic(text: str, other: bool) -> None:
    assert names_other_topic(normalize(text)) is other
