"""``python -m bot calc``: JSON lines, stdin, text output and bad input (exit 2, one stderr line)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bot.commands import calc

ROOT = Path(__file__).resolve().parent.parent
D = Decimal


def table_row(name: str, no: int) -> dict[str, str]:
    lines = [
        ln
        for ln in (ROOT / "bot/data/rates" / f"{name}.csv").read_text().splitlines()
        if not ln.startswith("#")
    ]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))[no - 1]


def run_cli(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="bot")
    calc.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["calc", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, stdin=io.StringIO(stdin), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_several_wages_in_order() -> None:
    code, out, err = run_cli(["3500", "RM1,700", "7000", "--month", "2026-11", "--json"])
    assert code == 0 and err == ""
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["wage"] for x in lines] == ["3500.00", "1700.00", "7000.00"]
    for obj, no in zip(lines, (39, 21, 65), strict=True):
        s = table_row("socso_act4_2024-10", no)
        e = table_row("eis_act800_2024-10", no)
        ln = table_row("socso_lindung24jam_phase1_2026-06", no)
        assert obj["month"] == "2026-11" and obj["worker"] == "employee"
        assert obj["socso"] == {
            "category": "first",
            "employer": s["employer_first"],
            "employee": s["employee_first"],
            "total": s["total_first"],
        }
        assert obj["lindung"] == {"employee": ln["employee_nei"], "phase": 1}
        assert obj["eis"] == {
            "employer": e["employer"],
            "employee": e["employee"],
            "total": e["total"],
        }
        assert obj["employer_total"] == str(D(s["employer_first"]) + D(e["employer"]))
        assert obj["employee_total"] == str(
            D(s["employee_first"]) + D(ln["employee_nei"]) + D(e["employee"])
        )
        assert obj["notes"] == ["age-assumed"]


def test_options_worker_age_opt_out() -> None:
    code, out, _ = run_cli(
        ["2450", "--month", "2026-08", "--worker", "foreign", "--age", "61", "--json"]
    )
    obj = json.loads(out)
    s = table_row("socso_act4_2024-10", 29)
    assert code == 0
    assert obj["socso"]["category"] == "second" and obj["socso"]["employer"] == s["employer_second"]
    assert obj["eis"] is None and obj["schedule"]["eis"] is None
    code, out, _ = run_cli(
        ["2450", "--month", "2026-08", "--age", "40", "--lindung-opt-out", "--json"]
    )
    assert json.loads(out)["lindung"] is None and "lindung-opted-out" in json.loads(out)["notes"]
    code, out, _ = run_cli(
        ["2450", "--month", "2026-08", "--age", "56", "--first-contribution-age", "55", "--json"]
    )
    assert json.loads(out)["socso"]["category"] == "second"


def test_stdin_dash_mixed_with_arguments() -> None:
    code, out, err = run_cli(
        ["100", "-", "--month", "2025-01", "--json"], stdin="3500\n\n月薪1700\n  RM 2,450 \n"
    )
    assert code == 0 and err == ""
    assert [json.loads(x)["wage"] for x in out.splitlines()] == [
        "100.00",
        "3500.00",
        "1700.00",
        "2450.00",
    ]


def test_zero_wage_is_accepted() -> None:
    code, out, _ = run_cli(["0", "--month", "2025-01", "--json"])
    obj = json.loads(out)
    assert code == 0 and obj["socso"]["total"] == "0.00" and obj["eis"]["total"] == "0.00"


@pytest.mark.parametrize(
    ("argv", "stdin", "needle"),
    [
        (["abc"], "", "argument 1"),
        (["3500", "-3000"], "", "argument 2"),
        (["3.500"], "", "ambiguous"),
        (["RM15/hour"], "", "hourly"),
        (["2000000"], "", "argument 1"),
        (["-"], "3500\n\n1700\nRM80 sehari\nxyz\n", "stdin line 4"),
        (["3500", "--month", "2026-13"], "", "--month"),
        (["3500", "--month", "Nov 2026"], "", "--month"),
        (["3500", "--month", "2015-12"], "", "2015-12"),
        (["3500", "--age", "40", "--first-contribution-age", "50"], "", "age"),
        (["-"], "", "no wage"),
    ],
)
def test_bad_input_exit_2_one_line(argv: list[str], stdin: str, needle: str) -> None:
    code, out, err = run_cli([*argv, "--json"], stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err


def test_text_output_localized() -> None:
    pytest.importorskip("bot.i18n")
    code, out, _ = run_cli(["2450", "--month", "2026-06", "--age", "30"])
    assert code == 0
    assert "RM42.85" in out and "RM12.25" in out and "RM18.35" in out
    code, out, _ = run_cli(["2450", "--month", "2026-06", "--age", "30", "--lang", "zh"])
    assert "2026年6月" in out and "RM18.35" in out
    code, out, _ = run_cli(
        ["2450", "--month", "2029-06", "--worker", "domestic-local", "--lang", "ms"]
    )
    assert "PERKESO" in out and "note." not in out and "calc." not in out


def test_every_note_has_text_in_every_language() -> None:
    i18n = pytest.importorskip("bot.i18n")
    from bot.contribution_view import note_text
    from bot.domain.rates import Note

    keys = [
        "age-assumed",
        "first-contribution-assumed",
        "zero-wage",
        "second-category-lindung",
        "lindung-domestic-unconfirmed",
        "lindung-opted-out",
        "lindung-no-opt-out-foreign",
        "foreign-not-eis",
    ]
    notes = (
        [Note(k) for k in keys]
        + [
            Note("lindung-phase-pending", {"phase": 2, "from": "2028-06"}),
            Note("lindung-no-opt-out-yet", {"from": "2026-07"}),
            Note("no-socso-schedule", {"from": "2016-06"}),
            Note("no-eis-schedule", {"from": "2018-01"}),
            Note("domestic-not-covered-before", {"from": "2021-06", "reason": "local"}),
            Note("domestic-not-covered-before", {"from": "2021-06", "reason": "foreign"}),
            Note("foreign-not-covered-before", {"from": "2019-01"}),
        ]
        + [
            Note("second-category-reason", {"reason": r})
            for r in ("age-60", "first-at-55", "foreign-before-2024-07")
        ]
        + [Note("eis-not-eligible", {"reason": r}) for r in ("under-18", "age-60", "first-at-57")]
        + [Note("zero-wage", {"reason": r}) for r in ("lindung", "domestic")]
    )
    for lang in ("en", "ms", "zh"):
        cat = i18n.catalogs().messages[lang]
        for n in notes:
            assert n.message_key in cat, (lang, n.message_key)
            text = note_text(n, lang)
            assert "{" not in text
    assert "June 2028" in note_text(notes[len(keys)], "en")
    assert "2028年6月" in note_text(notes[len(keys)], "zh")


def _notes(argv: list[str], lang: str = "en") -> tuple[list[str], str]:
    """(note codes from --json, the text output's note lines) for one wage."""
    code, out, err = run_cli([*argv, "--json"])
    assert code == 0, err
    codes = json.loads(out)["notes"]
    code, out, err = run_cli([*argv, "--lang", lang])
    assert code == 0, err
    return codes, "\n".join(ln for ln in out.splitlines() if ln.startswith("ℹ️ "))


def test_second_category_note_follows_the_month() -> None:  # F2, L4, L5
    # Before June 2026 the second category really was employer-only: no LINDUNG sentence.
    codes, text = _notes(["3000", "--month", "2026-05", "--age", "62"])
    assert "second-category-reason" in codes and "second-category-lindung" not in codes
    assert "employer" in text and "LINDUNG" not in text
    # From June 2026 the worker pays LINDUNG 24 JAM too, and the note says so.
    codes, text = _notes(["3000", "--month", "2026-11", "--age", "62"])
    assert "second-category-lindung" in codes
    assert "not employer-only" in text and "LINDUNG 24 JAM" in text
    assert "only the employer pays" not in text
    # ...in every language.
    for lang, word in (("ms", "bukan lagi caruman majikan sahaja"), ("zh", "不再只由雇主缴纳")):
        _, text = _notes(["3000", "--month", "2026-11", "--age", "62"], lang)
        assert word in text, (lang, text)
    # A local employee who opted out (from July 2026) pays no LINDUNG: no such sentence.
    codes, _ = _notes(["3000", "--month", "2026-11", "--age", "62", "--lindung-opt-out"])
    assert "lindung-opted-out" in codes and "second-category-lindung" not in codes
    # A 60+ domestic worker: LINDUNG unconfirmed (L7), so no claim that the worker pays it.
    codes, _ = _notes(["1700", "--month", "2026-11", "--age", "62", "--worker", "domestic-local"])
    assert "lindung-domestic-unconfirmed" in codes and "second-category-lindung" not in codes
    # Phase 2 months: the worker pays LINDUNG but its table is not published yet.
    codes, _ = _notes(["3000", "--month", "2028-07", "--age", "62"])
    assert "lindung-phase-pending" in codes and "second-category-lindung" in codes


def test_zero_wage_note_true_for_month_and_worker() -> None:  # F24, L6, L7, F6
    lindung_clause = "no LINDUNG 24 JAM cover"
    # June 2026 onwards, an employee: 0.00 and no LINDUNG cover that month.
    codes, text = _notes(["0", "--month", "2026-11", "--age", "30"])
    assert "zero-wage" in codes and "0.00" in text and lindung_clause in text
    # Before LINDUNG existed the note does not mention it.
    codes, text = _notes(["0", "--month", "2025-03", "--age", "30"])
    assert "zero-wage" in codes and "Borang 8A" in text and "LINDUNG" not in text
    # An opted-out local employee: no LINDUNG clause either.
    _, text = _notes(["0", "--month", "2026-11", "--age", "30", "--lindung-opt-out"])
    assert lindung_clause not in text
    # A domestic worker: LINDUNG is unconfirmed, so no LINDUNG clause (nor Borang 8A).
    for worker in ("domestic-local", "domestic-foreign"):
        codes, text = _notes(["0", "--month", "2026-11", "--age", "30", "--worker", worker])
        assert "zero-wage" in codes and "0.00" in text and lindung_clause not in text
    # A month the worker was not covered at all: only "nothing was payable", no 0.00 note.
    codes, text = _notes(["0", "--month", "2021-03", "--worker", "domestic-local"])
    assert "domestic-not-covered-before" in codes and "zero-wage" not in codes
    codes, _ = _notes(["0", "--month", "2018-06", "--worker", "foreign"])
    assert "foreign-not-covered-before" in codes and "zero-wage" not in codes


def test_later_lindung_phases_are_called_provisional() -> None:  # L3
    codes, text = _notes(["3000", "--month", "2028-07", "--age", "30"])
    assert "lindung-phase-pending" in codes
    assert "provisional" in text and "June 2028" in text
    _, text = _notes(["3000", "--month", "2031-06", "--age", "30"], "ms")
    assert "sementara" in text


def test_domestic_not_covered_note_names_the_right_schemes() -> None:  # F6
    _, local = _notes(["1700", "--month", "2021-05", "--worker", "domestic-local"])
    assert "SOCSO and EIS only from June 2021" in local
    _, foreign = _notes(["1700", "--month", "2021-05", "--worker", "domestic-foreign"])
    assert "SOCSO only from June 2021" in foreign and "SOCSO and EIS" not in foreign
    _, zh = _notes(["1700", "--month", "2021-05", "--worker", "domestic-foreign"], "zh")
    assert "不受就业保险保障" in zh and "社险和就业保险保障" not in zh


@pytest.mark.slow
def test_python_m_bot_calc_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "calc", "-", "--month", "2026-11", "--json"],
        input="3500\n1700\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["wage"] for x in proc.stdout.splitlines()] == ["3500.00", "1700.00"]
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "calc", "oops"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""
