"""Every inline button's callback data, as typed values (one codec for the whole bot).

A button kind is a frozen dataclass with a short ``prefix``; its fields say what the button
carries and how each field is written::

    @dataclass(frozen=True)
    class ReminderPaid(CallbackData, prefix="rm:paid"):
        month: Annotated[str, MONTH_KEY]

    ReminderPaid("2026-05").pack()        # "rm:paid:2026-05"
    ReminderPaid.parse("rm:paid:2026-05")  # ReminderPaid(month="2026-05")
    ReminderPaid.parse("rm:paid:2026-13")  # None: not a well-formed ReminderPaid
    ReminderPaid.pattern()                 # for CallbackQueryHandler(pattern=...)

The wire format is ``<prefix>[:<field>]*``. Field values never contain the separator: each
field's codec rejects such a value when packing (a bug, raised as :class:`CallbackDataError`)
and when parsing (``None``). ``parse`` accepts only the canonical text ``pack`` writes, so
``Kind.parse(data).pack() == data`` whenever ``parse`` succeeds. Telegram's 64-byte limit is
checked in one place, :meth:`CallbackData.pack`.

``pattern()`` of a kind with fields matches ``^<prefix>:`` and of a kind without fields
``^<prefix>$``: a handler receives every press of its kind, garbage included, and answers a
``parse`` of ``None`` the way it always did (mostly "this button has expired"). A
:class:`Namespace` (``rm``, ``bc``, ...) or :class:`OneOf` groups kinds that one handler serves.

This module imports no ``telegram`` and nothing above the infrastructure layer: services
(``bot.reminder_views``, ``bot.agencies``) and handlers build their buttons with it alike.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import (
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    Self,
    TypeVar,
    get_args,
    get_origin,
)

from bot.domain.rates import WorkerType
from bot.domain.salary import ABSURD_ABOVE

SEP = ":"
MAX_BYTES = 64  # Telegram's limit on callback_data, in UTF-8 bytes

Lang = Literal["en", "ms", "zh"]  # bot.i18n.LANGS (a test keeps the two equal)
T = TypeVar("T")


class CallbackDataError(ValueError):
    """A button could not be packed: a field value the codec cannot write, or too long data.
    Always a bug in the caller (the values come from the bot's own code and content)."""


# --- field codecs ------------------------------------------------------------------------------


class Codec(Protocol[T]):
    def encode(self, value: T) -> str: ...

    def decode(self, text: str) -> T:
        """The value of ``text``; ValueError if ``text`` is not this codec's canonical form."""
        ...


@dataclass(frozen=True)
class Int:
    """A decimal integer in [lo, hi], ASCII digits, no leading zero or plus sign."""

    lo: int = 0
    hi: int = 10**18

    def encode(self, value: int) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise CallbackDataError(f"{value!r} is not an integer in [{self.lo}, {self.hi}]")
        return str(value)

    def decode(self, text: str) -> int:
        if not re.fullmatch(r"-?(?:0|[1-9][0-9]{0,18})", text) or text == "-0":
            raise ValueError(text)
        value = int(text)
        if not self.lo <= value <= self.hi:
            raise ValueError(text)
        return value


@dataclass(frozen=True)
class Text:
    """A string matching ``regex`` (which must exclude the separator)."""

    regex: str

    def __post_init__(self) -> None:
        if re.fullmatch(self.regex, SEP):
            raise ValueError(f"{self.regex!r} would accept the separator")

    def encode(self, value: str) -> str:
        if not isinstance(value, str) or SEP in value or not re.fullmatch(self.regex, value):
            raise CallbackDataError(f"{value!r} does not match {self.regex!r}")
        return value

    def decode(self, text: str) -> str:
        if SEP in text or not re.fullmatch(self.regex, text):
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class Choice:
    """One of a closed set of strings, written as itself."""

    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if any(SEP in v or not v for v in self.values):
            raise ValueError(f"a choice is empty or holds the separator: {self.values}")

    def encode(self, value: str) -> str:
        if value not in self.values:
            raise CallbackDataError(f"{value!r} is not one of {self.values}")
        return value

    def decode(self, text: str) -> str:
        if text not in self.values:
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class EnumCodec:
    """An enum member, written as its value or as ``codes[member]`` (a shorter code)."""

    enum: type[Enum]
    codes: tuple[tuple[Any, str], ...] = ()

    def __post_init__(self) -> None:
        codes = list(self._table().values())
        if len(set(codes)) != len(codes) or any(SEP in c or not c for c in codes):
            raise ValueError(
                f"{self.enum.__name__}: codes must be distinct, non-empty, without the separator"
            )

    def _table(self) -> dict[Any, str]:
        return dict(self.codes) if self.codes else {m: str(m.value) for m in self.enum}

    def encode(self, value: Any) -> str:
        table = self._table()
        if not isinstance(value, self.enum) or value not in table:
            raise CallbackDataError(f"{value!r} is not a {self.enum.__name__}")
        return table[value]

    def decode(self, text: str) -> Any:
        for member, code in self._table().items():
            if code == text:
                return member
        raise ValueError(text)


@dataclass(frozen=True)
class Flag:
    """A bool as ``1`` / ``0``."""

    def encode(self, value: bool) -> str:
        if not isinstance(value, bool):
            raise CallbackDataError(f"{value!r} is not a bool")
        return "1" if value else "0"

    def decode(self, text: str) -> bool:
        if text not in ("0", "1"):
            raise ValueError(text)
        return text == "1"


@dataclass(frozen=True)
class Money:
    """A non-negative Decimal amount up to ``hi``, with exactly two decimals (``3500.00``)."""

    hi: Decimal

    def encode(self, value: Decimal) -> str:
        text = f"{value:.2f}" if isinstance(value, Decimal) and value.is_finite() else ""
        try:
            self.decode(text)
        except ValueError as exc:
            raise CallbackDataError(f"{value!r} is not an amount in [0, {self.hi}]") from exc
        return text

    def decode(self, text: str) -> Decimal:
        if not re.fullmatch(r"(?:0|[1-9][0-9]{0,8})\.[0-9]{2}", text):
            raise ValueError(text)
        try:
            value = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise ValueError(text) from exc
        if value > self.hi:
            raise ValueError(text)
        return value


MIN_YEAR, MAX_YEAR = 1990, 2100  # months a button may name


@dataclass(frozen=True)
class CompactMonth:
    """A month index (``year * 12 + month - 1``) written ``YYYYMM``."""

    def encode(self, value: int) -> str:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CallbackDataError(f"{value!r} is not a month index")
        year, month = divmod(value, 12)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise CallbackDataError(f"year {year} is outside {MIN_YEAR}-{MAX_YEAR}")
        return f"{year:04d}{month + 1:02d}"

    def decode(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]{6}", text):
            raise ValueError(text)
        year, month = int(text[:4]), int(text[4:])
        if not (MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12):
            raise ValueError(text)
        return year * 12 + month - 1


@dataclass(frozen=True)
class MonthKey:
    """A month as ``YYYY-MM`` text (the reminders' month key)."""

    def encode(self, value: str) -> str:
        try:
            return self.decode(value)
        except (ValueError, TypeError) as exc:
            raise CallbackDataError(f"{value!r} is not a YYYY-MM month") from exc

    def decode(self, text: str) -> str:
        if not re.fullmatch(r"[0-9]{4}-(?:0[1-9]|1[0-2])", text):
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class Maybe(Generic[T]):
    """``codec``'s value, or None written as ``none`` (``-``)."""

    codec: Any
    none: str = "-"

    def __post_init__(self) -> None:
        try:
            self.codec.decode(self.none)
        except ValueError:
            return
        raise ValueError(f"{self.none!r} is a value of {self.codec!r}: None would be ambiguous")

    def encode(self, value: T | None) -> str:
        return self.none if value is None else self.codec.encode(value)

    def decode(self, text: str) -> T | None:
        if text == self.none:
            return None
        value: T = self.codec.decode(text)
        return value


def _default_codec(hint: Any) -> Codec[Any]:
    """The codec of a plain annotation: int, bool, an Enum or a Literal of strings."""
    if get_origin(hint) is Literal:
        return Choice(tuple(get_args(hint)))
    if hint is bool:
        return Flag()
    if hint is int:
        return Int()
    if isinstance(hint, type) and issubclass(hint, Enum):
        return EnumCodec(hint)
    raise TypeError(f"no default callback codec for {hint!r}: annotate it with one")


# --- the base class ----------------------------------------------------------------------------


_KINDS: dict[str, type[CallbackData]] = {}


class CallbackData:
    """Base of every button kind (see the module docstring). Subclasses are frozen dataclasses
    declared with ``prefix=``; fields with the default None at the end may be left out."""

    prefix: ClassVar[str]
    _codecs: ClassVar[tuple[tuple[str, Codec[Any], bool], ...] | None]

    def __init_subclass__(cls, prefix: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix is None:
            return  # an intermediate base class
        if not re.fullmatch(r"[a-z]{1,6}(?::[a-z]{1,6})*", prefix):
            raise ValueError(f"bad callback prefix {prefix!r}")
        for other in _KINDS:
            if (
                other == prefix
                or (other + SEP).startswith(prefix + SEP)
                or (prefix + SEP).startswith(other + SEP)
            ):
                raise ValueError(f"callback prefix {prefix!r} collides with {other!r}")
        cls.prefix = prefix
        cls._codecs = None
        _KINDS[prefix] = cls

    @classmethod
    def _fields(cls) -> tuple[tuple[str, Codec[Any], bool], ...]:
        """(name, codec, optional) of each field, read once from the annotations."""
        if cls._codecs is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            found = []
            for f in fields(cls):  # type: ignore[arg-type]
                hint = hints[f.name]
                codec = get_args(hint)[1] if get_origin(hint) is Annotated else _default_codec(hint)
                found.append((f.name, codec, f.default is None))
            cls._codecs = tuple(found)
        return cls._codecs

    @classmethod
    def _min_parts(cls) -> int:
        specs = cls._fields()
        n = len(specs)
        while n and specs[n - 1][2]:
            n -= 1
        return n

    def pack(self) -> str:
        """The callback data; CallbackDataError if a value cannot be written or the result
        is over Telegram's 64 bytes (the one place that limit is checked)."""
        parts = [self.prefix]
        values = [(codec, getattr(self, name)) for name, codec, _ in self._fields()]
        while len(values) > self._min_parts() and values[-1][1] is None:
            values.pop()  # a trailing optional field left out
        parts += [codec.encode(value) for codec, value in values]
        data = SEP.join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise CallbackDataError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def parse(cls, data: str | None) -> Self | None:
        """The button ``data`` stands for, or None if it is not a well-formed one of this kind."""
        if not isinstance(data, str) or len(data.encode()) > MAX_BYTES:
            return None
        specs = cls._fields()
        if not specs:
            return cls() if data == cls.prefix else None
        if not data.startswith(cls.prefix + SEP):
            return None
        texts = data[len(cls.prefix) + 1 :].split(SEP)
        if not cls._min_parts() <= len(texts) <= len(specs):
            return None
        try:
            values = {
                name: codec.decode(text)
                for (name, codec, _), text in zip(specs, texts, strict=False)
            }
            return cls(**values)
        except (ValueError, TypeError):
            return None

    @classmethod
    def pattern(cls) -> re.Pattern[str]:
        """What CallbackQueryHandler should match: every data of this kind, well-formed or not."""
        return re.compile(
            rf"^{re.escape(cls.prefix)}{SEP}" if cls._fields() else rf"^{re.escape(cls.prefix)}$"
        )


class OneOf:
    """Several kinds one handler serves: ``pattern()`` matches any of them, ``parse`` gives the
    first kind that parses."""

    def __init__(self, *kinds: type[CallbackData]) -> None:
        self.kinds = kinds

    def parse(self, data: str | None) -> CallbackData | None:
        for kind in self.kinds:
            found = kind.parse(data)
            if found is not None:
                return found
        return None

    def pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(kind.pattern().pattern for kind in self.kinds))


@dataclass(frozen=True)
class Namespace:
    """Every kind whose prefix starts with ``<name>:`` (``rm``, ``bc``, ``sl``...): the catch-all
    of one feature, so that its garbage gets that feature's answer."""

    name: str

    @property
    def kinds(self) -> tuple[type[CallbackData], ...]:
        return tuple(k for p, k in _KINDS.items() if p.startswith(self.name + SEP))

    def parse(self, data: str | None) -> CallbackData | None:
        return OneOf(*self.kinds).parse(data)

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.name)}{SEP}")


