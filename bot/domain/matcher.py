"""Match a free-text question to a guide: BM25F retrieval over the guides, in three languages.

How it works
------------
* One index per language over every guide in that language, with a BM25 model per field
  (title, keywords, summary, step text); a guide's score is the weighted sum over fields
  (``FIELD_WEIGHTS``: the curated keywords count most). Title, summary and keywords also index
  unordered word pairs at most ``PAIR_WINDOW`` apart (a cheap proximity feature).
* Analysis: NFKC + lower-case; Chinese runs are segmented with jieba (domain words added; loaded
  lazily, see ``SEGMENTS_FILE``); Latin
  words are split from digits, stop words dropped, and lightly stemmed (English plurals/-ing/-ed,
  Malay meN-/di-/ber-/pe(N)- prefixes and -kan/-an/-nya suffixes) by the index's language.
* Synonyms (``CONCEPTS``, in ``bot/domain/concepts.py``) map surface forms in any language - "maid", "amah",
  "pembantu rumah", "外佣" - to one concept token (``~maid``) that is added next to the words, in
  the guides and in the question alike. Concept tokens are what makes "how to bayar socso for
  maid" or "外佣社险怎么付" find the right guide whatever language the words are in.
* Typos: a Latin query word that is in no vocabulary is replaced by its closest vocabulary word
  (rapidfuzz ratio, cut-off depends on the word length), at a reduced weight.
* Cross-language pass: the question is scored against all three indexes; a guide's score is its
  score in the question's language plus ``CROSS_WEIGHT`` times its scores in the other two.
* Decision: no query word that is a title/keyword/concept word of any guide -> nothing;
  otherwise ``Match.score`` (a confidence in 0..1, see :class:`Match`) decides between a
  confident answer (``guide`` set) and "did you mean" suggestions.

Pure Python: no telegram imports.

Length (over 500 lines): much of it is data (stop words, markers, weights), kept next
to the analysis that uses them; the concepts themselves are in ``bot/domain/concepts.py`` (the
guide checker reads them too). The ``# ---`` sections (data, analysis, question form, two
topics, language, index, matcher) are the seams to split along.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from bot.domain.concepts import CONCEPTS
from bot.domain.guides import LANGS, Guide, GuideLibrary

__all__ = ["CONCEPTS", "Match", "Matcher", "analyze", "detect_lang", "is_yes_no", "two_topics"]

# --------------------------------------------------------------------------- data

# CONCEPTS (concept -> surface forms) is in bot/domain/concepts.py.

# Names of other agencies and of topics this bot has no guide for. A question naming one of them
# is about something else unless it also names SOCSO or EIS; this is one feature of the
# confidence (see CONFIDENCE_WEIGHTS), not a hard rule.
# fmt: off
OTHER_TOPICS: tuple[str, ...] = (
    "epf", "kwsp", "i-akaun", "iakaun", "lhdn", "irb", "income tax", "cukai pendapatan",
    "cukai", "tax", "taxes", "e-filing", "efiling", "borang be", "form be", "ea form", "borang ea",
    "pcb", "mtd", "ssm", "ptptn", "jpn", "immigration",
    "imigresen", "levy", "levi", "fomema", "hrdf", "hrd corp", "hrdcorp", "sst", "gst", "zakat",
    "str", "jpj", "road tax", "cukai jalan", "minimum wage", "gaji minimum",
    "annual leave", "cuti tahunan", "overtime", "lebih masa", "bitcoin", "maybank2u", "duitnow",
    "mysejahtera", "halal", "jakim", "stamp duty", "duti setem", "weather", "cuaca", "recipe",
    "resepi", "joke", "lawak", "football", "bola", "poem", "pantun", "song", "lagu", "flight",
    "mysalam", "bsh", "pinjaman", "loan",
    # private insurance and employment law (the Labour Department), not SOCSO
    "car insurance", "motor insurance", "insurance company", "my insurance", "insurans saya",
    "我的保险", "insurans kereta",
    "syarikat insurans", "takaful", "保险公司", "车险", "without notice", "tanpa notis",
    "unfair dismissal", "labour office", "labour department", "jabatan tenaga kerja", "jtk",
    "不通知", "劳工局",
    # one person's own case: only PERKESO can look it up
    "status of my", "my claim status", "approved my", "approved yet", "been approved",
    "dah lulus", "sudah lulus", "lulus ke", "status tuntutan saya", "status permohonan saya",
    "case number", "nombor kes", "no kes", "penyata", "statement", "批准了", "批了没有",
    "我的申请", "进度", "案件", "记录",
    "公积金", "所得税", "税", "报税", "扣税", "内陆税收局", "移民局", "人头税", "最低工资", "年假", "加班", "比特币", "天气", "笑话", "足球", "诗", "歌", "机票",
    "油价", "路税", "罚单", "印花税", "清真", "天课", "援助金", "贷款",
)
_IC_NUMBER_RE = re.compile(r"\b\d{6}-\d{2}-\d{4}\b")  # a MyKad number: one person's case
# Words that place a question inside this bot's domain.
CORE_CONCEPTS = frozenset(
    {"socso", "eis", "assist", "lindung", "accident", "benefit", "jobloss", "selfemployed"}
)
# fmt: on

STOP_EN = frozenset(
    """a an the to of for in on at by with from and or but if so as is are am was were be been
    being do does did doing done i me my mine we our us you your he she it its they them their
    this that these those there here what whats what's which who whom whose why how hows when
    where can could should would will shall may might must need needs want wants please pls plz
    tell know let get got give about any some all just also still yet very really much many
    there's it's i'm im u ur hi hello hey thanks thank ok okay yes no yeah sir madam bro sis
    help today now tomorrow one thing anyone someone something whether""".split()
)
STOP_MS = frozenset(
    """nak mahu hendak macam mana camne camana macamana mcm mne bagaimana bagaimanakah cara
    saya sy aku kami kita anda awak dia mereka untuk utk dengan dgn ke kah tak x tidak tk
    boleh leh blh bole apa ape bila bile yang ini itu ni tu la lah je jer sahaja pun dah sudah
    belum lagi kat dekat di dan atau ada adakah perlu kena kene harus tolong minta sikit
    terima kasih tq ty hai helo salam selamat pagi petang malam boss bos encik puan cik
    kenapa mengapa siapa macammana gimana gmana nk pls""".split()
)
STOP_ZH = frozenset(
    """的 了 吗 呢 吧 啊 呀 嘛 我 你 他 她 我们 你们 是 在 有 要 会 能 可以 怎么 怎样 如何 怎么样
    什么 哪里 请问 请 一下 这个 那个 这 那 和 与 跟 给 对 就 都 也 还 又 把 被 让 到 去 来
    说 问 个 为 为什么 吗? 您 好 你好 谢谢 多谢 哈喽 嗨 早安 早上好 麻烦 想 想要 需要 该 应该
    帮 帮忙 一 下 哦 喔 嗯 啦 咯 号 日 月 年 个 多 少 新 后 前 里 哪 些 上 中 时 次 天 做 用 拿
    算 办 怎么办 不 没 没有 已经 还 还要 之前 以后 什么时候 哪些 那些 这些""".split()
)
STOP = {"en": STOP_EN, "ms": STOP_MS, "zh": STOP_ZH}
ALL_STOP = STOP_EN | STOP_MS | STOP_ZH

# Words that mark a language (function words and very common verbs), for detect_lang.
MS_MARKERS = frozenset(
    """macam mana nak bayar bagaimana saya untuk dengan ke tak x tidak boleh leh blh apa bila
    yang ini itu ni tu la lah je cara camne camana mcm macamana kat dekat pun dah sudah belum
    lagi kena perlu ada adakah daftar pekerja majikan caruman lupa hilang tarikh akhir kadar
    berapa bulan gaji pembantu rumah siapa kenapa mengapa nombor hubungi telefon layak tiada
    aku kami kita anda awak utk dgn sy nk tk mne bole kene macammana pendaftaran bayaran
    mendaftar membayar sebelum lewat denda baru akaun kata laluan muat naik fail orang asing
    tempatan maksud kalau jika tapi tetapi juga sahaja jer bagi tolong minta mahu hendak
    terima kasih salam selamat pagi petang malam borang perlindungan pejabat terdekat skim
    kemalangan luar waktu kerja beza jenis pertama kedua lama dapat lepas hantar potongan
    potong baru jun resit bulanan langkah faedah wajib dokumen terkini peratus sebab""".split()
)
EN_MARKERS = frozenset(
    """how what when where why who which can could do does did is are am the a an to for of my
    i me we our your you with in on and not pay register need must should have has much many
    due date late forgot lost it this that there any please get check when's what's how's
    whats hows cant can't don't dont doesn't doesnt won't isn't after before every month
    monthly new account number call mean means meaning still again wrong error if then from
    at by or but was were will would there their they he she his her steps needed says
    address above below share salary table renewal contract successfully saved button
    registration payment deadline""".split()
)

# Calibrated confidence: a logistic model over the features of Matcher.features, fitted with
# bench/tune_confidence.py on tests/data/questions.tsv (label: the best guide is right) and
# tests/data/out_of_scope.tsv (label: no guide is right). Paste its output here.
# These values are the fit of commit 1daee9a. Refitting on today's data (1 December 2026) gives
# OPEN_AT 0.724 / UNSURE_AT 0.548, which bench/ask.py scores lower (ms top-1 94.9 %, under the
# 95 % floor; zh 95.3 %), so the earlier fit stays; check bench/ask.py before pasting a refit.
CONFIDENCE_WEIGHTS: dict[str, float] = {
    "bias": -4.175,
    "lead": 2.429,
    "strength": 2.542,
    "known_share": 1.569,
    "known_units": -0.607,
    "core": 2.473,
    "concepts": 0.750,
    "other_topic": -4.066,
    "unknown_units": -1.488,
}
FALLBACK_ANSWER_LANG = "en"  # the guide language whose [[answers]] rules are read
OPEN_AT = 0.697  # confidence at or above this: the guide opens
UNSURE_AT = 0.530  # between this and OPEN_AT: "not sure", 2-3 guides offered; below: no guide

FIELD_WEIGHTS = {"title": 1.0, "keywords": 3.0, "summary": 0.5, "steps": 0.7}
K1 = 1.2
B = 0.75
CROSS_WEIGHT = 0.4
FUZZY_WEIGHT = 0.8
PAIR_WEIGHT = 0.6
PAIR_WINDOW = 2
MAX_QUERY_CHARS = 400  # a question longer than this is cut (keeps matching fast)
MIN_LEAD_ONE_UNIT = 0.5  # a one-unit question needs this lead over the runner-up to open
PHRASE_BONUS = 0.2  # share of the best score added to a guide whose whole keyword phrase is asked
SUGGEST_RATIO = 0.45  # suggestions: raw score at least this fraction of the best
BOTH_RATIO = 0.3  # a two-topic question's guides: raw score at least this share of the best
SPLIT_RATIO = 0.5  # one guide per topic only when the best is one of them and the other this close
COVER_RATIO = 0.75  # a runner-up about both topics opens when this close to the best
# Concepts a guide title may name without narrowing what it is about.
GENERIC_CONCEPTS = frozenset({"pay", "worker", "employer", "assist", "must", "maid", "contact"})

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_RUN_RE = re.compile(f"[{_CJK}]+|[a-z0-9]+(?:'[a-z]+)?")
# "1a" (Borang 1A, SIP 1A) is one word: a digit run followed by ONE letter that ends the word.
_WORD_RE = re.compile(r"[0-9]+[a-z](?![a-z])|[a-z]+|[0-9]+")

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- analysis

# The Chinese segmenter. jieba (its import and dictionary: ~80 MB and over a second) is loaded
# only when a Chinese run is not in SEGMENTS_FILE, the committed segmentation of every Chinese
# run of the guides: building the matcher needs no jieba, and neither does an English or Malay
# question; the first Chinese question loads it. The file is only trusted when it was made with
# the same domain words; regenerate it after changing guides or CONCEPTS with
# ``python -m bot.domain.matcher --write-segments`` (tests/test_segmenter.py checks it is current).

SEGMENTS_FILE = Path(__file__).with_name("zh_segments.json")
_EXTRA_WORDS = ("缴纳", "雇主", "雇员", "投保薪资上限", "类别1", "类别2", "令吉", "文本文件")
_jieba: Any = None
_segments: dict[str, list[str]] | None = None
_recording: dict[str, list[str]] | None = None  # set while writing SEGMENTS_FILE


def _domain_words() -> list[str]:
    words = [
        form
        for forms in CONCEPTS.values()
        for form in forms
        if _CJK_RE.search(form) and len(form) > 1
    ]
    return [*words, *_EXTRA_WORDS]


def _words_fingerprint() -> str:
    return hashlib.sha256("\n".join(_domain_words()).encode()).hexdigest()[:16]


def _init_jieba() -> Any:
    """Import jieba and load its dictionary once, quietly, with the domain words added."""
    global _jieba
    if _jieba is None:
        import jieba  # noqa: PLC0415 - deliberately lazy (see above)

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        for word in _domain_words():
            jieba.add_word(word, freq=20000)
        _jieba = jieba
    return _jieba


def jieba_loaded() -> bool:
    """Whether the Chinese segmenter has been loaded in this process."""
    return _jieba is not None


def _known_segments() -> dict[str, list[str]]:
    global _segments
    if _segments is None:
        _segments = {}
        try:
            data = json.loads(SEGMENTS_FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("words") == _words_fingerprint():
            _segments = data.get("runs", {})
        else:
            log.info("%s missing or made with other domain words: loading jieba", SEGMENTS_FILE.name)
    return _segments


def _segment(run: str) -> list[str]:
    """jieba's search-mode words of one Chinese run (from SEGMENTS_FILE when it is there)."""
    words = _known_segments().get(run) if _recording is None else None
    if words is None:
        words = [w for w in _init_jieba().lcut_for_search(run) if w.strip()]
        if _recording is not None:
            _recording[run] = words
    return words


