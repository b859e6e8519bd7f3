"""Read a monthly salary out of what people type (English, Malay, Chinese).

``parse_salary`` returns a :class:`SalaryParse`. Rules:

* Currency and salary words are optional: "3500", "RM3,500.50", "rm 3500", "RM 1 500", "gaji RM2800",
  "月薪3500", "3500令吉", "RM3500 sebulan".
* Multipliers: "3.5k", "3.5K", "3rb", "3 ribu", "3千5" (3,500), "三千五百", "2万" (20,000), "1万2" (12,000).
* "3.500" is ambiguous (thousands dot, or RM3.50): kind "ambiguous", candidates (3500.00, 3.50).
  A number with a dot and three decimals whose decimal reading has more than 2 significant decimals
  ("12.345") can only be a thousands separator and reads as 12,345.
* An amount may have at most 2 decimals: "3500.555" is rejected with kind "none" (never rounded).
* Several different numbers: when exactly one carries a currency mark (RM, ringgit, 令吉) it wins,
  otherwise kind "ambiguous" with every number as a candidate.
* "-3000" -> "negative"; 0 -> "zero"; above RM1,000,000 -> "absurd"; per hour / per day wording
  ("RM15/hour", "RM15 sejam", "每小时15", "RM80 sehari", "日薪80") -> "hourly" / "daily" with the amount.

``looks_like_salary`` says whether a message is essentially a salary (used by the chat router).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["ABSURD_ABOVE", "SalaryParse", "looks_like_salary", "parse_salary"]

ABSURD_ABOVE = Decimal("1000000")
MAX_LEN = 200  # longer messages are not a salary
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SalaryParse:
    kind: str  # "ok" | "ambiguous" | "zero" | "negative" | "absurd" | "hourly" | "daily" | "none"
    amount: Decimal | None = None
    candidates: tuple[Decimal, ...] = ()


_NONE = SalaryParse("none")

# --- period words --------------------------------------------------------------------------
_HOURLY_RE = re.compile(
    r"(?:/\s*(?:hour|hr|h|jam)\b|\bper\s*(?:hour|hr|jam)\b|\ban\s+hour\b|\bhourly\b|\bsejam\b"
    r"|每小时|每个小时|一小时|时薪|小时)"
)
_DAILY_RE = re.compile(
    r"(?:/\s*(?:day|hari)\b|\bper\s*(?:day|hari)\b|\ba\s+day\b|\bdaily\b|\bsehari\b|\bharian\b"
    r"|每天|一天|日薪|每日)"
)
# CJK phrases containing numerals that are not amounts ("一个月" = one month).
_CJK_PERIOD_PHRASES = re.compile(r"一个月|每个月|每月|一天|一小时|每个小时|每小时|一个钟|个月")

# --- numbers ---------------------------------------------------------------------------------
_CN_DIGIT = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000, "仟": 1000, "万": 10000, "萬": 10000}
_CN_CHARS = "".join(_CN_DIGIT) + "".join(_CN_UNIT)
# A Chinese-style number: digits / CN numerals mixed with units, containing at least one CN char.
_CN_NUM_RE = re.compile(
    # possessive quantifiers: no backtracking blow-up on long digit strings
    rf"(?:\d++(?:\.\d++)?)?[{_CN_CHARS}](?:[{_CN_CHARS}]|\d++(?:\.\d++)?)*+"
)
_CN_TOKEN_RE = re.compile(rf"\d+(?:\.\d+)?|[{_CN_CHARS}]")
# "3.5k", "3k", "3 rb", "3.5 ribu"
_K_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:k|rb|ribu)(?![a-z])")

# Arabic numbers with thousands separators (comma, single space, dot) or plain decimals.
_NUM_RE = re.compile(
    r"(?P<neg>(?<![\w.])[-−–]\s*(?:rm\s*)?)?"
    r"(?P<num>\d{1,3}(?:(?:,\d{3})+|(?: \d{3})+|(?:\.\d{3})+(?!\d))(?:\.\d+)?(?![\d,])"
    r"|\d+(?:\.\d+)?)"
)
_CURRENCY_BEFORE_RE = re.compile(r"(?:rm|myr|ringgit)\s*[-−–]?\s*$")
_CURRENCY_AFTER_RE = re.compile(r"^\s*(?:ringgit|令吉|马币|元|myr|rm)")


def _cn_value(text: str) -> Decimal | None:
    """Value of a Chinese-style number ("三千五百", "3千5", "2万", "1万2", "3.5千")."""
    total = Decimal(0)
    section = Decimal(0)
    num: Decimal | None = None
    last_unit = 0
    after_zero = False
    for tok in _CN_TOKEN_RE.findall(text):
        if tok in _CN_UNIT:
            unit = _CN_UNIT[tok]
            if unit == 10000:
                section += num if num is not None else (Decimal(0) if section else Decimal(1))
                total += section * unit
                section = Decimal(0)
            else:
                section += (num if num is not None else Decimal(1)) * unit
            num = None
            last_unit = unit
            after_zero = False
        elif tok in _CN_DIGIT:
            d = _CN_DIGIT[tok]
            if d == 0:
                after_zero = True
                num = None
                continue
            if num is not None and tok in _CN_DIGIT:
                return None  # "三五" is not a number
            num = Decimal(d)
        else:
            if num is not None:
                return None
            num = Decimal(tok)
    if num is not None:
        if last_unit >= 100 and not after_zero and num < 10 and num == num.to_integral_value():
            num *= last_unit // 10  # colloquial "三千五" = 3,500, "1万2" = 12,000
        section += num
    return total + section


def _fmt(d: Decimal) -> str:
    d = d.normalize()
    return format(d, "f")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().strip()


def _normalize(text: str) -> str:
    """Folded text with Chinese numerals and k/rb multipliers turned into plain digits."""
    text = _CJK_PERIOD_PHRASES.sub(" ", _fold(text))
    text = _CN_NUM_RE.sub(
        lambda m: f" {_fmt(v)} " if (v := _cn_value(m.group())) is not None else m.group(), text
    )
    text = _K_RE.sub(lambda m: _fmt(Decimal(m.group(1)) * 1000), text)
    return text


@dataclass(frozen=True, slots=True)
class _Num:
    value: Decimal
    alt: Decimal | None  # second reading of "3.500"
    negative: bool
    marked: bool  # has a currency mark next to it
    start: int
    end: int


def _to_amount(s: str) -> Decimal | None:
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d.adjusted() >= 15:
        return d  # far above any wage: reported as "absurd", too big to quantize
    q = d.quantize(CENT)
    if q != d:
        return None  # more than 2 decimals: not a ringgit amount
    return q


def _numbers(text: str) -> list[_Num] | None:
    """All numbers in normalized text; None if one is malformed (e.g. more than 2 decimals)."""
    out: list[_Num] = []
    for m in _NUM_RE.finditer(text):
        raw = m.group("num")
        alt: Decimal | None = None
        if "," in raw or " " in raw:
            value = _to_amount(raw.replace(",", "").replace(" ", ""))
        elif raw.count(".") >= 2:
            if not re.fullmatch(r"\d{1,3}(?:\.\d{3})+", raw):
                return None  # "12.345.6": not a number
            value = _to_amount(raw.replace(".", ""))  # "3.500.000": dots are thousands
        elif re.fullmatch(r"\d{1,3}\.\d{3}", raw):
            thousands = _to_amount(raw.replace(".", ""))
            decimal = _to_amount(raw)
            if decimal is None:
                value = thousands  # "12.345": only the thousands reading is an amount
            else:
                value, alt = thousands, decimal  # "3.500": RM3,500 or RM3.50
        else:
            value = _to_amount(raw)
        if value is None:
            return None
        before = text[: m.start()]
        after = text[m.end() :]
        marked = bool(_CURRENCY_BEFORE_RE.search(before) or _CURRENCY_AFTER_RE.match(after))
        negative = bool(m.group("neg")) or bool(re.search(r"rm\s*[-−–]\s*$", before))
        out.append(_Num(value, alt, negative, marked, m.start(), m.end()))
    return out


def parse_salary(text: str) -> SalaryParse:
    """Parse a typed monthly salary; see the module docstring for the rules."""
    if not text or not text.strip() or len(text) > MAX_LEN:
        return _NONE
    norm = _normalize(text)
    nums = _numbers(norm)
    if not nums:
        return _NONE
    marked = [n for n in nums if n.marked]
    if len(marked) == 1:
        nums = marked
    distinct = list(dict.fromkeys((n.value, n.negative) for n in nums))
    if len(distinct) > 1:
        cands = tuple(dict.fromkeys(n.value for n in nums))
        return SalaryParse("ambiguous", None, cands)
    n = nums[0]
    if n.negative and n.value != 0:
        return SalaryParse("negative", -n.value, ())
    if n.alt is not None:
        return SalaryParse("ambiguous", None, (n.value, n.alt))
    if n.value == 0:
        return SalaryParse("zero", n.value, ())
    folded = _fold(text)
    if _HOURLY_RE.search(folded):
        return SalaryParse("hourly", n.value, ())
    if _DAILY_RE.search(folded):
        return SalaryParse("daily", n.value, ())
    if n.value > ABSURD_ABOVE:
        return SalaryParse("absurd", n.value, ())
    return SalaryParse("ok", n.value, ())


# --- looks_like_salary ---------------------------------------------------------------------------
_FILLER_WORDS = frozenset(
    """
    rm myr ringgit sen salary salaries gaji wage wages pay paid income basic gross nett net
    monthly month months per a an is of my our his her their the for to at about around approx only
    just roughly earn earns earning earned makes make gets get got receive receives
    bulan bulanan sebulan setiap untuk saya kami kita dia ialah adalah sekitar lebih kurang dalam
    pokok asas kasar bersih dapat terima hanya cuma
    maid maids helper amah worker workers employee employees staff pekerja pembantu rumah domestik
    domestic foreign asing local tempatan indon indonesian filipino
    hour hourly hr jam sejam day daily hari sehari harian
    socso sosco perkeso eis sip caruman contribution contributions kira calculate berapa
    """.split()
)
_FILLER_CJK = re.compile(
    r"令吉|马币|月薪|薪水|薪金|工资|人工|底薪|收入|一个月|每个月|每月|个月|月|我的|我们的|我|的|是|给|为|"
    r"外佣|女佣|佣人|菲佣|印佣|员工|雇员|工人|本地|外籍|大约|左右|元|块|小时|时薪|日薪|每天|每日|一天|天|"
    r"大概|只有|有|每|约"
)
_SALARY_WORD_RE = re.compile(r"\b(?:gaji|salary|wages?|income)\b|月薪|工资|薪水|薪金|底薪")
_LATIN_WORD = re.compile(r"[a-z]+")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


def looks_like_salary(text: str) -> bool:
    """True when the message is essentially a salary figure (optionally with salary/period words)."""
    if not text or "?" in text or "？" in text or len(text) > 80:  # a salary is short
        return False
    norm = _normalize(text)
    nums = _numbers(norm)
    if nums is None:
        return bool(re.fullmatch(r"\s*(?:rm\s*)?[-−–]?\s*[\d.,]+\s*", norm))  # "3500.555"
    if not nums or len({(n.value, n.negative) for n in nums}) > 1:
        return False
    rest = norm
    n0 = nums[0]
    folded = _fold(text)
    periodic = bool(_HOURLY_RE.search(folded) or _DAILY_RE.search(folded))
    if (
        not n0.marked
        and not periodic
        and abs(n0.value) < 100
        and not _SALARY_WORD_RE.search(norm)
        and re.search(r"[a-z\u3400-\u9fff]", norm)
    ):
        return False  # "socso for 2 maids": a small bare number inside words is not a salary
    for n in reversed(nums):
        rest = rest[: n.start] + " " + rest[n.end :]
    # A number glued to letters ("8a", "a1") is a form name, not a salary.
    for n in nums:
        if (
            n.start > 0
            and norm[n.start - 1].isalpha()
            and norm[max(0, n.start - 2) : n.start] != "rm"
            and not _CJK_CHAR.match(norm[n.start - 1])
        ):
            return False
        if n.end < len(norm) and norm[n.end].isalpha() and not _CJK_CHAR.match(norm[n.end]):
            return False
    rest = _FILLER_CJK.sub(" ", rest)
    if _CJK_CHAR.search(rest):
        return False
    return all(w in _FILLER_WORDS for w in _LATIN_WORD.findall(rest))
