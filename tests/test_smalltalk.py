"""Small talk recognition (issue 16): the whole message must be small talk."""

from __future__ import annotations

import pytest

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