def write_segments(library: GuideLibrary, path: Path = SEGMENTS_FILE) -> int:
    """Segment every Chinese run the matcher indexes for ``library`` and save them to ``path``."""
    global _recording, _segments
    _recording = {}
    try:
        Matcher.build(library)
        runs = dict(sorted(_recording.items()))
    finally:
        _recording = None
        _segments = None
    lines = [f"{json.dumps(run, ensure_ascii=False)}: {json.dumps(words, ensure_ascii=False)}"
             for run, words in runs.items()]  # fmt: skip
    text = (f'{{"words": "{_words_fingerprint()}", "runs": {{\n' + ",\n".join(lines) + "\n}}\n")
    path.write_text(text, encoding="utf-8")
    return len(runs)


def normalize(text: str) -> str:
    """NFKC, lower-case, curly quotes to straight ones."""
    text = unicodedata.normalize("NFKC", text).lower()
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _stem_en(w: str) -> str:
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("'s"):
        w = w[:-2]
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    if w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith("ed") and len(w) > 4:
        w = w[:-2]
    return w


_MS_PREFIXES = ("meng", "meny", "mem", "men", "me", "di", "ber", "ter", "peng", "pem", "pen")
_MS_SUFFIXES = ("kannya", "nya", "kan", "an", "lah", "kah")


