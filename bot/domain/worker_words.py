"""Who a typed wage is for, read from the words around it (English, Malay, Chinese, mixed).

``read_worker_words("RM1800 pembantu rumah asing")`` -> domestic, foreign, no age.
``salary_question(text)`` says whether a message is a wage with a question about what to pay
("how much socso for 3k", "3000块要扣多少社险", "salary 4000 age 58") and returns the wage part
with the age phrase taken out, so that the age is not read as a second amount.

Pure Python: the caller turns the result into a worker type and an age band.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain.rates import WorkerType
from bot.domain.salary import parse_salary

__all__ = ["WorkerWords", "read_worker_words", "salary_question", "without_age"]

_L = r"(?<![a-z])"  # a Latin word starts here
_R = r"(?![a-z])"  # ... and ends here

# fmt: off
_FOREIGN = re.compile(
    _L + r"(?:foreign(?:er|ers)?|asing|migrant|indon(?:esian|esia)?|filipin[oa]s?|philippine"
    r"|bangladeshi?|nepal(?:i|ese)?|myanmar|burmese|vietnamese|cambodian|sri\s*lankan?|pati)" + _R
    + r"|外劳|外籍|外国|外佣|外傭|菲佣|印佣|菲律宾|印尼|孟加拉|尼泊尔|缅甸"
)
_LOCAL = re.compile(
    _L + r"(?:local|tempatan|malaysian|citizen|warganegara|rakyat\s+malaysia|pr)" + _R
    + r"|本地|大马人|马来西亚人|公民"
)
_DOMESTIC = re.compile(
    _L + r"(?:maids?|amah|helpers?|domestic(?:\s+(?:workers?|helpers?))?|pembantu(?:\s+rumah)?"
    r"|pekerja\s+domestik|orang\s+gaji|bibik|bibi|prt|fdh|fdw)" + _R
    + r"|女佣|女傭|外佣|外傭|菲佣|印佣|佣人|帮佣|家佣|保姆|家务助理|家庭佣工"
)
_AGE = re.compile(
    _L + r"(?:age[d]?|umur|berumur|usia|berusia)\s*(?:is|:|=|of)?\s*(?P<a1>\d{1,3})"
    r"(?:\s*(?:years?\s*old|years?|yrs?|tahun|thn)(?![a-z]))?" + _R
    + r"|(?<![\d.,])(?P<a2>\d{1,3})\s*(?:years?\s*old|yrs?\s*old|y/?o|tahun|thn|yrs?)" + _R
    + r"|(?<![\d.,])(?P<a3>\d{1,3})\s*(?:岁|歲|周岁)"
    + r"|(?:年龄|年纪|年齡)\s*(?:是|为|:|：)?\s*(?P<a4>\d{1,3})"
    # "my worker is 61": a two-digit number right after "is" (never an amount with k / rb)
    + r"|" + _L + r"(?:is|was)\s+(?P<a5>\d{2})(?![\d]|[.,]\d|\s*(?:k|rb|ribu|%)(?![a-z]))"
)
# A wage with one of these words is a question about the amount to pay.
_ASKS_AMOUNT = re.compile(
    _L + r"(?:how\s+much|berapa|brp|calculate|calc|kira|count|socso|sosco|perkeso|eis|sip"
    r"|lindung|contributions?|caruman|carum|deduct(?:ion|ed)?|potong(?:an)?|pay|bayar"
    r"|salary|wages?|gaji|income|pendapatan|rm|myr|ringgit)" + _R
    + r"|多少|几多|算|扣|交|缴|付|社险|社保|就业保险|工资|月薪|薪水|人工|底薪|令吉|块|元"
)
# ... unless it is about something else that carries a number: a deadline, a penalty, a law.
_OTHER_TOPIC = re.compile(
    _L + r"(?:act|akta|section|seksyen|form|borang|late|lewat|fine|denda|penalty|penalti|interest"
    r"|faedah|deadline|due|tarikh|jail|prison|penjara|phone|call|hotline|telefon|register"
    r"|daftar|password|login|claim|tuntutan|benefits?|faedah|compensation|pampasan"
    r"|year|years|tahun|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|jun[e]?"
    r"|jul[y]?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|day|days|hari"
    r"|percent|peratus|%)" + _R
    + r"|%|罚|利息|迟|截止|期限|法令|表格|注册|登记|密码|电话|索赔|赔偿|年|号|日"
)
# fmt: on


@dataclass(frozen=True)
class WorkerWords:
    """What the words say about the worker; None = not said."""

    foreign: bool | None  # True foreign, False local, None not said
    domestic: bool  # a maid / domestic helper
    age: int | None

    @property
    def worker(self) -> WorkerType | None:
        """The worker type when the words settle it, else None (then ``choices`` are left)."""
        if self.domestic:
            if self.foreign is True:
                return WorkerType.DOMESTIC_FOREIGN
            if self.foreign is False:
                return WorkerType.DOMESTIC_LOCAL
            return None
        if self.foreign is True:
            return WorkerType.FOREIGN
        if self.foreign is False:
            return WorkerType.EMPLOYEE
        return None

    @property
    def choices(self) -> tuple[WorkerType, ...]:
        """The worker types still possible (all four when the words say nothing)."""
        if self.worker is not None:
            return (self.worker,)
        if self.domestic:
            return (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN)
        return tuple(WorkerType)

    @property
    def said_anything(self) -> bool:
        return self.foreign is not None or self.domestic or self.age is not None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _age_match(folded: str) -> re.Match[str] | None:
    for m in _AGE.finditer(folded):
        value = int(next(g for g in m.groups() if g is not None))
        if 14 <= value <= 100:
            return m
    return None


def read_worker_words(text: str) -> WorkerWords:
    """Foreign or local, domestic or not, and an age, from the words of ``text``."""
    folded = _fold(text)
    foreign = bool(_FOREIGN.search(folded))
    local = bool(_LOCAL.search(folded))
    m = _age_match(folded)
    age = int(next(g for g in m.groups() if g is not None)) if m else None
    return WorkerWords(
        foreign=True if foreign and not local else False if local and not foreign else None,
        domestic=bool(_DOMESTIC.search(folded)),
        age=age,
    )


def without_age(text: str) -> str:
    """``text`` with its age phrase ("age 58", "60岁", "umur 60") blanked out."""
    folded = _fold(text)
    m = _age_match(folded)
    if m is None:
        return folded
    return folded[: m.start()] + " " + folded[m.end() :]


def salary_question(text: str) -> str | None:
    """The wage part of a message that gives a wage and asks what to pay, else None.

    It must hold exactly one amount (after the age phrase is taken out) of at least RM100, a
    word about pay or contributions or the worker, and no word of another topic that carries
    numbers (dates, deadlines, penalties, laws, forms, percentages).
    """
    if not text or len(text) > 200:
        return None
    rest = without_age(text)
    if _OTHER_TOPIC.search(rest):
        return None
    p = parse_salary(rest)
    if p.kind != "ok" or p.amount is None or p.amount < 100:
        return None
    words = read_worker_words(text)
    if not (_ASKS_AMOUNT.search(rest) or words.said_anything):
        return None
    return rest
