"""SOCSO (Act 4), LINDUNG 24 JAM (Act A1788) and EIS (Act 800) contribution calculator.

Pure Python, no telegram imports. The schedules live in ``bot/data/rates/*.csv`` (one file per
schedule version, header block of ``# key: value`` lines, see that folder's README). They are
parsed once, on first use; a lookup is a bisect on the band upper bounds.

Rule references in comments (F2, F5, L4, ...) point to ``content/FACTS.md``.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_DIR",
    "Contribution",
    "EisPart",
    "LindungPart",
    "Note",
    "Row",
    "Schedule",
    "SocsoPart",
    "WorkerType",
    "calculate",
    "schedules",
    "to_json",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "rates"

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

# Rule-change months, as (year, month) keys: ym = year * 12 + month - 1.
FOREIGN_FROM = "2019-01"  # F5: foreign workers under the Employment Injury Scheme
INVALIDITY_FOREIGN_FROM = "2024-07"  # F5/F6: Invalidity Scheme extended to foreign workers
DOMESTIC_FROM = "2021-06"  # F6: domestic workers covered under Act 4 and Act 800
LINDUNG_OPT_OUT_FROM = "2026-07"  # L5: local employees may opt out from July 2026


def _ym(text: str) -> int:
    year, month = text.split("-")
    return int(year) * 12 + int(month) - 1


class WorkerType(StrEnum):
    """Who the wage is paid to."""

    EMPLOYEE = "employee"
    FOREIGN = "foreign"
    DOMESTIC_LOCAL = "domestic-local"
    DOMESTIC_FOREIGN = "domestic-foreign"


@dataclass(frozen=True, slots=True)
class Row:
    """One band of a schedule: from_exclusive < wage <= to_inclusive (to_inclusive None = open top row)."""

    no: int
    from_exclusive: Decimal
    to_inclusive: Decimal | None
    values: dict[str, Decimal] = field(hash=False, compare=False)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule version (one CSV file)."""

    id: str
    scheme: str  # "socso" | "lindung" | "eis"
    status: str  # "published" | "pending" (no table yet)
    effective_from: str  # YYYY-MM
    effective_to: str | None  # YYYY-MM, inclusive; None = open-ended
    ceiling: Decimal
    title: str
    sources: tuple[str, ...]
    phase: int | None
    rows: tuple[Row, ...]
    _uppers: tuple[Decimal, ...] = field(repr=False, compare=False, hash=False)

    @property
    def pending(self) -> bool:
        return self.status == "pending" or not self.rows

    def covers(self, ym: int) -> bool:
        lo = _ym(self.effective_from)
        hi = _ym(self.effective_to) if self.effective_to else 10**9
        return lo <= ym <= hi

    def row_for(self, wage: Decimal) -> Row:
        """The band that holds ``wage`` (> 0); wages above the ceiling use the top row (F3)."""
        i = bisect_left(self._uppers, wage)  # first band with wage <= to_inclusive
        return self.rows[i] if i < len(self.rows) else self.rows[-1]


def _parse_file(path: Path) -> Schedule:
    meta: dict[str, list[str]] = {}
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            meta.setdefault(key.strip(), []).append(value.strip())
        elif line.strip():
            body.append(line)
    rows: list[Row] = []
    for rec in csv.DictReader(io.StringIO("\n".join(body))):
        values = {
            k: Decimal(v)
            for k, v in rec.items()
            if k not in ("no", "wage_from_exclusive", "wage_to_inclusive", "source")
        }
        to = rec["wage_to_inclusive"]
        rows.append(
            Row(
                no=int(rec["no"]),
                from_exclusive=Decimal(rec["wage_from_exclusive"]),
                to_inclusive=Decimal(to) if to else None,
                values=values,
                source=rec.get("source") or "",
            )
        )
    for a, b in zip(rows, rows[1:], strict=False):
        if a.to_inclusive is None or a.to_inclusive != b.from_exclusive:
            raise ValueError(f"{path.name}: bands {a.no} and {b.no} do not meet")

    def one(key: str, default: str = "") -> str:
        return meta.get(key, [default])[0]

    phase = one("phase")
    return Schedule(
        id=one("id", path.stem),
        scheme=one("scheme"),
        status=one("status", "published"),
        effective_from=one("effective_from"),
        effective_to=one("effective_to") or None,
        ceiling=Decimal(one("ceiling", "0")),
        title=one("title"),
        sources=tuple(meta.get("source", [])),
        phase=int(phase) if phase else None,
        rows=tuple(rows),
        _uppers=tuple(r.to_inclusive for r in rows if r.to_inclusive is not None),
    )


