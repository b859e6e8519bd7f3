"""Small talk recognition (issue 16): the whole message must be small talk."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import smalltalk
from bot.domain.smalltalk import SmallTalk, small_talk


@pytest.mark.parametrize(
    ("text", "kind", "lang"),
    [
        ("hello", "hello", "en"),
        ("Hi there!", "hello", "en"),
        ("good morning bot", "hello", "en"),
        ("selamat pagi encik", "hello", "ms"),
        ("Assalamualaikum", "hello", "ms"),
        ("你好", "hello", "zh"),
        ("在吗？", "hello", "zh"),
        ("你好，请问", "hello", "zh"),
        ("how old are you", "who", "en"),
        ("thanks!", "thanks", "en"),
        ("thank you very much for your help", "thanks", "en"),
        ("terima kasih", "thanks", "ms"),
        ("tq boss", "thanks", "ms"),
        ("谢谢你！", "thanks", "zh"),
        ("ok thanks", "thanks", "en"),
        ("ok", "ok", None),
        ("👍", "ok", None),
        ("🙏🙏", "ok", None),
        ("好的", "ok", "zh"),
        ("baiklah", "ok", "ms"),
        ("bye", "bye", "en"),
        ("再见", "bye", "zh"),
        ("who are you?", "who", "en"),
        ("siapa awak", "who", "ms"),
        ("你是谁", "who", "zh"),
    ],
)
def test_small_talk(text: str, kind: str, lang: str | None) -> None:
    assert small_talk(text) == SmallTalk(kind, lang)


@pytest.mark.parametrize(
    "text",
    [
        "hi, how do i pay socso",
        "hello 3000",
        "terima kasih, bila tarikh akhir caruman?",
        "你好，外佣社险怎么付",
        "what is the meaning of life",
        "???",
        "sip",  # the Malay name of EIS, not "ok"
        "",
        "ok " * 40,
    ],
)
def test_not_small_talk(text: str) -> None:
    assert small_talk(text) is None


# --- the first-word test before each phrase's pattern changes no answer ----------------------

_PHRASE_LIST = sorted({p for phrases in smalltalk._PHRASES.values() for p in phrases})
_PIECES = _PHRASE_LIST + sorted(smalltalk._FILLER) + list(smalltalk._FILLER_ZH) + [
    "abc", "RM3500", "perkeso", "你", "👍", "??", "Hello!", "OK", "’s", "how", "do", "i", "register"
]


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4),
    sep=st.sampled_from([" ", "", "  ", ", ", "\n"]),
    upper=st.booleans(),
)
def test_skipping_phrases_whose_first_word_is_absent_changes_nothing(
    pieces: list[str], sep: str, upper: bool
) -> None:
    text = sep.join(pieces)
    text = text.upper() if upper else text
    fast = small_talk(text)
    # the same table with an empty "first word", which every text contains: every pattern runs
    rows = [(kind, lang, "", pat) for kind, lang, _first, pat in smalltalk._table()]
    with mock.patch.object(smalltalk, "_table", lambda: rows):
        slow = small_talk(text)
    assert fast == slow, text
