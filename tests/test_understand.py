"""The matcher's calibrated confidence on the labelled sets (issue 16): the targets bench/ask.py
reports, asserted per language, plus the domain rules behind them."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from bench.ask import read_out_of_scope, read_questions
from bot.config import CONTENT_DIR
from bot.domain.guides import check_content, load_guides
from bot.domain.matcher import (
    OPEN_AT,
    UNSURE_AT,
    Match,
    Matcher,
    is_yes_no,
    names_other_topic,
    normalize,
    two_topics,
)

DATA = Path(__file__).parent / "data"
# Top-1 accuracy per language that must hold: issue 14's target, 0.95 per language (met on 25
# guides once their keywords were separated: en 97.8%, ms 95.7%, zh 96.1%; see README).
MIN_TOP1 = 0.95


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
        assert right[lang] / total[lang] >= MIN_TOP1, (lang, right[lang], total[lang])
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


@pytest.mark.parametrize(
    ("text", "yes_no"),
    [
        ("do foreign workers pay eis", True),
        ("is socso compulsory for my maid", True),
        ("must I register my helper", True),
        ("pembantu rumah asing kena bayar SIP ke?", True),
        ("perlukah saya daftar pembantu rumah", True),
        ("wajib daftar perkeso?", True),
        ("pekerja asing kena caruman SIP tak", True),
        ("外佣要交EIS吗", True),
        ("需要交吗", True),
        ("要不要为女佣买社险", True),
        ("how to pay socso", False),
        ("macam mana nak bayar caruman", False),
        ("bagaimanakah cara bayar", False),
        ("berapakah kadar caruman", False),
        ("外佣社险怎么付", False),
        ("can i pay my helper socso in advance", False),  # possible, not required
        ("可以一次缴24个月吗", False),
    ],
)
def test_is_yes_no(text: str, yes_no: bool) -> None:
    assert is_yes_no(text) is yes_no


def test_short_answers_only_for_their_case(matcher: Matcher) -> None:
    foreign = matcher.match("do foreign workers need to pay eis")
    assert foreign.guide == "eis-not-eligible" and foreign.answer and foreign.answer.startswith("No")
    local = matcher.match("do I need to pay eis for my local maid")
    assert local.guide == "domestic-coverage" and "0.2%" in (local.answer or "")
    how = matcher.match("how to pay eis by text file")
    assert how.guide == "pay-eis" and how.answer is None
    other = matcher.match("do foreign workers pay epf")  # another agency: no SOCSO/EIS answer
    assert other.answer is None


def test_every_language_has_the_same_answers() -> None:
    lib = load_guides(CONTENT_DIR)
    for gid in ("eis-not-eligible", "domestic-coverage", "payment-deadlines"):
        shapes = {
            lang: [(a.when, a.unless, a.yesno) for a in lib.get(gid, lang).answers] for lang in ("en", "ms", "zh")
        }
        assert shapes["en"] and shapes["en"] == shapes["ms"] == shapes["zh"], gid
        for lang in ("en", "ms", "zh"):
            assert all(a.text and len(a.text) <= 300 for a in lib.get(gid, lang).answers)


def _copy_content(tmp_path: Path) -> Path:
    dest = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, dest, ignore=shutil.ignore_patterns("*.po", "templates"))
    return dest


def test_check_content_reports_bad_answers(tmp_path: Path) -> None:
    content = _copy_content(tmp_path)
    path = content / "ms" / "guides" / "payment-deadlines.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace('when = ["cantpay"]', 'when = ["cantpay", "nosuchconcept"]', 1)
    path.write_text(text, encoding="utf-8")
    problems = check_content(content)
    assert any("payment-deadlines.md: answers #1 when has unknown concepts ['nosuchconcept']" in p for p in problems)
    assert any("ms/guides/payment-deadlines.md: answers (when/unless/yesno) differ" in p for p in problems)
    assert check_content(_copy_content(tmp_path / "fresh")) == []


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("How to pay SOCSO and EIS on ASSIST", ("socso", "eis")),
        ("macam mana bayar perkeso dan sip di assist", ("socso", "eis")),
        ("怎么在ASSIST缴社险和就业保险", ("socso", "eis")),
        ("how to register and pay for my maid", ("register", "pay")),
        ("cara daftar dan bayar caruman pembantu rumah", ("register", "pay")),
        ("女佣怎么注册和缴费", ("register", "pay")),
        ("how to pay socso for my maid", None),
        ("socso and socso", None),
        ("salt and pepper", None),
    ],
)
def test_two_topics(text: str, pair: tuple[str, str] | None) -> None:
    assert two_topics(text) == pair


def test_two_topics_match(matcher: Matcher) -> None:
    both = matcher.match("how to register and pay for my maid")
    assert both.guide is None and both.both == ("domestic-register", "domestic-pay")
    combined = matcher.match("How to pay SOCSO and EIS on ASSIST")  # the combined payment
    assert combined.guide == "payment-methods" or combined.both[:2] == ("pay-socso", "pay-eis")
    one = matcher.match("SOCSO and EIS payment deadline")  # a guide about both
    assert one.guide == "payment-deadlines" and one.both == ()
    rates = matcher.match("socso and eis contribution rates")
    assert rates.guide == "contribution-rates"