@cache
def schedules() -> dict[str, tuple[Schedule, ...]]:
    """All schedules by scheme, sorted by effective_from (loaded once)."""
    out: dict[str, list[Schedule]] = {"socso": [], "lindung": [], "eis": []}
    for path in sorted(DATA_DIR.glob("*.csv")):
        s = _parse_file(path)
        out.setdefault(s.scheme, []).append(s)
    return {k: tuple(sorted(v, key=lambda s: _ym(s.effective_from))) for k, v in out.items()}


@cache
def _schedule_for(scheme: str, ym: int) -> Schedule | None:
    for s in schedules().get(scheme, ()):
        if s.covers(ym):
            return s
    return None


@dataclass(frozen=True, slots=True)
class Note:
    """A machine-readable remark; the chat/CLI turn ``message_key`` into a localized sentence."""

    code: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def message_key(self) -> str:
        """Catalog key: ``note.<code>`` or ``note.<code>.<reason>`` when params has a reason."""
        reason = self.params.get("reason")
        return f"note.{self.code}.{reason}" if reason else f"note.{self.code}"


@dataclass(frozen=True, slots=True)
class SocsoPart:
    category: str  # "first" | "second"
    employer: Decimal
    employee: Decimal
    total: Decimal
    schedule: str
    row: int


@dataclass(frozen=True, slots=True)
class LindungPart:
    employee: Decimal
    phase: int
    schedule: str
    row: int


@dataclass(frozen=True, slots=True)
class EisPart:
    employer: Decimal
    employee: Decimal
    total: Decimal
    schedule: str
    row: int


@dataclass(frozen=True, slots=True)
class Contribution:
    """Result of :func:`calculate`. employee_total includes LINDUNG 24 JAM."""

    wage: Decimal
    year: int
    month: int
    worker: WorkerType
    socso: SocsoPart | None
    lindung: LindungPart | None
    eis: EisPart | None
    employer_total: Decimal
    employee_total: Decimal
    total: Decimal
    notes: tuple[Note, ...]

    def has_note(self, code: str) -> bool:
        return any(n.code == code for n in self.notes)


def _row(schedule: Schedule, wage: Decimal) -> tuple[Row | None, int]:
    if wage == 0:  # F24: a month with no wages carries 0.00
        return None, 0
    row = schedule.row_for(wage)
    return row, row.no