def _stem_ms(w: str) -> str:
    if len(w) <= 4 or w.isdigit():
        return w
    for suf in _MS_SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            w = w[: -len(suf)]
            break
    for pre in _MS_PREFIXES:
        if w.startswith(pre) and len(w) - len(pre) >= 4:
            rest = w[len(pre) :]
            if pre == "meny":
                rest = "s" + rest
            w = rest
            break
    return w


_STEMMERS = {"en": _stem_en, "ms": _stem_ms, "zh": _stem_en}


@lru_cache(maxsize=1)
def _concept_patterns() -> tuple[tuple[str, re.Pattern[str] | None, str], ...]:
    """(concept, pattern or None for a CJK form, the form; for a Latin form its first word)."""
    out: list[tuple[str, re.Pattern[str] | None, str]] = []
    for concept, forms in CONCEPTS.items():
        for form in forms:
            f = normalize(form)
            if _CJK_RE.search(f):
                out.append((concept, None, f))
            else:
                words = _WORD_RE.findall(f)
                # "(?<![a-z0-9])w1..." written as "w1(?<![a-z0-9]w1)...": the same matches, but
                # starting with a literal lets re skip ahead to it (half of Matcher.build's time).
                first = words[0] + r"(?<![a-z0-9]" + words[0] + ")"
                pat = re.compile(r"[^a-z0-9]*".join([first, *words[1:]]) + r"(?![a-z0-9])")
                out.append((concept, pat, words[0]))
    return tuple(out)