def kinds() -> dict[str, type[CallbackData]]:
    """Every button kind by prefix (for tests and tools)."""
    return dict(_KINDS)


# --- shared field codecs ------------------------------------------------------------------------

LANG = Choice(get_args(Lang))
GUIDE_ID = Text(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,47}")  # the ids guides may have (bot.domain.guides)
TOPIC = Text(r"[a-z]{1,20}")
AGENCY_CODE = Text(r"[A-Za-z0-9_-]{1,32}")
WAGE = Money(ABSURD_ABOVE)  # the calculator refuses more (bot.domain.salary)
MONTH = CompactMonth()
MONTH_KEY = MonthKey()
CHAT_ID = Int(-(2**53), 2**53)
ROW_ID = Int(0, 10**18 - 1)
WORKER = EnumCodec(WorkerType)

# --- the main menu and the language --------------------------------------------------------------

MenuItem = Literal["main", "guides", "calc", "remind", "lang"]


@dataclass(frozen=True)
class Menu(CallbackData, prefix="menu"):
    item: MenuItem


@dataclass(frozen=True)
class LanguageChoice(CallbackData, prefix="lang"):
    lang: Lang


# --- guides (bot/handlers/guides.py) -------------------------------------------------------------


@dataclass(frozen=True)
class GuideStep(CallbackData, prefix="g"):
    """Show step ``step`` (1-based) of a guide."""

    guide: Annotated[str, GUIDE_ID]
    step: Annotated[int, Int(1, 999)]
    lang: Lang


