"""Payment dates of a contribution month and the moments a reminder subscription fires.

Pure Python, no telegram imports. All times are Asia/Kuala_Lumpur.

* FACTS F15: a month's contribution can be paid on the portal only after the 16th of that month,
  so the "payment is open" reminder goes on the 17th by default.
* FACTS F11: the contribution for a wage month is due by the 15th of the following month
  (December -> 15 January of the next year).
* A reminder day that does not exist in a month (31 February) moves to the nearest valid day.
* After the deadline passes unpaid, one "overdue" reminder goes on the day after the deadline.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.clock import utc_text

__all__ = [
    "DEADLINE_DAY",
    "DEADLINE_DAYS_CHOICES",
    "DEFAULT_DEADLINE_DAYS",
    "DEFAULT_HOUR",
    "HOUR_CHOICES",
    "TYPED_HOUR_FIRST",
    "TYPED_HOUR_LAST",
    "KL",
    "KINDS",
    "Moment",
    "PAYMENT_OPEN_DAY",
    "ReminderSettings",
    "add_months",
    "clamp_day",
    "days_left",
    "deadline",
    "mask_from_days",
    "days_from_mask",
    "moments_for_month",
    "month_key",
    "next_moment",
    "overdue_date",
    "parse_month_key",
    "parse_time_of_day",
    "payment_open_date",
    "to_utc_text",
]

KL = ZoneInfo("Asia/Kuala_Lumpur")
DEADLINE_DAY = 15  # F11: by the 15th of the following month
PAYMENT_OPEN_DAY = 17  # F15: payable on the portal only after the 16th
DEADLINE_DAYS_CHOICES: tuple[int, ...] = (7, 3, 1, 0)  # days before the deadline; 0 = on the day
DEFAULT_DEADLINE_DAYS: frozenset[int] = frozenset({3, 1})
HOUR_CHOICES: tuple[int, ...] = (8, 9, 12, 18, 21)
DEFAULT_HOUR = 9
TYPED_HOUR_FIRST, TYPED_HOUR_LAST = 7, 22  # a typed reminder hour: 07:00 to 22:00, on the hour
KINDS = ("payment-open", "deadline", "overdue")


def clamp_day(year: int, month: int, day: int) -> date:
    """``day`` of the month, or the nearest valid day (31 Feb -> 28/29 Feb, 0 -> 1st)."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(max(day, 1), last))


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    """(year, month) ``n`` months later (negative: earlier); December + 1 -> January."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def month_key(year: int, month: int) -> str:
    """``YYYY-MM``."""
    return f"{year:04d}-{month:02d}"


def parse_month_key(text: str) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month); ValueError if malformed."""
    year_text, sep, month_text = text.partition("-")
    if not sep or len(year_text) != 4 or len(month_text) != 2:
        raise ValueError(f"not a YYYY-MM month: {text!r}")
    year, month = int(year_text), int(month_text)
    if not 1 <= month <= 12 or year < 1:
        raise ValueError(f"not a YYYY-MM month: {text!r}")
    return year, month


def payment_open_date(year: int, month: int, day: int = PAYMENT_OPEN_DAY) -> date:
    """The day the contribution for (year, month) can be paid on the portal (F15)."""
    return clamp_day(year, month, day)


def deadline(year: int, month: int) -> date:
    """The last day to pay the contribution for (year, month): the 15th of the next month (F11)."""
    ny, nm = add_months(year, month, 1)
    return clamp_day(ny, nm, DEADLINE_DAY)


def overdue_date(year: int, month: int) -> date:
    """The first day the contribution for (year, month) is late."""
    return deadline(year, month) + timedelta(days=1)


def days_left(year: int, month: int, today: date) -> int:
    """Whole days from ``today`` to the deadline of (year, month); 0 on the day, < 0 when late."""
    return (deadline(year, month) - today).days


def mask_from_days(days: frozenset[int] | set[int] | tuple[int, ...]) -> int:
    """Deadline-day choices as a bit mask (bit i = DEADLINE_DAYS_CHOICES[i])."""
    mask = 0
    for i, choice in enumerate(DEADLINE_DAYS_CHOICES):
        if choice in days:
            mask |= 1 << i
    return mask


def days_from_mask(mask: int) -> frozenset[int]:
    return frozenset(c for i, c in enumerate(DEADLINE_DAYS_CHOICES) if mask & (1 << i))


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    """What one subscriber asked for."""

    payment_open: bool = True
    deadline_days: frozenset[int] = DEFAULT_DEADLINE_DAYS
    hour: int = DEFAULT_HOUR
    open_day: int = PAYMENT_OPEN_DAY

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise ValueError("hour must be 0..23")
        if not set(self.deadline_days) <= set(DEADLINE_DAYS_CHOICES):
            raise ValueError(f"deadline days must be among {DEADLINE_DAYS_CHOICES}")