def concepts_in(text: str) -> set[str]:
    """Concept names whose surface forms occur in ``text`` (already normalized)."""
    found: set[str] = set()
    for concept, pat, form in _concept_patterns():
        # A form can only match where its first word (or the CJK form) is a substring:
        # the cheap test first, the regex only then.
        if concept in found or form not in text:
            continue
        if pat is None or pat.search(text):
            found.add(concept)
    return found


def _raw_words(text: str) -> list[str]:
    """Words of normalized ``text``: jieba words for Chinese runs, Latin/digit words otherwise."""
    words: list[str] = []
    for run in _RUN_RE.findall(text):
        if _CJK_RE.match(run):
            words.extend(_segment(run))
        else:
            words.extend(_WORD_RE.findall(run.replace("'s", "")))
    return words


def analyze(text: str, lang: str) -> list[str]:
    """Terms of ``text`` for an index in ``lang``: stemmed words without stop words, plus
    ``~concept`` tokens for every synonym concept found."""
    norm = normalize(text)
    stem = _STEMMERS.get(lang, _stem_en)
    terms = [stem(w) for w in _raw_words(norm) if w not in ALL_STOP]
    terms.extend("~" + c for c in sorted(concepts_in(norm)))
    return [t for t in terms if t]


@lru_cache(maxsize=1)
def _form_table() -> tuple[dict[str, str], dict[tuple[str, ...], str]]:
    """Concept forms that are one word (or one jieba word) and forms of 2-3 Latin words."""
    single: dict[str, str] = {}
    multi: dict[tuple[str, ...], str] = {}
    for concept, forms in CONCEPTS.items():
        for form in forms:
            f = normalize(form)
            if _CJK_RE.search(f):
                single.setdefault(f, concept)
                continue
            words = tuple(_WORD_RE.findall(f))
            if len(words) == 1:
                single.setdefault(words[0], concept)
            elif 1 < len(words) <= 3:
                multi.setdefault(words, concept)
    return single, multi


def _units(words: list[str], stem: object) -> list[str]:
    """The word stream with stop words dropped and concept forms replaced by ``~concept``."""
    single, multi = _form_table()
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in (3, 2):
            c = multi.get(tuple(words[i : i + n]))
            if c:
                out.append("~" + c)
                i += n
                break
        else:
            w = words[i]
            c = single.get(w)
            if c:
                out.append("~" + c)
            elif w not in ALL_STOP:
                out.append(stem(w))  # type: ignore[operator]
            i += 1
    return out


def pair_terms(units: list[str]) -> list[str]:
    """Unordered pairs of units at most PAIR_WINDOW apart: a cheap proximity feature."""
    out: list[str] = []
    for i, a in enumerate(units):
        for b in units[i + 1 : i + 1 + PAIR_WINDOW]:
            if a != b:
                x, y = (a, b) if a < b else (b, a)
                out.append(f"{x}|{y}")
    return out


def analyze_pairs(text: str, lang: str) -> list[str]:
    """Proximity pair terms of ``text`` (see :func:`pair_terms`)."""
    stem = _STEMMERS.get(lang, _stem_en)
    return pair_terms(_units(_raw_words(normalize(text)), stem))


# --------------------------------------------------------------------------- question form

_YESNO_RE = re.compile(
    # English: a question opening with an auxiliary, or "do I need", "compulsory", "or not"
    r"^\W*(?:do|does|did|is|are|am|was|were|must|should|shall|will|would|have|has|need)\b"
    r"|\b(?:do (?:i|we|you) (?:need|have) to|is it (?:compulsory|mandatory|required|necessary)"
    r"|or not|compulsory|mandatory|required|obligatory|must|need to|have to)\b"
    # Malay: "... ke?", "perlukah", "adakah", "kena ke", "wajib", "ke tak"
    r"|\badakah\b|\b\w+\s+(?:ke|kah)\W*$|\b\w+(?<!mana)(?<!apa)(?<!bila)(?<!napa)kah\b"
    r"|\b(?:perlu|kena|wajib|mesti|patut|payah)\s*(?:ke|kah)\b"
    r"|\b(?:ke|atau)\s+(?:tak|tidak|x|tk)\b|\bwajib\b|\b(?:tak|tidak)\W*$"
    # Chinese: "...吗", "要不要", "是否", "必须"
    r"|[吗嘛么][\W]*$|要不要|需不需要|是否|是不是|有没有|必须|一定要|用不用|需要.*吗"
)
# "Can I ...?" asks what is possible, not what is required: no yes/no answer of a guide fits.
_CAN_RE = re.compile(r"\b(?:can|could|may|boleh|bole|leh|blh)\b|可以|可不可以|能不能|能否|能")


def is_yes_no(text: str) -> bool:
    """Whether ``text`` asks a yes/no "is it so / do I need to" question (en, ms, zh); a
    "can I ...?" question is not one (its answer is rarely a plain yes or no)."""
    norm = normalize(text).strip()
    if _CAN_RE.search(norm) and not re.search(r"\b(?:must|need|wajib|kena|perlu)\b|必须|需要|一定", norm):
        return False
    return bool(_YESNO_RE.search(norm))


# --------------------------------------------------------------------------- two topics

# "A and B": the concepts a question may ask about two of at once.
PAIR_CONCEPTS = ("socso", "eis", "lindung", "register", "pay", "deadline", "rate", "contact", "password")
_AND_RE = re.compile(r"\s(?:and|dan|serta|&|\+|n)\s|&|\+|以及|和|及|与|跟|、")