@dataclass(frozen=True)
class GuideAll(CallbackData, prefix="ga"):
    """All steps of a guide at once."""

    guide: Annotated[str, GUIDE_ID]
    lang: Lang


@dataclass(frozen=True)
class GuideTopic(CallbackData, prefix="gt"):
    topic: Annotated[str, TOPIC]
    lang: Lang


@dataclass(frozen=True)
class GuideMenu(CallbackData, prefix="gm"):
    lang: Lang


@dataclass(frozen=True)
class GuideFeedback(CallbackData, prefix="gf"):
    guide: Annotated[str, GUIDE_ID]
    lang: Lang
    helpful: bool


@dataclass(frozen=True)
class GuideAsk(CallbackData, prefix="gq"):
    """ "Ask another question"."""

    lang: Lang


@dataclass(frozen=True)
class GuideLanguage(CallbackData, prefix="gd"):
    """Make ``lang`` the user's language."""

    lang: Lang


GUIDE_BUTTONS = OneOf(
    GuideStep, GuideAll, GuideTopic, GuideMenu, GuideFeedback, GuideAsk, GuideLanguage
)

# --- the calculator (bot/handlers/calc.py) --------------------------------------------------------

# r: show the result; W/A/O: choose a worker type / age band / opt-out (saved as the user's
# choice); w/a: open the worker / age picker; m: the month picker (it alone carries an anchor);
# s: a wage picked from several readings of the text (no worker yet).
CalcAct = Literal["r", "W", "A", "O", "w", "a", "m", "s"]
AgeBand = Literal["u55", "55f", "55", "60"]
WORKER_CODE = EnumCodec(
    WorkerType,
    (
        (WorkerType.EMPLOYEE, "e"),
        (WorkerType.FOREIGN, "f"),
        (WorkerType.DOMESTIC_LOCAL, "dl"),
        (WorkerType.DOMESTIC_FOREIGN, "df"),
    ),
)


