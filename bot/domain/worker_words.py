"""Read a worker type and an age out of what people write (English, Malay, Chinese).

One pure function, :func:`read_worker_words`, shared by everything that reads typed or pasted
text about a worker (the staff list, typed messages). It finds

* the **worker type**: "foreign", "foreigner", "asing", "pekerja asing", "外劳", "外籍", "外籍员工"
  (a foreign employee); "maid", "helper", "amah", "domestic", "pembantu rumah", "女佣", "帮佣",
  "佣人" (a domestic worker) with a nationality word ("foreign maid", "maid asing", "外佣", "菲佣",
  "本地女佣", "maid tempatan") or the exact codes "domestic-local" / "domestic-foreign";
  "employee", "local", "tempatan", "pekerja", "员工", "本地" (a local employee). A domestic word
  without a nationality leaves the type open (``domestic_unclear``): the caller asks, since the
  two differ (EIS is for local workers only);
* the **age**: "umur 61", "61 tahun", "age 61", "aged 61", "61 years old", "61 yrs", "61 y/o",
  "61岁", "61歲", "年龄61", "年龄：61";

and returns the text with those words removed, so a salary parser can read what is left
("Ahmad 3500 umur 61" -> rest "Ahmad 3500", age 61). Matching is case-insensitive on NFKC-folded
text; Latin words must stand alone ("asingkan" is not "asing"). ``rest`` keeps the writer's
letter case. No I/O, no state.

For a typed chat message, :func:`salary_question` says whether it gives a wage and asks what to
pay ("how much socso for 3k", "3000块要扣多少社险", "salary 4000 age 58") and returns the
wage part; :attr:`WorkerWords.choices` are the worker types the words leave open (a type
decided only by a word such as "worker" or "员工", ``vague``, leaves all four open in the chat:
a foreign worker is a worker too).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain.rates import WorkerType
from bot.domain.salary import parse_salary

__all__ = ["MAX_AGE", "WorkerWords", "read_worker_words", "salary_question"]

MAX_AGE = 130  # the calculator's limit; a larger "age" is reported as unreadable


@dataclass(frozen=True, slots=True)
class WorkerWords:
    """What :func:`read_worker_words` found.

    ``worker`` is None when no type word was found (or a domestic word without nationality:
    then ``domestic_unclear`` is True). ``age`` is None when no age phrase was found;
    ``bad_age`` is True when an age phrase held a number above :data:`MAX_AGE`. ``rest`` is the
    NFKC-normalized text without the words found, spaces squeezed.
    """

    worker: WorkerType | None
    age: int | None
    rest: str
    domestic_unclear: bool = False
    bad_age: bool = False
    vague: bool = False  # EMPLOYEE only from a generic word ("worker", "pekerja", "员工")

    @property
    def choices(self) -> tuple[WorkerType, ...]:
        """The worker types the words leave open, for a chat message (see ``vague``)."""
        if self.worker is not None and not self.vague:
            return (self.worker,)
        if self.domestic_unclear:
            return (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN)
        return tuple(WorkerType)

    @property
    def said_anything(self) -> bool:
        """Whether the words name a worker type (even vaguely), a maid, or an age."""
        return self.worker is not None or self.domestic_unclear or self.age is not None


def _alt(words: list[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


# Latin words stand alone: (?<![a-z]) ... (?![a-z]); CJK words need no boundary.
_L = r"(?<![a-z0-9])(?:{})(?![a-z])"

_EXACT = re.compile(_L.format(r"domestic[-_ ]local|domestic[-_ ]foreign"), re.I)
_DOMESTIC_FOREIGN_CJK = ["外佣", "外傭", "菲佣", "印佣", "外籍女佣", "外籍帮佣", "外籍佣人", "外劳女佣"]
_DOMESTIC_LOCAL_CJK = ["本地女佣", "本地帮佣", "本地佣人"]
_DOMESTIC_LATIN = [
    "maid", "maids", "helper", "helpers", "amah", "domestic", "domestic worker",
    "domestic helper", "pembantu rumah", "pembantu", "pekerja domestik", "domestik",
    "bibik", "orang gaji",
]
_DOMESTIC_CJK = ["女佣", "女傭", "帮佣", "幫傭", "佣人", "傭人", "家佣", "家庭帮佣", "保姆"]
_FOREIGN_LATIN = [
    "foreign", "foreigner", "foreign worker", "foreign employee", "asing", "pekerja asing",
    "warga asing", "migrant", "migrant worker", "indonesian", "indon", "filipino", "filipina",
    "bangladeshi", "nepali", "nepalese", "myanmar",
]
_FOREIGN_CJK = ["外籍员工", "外籍员", "外籍", "外劳", "外勞", "外国人", "外国劳工", "外国", "印尼", "菲律宾"]
_LOCAL_LATIN = [
    "local", "tempatan", "employee", "employees", "local employee", "pekerja", "pekerja tempatan",
    "staff", "worker", "warganegara", "malaysian",
]
_LOCAL_CJK = ["本地员工", "本地", "员工", "雇员", "大马人"]
# ... of which these say "local" (the others only "an employee", who may be foreign)
_EXPLICIT_LOCAL_LATIN = ["local", "tempatan", "local employee", "pekerja tempatan", "warganegara", "malaysian"]
_EXPLICIT_LOCAL_CJK = ["本地员工", "本地", "大马人"]

_DOMESTIC_RE = re.compile(_L.format(_alt(_DOMESTIC_LATIN)) + "|" + _alt(_DOMESTIC_CJK), re.I)
_FOREIGN_RE = re.compile(_L.format(_alt(_FOREIGN_LATIN)) + "|" + _alt(_FOREIGN_CJK), re.I)
_LOCAL_RE = re.compile(_L.format(_alt(_LOCAL_LATIN)) + "|" + _alt(_LOCAL_CJK), re.I)
_DF_CJK_RE = re.compile(_alt(_DOMESTIC_FOREIGN_CJK))
_DL_CJK_RE = re.compile(_alt(_DOMESTIC_LOCAL_CJK))
_EXPLICIT_LOCAL_RE = re.compile(
    _L.format(_alt(_EXPLICIT_LOCAL_LATIN)) + "|" + _alt(_EXPLICIT_LOCAL_CJK), re.I
)

# Ages: a word before the number, or a unit after it.
_AGE_RE = re.compile(
    r"(?<![a-z])(?:umur|usia|age|aged|berumur|berusia)\s*[:：=]?\s*(?P<a>\d{1,4})(?!\d)(?:\s*tahun)?"
    r"|(?:年龄|年齡|岁数|歲數)\s*[:：=]?\s*(?P<b>\d{1,4})(?!\d)\s*(?:岁|歲)?"
    r"|(?<![\d.,])(?P<c>\d{1,4})\s*(?:"
    r"(?:years?|yrs?)(?:\s*old)?(?![a-z])|y/o(?![a-z])|yo(?![a-z])|tahun(?![a-z])|岁|歲|周岁"
    r")"
    # "my worker is 61": two digits right after "is" (never an amount: no k / rb / decimals)
    r"|(?<![a-z])(?:is|was)\s+(?P<d>\d{2})(?!\d|[.,]\d|\s*(?:k|rb|ribu|%)(?![a-z]))",
    re.I,
)
_SPACES = re.compile(r"\s+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def read_worker_words(text: str) -> WorkerWords:
    """The worker type and age written in ``text``, and the text without them.

    A type is decided by the most specific words present: an exact code or a CJK word that
    names both (外佣, 本地女佣), then domestic + foreign/local words, then foreign, then local.
    Only the first age phrase counts.
    """
    folded = _fold(text)
    rest = folded
    age: int | None = None
    bad_age = False
    m = _AGE_RE.search(rest)
    if m is not None:
        value = int(m.group("a") or m.group("b") or m.group("c") or m.group("d"))
        if value > MAX_AGE:
            bad_age = True
        else:
            age = value
        rest = rest[: m.start()] + " " + rest[m.end() :]

    worker: WorkerType | None = None
    unclear = False
    vague = False
    exact = _EXACT.search(rest)
    if exact is not None:
        code = re.sub(r"[-_ ]", "-", exact.group().lower())
        worker = WorkerType(code)
        rest = _EXACT.sub(" ", rest)
    elif _DF_CJK_RE.search(rest):
        worker = WorkerType.DOMESTIC_FOREIGN
        rest = _DF_CJK_RE.sub(" ", rest)
    elif _DL_CJK_RE.search(rest):
        worker = WorkerType.DOMESTIC_LOCAL
        rest = _DL_CJK_RE.sub(" ", rest)
    else:
        domestic = bool(_DOMESTIC_RE.search(rest))
        foreign = bool(_FOREIGN_RE.search(rest))
        rest_wo = _FOREIGN_RE.sub(" ", _DOMESTIC_RE.sub(" ", rest))
        local = bool(_LOCAL_RE.search(rest_wo))
        if domestic:
            if foreign:
                worker = WorkerType.DOMESTIC_FOREIGN
            elif local:
                worker = WorkerType.DOMESTIC_LOCAL
            else:
                unclear = True
        elif foreign:
            worker = WorkerType.FOREIGN
        elif local:
            worker = WorkerType.EMPLOYEE
            vague = not _EXPLICIT_LOCAL_RE.search(rest_wo)
        if domestic or foreign or local:
            rest = _LOCAL_RE.sub(" ", rest_wo)
    rest = _SPACES.sub(" ", rest).strip()
    return WorkerWords(worker, age, rest, unclear, bad_age, vague)


# --- a wage inside a chat question ------------------------------------------------------------

_W = r"(?<![a-z])"  # a Latin word starts here
_E = r"(?![a-z])"  # ... and ends here
# A wage with one of these words is a question about the amount to pay.
_ASKS_AMOUNT = re.compile(
    _W + r"(?:how\s+much|berapa|brp|calculate|calc|kira|count|socso|sosco|perkeso|eis|sip"
    r"|lindung|contributions?|caruman|carum|deduct(?:ion|ed)?|potong(?:an)?|pay|bayar"
    r"|salary|wages?|gaji|income|pendapatan|earns?|rm|myr|ringgit)" + _E
    + r"|多少|几多|算|扣|交|缴|付|社险|社保|就业保险|工资|月薪|薪水|人工|底薪|令吉|块|元"
)
# ... unless it is about something else that carries a number: a deadline, a penalty, a law.
_OTHER_TOPIC = re.compile(
    _W + r"(?:act|akta|section|seksyen|form|borang|late|lewat|fine|denda|penalty|penalti|interest"
    r"|faedah|deadline|due|tarikh|jail|prison|penjara|phone|call|hotline|telefon|register"
    r"|daftar|password|login|claim|tuntutan|benefits?|compensation|pampasan"
    r"|year|years|tahun|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|jun[e]?"
    r"|jul[y]?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|day|days|hari"
    r"|percent|peratus)" + _E
    + r"|%|罚|利息|迟|截止|期限|法令|表格|注册|登记|密码|电话|索赔|赔偿|年|号|日"
)


def salary_question(text: str) -> str | None:
    """The wage part of a chat message that gives a wage and asks what to pay, else None.

    After the worker and age words are taken out (:func:`read_worker_words`), it must hold
    exactly one amount of at least RM100, a word about pay or contributions or the worker, and
    no word of another topic that carries numbers (dates, deadlines, penalties, laws, forms,
    percentages).
    """
    if not text or len(text) > 200:
        return None
    ww = read_worker_words(text)
    rest = ww.rest.lower()
    if _OTHER_TOPIC.search(rest):
        return None
    p = parse_salary(rest)
    if p.kind != "ok" or p.amount is None or p.amount < 100:
        return None
    if not (_ASKS_AMOUNT.search(rest) or ww.said_anything):
        return None
    return rest