@dataclass(frozen=True, slots=True)
class Moment:
    """One reminder of a contribution month, at a Kuala Lumpur time."""

    at: datetime  # aware, Asia/Kuala_Lumpur
    kind: str  # "payment-open" | "deadline" | "overdue"
    year: int  # the contribution month it is about
    month: int
    days: int | None = None  # deadline reminders: days before the deadline

    @property
    def month_key(self) -> str:
        return month_key(self.year, self.month)

    @property
    def suffix(self) -> str:
        return reminder_suffix(self.kind, self.days)


def reminder_suffix(kind: str, days: int | None) -> str:
    """``<kind>[:<days>]``, the last part of a reminder's dedupe key."""
    return kind if days is None else f"{kind}:{days}"


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=KL)


def moments_for_month(settings: ReminderSettings, year: int, month: int) -> list[Moment]:
    """Every reminder of contribution month (year, month) for ``settings``, in time order.

    The overdue reminder is always included: it is the last word on an unpaid month.
    """
    out: list[Moment] = []
    if settings.payment_open:
        out.append(
            Moment(_at(payment_open_date(year, month, settings.open_day), settings.hour),
                   "payment-open", year, month)
        )
    due = deadline(year, month)
    for days in sorted(settings.deadline_days, reverse=True):
        out.append(Moment(_at(due - timedelta(days=days), settings.hour), "deadline", year, month, days))
    out.append(Moment(_at(overdue_date(year, month), settings.hour), "overdue", year, month))
    out.sort(key=lambda m: m.at)
    return out


def next_moment(settings: ReminderSettings, after: datetime) -> Moment | None:
    """The first reminder strictly after ``after`` (aware), ignoring paid months."""
    local = after.astimezone(KL)
    candidates = [
        m
        for n in (-1, 0, 1)
        for m in moments_for_month(settings, *add_months(local.year, local.month, n))
        if m.at > local
    ]
    return min(candidates, key=lambda m: m.at) if candidates else None


to_utc_text = utc_text  # an aware datetime as the UTC text the database stores (bot.domain.clock)


# --- a typed time of day ("20:00", "8pm", "jam 8 malam", "晚上8点") ------------------------------

_ZH_NUMBERS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9, "十": 10, "十一": 11, "十二": 12}
_AFTERNOON = {"pm", "p.m.", "p.m", "petang", "malam", "下午", "晚上", "傍晚", "夜晚"}
_MORNING = {"am", "a.m.", "a.m", "pagi", "早上", "上午", "凌晨", "清晨"}
_NOON = {"tengahari", "tengah hari", "中午"}
_LATIN_TIME = re.compile(
    r"(?:(?P<prefix>jam|pukul|pkl\.?|at)\s*)?(?P<h>\d{1,2})(?:\s*[:.h]\s*(?P<m>\d{2}))?"
    r"\s*(?P<part>a\.?m\.?|p\.?m\.?|pagi|tengah\s?hari|petang|malam)?"
)
_ZH_TIME = re.compile(
    r"(?P<part>早上|上午|中午|下午|傍晚|晚上|夜晚|凌晨|清晨)?\s*(?P<h>\d{1,2}|十[一二]?|[一二两三四五六七八九])"
    r"\s*[点點时時](?:\s*(?P<m>\d{1,2})\s*分|(?P<half>半)|整)?(?:钟|鐘)?"
)


def parse_time_of_day(text: str) -> tuple[int, int] | None:
    """(hour 0-23, minute) from a typed time, or None when the text is not one.

    A bare number is not a time (it may be a salary): a time has minutes (``20:00``), am/pm or a
    Malay part of the day (``8pm``, ``jam 8 malam``, ``pukul 9 pagi``), a ``jam``/``pukul``
    prefix, or Chinese 点 (``晚上8点``, ``20点半``)."""
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned or len(cleaned) > 24:
        return None
    match = _LATIN_TIME.fullmatch(cleaned)
    if match is not None:
        if match["m"] is None and match["part"] is None and match["prefix"] is None:
            return None
        hour, minute = int(match["h"]), int(match["m"] or 0)
        part = (match["part"] or "").replace(" ", "")
        part = "tengah hari" if part == "tengahhari" else part
    else:
        match = _ZH_TIME.fullmatch(cleaned.replace(" ", ""))
        if match is None:
            return None
        raw = match["h"]
        hour = int(raw) if raw.isdigit() else _ZH_NUMBERS[raw]
        minute = 30 if match["half"] else int(match["m"] or 0)
        part = match["part"] or ""
    if minute > 59:
        return None
    if part in _AFTERNOON or part in _MORNING or part in _NOON:
        if not 1 <= hour <= 12:
            return None
        if part in _AFTERNOON:
            hour = hour % 12 + 12 if not (part in ("malam", "晚上", "夜晚") and hour == 12) else 0
        elif part in _MORNING:
            hour = hour % 12
        else:  # noon: 12 stays 12, "1 tengah hari" is 13:00
            hour = hour if hour >= 11 else hour + 12
    if not 0 <= hour <= 23:
        return None
    return hour, minute
