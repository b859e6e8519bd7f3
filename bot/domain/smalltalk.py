"""Small talk: greetings, thanks, "ok", emoji, goodbyes, "who are you" (en, ms, zh).

``small_talk(text)`` returns a :class:`SmallTalk` when the whole message is small talk (a
greeting followed by a real question is not: that question goes to the guides), else None.
Pure Python.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

__all__ = ["SmallTalk", "small_talk"]

KINDS = ("who", "thanks", "bye", "hello", "ok")  # the first kind found, in this order, answers

# (kind, language or "" for any) -> phrases. Latin phrases match whole words.
# fmt: off
_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("hello", "en"): ("hello", "hi", "hey", "hiya", "helo", "hallo", "good morning",
                      "good afternoon", "good evening", "morning", "greetings", "yo",
                      "hello there", "hi there", "how are you", "how r u", "howdy"),
    ("hello", "ms"): ("hai", "salam", "assalamualaikum", "assalamualaikum wbt", "selamat pagi",
                      "selamat petang", "selamat tengahari", "selamat malam", "apa khabar",
                      "apa khabar", "hye", "helo"),
    ("hello", "zh"): ("你好", "您好", "哈喽", "哈啰", "嗨", "早安", "早上好", "午安", "晚上好", "大家好",
                      "你好吗", "在吗", "在不在"),
    ("thanks", "en"): ("thanks", "thank you", "thank u", "thx", "thanks a lot", "many thanks",
                       "thank you very much", "thanks so much", "ty", "cheers", "appreciate it",
                       "great thanks", "noted with thanks"),
    ("thanks", "ms"): ("terima kasih", "terima kasih banyak", "tq", "tqvm", "tq so much",
                       "trima kasih", "tkasih", "makasih", "terima kasih ya"),
    ("thanks", "zh"): ("谢谢", "多谢", "谢啦", "感谢", "谢谢你", "谢谢您", "非常感谢", "太感谢了", "感恩"),
    ("ok", "en"): ("ok", "okay", "okey", "k", "kk", "alright", "all right", "got it", "noted",
                   "cool", "nice", "great", "good", "sure", "yes", "no", "fine", "i see", "understood"),
    ("ok", "ms"): ("baik", "baiklah", "faham", "okay la", "ok la", "okla", "oklah", "ya", "tak",
                   "takpe", "takpa", "tak apa", "boleh", "bagus", "mantap"),
    ("ok", "zh"): ("好", "好的", "好吧", "好滴", "明白", "明白了", "知道了", "了解", "收到", "嗯", "哦",
                   "行", "可以", "没问题", "对", "是的", "不错", "棒"),
    ("bye", "en"): ("bye", "goodbye", "good bye", "see you", "see ya", "good night", "bye bye"),
    ("bye", "ms"): ("selamat tinggal", "jumpa lagi", "selamat malam", "bye bye"),
    ("bye", "zh"): ("再见", "拜拜", "晚安", "下次见"),
    ("who", "en"): ("who are you", "what are you", "what can you do", "are you a bot",
                    "are you human", "are you a robot", "what is this bot", "who made you",
                    "what do you do", "is this perkeso", "are you perkeso", "your name",
                    "how old are you", "how old are you really"),
    ("who", "ms"): ("siapa awak", "siapa anda", "kamu siapa", "awak siapa", "anda siapa",
                    "awak ni siapa", "ini bot ke", "awak bot ke", "apa awak boleh buat",
                    "apa yang awak boleh buat", "bot apa ni", "ni perkeso ke", "umur awak berapa",
                    "berapa umur awak", "umur awak berapa sebenarnya"),
    ("who", "zh"): ("你是谁", "您是谁", "你是什么", "你是机器人吗", "你能做什么", "你会什么", "你可以做什么",
                    "这是什么", "你是真人吗", "你是 perkeso 吗", "你叫什么", "你几岁", "你几岁了", "你多大了"),
}
# Words that may surround small talk without making it a question.
_FILLER = frozenset(
    """bot admin sir madam boss bro sis there all again very much so lot for help the your you
    ya ye yeah la lah je ja pun kak abang bang encik puan cik tuan dear friend buddy mate
    and dan oh ah eh hmm haha hehe lol thx!""".split()
)
_FILLER_ZH = ("请问", "请", "啊", "呀", "啦", "哈", "哈哈", "呢", "吧", "喔", "哦", "嘛", "机器人", "老板", "大家")
# fmt: on

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class SmallTalk:
    kind: str  # one of KINDS
    lang: str | None  # the language of the words, None for emoji or words common to all


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return text.replace("\u2019", "'")


@cache
def _table() -> list[tuple[str, str, str, re.Pattern[str]]]:
    """The phrases as (kind, language, first word, pattern), longest first; compiled on first
    use (~180 patterns), not at import, so that start-up does not pay for them (:func:`warm_up`
    builds them ahead)."""
    rows: list[tuple[str, str, str]] = []
    for (kind, lang), phrases in _PHRASES.items():
        rows.extend((kind, lang, p) for p in phrases)
    rows.sort(key=lambda r: -len(r[2]))  # longest first: "thank you very much" before "thank you"
    out = []
    for kind, lang, p in rows:
        if _CJK.search(p):
            pat = re.compile(re.escape(p).replace(r"\ ", r"\s*"))
        else:
            pat = re.compile(r"(?<![a-z0-9])" + re.escape(p).replace(r"\ ", r"\s+") + r"(?![a-z0-9])")
        out.append((kind, lang, p.split()[0], pat))
    return out


def warm_up() -> None:
    """Compile the phrase table now."""
    _table()

_LONGEST = 80


def small_talk(text: str) -> SmallTalk | None:
    """The kind of small talk ``text`` is, or None when it says anything else."""
    if not text or len(text) > _LONGEST:
        return None
    rest = _fold(text).strip()
    if not rest:
        return None
    found: list[tuple[str, str]] = []
    folded = rest
    for kind, lang, first, pat in _table():
        # A phrase can match only where its first word is: a cheap test before the pattern. (A
        # replacement puts a space in, so it never makes a word that was not in the text.)
        if first not in folded:
            continue
        rest, n = pat.subn(" ", rest)
        if n:
            found.append((kind, lang))
    for word in _FILLER_ZH:
        rest = rest.replace(word, " ")
    words = re.findall(r"[a-z0-9']+", rest)
    if any(w not in _FILLER for w in words) or _CJK.search(rest):
        return None
    if not found:
        # Only emoji and punctuation: a thumbs-up or a smile is an "ok"; "???" is not small talk.
        symbols = [ch for ch in rest if unicodedata.category(ch) == "So"]
        return SmallTalk("ok", None) if symbols else None
    kind = next(k for k in KINDS if any(f[0] == k for f in found))
    langs = {lang for k, lang in found if lang}
    lang = None
    for candidate in ("zh", "ms", "en"):
        if candidate in langs:
            lang = candidate
            break
    if lang == "en" and len(langs) == 1 and all(k == "ok" for k, _ in found):
        lang = None  # "ok", "yes": said in every language
    return SmallTalk(kind, lang)