def _concept_positions(text: str) -> dict[str, tuple[int, int]]:
    """Each concept found in normalized ``text``: (first start, last end) of its forms."""
    spans: dict[str, tuple[int, int]] = {}
    for concept, pat, form in _concept_patterns():
        hits = (
            [(m.start(), m.end()) for m in pat.finditer(text)]
            if pat is not None
            else [(m.start(), m.end()) for m in re.finditer(re.escape(form), text)]
        )
        for start, end in hits:
            first, last = spans.get(concept, (start, end))
            spans[concept] = (min(first, start), max(last, end))
    return spans


def two_topics(text: str) -> tuple[str, str] | None:
    """The two concepts a question joins with "and" ("SOCSO and EIS", "daftar dan bayar",
    "注册和缴费"), or None: the concept ending nearest before an "and" and the one starting
    nearest after it, each named on its own side only."""
    norm = normalize(text)
    joins = list(_AND_RE.finditer(norm))
    if not joins:
        return None
    spans = {c: v for c, v in _concept_positions(norm).items() if c in PAIR_CONCEPTS}
    for j in joins:
        before = [(end, c) for c, (start, end) in spans.items() if end <= j.start() and start < j.start()]
        after = [(start, c) for c, (start, end) in spans.items() if start >= j.end()]
        left = {c for _, c in before}
        right = {c for _, c in after}
        before = [(e, c) for e, c in before if c not in right]
        after = [(st, c) for st, c in after if c not in left]
        if before and after:
            return max(before)[1], min(after)[1]
    return None


# --------------------------------------------------------------------------- language


def detect_lang(text: str) -> tuple[str, bool]:
    """Guess the language of a question: ("en"|"ms"|"zh", confident).

    Any Chinese characters -> zh (confident with two or more). Otherwise Malay and English
    function words are counted; a clear majority is confident, a tie or no marker falls back to
    en, not confident.
    """
    norm = normalize(text)
    cjk = len(_CJK_RE.findall(norm))
    if cjk:
        return "zh", cjk >= 2
    words = _WORD_RE.findall(norm)
    ms = sum(1 for w in words if w in MS_MARKERS)
    en = sum(1 for w in words if w in EN_MARKERS)
    if ms > en:
        return "ms", ms >= 2 or (ms == 1 and en == 0 and len(words) <= 4)
    if en > ms:
        return "en", en >= 2 or (en == 1 and ms == 0 and len(words) <= 4)
    return "en", False


# --------------------------------------------------------------------------- index