def calculate(
    wage: Decimal,
    year: int,
    month: int,
    worker: WorkerType,
    age: int | None = None,
    first_contribution_age: int | None = None,
    lindung_opt_out: bool = False,
) -> Contribution:
    """Monthly SOCSO + LINDUNG 24 JAM + EIS contribution for one wage month.

    ``age`` is the worker's age in that month; ``first_contribution_age`` the age at which
    contributions were first payable (SOCSO's 55 rule, EIS's 57 rule; for foreign workers the age
    at which they entered the Invalidity Scheme). ``None`` means the common case (first contributed
    young), flagged with a note. Raises ValueError for a negative wage, bad month or bad ages.
    """
    if not isinstance(wage, Decimal):
        raise TypeError("wage must be a Decimal")
    if not wage.is_finite():
        raise ValueError("wage must be a finite number")
    if wage < 0:
        raise ValueError("wage must not be negative")
    if not 1 <= month <= 12 or not 1 <= year <= 9999:
        raise ValueError("bad month")
    worker = WorkerType(worker)
    if age is not None and not 0 <= age <= 130:
        raise ValueError("bad age")
    if first_contribution_age is not None:
        if not 0 <= first_contribution_age <= 130:
            raise ValueError("bad first contribution age")
        if age is not None and first_contribution_age > age:
            raise ValueError("first contribution age is above the current age")
    wage = wage.quantize(CENT)
    ym = year * 12 + month - 1
    notes: list[Note] = []

    if age is None:
        notes.append(Note("age-assumed"))  # assume under 55 and first contributed before 55
    elif first_contribution_age is None and 55 <= age < 60:
        notes.append(Note("first-contribution-assumed"))  # F2(b)/F9: assume first paid before 55
    eff_age = age if age is not None else 30
    fca = first_contribution_age if first_contribution_age is not None else min(eff_age, 30)
    zero_at = len(notes)  # the zero-wage note goes here once we know what applies (F24, L6)

    domestic = worker in (WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN)
    foreign = worker in (WorkerType.FOREIGN, WorkerType.DOMESTIC_FOREIGN)

    # ---- SOCSO (Act 4) ----
    socso: SocsoPart | None = None
    socso_sched = _schedule_for("socso", ym)
    covered = True
    if domestic and ym < _ym(DOMESTIC_FROM):  # F6: domestic workers covered from 1 Jun 2021
        covered = False
        kind = "foreign" if worker is WorkerType.DOMESTIC_FOREIGN else "local"  # F6: no EIS
        notes.append(Note("domestic-not-covered-before", {"from": DOMESTIC_FROM, "reason": kind}))
    elif worker is WorkerType.FOREIGN and ym < _ym(FOREIGN_FROM):  # F5: foreign from 1 Jan 2019
        covered = False
        notes.append(Note("foreign-not-covered-before", {"from": FOREIGN_FROM}))
    elif socso_sched is None:
        covered = False
        first = schedules()["socso"][0].effective_from
        notes.append(Note("no-socso-schedule", {"from": first}))

    if covered and socso_sched is not None:
        if foreign and ym < _ym(INVALIDITY_FOREIGN_FROM):
            # F5/F6/F7: Employment Injury Scheme only, employer only, second-category column
            category = "second"
            notes.append(Note("second-category-reason", {"reason": "foreign-before-2024-07"}))
        elif eff_age >= 60:  # F2(a): reached 60 -> second category
            category = "second"
            notes.append(Note("second-category-reason", {"reason": "age-60"}))
        elif fca >= 55:  # F2(b), F5: first contributed (foreign: entered Invalidity) at 55+
            category = "second"
            notes.append(Note("second-category-reason", {"reason": "first-at-55"}))
        else:  # F1: first category under 60
            category = "first"
        row, no = _row(socso_sched, wage)
        if category == "first":  # F1
            er = row.values["employer_first"] if row else ZERO
            ee = row.values["employee_first"] if row else ZERO
            tot = row.values["total_first"] if row else ZERO
        else:  # F2: second category is employer only
            er = row.values["employer_second"] if row else ZERO
            ee = ZERO
            tot = er
        socso = SocsoPart(category, er, ee, tot, socso_sched.id, no)

    # ---- LINDUNG 24 JAM (Act A1788) ----
    lindung: LindungPart | None = None
    lindung_sched = _schedule_for("lindung", ym)
    if socso is not None and lindung_sched is not None:
        if domestic:  # L7: no source says it applies to domestic workers
            notes.append(Note("lindung-domestic-unconfirmed"))
        elif lindung_sched.pending:  # L3: later phases have no sourced table yet
            notes.append(
                Note(
                    "lindung-phase-pending",
                    {"phase": lindung_sched.phase, "from": lindung_sched.effective_from},
                )
            )
        elif (
            lindung_opt_out and worker is WorkerType.EMPLOYEE and ym >= _ym(LINDUNG_OPT_OUT_FROM)
        ):  # L5: local employees may opt out from July 2026
            notes.append(Note("lindung-opted-out"))
        else:
            if lindung_opt_out and worker is WorkerType.FOREIGN:
                notes.append(
                    Note("lindung-no-opt-out-foreign")
                )  # L5: mandatory for foreign workers
            elif lindung_opt_out:
                notes.append(Note("lindung-no-opt-out-yet", {"from": LINDUNG_OPT_OUT_FROM}))  # L5
            # L2, L4: employee-only, same amount in both categories, no age limit
            row, no = _row(lindung_sched, wage)
            amount = row.values["employee_nei"] if row else ZERO
            lindung = LindungPart(amount, lindung_sched.phase or 0, lindung_sched.id, no)

    # ---- EIS (Act 800) ----
    eis: EisPart | None = None
    eis_sched = _schedule_for("eis", ym)
    if foreign:  # F5, F6, F9: foreign workers are never covered by EIS
        notes.append(Note("foreign-not-eis"))
    elif not covered and domestic:
        pass  # F6: domestic workers not covered yet (note already given)
    elif eis_sched is None:  # Act 800 contributions start with the January 2018 month
        notes.append(Note("no-eis-schedule", {"from": schedules()["eis"][0].effective_from}))
    elif eff_age < 18:  # F9: under 18 excluded
        notes.append(Note("eis-not-eligible", {"reason": "under-18"}))
    elif eff_age >= 60:  # F9: reached 60 excluded
        notes.append(Note("eis-not-eligible", {"reason": "age-60"}))
    elif fca >= 57:  # F9: reached 57 with no contributions payable before 57
        notes.append(Note("eis-not-eligible", {"reason": "first-at-57"}))
    else:
        row, no = _row(eis_sched, wage)
        er = row.values["employer"] if row else ZERO
        ee = row.values["employee"] if row else ZERO
        tot = row.values["total"] if row else ZERO
        eis = EisPart(er, ee, tot, eis_sched.id, no)

    if socso is not None and socso.category == "second":
        # Since June 2026 the second category is not employer-only: the worker pays LINDUNG 24
        # JAM too (L4), unless a local employee opted out (L5) or it is unconfirmed (L7).
        if lindung is not None or any(n.code == "lindung-phase-pending" for n in notes):
            notes.append(Note("second-category-lindung"))
    if wage == 0 and (socso is not None or eis is not None):
        # F24: a covered month with no wages carries 0.00. Borang 8A is the employer's monthly
        # schedule; the "no LINDUNG cover" clause (L6) only where LINDUNG applies this month.
        if domestic:
            reason = "domestic"
        elif lindung is not None or any(n.code == "lindung-phase-pending" for n in notes):
            reason = "lindung"
        else:
            reason = None
        notes.insert(zero_at, Note("zero-wage", {"reason": reason} if reason else {}))

    employer_total = (socso.employer if socso else ZERO) + (eis.employer if eis else ZERO)
    employee_total = (
        (socso.employee if socso else ZERO)
        + (lindung.employee if lindung else ZERO)  # L2: LINDUNG is on top, employee only
        + (eis.employee if eis else ZERO)
    )
    return Contribution(
        wage=wage,
        year=year,
        month=month,
        worker=worker,
        socso=socso,
        lindung=lindung,
        eis=eis,
        employer_total=employer_total,
        employee_total=employee_total,
        total=employer_total + employee_total,
        notes=tuple(notes),
    )


def _money(d: Decimal) -> str:
    return str(d.quantize(CENT))


def to_json(c: Contribution) -> dict[str, Any]:
    """Plain JSON-able dict; amounts are strings with two decimals."""
    return {
        "wage": _money(c.wage),
        "month": f"{c.year:04d}-{c.month:02d}",
        "worker": str(c.worker),
        "socso": None
        if c.socso is None
        else {
            "category": c.socso.category,
            "employer": _money(c.socso.employer),
            "employee": _money(c.socso.employee),
            "total": _money(c.socso.total),
        },
        "lindung": None
        if c.lindung is None
        else {"employee": _money(c.lindung.employee), "phase": c.lindung.phase},
        "eis": None
        if c.eis is None
        else {
            "employer": _money(c.eis.employer),
            "employee": _money(c.eis.employee),
            "total": _money(c.eis.total),
        },
        "employer_total": _money(c.employer_total),
        "employee_total": _money(c.employee_total),
        "schedule": {
            "socso": c.socso.schedule if c.socso else None,
            "lindung": c.lindung.schedule if c.lindung else None,
            "eis": c.eis.schedule if c.eis else None,
        },
        "notes": [n.code for n in c.notes],
    }
