"""Calculator tests. Expected amounts come from the CSV data (read here independently of the
module under test), from the rounding rule of FACTS §2, and from the facts F1-F9, F24, L1-L7."""

from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.rates import DATA_DIR, Note, WorkerType, calculate, schedules, to_json

D = Decimal
SHARED = Path(__file__).resolve().parent / "data" / "rates"  # reference copies, see data/README.md
E = WorkerType.EMPLOYEE
F = WorkerType.FOREIGN
DL = WorkerType.DOMESTIC_LOCAL
DF = WorkerType.DOMESTIC_FOREIGN


def read_table(name: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Header block and rows of one data file, parsed here without the module under test."""
    text = (DATA_DIR / f"{name}.csv").read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            k, _, v = line[1:].partition(":")
            meta.setdefault(k.strip(), v.strip())
        else:
            body.append(line)
    return meta, list(csv.DictReader(io.StringIO("\n".join(body))))


SOCSO = ["socso_act4_2016-06", "socso_act4_2022-09", "socso_act4_2024-10"]
EIS = ["eis_act800_2018-01", "eis_act800_2022-09", "eis_act800_2024-10"]
LINDUNG = ["socso_lindung24jam_phase1_2026-06"]
PUBLISHED = SOCSO + EIS + LINDUNG
ROWS_EXPECTED = {  # FACTS §1 row counts
    "socso_act4_2016-06": 45,
    "socso_act4_2022-09": 55,
    "socso_act4_2024-10": 65,
    "socso_lindung24jam_phase1_2026-06": 65,
    "eis_act800_2018-01": 45,
    "eis_act800_2022-09": 55,
    "eis_act800_2024-10": 65,
}
CEILING = {
    "2016-06": D(4000),
    "2018-01": D(4000),
    "2022-09": D(5000),
    "2024-10": D(6000),
    "2026-06": D(6000),
}


def ym(s: str) -> tuple[int, int]:
    y, m = s.split("-")
    return int(y), int(m)


# ---------------------------------------------------------------- data files


@pytest.mark.parametrize("name", PUBLISHED)
def test_data_file_copies_shared_figures(name: str) -> None:
    meta, rows = read_table(name)
    assert meta["id"] == name
    assert len(rows) == ROWS_EXPECTED[name]
    assert D(meta["ceiling"]) == CEILING[meta["effective_from"]]
    assert meta["source"]
    shared = SHARED / f"{name}.csv"
    assert shared.exists(), f"{shared}: the reference copy is missing"
    with shared.open(newline="", encoding="utf-8") as fh:  # the figures carry over exactly
        assert list(csv.DictReader(fh)) == rows


def test_header_metadata_and_periods_do_not_overlap() -> None:
    all_s = schedules()
    for scheme, items in all_s.items():
        for a, b in zip(items, items[1:], strict=False):
            assert a.effective_to is not None
            y, m = ym(a.effective_to)
            nxt = ym(b.effective_from)
            assert y * 12 + m + 1 == nxt[0] * 12 + nxt[1], (scheme, a.id, b.id)
    assert [s.effective_from for s in all_s["socso"]] == ["2016-06", "2022-09", "2024-10"]
    assert [s.effective_from for s in all_s["eis"]] == ["2018-01", "2022-09", "2024-10"]
    lindung = all_s["lindung"]
    assert [(s.phase, s.effective_from, s.pending) for s in lindung] == [
        (1, "2026-06", False),
        (2, "2028-06", True),
        (3, "2031-06", True),
    ]  # FACTS L3


# ---------------------------------------------------------------- every band boundary


def _columns(name: str, row: dict[str, str]) -> dict[str, D]:
    return {
        k: D(v)
        for k, v in row.items()
        if k not in ("no", "wage_from_exclusive", "wage_to_inclusive", "source")
    }


def _lookup(name: str, wage: D) -> dict[str, D]:
    """Amounts the calculator gives for ``wage`` in the first month of schedule ``name``."""
    meta, _ = read_table(name)
    y, m = ym(meta["effective_from"])
    if meta["scheme"] == "socso":
        first = calculate(wage, y, m, E, age=30)
        second = calculate(wage, y, m, E, age=60)
        assert first.socso is not None and second.socso is not None
        assert first.socso.schedule == second.socso.schedule == name
        return {
            "employer_first": first.socso.employer,
            "employee_first": first.socso.employee,
            "total_first": first.socso.total,
            "employer_second": second.socso.employer,
        }
    c = calculate(wage, y, m, E, age=30)
    if meta["scheme"] == "eis":
        assert c.eis is not None and c.eis.schedule == name
        return {"employer": c.eis.employer, "employee": c.eis.employee, "total": c.eis.total}
    assert c.lindung is not None and c.lindung.schedule == name
    return {"employee_nei": c.lindung.employee}


@pytest.mark.parametrize("name", PUBLISHED)
def test_every_band_at_both_edges(name: str) -> None:
    _, rows = read_table(name)
    for i, row in enumerate(rows):
        want = _columns(name, row)
        lo = D(row["wage_from_exclusive"])
        assert _lookup(name, lo + D("0.01")) == want, (name, row["no"], "lower edge")
        if row["wage_to_inclusive"]:
            hi = D(row["wage_to_inclusive"])
            assert _lookup(name, hi) == want, (name, row["no"], "upper edge")
            assert _lookup(name, hi + D("0.01")) == _columns(name, rows[i + 1]), (
                name,
                row["no"],
                "next",
            )
        else:  # open top row: wages above the ceiling (F3)
            assert _lookup(name, lo + D("0.01")) == want
            assert _lookup(name, D(999999)) == want


# ---------------------------------------------------------------- rounding rule, FACTS §2


def rnd(x: D, step: str, mode: str) -> D:
    s = D(step)
    return (x / s).quantize(D(1), rounding=mode) * s


def midpoint(row: dict[str, str], ceiling: D) -> D:
    if not row["wage_to_inclusive"]:  # open top row: the ceiling band
        return ceiling - 50
    return (D(row["wage_from_exclusive"]) + D(row["wage_to_inclusive"])) / 2


SOCSO_EXCEPTIONS = {  # FACTS §2: fixed minimum row 1 everywhere; 2016 items 44/45 (corrected in 2022)
    "socso_act4_2016-06": {"1", "44", "45"},
    "socso_act4_2022-09": {"1"},
    "socso_act4_2024-10": {"1"},
}


@pytest.mark.parametrize("name", SOCSO)
def test_socso_tables_follow_the_midpoint_rule(name: str) -> None:
    meta, rows = read_table(name)
    ceiling = D(meta["ceiling"])
    broken = set()
    for row in rows:
        m = midpoint(row, ceiling)
        total = rnd(D("0.0225") * m, "0.10", ROUND_HALF_UP)
        employee = rnd(D("0.005") * m, "0.05", ROUND_HALF_EVEN)
        second = rnd(D("0.0125") * m, "0.10", ROUND_HALF_UP)
        got = _columns(name, row)
        assert got["employer_first"] + got["employee_first"] == got["total_first"]
        if (
            got["total_first"],
            got["employee_first"],
            got["employer_first"],
            got["employer_second"],
        ) != (total, employee, total - employee, second):
            broken.add(row["no"])
    assert broken == SOCSO_EXCEPTIONS[name]


def test_socso_known_exception_values() -> None:
    _, rows = read_table("socso_act4_2016-06")
    for no in ("44", "45"):  # FACTS §2: 69.05/19.75/88.80, second category 49.40
        assert _columns("", rows[int(no) - 1]) == {
            "employer_first": D("69.05"),
            "employee_first": D("19.75"),
            "total_first": D("88.80"),
            "employer_second": D("49.40"),
        }
    for name in SOCSO:  # row 1 is a fixed minimum 0.40/0.10/0.50/0.30
        _, rows = read_table(name)
        assert [
            rows[0][k]
            for k in ("employer_first", "employee_first", "total_first", "employer_second")
        ] == ["0.40", "0.10", "0.50", "0.30"]


@pytest.mark.parametrize("name", EIS)
def test_eis_tables_round_up_to_5_sen(name: str) -> None:
    meta, rows = read_table(name)
    for row in rows:
        side = rnd(D("0.002") * midpoint(row, D(meta["ceiling"])), "0.05", ROUND_CEILING)
        assert (D(row["employer"]), D(row["employee"]), D(row["total"])) == (
            side,
            side,
            2 * side,
        ), row["no"]


def test_lindung_table_rule() -> None:
    """Which rule reproduces the Phase 1 table (documented here, not in FACTS):

    A direct 0.75% x M to 5 sen fails about half the rows under any tie rule (1.275 -> 1.25 but
    2.625 -> 2.65). The table is a residual: the employee's combined share 1.25% x M (0.5%
    invalidity + 0.75% LINDUNG) rounded half-up to 10 sen, minus the employee_first column.
    That reproduces every row except row 1 (a fixed minimum, 0.20) and row 4 (0.65, where the
    rule gives 0.70). Rounding the combined share to 5 sen ties-to-even instead breaks rows 1 and 3.
    """
    _, rows = read_table("socso_lindung24jam_phase1_2026-06")
    _, socso = read_table("socso_act4_2024-10")
    broken_10up, broken_5even, broken_direct = set(), set(), set()
    for row, s in zip(rows, socso, strict=True):
        m = midpoint(row, D(6000))
        want = D(row["employee_nei"])
        ee = D(s["employee_first"])
        if rnd(D("0.0125") * m, "0.10", ROUND_HALF_UP) - ee != want:
            broken_10up.add(row["no"])
        if rnd(D("0.0125") * m, "0.05", ROUND_HALF_EVEN) - ee != want:
            broken_5even.add(row["no"])
        if rnd(D("0.0075") * m, "0.05", ROUND_HALF_UP) != want:
            broken_direct.add(row["no"])
    assert broken_10up == {"1", "4"}
    assert broken_5even == {"1", "3"}
    assert len(broken_direct) > 30


# ---------------------------------------------------------------- facts and worked examples


def test_worked_example_band_2400_2500_phase_1() -> None:
    c = calculate(D("2450"), 2026, 6, E, age=30)
    assert c.socso is not None and c.lindung is not None
    assert c.socso.employer == D("42.85")
    assert (c.socso.employee, c.lindung.employee) == (D("12.25"), D("18.35"))
    assert c.socso.employee + c.lindung.employee == D("30.60")


def test_minimum_wage_lindung_example() -> None:  # FACTS L3: RM1,700 -> RM12.35
    assert calculate(D("1700"), 2026, 7, E, age=30).lindung.employee == D("12.35")


def test_top_row_lindung_max() -> None:  # L3: maximum Phase 1 deduction RM44.65
    assert calculate(D("12000"), 2027, 1, F, age=30).lindung.employee == D("44.65")


def test_to_json_shape() -> None:
    c = calculate(D("3500"), 2026, 11, E)
    got = to_json(c)
    json.dumps(got)
    assert got == {
        "wage": "3500.00",
        "month": "2026-11",
        "worker": "employee",
        "socso": {"category": "first", "employer": "60.35", "employee": "17.25", "total": "77.60"},
        "lindung": {"employee": "25.85", "phase": 1},
        "eis": {"employer": "6.90", "employee": "6.90", "total": "13.80"},
        "employer_total": "67.25",
        "employee_total": "50.00",
        "schedule": {
            "socso": "socso_act4_2024-10",
            "lindung": "socso_lindung24jam_phase1_2026-06",
            "eis": "eis_act800_2024-10",
        },
        "notes": ["age-assumed"],
    }


def test_zero_wage_is_all_zero() -> None:  # F24
    c = calculate(D(0), 2026, 11, E, age=30)
    assert c.socso.total == c.socso.employer == c.socso.employee == D(0)
    assert c.eis.total == D(0) and c.lindung.employee == D(0)
    assert c.employer_total == c.employee_total == D(0)
    assert c.has_note("zero-wage")


def test_negative_wage_and_bad_input_raise() -> None:
    with pytest.raises(ValueError):
        calculate(D("-0.01"), 2026, 11, E)
    with pytest.raises(ValueError):
        calculate(D("100"), 2026, 13, E)
    with pytest.raises(ValueError):
        calculate(D("100"), 2026, 1, E, age=40, first_contribution_age=50)
    with pytest.raises(ValueError):
        calculate(D("100"), 2026, 1, "pilot")  # type: ignore[arg-type]


def test_age_assumed_note() -> None:
    assert calculate(D(3000), 2026, 1, E).notes[0] == Note("age-assumed")
    assert not calculate(D(3000), 2026, 1, E, age=40).has_note("age-assumed")
    assert Note("x", {"reason": "age-60"}).message_key == "note.x.age-60"


# ---------------------------------------------------------------- ages (F1, F2, F9)


@pytest.mark.parametrize(
    ("age", "fca", "category", "eis"),
    [
        (17, None, "first", False),  # F9: EIS from 18
        (18, None, "first", True),
        (54, None, "first", True),
        (55, None, "first", True),  # contributed before 55 (assumed)
        (55, 55, "second", True),  # F2(b): first at 55 -> second; EIS: first at 55 < 57
        (57, 50, "first", True),
        (57, 57, "second", False),  # F9: first at 57 -> no EIS
        (59, 56, "second", True),
        (59, 30, "first", True),
        (60, 30, "second", False),  # F2(a), F9
        (70, None, "second", False),
    ],
)
def test_age_rules(age: int, fca: int | None, category: str, eis: bool) -> None:
    _, rows = read_table("socso_act4_2024-10")
    row = rows[34]  # band 3,000-3,100
    c = calculate(D("3050"), 2025, 3, E, age=age, first_contribution_age=fca)
    assert c.socso.category == category
    if category == "first":
        assert (c.socso.employer, c.socso.employee) == (
            D(row["employer_first"]),
            D(row["employee_first"]),
        )
    else:
        assert (c.socso.employer, c.socso.employee) == (D(row["employer_second"]), D(0))
    assert (c.eis is not None) is eis
    assert c.lindung is None  # 2025: before LINDUNG 24 JAM


def test_lindung_any_age_both_categories() -> None:  # L4
    young = calculate(D("3050"), 2026, 9, E, age=20)
    old = calculate(D("3050"), 2026, 9, E, age=65)
    assert old.socso.category == "second"
    assert young.lindung.employee == old.lindung.employee == D("22.85")
    assert old.employee_total == D("22.85")  # L2: employee pays only LINDUNG in the second category


# ---------------------------------------------------------------- rule-change dates, every worker type


def amounts(c):  # noqa: ANN001, ANN201
    return (
        c.socso and (c.socso.category, c.socso.employer, c.socso.employee),
        c.lindung and c.lindung.employee,
        c.eis and (c.eis.employer, c.eis.employee),
    )


W = D("2450")  # band 2,400-2,500 in every table
S16 = read_table("socso_act4_2016-06")[1][28]
S22 = read_table("socso_act4_2022-09")[1][28]
S24 = read_table("socso_act4_2024-10")[1][28]
E18 = read_table("eis_act800_2018-01")[1][28]
L1 = D(read_table("socso_lindung24jam_phase1_2026-06")[1][28]["employee_nei"])


def first(row):  # noqa: ANN001, ANN201
    return ("first", D(row["employer_first"]), D(row["employee_first"]))


def second(row):  # noqa: ANN001, ANN201
    return ("second", D(row["employer_second"]), D(0))


EIS_2450 = (D(E18["employer"]), D(E18["employee"]))  # same in all three EIS tables for this band


@pytest.mark.parametrize(
    ("worker", "month", "socso", "lindung", "eis", "note"),
    [
        # employee
        (E, "2016-05", None, None, None, "no-socso-schedule"),
        (E, "2016-06", first(S16), None, None, "no-eis-schedule"),
        (E, "2017-12", first(S16), None, None, "no-eis-schedule"),
        (E, "2018-01", first(S16), None, EIS_2450, None),
        (E, "2022-08", first(S16), None, EIS_2450, None),
        (E, "2022-09", first(S22), None, EIS_2450, None),
        (E, "2024-09", first(S22), None, EIS_2450, None),
        (E, "2024-10", first(S24), None, EIS_2450, None),
        (E, "2026-05", first(S24), None, EIS_2450, None),
        (E, "2026-06", first(S24), L1, EIS_2450, None),
        (E, "2026-07", first(S24), L1, EIS_2450, None),
        (E, "2028-05", first(S24), L1, EIS_2450, None),
        (E, "2028-06", first(S24), None, EIS_2450, "lindung-phase-pending"),
        (E, "2031-06", first(S24), None, EIS_2450, "lindung-phase-pending"),
        # foreign worker (F5)
        (F, "2018-12", None, None, None, "foreign-not-covered-before"),
        (F, "2019-01", second(S16), None, None, "foreign-not-eis"),
        (F, "2022-09", second(S22), None, None, "second-category-reason"),
        (F, "2024-06", second(S22), None, None, "second-category-reason"),
        (F, "2024-07", first(S22), None, None, "foreign-not-eis"),
        (F, "2024-10", first(S24), None, None, "foreign-not-eis"),
        (F, "2026-06", first(S24), L1, None, "foreign-not-eis"),
        (F, "2026-07", first(S24), L1, None, "foreign-not-eis"),
        (F, "2028-06", first(S24), None, None, "lindung-phase-pending"),
        # local domestic worker (F6): SOCSO + EIS from 2021-06, no LINDUNG (L7)
        (DL, "2021-05", None, None, None, "domestic-not-covered-before"),
        (DL, "2021-06", first(S16), None, EIS_2450, None),
        (DL, "2022-09", first(S22), None, EIS_2450, None),
        (DL, "2024-10", first(S24), None, EIS_2450, None),
        (DL, "2026-06", first(S24), None, EIS_2450, "lindung-domestic-unconfirmed"),
        (DL, "2028-06", first(S24), None, EIS_2450, "lindung-domestic-unconfirmed"),
        # foreign domestic worker (F6, F7): employer-only second column until 2024-06, no EIS
        (DF, "2019-01", None, None, None, "domestic-not-covered-before"),
        (DF, "2021-05", None, None, None, "domestic-not-covered-before"),
        (DF, "2021-06", second(S16), None, None, "foreign-not-eis"),
        (DF, "2024-06", second(S22), None, None, "second-category-reason"),
        (DF, "2024-07", first(S22), None, None, "foreign-not-eis"),
        (DF, "2024-10", first(S24), None, None, "foreign-not-eis"),
        (DF, "2026-06", first(S24), None, None, "lindung-domestic-unconfirmed"),
        (DF, "2026-07", first(S24), None, None, "lindung-domestic-unconfirmed"),
    ],
)
def test_rule_change_months(worker, month, socso, lindung, eis, note) -> None:  # noqa: ANN001
    y, m = ym(month)
    c = calculate(W, y, m, worker, age=30)
    assert amounts(c) == (socso, lindung, eis)
    if note:
        assert c.has_note(note), [n.code for n in c.notes]
    exp_er = (socso[1] if socso else 0) + (eis[0] if eis else 0)
    exp_ee = (socso[2] if socso else 0) + (lindung or 0) + (eis[1] if eis else 0)
    assert (c.employer_total, c.employee_total) == (exp_er, exp_ee)


def test_pending_phase_note_params() -> None:
    c = calculate(W, 2028, 6, E, age=30)
    assert Note("lindung-phase-pending", {"phase": 2, "from": "2028-06"}) in c.notes
    c = calculate(W, 2031, 6, E, age=30)
    assert any(n.code == "lindung-phase-pending" and n.params["phase"] == 3 for n in c.notes)


def test_foreign_first_contribution_at_55_after_2024_07() -> None:  # F5
    c = calculate(W, 2025, 1, F, age=56, first_contribution_age=56)
    assert amounts(c)[0] == second(S24)
    c = calculate(W, 2026, 7, F, age=61, first_contribution_age=30)
    assert amounts(c)[0] == second(S24) and c.lindung.employee == L1  # L4: 60+ pay LINDUNG


def test_lindung_opt_out() -> None:  # L5
    june = calculate(W, 2026, 6, E, age=30, lindung_opt_out=True)
    assert june.lindung.employee == L1 and june.has_note("lindung-no-opt-out-yet")
    july = calculate(W, 2026, 7, E, age=30, lindung_opt_out=True)
    assert july.lindung is None and july.has_note("lindung-opted-out")
    assert july.employee_total == D(S24["employee_first"]) + EIS_2450[1]
    foreign = calculate(W, 2026, 7, F, age=30, lindung_opt_out=True)
    assert foreign.lindung.employee == L1 and foreign.has_note("lindung-no-opt-out-foreign")


# ---------------------------------------------------------------- properties

WORKERS = st.sampled_from(list(WorkerType))
MONTHS = st.tuples(st.integers(2016, 2035), st.integers(1, 12))
WAGES = st.decimals(min_value=0, max_value=20000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(w1=WAGES, w2=WAGES, ym_=MONTHS, worker=WORKERS, age=st.integers(15, 75))
def test_monotonic_in_wage(w1: D, w2: D, ym_, worker, age: int) -> None:  # noqa: ANN001
    lo, hi = sorted((w1, w2))
    a = calculate(lo, *ym_, worker, age=age)
    b = calculate(hi, *ym_, worker, age=age)
    assert a.employer_total <= b.employer_total
    assert a.employee_total <= b.employee_total
    for part in ("socso", "eis"):
        pa, pb = getattr(a, part), getattr(b, part)
        assert (pa is None) == (pb is None)
        if pa:
            assert (
                pa.employer <= pb.employer and pa.employee <= pb.employee and pa.total <= pb.total
            )


@settings(max_examples=300, deadline=None)
@given(w=WAGES, ym_=MONTHS, worker=WORKERS, age=st.integers(15, 75))
def test_shares_add_up(w: D, ym_, worker, age: int) -> None:  # noqa: ANN001
    c = calculate(w, *ym_, worker, age=age)
    if c.socso:
        assert c.socso.employer + c.socso.employee == c.socso.total
    if c.eis:
        assert c.eis.employer + c.eis.employee == c.eis.total
    assert c.total == c.employer_total + c.employee_total
    parts = [p for p in (c.socso, c.eis) if p]
    assert c.employer_total == sum((p.employer for p in parts), D(0))
    assert c.employee_total == sum((p.employee for p in parts), D(0)) + (
        c.lindung.employee if c.lindung else 0
    )


@settings(max_examples=200, deadline=None)
@given(
    extra=st.decimals(min_value=D("0.01"), max_value=D(500000), places=2),
    ym_=MONTHS,
    worker=WORKERS,
    age=st.integers(15, 75),
)
def test_constant_above_ceiling(extra: D, ym_, worker, age: int) -> None:  # noqa: ANN001
    y, m = ym_
    soc = [s for s in schedules()["socso"] if s.covers(y * 12 + m - 1)]
    if not soc:
        return
    ceiling = soc[0].ceiling  # all schemes share the ceiling in every month (F3, F4)
    at = calculate(ceiling, y, m, worker, age=age)
    above = calculate(ceiling + extra, y, m, worker, age=age)
    assert amounts(at) == amounts(above)