@dataclass
class _Field:
    """BM25 statistics of one field (title, keywords, summary or steps) over the guides."""

    tfs: list[Counter[str]]
    lengths: list[int]
    avgdl: float
    idf: dict[str, float]

    @classmethod
    def build(cls, docs: list[list[str]]) -> _Field:
        tfs = [Counter(d) for d in docs]
        lengths = [len(d) for d in docs]
        df: Counter[str] = Counter()
        for tf in tfs:
            df.update(tf.keys())
        n = len(docs)
        idf = {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        avgdl = (sum(lengths) / n) if n and sum(lengths) else 1.0
        return cls(tfs, lengths, avgdl, idf)

    def score(self, i: int, query: dict[str, float]) -> float:
        tf = self.tfs[i]
        norm = K1 * (1.0 - B + B * self.lengths[i] / self.avgdl)
        s = 0.0
        for term, qw in query.items():
            f = tf.get(term)
            if f:
                s += qw * self.idf[term] * f * (K1 + 1.0) / (f + norm)
        return s


@dataclass
class _Index:
    """One language: a BM25 index per field; a guide's score is the weighted sum over fields."""

    lang: str
    ids: list[str]
    fields: dict[str, _Field]
    vocab: frozenset[str]
    anchors: frozenset[str]  # title/keyword/concept terms: a hit on one makes a query plausible

    @classmethod
    def build(cls, lang: str, guides: list[Guide]) -> _Index:
        texts = {
            "title": [g.title for g in guides],
            "keywords": [" ; ".join(g.keywords) for g in guides],
            "summary": [g.summary for g in guides],
            "steps": [g.step_text for g in guides],
        }
        fields: dict[str, _Field] = {}
        vocab: set[str] = set()
        anchors: set[str] = set()
        keyword_lists = [g.keywords for g in guides]
        for name, docs in texts.items():
            analyzed = [analyze(t, lang) for t in docs]
            if name in ("title", "summary"):
                for terms, t in zip(analyzed, docs, strict=True):
                    terms.extend(analyze_pairs(t, lang))
            elif name == "keywords":
                for terms, kws in zip(analyzed, keyword_lists, strict=True):
                    for kw in kws:
                        terms.extend(analyze_pairs(kw, lang))
            fields[name] = _Field.build(analyzed)
            for terms in analyzed:
                vocab.update(terms)
                if name in ("title", "keywords"):
                    anchors.update(t for t in terms if "|" not in t)
        anchors.update(t for t in vocab if t.startswith("~"))
        return cls(lang, [g.id for g in guides], fields, frozenset(vocab), frozenset(anchors))

    def scores(self, query: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, gid in enumerate(self.ids):
            s = sum(FIELD_WEIGHTS[name] * f.score(i, query) for name, f in self.fields.items())
            if s > 0:
                out[gid] = s
        return out


# --------------------------------------------------------------------------- matcher


@dataclass(frozen=True)
class Match:
    """The result of matching one question.

    ``lang``: language of the question (or ``user_lang`` when detection is unsure);
    ``lang_confident``: whether detection was sure; ``guide``: the guide to open, or None when
    the matcher is not confident enough; ``score``: the calibrated confidence in 0..1 that the
    best guide answers the question (0 when nothing is plausible; see
    :meth:`Matcher.confidence`); ``band``: "open" (score >= OPEN_AT: ``guide`` is set),
    "unsure" (UNSURE_AT <= score < OPEN_AT: ``suggestions`` holds the 2-3 guides to offer) or
    "none" (no guide fits); ``suggestions``: up to 3 other plausible guide ids, best first;
    ``both``: two guides for a question about two things (``guide`` is then None);
    ``answer``: the short answer the guide gives to this yes/no question, if it has one.
    """

    lang: str
    lang_confident: bool
    guide: str | None
    score: float
    suggestions: tuple[str, ...] = ()
    ranked: tuple[tuple[str, float], ...] = field(default=(), repr=False, compare=False)
    band: str = "none"
    both: tuple[str, ...] = ()
    answer: str | None = None

    @property
    def confidence(self) -> float:
        return self.score

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the CLI: lang, guide, confidence (and score, its old name), band,
        suggestions, both, answer."""
        return {
            "lang": self.lang,
            "guide": self.guide,
            "confidence": round(self.score, 4),
            "score": round(self.score, 4),
            "band": self.band,
            "suggestions": list(self.suggestions),
            "both": list(self.both),
            "answer": self.answer,
        }


@dataclass
class _Evidence:
    """What one question gave the ranking: the material of the confidence features."""

    lang: str
    lang_confident: bool
    ranked: list[tuple[str, float]]
    plausible: bool
    content: set[str]  # the question's units (concepts and stemmed words), no stop words/digits
    known: set[str]  # ... of which the guides know these
    concepts: set[str]
    other_topic: bool


def _other_topic_patterns(
    forms: tuple[str, ...] = OTHER_TOPICS,
) -> tuple[tuple[re.Pattern[str] | None, str], ...]:
    out: list[tuple[re.Pattern[str] | None, str]] = []
    for form in forms:
        f = normalize(form)
        if _CJK_RE.search(f):
            out.append((None, f))
        else:
            words = re.findall(r"[a-z0-9]+", f)
            pat = re.compile(r"(?<![a-z0-9])" + r"[^a-z0-9]*".join(words) + r"(?![a-z0-9])")
            out.append((pat, words[0]))
    return tuple(out)


_ALL_OTHER = _other_topic_patterns()


def names_other_topic(
    text: str, patterns: tuple[tuple[re.Pattern[str] | None, str], ...] = _ALL_OTHER
) -> bool:
    """Whether normalized ``text`` names another agency or a topic without a guide."""
    if _IC_NUMBER_RE.search(text):
        return True
    for pat, form in patterns:
        if form in text and (pat is None or pat.search(text)):
            return True
    return False


class Matcher:
    """Question -> guide matcher. Build once with :meth:`build`, then call :meth:`match`."""

    def __init__(self, indexes: dict[str, _Index], library: GuideLibrary | None = None) -> None:
        self._indexes = indexes
        self._library = library
        vocab: set[str] = set()
        for idx in indexes.values():
            vocab.update(t for t in idx.vocab if not t.startswith("~") and not _CJK_RE.search(t))
        self._vocab_set = frozenset(vocab)
        self._all_terms = frozenset().union(*(idx.vocab for idx in indexes.values()))
        self._vocab = sorted(vocab)
        self._fuzzy = lru_cache(maxsize=4096)(self._fuzzy_uncached)
        # Other topics, less those a guide takes up in its title or keywords (a guide on what
        # counts as wages answers "overtime"): the guides decide what is in scope.
        self._other = _ALL_OTHER
        if library is not None:
            covered = " ; ".join(
                normalize(" ; ".join((g.title, *g.keywords)))
                for gid in library.ids()
                for lang in LANGS
                if (g := library.get(gid, lang)) is not None
            )
            self._other = _other_topic_patterns(
                tuple(f for f in OTHER_TOPICS if not names_other_topic(covered, _other_topic_patterns((f,))))
            )
        # Each guide's keyword phrases (two words or more, or three Chinese characters or more),
        # in any language: a question holding one whole gets PHRASE_BONUS for that guide.
        self._phrases: list[tuple[str, str]] = []
        if library is not None:
            seen: set[tuple[str, str]] = set()
            for gid in library.ids():
                for lang in LANGS:
                    g = library.get(gid, lang)
                    for kw in g.keywords if g is not None else ():
                        k = normalize(kw).strip()
                        cjk = len(_CJK_RE.findall(k))
                        if (cjk >= 3 or (not cjk and len(k.split()) >= 2)) and (gid, k) not in seen:
                            seen.add((gid, k))
                            self._phrases.append((gid, k))
        # The concepts each guide's English title names: what the guide is about at heart.
        self._title_concepts: dict[str, set[str]] = {}
        if library is not None:
            for gid in library.ids():
                g = library.get(gid, FALLBACK_ANSWER_LANG)
                self._title_concepts[gid] = concepts_in(normalize(g.title)) if g else set()

    @classmethod
    def build(cls, library: GuideLibrary) -> Matcher:
        """Index every guide of ``library`` (one index per language)."""
        indexes = {
            lang: _Index.build(lang, library.in_lang(lang))
            for lang in LANGS
            if library.in_lang(lang)
        }
        return cls(indexes, library)

    def _fuzzy_uncached(self, word: str) -> str | None:
        if len(word) < 4 or word.isdigit():
            return None
        cutoff = 80.0 if len(word) >= 6 else 85.0 if len(word) >= 5 else 74.0
        hit = process.extractOne(word, self._vocab, scorer=fuzz.ratio, score_cutoff=cutoff)
        return hit[0] if hit else None

    def _query(self, text: str, lang: str) -> tuple[dict[str, float], list[str]]:
        """Query term weights for the index in ``lang`` (words, typo fixes, concepts, pairs)
        and the question's units (concepts or stemmed words, stop words left out; for Chinese
        the whole jieba words, not the pieces jieba's search mode adds)."""
        norm = normalize(text)
        stem = _STEMMERS.get(lang, _stem_en)
        weights: dict[str, float] = {}
        raw = _raw_words(norm)
        fixed_words: list[str] = []
        for w in raw:
            if w in ALL_STOP:
                fixed_words.append(w)
                continue
            term = stem(w)
            weights[term] = max(weights.get(term, 0.0), 1.0)
            if term not in self._vocab_set and w not in self._vocab_set and not _CJK_RE.search(w):
                fixed = self._fuzzy(term)
                if fixed:
                    weights[fixed] = max(weights.get(fixed, 0.0), FUZZY_WEIGHT)
                    norm = norm + " " + fixed  # let concept forms see the corrected word
                    w = fixed
            fixed_words.append(w)
        for c in concepts_in(norm):
            weights["~" + c] = 1.0
        units = _units(fixed_words, stem)
        cjk = [w for w in fixed_words if _CJK_RE.match(w)]
        own = [w for w in fixed_words if not any(w != o and w in o for o in cjk)]
        whole = [u for u in _units(own, stem) if u in units]
        for pair in pair_terms(units):
            weights[pair] = PAIR_WEIGHT
        return weights, whole

    def evidence(self, text: str, user_lang: str | None = None) -> _Evidence:
        """Rank the guides for ``text`` and collect what the confidence is computed from."""
        text = text[:MAX_QUERY_CHARS]
        guess, confident = detect_lang(text)
        lang = guess if confident or not user_lang else user_lang
        if lang not in self._indexes and self._indexes:
            lang = "en" if "en" in self._indexes else next(iter(self._indexes))
        total: dict[str, float] = {}
        plausible = False
        content: set[str] = set()
        known: set[str] = set()
        for idx_lang, idx in self._indexes.items():
            query, units = self._query(text, idx_lang)
            if idx_lang == lang:
                content = {u for u in units if not u.isdigit()}
                known = {u for u in content if u.startswith("~") or u in self._all_terms}
            if any(t in idx.anchors for t in query):
                plausible = True
            w = 1.0 if idx_lang == lang else CROSS_WEIGHT
            for gid, s in idx.scores(query).items():
                total[gid] = total.get(gid, 0.0) + w * s
        norm = normalize(text)
        if PHRASE_BONUS and total:
            padded = f" {norm} "
            hits: dict[str, int] = {}
            for gid, phrase in self._phrases:
                if phrase in norm and (_CJK_RE.search(phrase) or f" {phrase} " in padded
                                       or re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", norm)):
                    hits[gid] = hits.get(gid, 0) + 1
            if hits:
                top = max(total.values())
                for gid, n in hits.items():
                    total[gid] = total.get(gid, 0.0) + PHRASE_BONUS * top * min(n, 2) / 2
        ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
        return _Evidence(
            lang, confident, ranked, plausible and bool(ranked), content, known,
            concepts_in(norm), names_other_topic(norm, self._other),
        )

    @staticmethod
    def features(ev: _Evidence) -> dict[str, float]:
        """The confidence features of a ranking (names as in CONFIDENCE_WEIGHTS)."""
        s1 = ev.ranked[0][1] if ev.ranked else 0.0
        s2 = ev.ranked[1][1] if len(ev.ranked) > 1 else 0.0
        n_content = max(1, len(ev.content))
        return {
            "lead": (s1 - s2) / s1 if s1 > 0 else 0.0,
            "strength": math.log1p(s1) / 4.0,
            "known_share": len(ev.known) / n_content,
            "known_units": min(len(ev.known), 4) / 4.0,
            "core": 1.0 if ev.concepts & CORE_CONCEPTS else 0.0,
            "concepts": min(len(ev.concepts), 3) / 3.0,
            "other_topic": 1.0 if ev.other_topic else 0.0,
            "unknown_units": min(len(ev.content - ev.known), 4) / 4.0,
        }

    @staticmethod
    def confidence(features: dict[str, float], weights: dict[str, float] | None = None) -> float:
        """The calibrated probability that the best guide answers the question: a logistic
        model over ``features`` (weights fitted by bench/tune_confidence.py)."""
        w = CONFIDENCE_WEIGHTS if weights is None else weights
        z = w["bias"] + sum(w[name] * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def _short_answer(self, text: str, ev: _Evidence) -> tuple[str, str] | None:
        """(guide id, short answer) of the guide answer that fits the question best: every
        ``when`` concept in the question, no ``unless`` concept, a yes/no question if the
        answer wants one; most concepts first, then the better ranked guide. None if none fits
        or the question names another agency."""
        if self._library is None or ev.other_topic:
            return None
        yes_no: bool | None = None
        rank = {gid: i for i, (gid, _) in enumerate(ev.ranked)}
        best: tuple[int, int, str, int] | None = None
        for gid in self._library.ids():
            guide = self._library.get(gid, FALLBACK_ANSWER_LANG)
            if guide is None:
                continue
            for i, ans in enumerate(guide.answers):
                if not set(ans.when) <= ev.concepts or set(ans.unless) & ev.concepts:
                    continue
                if ans.yesno:
                    yes_no = is_yes_no(text) if yes_no is None else yes_no
                    if not yes_no:
                        continue
                key = (-len(ans.when), rank.get(gid, len(rank)), gid, i)
                if best is None or key < best:
                    best = key
        if best is None:
            return None
        _, _, gid, i = best
        local = self._library.get(gid, ev.lang)
        answers = local.answers if local is not None and len(local.answers) > i else ()
        if not answers:
            return None
        return gid, answers[i].text

    def _both(
        self, pair: tuple[str, str], ranked: list[tuple[str, float]], asked: set[str]
    ) -> list[str]:
        """For a question about two things: [the guide about both] when the best guide's title
        names both, or a close runner-up's names both and something else the question asks
        ("pay") and, if it is about more (besides generic words), something of that is asked
        too; else, when the best guide is about a (or b) and the best about the other is
        close, [the best guide about a, the best about b] and a plausible guide about both
        after them; else []."""
        a, b = pair
        s1 = ranked[0][1]
        plausible = [gid for gid, s in ranked if s >= BOTH_RATIO * s1]
        top = ranked[0][0]
        if {a, b} <= self._title_concepts.get(top, set()):
            return [top]  # the best guide is about both: the ranking agrees
        cover: str | None = None
        for gid, score in ranked[1:]:
            about = self._title_concepts.get(gid, set())
            extra = about - {a, b} - GENERIC_CONCEPTS
            shared = (about - {a, b}) & asked  # e.g. "pay" in "pay SOCSO and EIS"
            if {a, b} <= about and shared and (not extra or extra & asked) and score >= BOTH_RATIO * s1:
                if score >= COVER_RATIO * s1:
                    return [gid]
                cover = cover or gid

        def best(c: str, other: str) -> str | None:
            only = [g for g in plausible if c in self._title_concepts.get(g, set())]
            alone = [g for g in only if other not in self._title_concepts.get(g, set())]
            return (alone or only or [None])[0]

        ga, gb = best(a, b), best(b, a)
        if not (ga and gb and ga != gb):
            return [cover] if cover else []
        score = dict(ranked)
        if top not in (ga, gb) or min(score[ga], score[gb]) < SPLIT_RATIO * s1:
            return []  # the ranking does not see two topics: answer as usual
        rest = asked - {a, b}
        if rest and not all(self._title_concepts.get(g, set()) & rest for g in (ga, gb)):
            return []  # "register with SOCSO and EIS": one action on both, not two topics
        return [ga, gb, cover] if cover and cover not in (ga, gb) else [ga, gb]

    @classmethod
    def calibrated(cls, ev: _Evidence, weights: dict[str, float] | None = None) -> float:
        """The confidence of a ranking. One rule on top of the model: a question of one known
        unit ("socso", "maid") that several guides share equally is "not sure" (never opens a
        guide, and is not dropped as "no guide" either: its guides are offered)."""
        if not ev.plausible:
            return 0.0
        f = cls.features(ev)
        score = cls.confidence(f, weights)
        units = ev.known | {"~" + c for c in ev.concepts}
        if len(units) <= 1 and f["lead"] < MIN_LEAD_ONE_UNIT:
            if len(units) == 1 and not ev.other_topic:
                score = (OPEN_AT + UNSURE_AT) / 2
            else:
                score = min(score, (OPEN_AT + UNSURE_AT) / 2)
        return score

    def match(self, text: str, user_lang: str | None = None) -> Match:
        """Match ``text``; see :class:`Match` for the fields."""
        ev = self.evidence(text, user_lang)
        if not ev.plausible:
            return Match(ev.lang, ev.lang_confident, None, 0.0, ())
        ranked = ev.ranked
        best_id, s1 = ranked[0]
        score = self.calibrated(ev)
        found = self._short_answer(text, ev)
        if found is not None:
            gid, answer = found
            others = [g for g, s in ranked if g != gid and s >= SUGGEST_RATIO * s1]
            return Match(
                ev.lang, ev.lang_confident, gid, max(score, OPEN_AT), tuple(others[:3]),
                tuple(ranked), "open", answer=answer,
            )
        if score >= UNSURE_AT and not ev.other_topic:
            pair = two_topics(text)
            if pair is not None:
                both = self._both(pair, ranked, ev.concepts)
                if len(both) == 1:  # one guide is about both: it opens
                    best_id, score = both[0], max(score, OPEN_AT)
                    ranked = [(best_id, s1)] + [(g, s) for g, s in ranked if g != best_id]
                elif both:
                    return Match(
                        ev.lang, ev.lang_confident, None, score, (), tuple(ranked), "unsure",
                        both=tuple(both),
                    )
        others = [gid for gid, s in ranked[1:] if s >= SUGGEST_RATIO * s1]
        if score >= OPEN_AT:
            return Match(
                ev.lang, ev.lang_confident, best_id, score, tuple(others[:3]), tuple(ranked), "open"
            )
        if score >= UNSURE_AT:
            # "Not sure": offer 2-3 guides, the runner-up even when it is far behind.
            offer = [best_id, *others][:3]
            if len(offer) < 2 and len(ranked) > 1:
                offer.append(ranked[1][0])
            return Match(ev.lang, ev.lang_confident, None, score, tuple(offer), tuple(ranked), "unsure")
        return Match(ev.lang, ev.lang_confident, None, score, (), tuple(ranked), "none")


if __name__ == "__main__":  # python -m bot.domain.matcher --write-segments [CONTENT_DIR]
    import sys

    from bot.domain.guides import load_guides

    if len(sys.argv) < 2 or sys.argv[1] != "--write-segments":
        print("usage: python -m bot.domain.matcher --write-segments [CONTENT_DIR]", file=sys.stderr)
        sys.exit(2)
    content = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parents[2] / "content"
    count = write_segments(load_guides(content))
    print(f"wrote {count} Chinese runs to {SEGMENTS_FILE}")