@dataclass(frozen=True)
class CalcAction(CallbackData, prefix="c"):
    """A calculator button: the whole calculation travels in the button."""

    act: CalcAct
    wage: Annotated[Decimal, WAGE]
    ym: Annotated[int, MONTH]
    worker: Annotated[WorkerType | None, Maybe(WORKER_CODE)]
    age: Annotated[AgeBand | None, Maybe(Choice(get_args(AgeBand)))]
    opt_out: bool
    anchor: Annotated[int | None, MONTH] = None

    def __post_init__(self) -> None:
        if self.worker is None and self.act != "s":
            raise ValueError("only a wage pick may come without a worker type")
        if (self.anchor is None) != (self.act != "m"):
            raise ValueError("the month picker, and only it, carries an anchor")


# --- the staff list (bot/handlers/stafflist.py) ---------------------------------------------------

StaffListAct = Literal["c", "m", "s"]  # CSV file, another month, save the people as workers


@dataclass(frozen=True)
class StaffListAction(CallbackData, prefix="sl"):
    act: StaffListAct
    token: Annotated[str, Text(r"[0-9a-f]{8}")]
    ym: Annotated[int | None, MONTH] = None

    def __post_init__(self) -> None:
        if self.act in ("c", "m") and self.ym is None:
            raise ValueError("a CSV or month button names its month")


# --- reminders (bot/handlers/reminders.py, bot/reminder_views.py) ------------------------------------

REMINDERS = Namespace("rm")
ReminderAudienceName = Literal[
    "household", "employer"
]  # bot.domain.reminder_rules.AUDIENCES (tested)


