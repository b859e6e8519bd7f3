"""Question matcher: language detection, typos, mixed language, unsure/nothing, accuracy, speed.

Expected guide ids below come from what each question asks (see the guide ids in SPEC/brief),
not from the matcher's output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.domain.guides import load_guides
from bot.domain.matcher import OPEN_AT, UNSURE_AT, Matcher, detect_lang

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"
QUESTIONS = Path(__file__).parent / "data" / "questions.tsv"
FIXTURE = Path(__file__).parent / "data" / "guides_fixture"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.build(load_guides(CONTENT))


def read_questions() -> list[tuple[str, str, str]]:
    with QUESTIONS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["lang", "guide_id", "question"]
    return [(r[0], r[1], r[2]) for r in rows[1:] if r]


# ----------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("外佣社险怎么付", "zh"),
        ("新雇主怎么申请assist账号", "zh"),
        ("macam mana nak daftar maid dengan PERKESO", "ms"),
        ("bila tarikh akhir bayar caruman", "ms"),
        ("eis x leh bayar", "ms"),
        ("how do I register my company on the portal", "en"),
        ("when is the deadline for this month", "en"),
    ],
)
def test_detect_lang_confident(text: str, lang: str) -> None:
    assert detect_lang(text) == (lang, True)


@pytest.mark.parametrize("text", ["socso", "eis sip", "12345", ""])
def test_detect_lang_unsure(text: str) -> None:
    lang, confident = detect_lang(text)
    assert lang == "en" and not confident


def test_user_lang_used_when_unclear(matcher: Matcher) -> None:
    assert matcher.match("socso", user_lang="ms").lang == "ms"
    assert matcher.match("socso", user_lang="zh").lang_confident is False
    # a clear language wins over the user's setting
    assert matcher.match("外佣社险怎么付", user_lang="en").lang == "zh"


# ----------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "guide"),
    [
        # mixed languages
        ("how to bayar socso for maid", "domestic-pay"),
        ("外佣社险怎么付", "domestic-pay"),
        ("macam mana nak daftar maid dengan PERKESO", "domestic-register"),
        ("employee not eligible sip apa maksud", "eis-not-eligible"),
        ("lindung 24jam kena bayar ke", "lindung-24jam"),
        ("hilang password assist", "assist-register"),
        ("新雇主怎么申请assist账号", "assist-register"),
        ("sosco due date bila", "payment-deadlines"),
    ],
)
def test_mixed_language_questions(matcher: Matcher, text: str, guide: str) -> None:
    m = matcher.match(text)
    assert m.guide == guide, m
    assert guide not in m.suggestions
    assert len(m.suggestions) <= 3


@pytest.mark.parametrize(
    ("text", "guide"),
    [
        ("contibution rates socso", "contribution-rates"),  # fuzzy: contribution
        ("lindong 24 jam what is it", "lindung-24jam"),  # fuzzy: lindung
        ("perkeso hotlne", "contact-perkeso"),  # fuzzy: hotline
        ("socso deadlnie", "payment-deadlines"),  # fuzzy: deadline
        ("perkezo phone number", "contact-perkeso"),
        ("reigster assist portal new company", "assist-register"),
    ],
)
def test_typos(matcher: Matcher, text: str, guide: str) -> None:
    assert matcher.match(text).guide == guide


def test_fuzzy_correction_itself(matcher: Matcher) -> None:
    assert matcher._fuzzy("contibution") == "contribution"
    assert matcher._fuzzy("lindong") == "lindung"
    assert matcher._fuzzy("qwertyuiop") is None
    assert matcher._fuzzy("ab") is None  # too short to correct safely


@pytest.mark.parametrize("text", ["socso", "maid", "eis", "社险", "pembantu rumah"])
def test_one_word_questions_are_unsure_with_suggestions(matcher: Matcher, text: str) -> None:
    m = matcher.match(text)
    assert m.guide is None
    assert 1 <= len(m.suggestions) <= 3
    assert len(set(m.suggestions)) == len(m.suggestions)
    assert m.band == "unsure"
    assert UNSURE_AT <= m.score < OPEN_AT


def test_unsure_suggestions_are_on_topic(matcher: Matcher) -> None:
    m = matcher.match("maid")
    assert m.guide is None
    assert set(m.suggestions) <= {"domestic-coverage", "domestic-register", "domestic-pay"}


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "hi there",
        "thanks",
        "terima kasih",
        "你好",
        "what's the weather today",
        "how to cook rendang",
        "asdf qwer zxcv",
        "",
        "   ",
        "!!!???",
    ],
)
def test_nothing_plausible(matcher: Matcher, text: str) -> None:
    m = matcher.match(text)
    assert m.guide is None
    assert m.suggestions == ()
    assert m.score == 0.0


def test_confident_score_is_in_range(matcher: Matcher) -> None:
    m = matcher.match("how to pay socso monthly text file upload")
    assert m.guide == "pay-socso"
    assert OPEN_AT <= m.score <= 1.0
    assert m.as_dict() == {
        "lang": "en",
        "guide": "pay-socso",
        "confidence": round(m.score, 4),
        "score": round(m.score, 4),
        "band": "open",
        "suggestions": list(m.suggestions),
        "both": [],
        "answer": None,
    }


def test_fixture_library_builds_and_matches() -> None:
    m = Matcher.build(load_guides(FIXTURE))
    assert m.match("upload eis text file").guide == "pay-eis"
    assert m.match("就业保险 上传").guide == "pay-eis"
    assert m.match("hello").guide is None


# ----------------------------------------------------------------- evaluation


def test_questions_file_covers_every_guide_in_every_language() -> None:
    rows = read_questions()
    ids = set(load_guides(CONTENT).ids())
    for lang in ("en", "ms", "zh"):
        per = [r for r in rows if r[0] == lang]
        assert len(per) >= 60, lang
        for gid in ids:
            assert sum(1 for r in per if r[1] == gid) >= 4, (lang, gid)
    assert {r[1] for r in rows} <= ids


def test_top1_accuracy_on_questions(matcher: Matcher) -> None:
    rows = read_questions()
    hits = sum(1 for _, gid, q in rows if matcher.match(q).guide == gid)
    per_lang = {}
    for lang in ("en", "ms", "zh"):
        sub = [(gid, q) for lg, gid, q in rows if lg == lang]
        per_lang[lang] = sum(1 for gid, q in sub if matcher.match(q).guide == gid) / len(sub)
    assert hits / len(rows) >= 0.90, per_lang
    assert min(per_lang.values()) >= 0.85, per_lang


# ----------------------------------------------------------------- long input
# (speed: bench/ask.py prints p50/p95 per match and the build time)


def test_long_message_is_still_matched(matcher: Matcher) -> None:
    text = "how to pay socso for my maid " + "blorp zibble " * 400
    assert matcher.match(text).guide == "domestic-pay"