@dataclass(frozen=True)
class ReminderOpen(CallbackData, prefix="rm:open"):
    """Open the reminder settings."""


@dataclass(frozen=True)
class ReminderOn(CallbackData, prefix="rm:on"):
    pass


@dataclass(frozen=True)
class ReminderOff(CallbackData, prefix="rm:off"):
    pass


@dataclass(frozen=True)
class ReminderPaymentOpen(CallbackData, prefix="rm:po"):
    """Toggle the "payment is open" reminder."""


@dataclass(frozen=True)
class ReminderStop(CallbackData, prefix="rm:stop"):
    pass


@dataclass(frozen=True)
class ReminderDay(CallbackData, prefix="rm:d"):
    """Toggle a reminder ``days`` before the deadline."""

    days: Annotated[int, Int(0, 999)]


@dataclass(frozen=True)
class ReminderHour(CallbackData, prefix="rm:h"):
    hour: Annotated[int, Int(0, 23)]


@dataclass(frozen=True)
class ReminderAudience(CallbackData, prefix="rm:a"):
    audience: ReminderAudienceName


@dataclass(frozen=True)
class ReminderWorkerAdd(CallbackData, prefix="rm:w:add"):
    pass


@dataclass(frozen=True)
class ReminderWorkerCancel(CallbackData, prefix="rm:w:cancel"):
    pass


@dataclass(frozen=True)
class ReminderWorkerDelete(CallbackData, prefix="rm:w:del"):
    worker_id: Annotated[int, ROW_ID]


@dataclass(frozen=True)
class ReminderWorkerType(CallbackData, prefix="rm:wt"):
    worker: Annotated[WorkerType, WORKER]


@dataclass(frozen=True)
class ReminderPaid(CallbackData, prefix="rm:paid"):
    month: Annotated[str, MONTH_KEY]


@dataclass(frozen=True)
class ReminderSnooze(CallbackData, prefix="rm:snooze"):
    month: Annotated[str, MONTH_KEY]


@dataclass(frozen=True)
class ReminderFromCalc(CallbackData, prefix="rm:c"):
    """ "Remind me to pay this" under a calculator result."""

    worker: Annotated[WorkerType, WORKER]
    wage: Annotated[Decimal, WAGE]


# --- privacy (bot/handlers/privacy.py) -------------------------------------------------------------

PrivacyAct = Literal["yes", "no", "json"]  # /forget: delete, keep; /mydata: the JSON file


@dataclass(frozen=True)
class PrivacyAction(CallbackData, prefix="pv"):
    act: PrivacyAct
    chat_id: Annotated[int, CHAT_ID]


# --- agencies and broadcasts (bot/handlers/agency.py, bot/agencies.py, bot/handlers/broadcast.py) ------


@dataclass(frozen=True)
class AgencyUnfollow(CallbackData, prefix="af:u"):
    code: Annotated[str, AGENCY_CODE]


BROADCAST = Namespace("bc")
EVERYONE = "*"  # BroadcastTarget's code for "every follower of the bot"


@dataclass(frozen=True)
class BroadcastTarget(CallbackData, prefix="bc:t"):
    """The agency to broadcast to; None: everyone (written ``*``)."""

    code: Annotated[str | None, Maybe(AGENCY_CODE, none=EVERYONE)]


@dataclass(frozen=True)
class BroadcastMode(CallbackData, prefix="bc:m"):
    mode: Literal["one", "each"]


@dataclass(frozen=True)
class BroadcastSkip(CallbackData, prefix="bc:skip"):
    pass


@dataclass(frozen=True)
class BroadcastAudience(CallbackData, prefix="bc:a"):
    audience: Literal["all", "en", "ms", "zh"]


@dataclass(frozen=True)
class BroadcastSend(CallbackData, prefix="bc:send"):
    pass


@dataclass(frozen=True)
class BroadcastSchedule(CallbackData, prefix="bc:sched"):
    pass


@dataclass(frozen=True)
class BroadcastCancelDraft(CallbackData, prefix="bc:cancel"):
    pass


@dataclass(frozen=True)
class BroadcastCancel(CallbackData, prefix="bc:x"):
    """Cancel a confirmed broadcast."""

    broadcast_id: Annotated[int, ROW_ID]


__all__ = [
    name
    for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, CallbackData)
]
__all__ += [
    "BROADCAST",
    "GUIDE_BUTTONS",
    "REMINDERS",
    "CallbackDataError",
    "Namespace",
    "OneOf",
    "kinds",
]
