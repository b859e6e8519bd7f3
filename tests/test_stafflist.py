"""Staff lists without Telegram: worker words, reading rows, headers, limits, the CLI's --file."""

from __future__ import annotations

import argparse
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from bot.commands import calc as calc_cli
from bot.contribution_view import labels
from bot.domain.rates import WorkerType, calculate
from bot.domain.stafflist import (
    MAX_ROWS,
    SheetError,
    calculate_all,
    looks_like_staff_lines,
    read_file,
    read_lines,
    write_csv,
    write_xlsx,
)
from bot.domain.worker_words import read_worker_words

W = WorkerType


@pytest.mark.parametrize(
    ("text", "worker", "age", "rest"),
    [
        ("Siti, 1800, domestic-local", W.DOMESTIC_LOCAL, None, "Siti, 1800,"),
        ("domestic_foreign", W.DOMESTIC_FOREIGN, None, ""),
        ("Ahmad 3500 umur 61", None, 61, "Ahmad 3500"),
        ("王明 2800 外劳", W.FOREIGN, None, "王明 2800"),
        ("王明 2800 外籍员工", W.FOREIGN, None, "王明 2800"),
        ("Lim 61岁 3000", None, 61, "Lim 3000"),
        ("Bob 60 years old 3000", None, 60, "Bob 3000"),
        ("年龄：58 李华 4000", None, 58, "李华 4000"),
        ("Nur 2200 tempatan 59 tahun", W.EMPLOYEE, 59, "Nur 2200"),
        ("Raju 2500 pekerja asing", W.FOREIGN, None, "Raju 2500"),
        ("Ani pembantu rumah asing 1500", W.DOMESTIC_FOREIGN, None, "Ani 1500"),
        ("Maria foreign maid", W.DOMESTIC_FOREIGN, None, "Maria"),
        ("maid tempatan", W.DOMESTIC_LOCAL, None, ""),
        ("本地女佣", W.DOMESTIC_LOCAL, None, ""),
        ("菲佣 1600", W.DOMESTIC_FOREIGN, None, "1600"),
        ("Kumar LOCAL 3000", W.EMPLOYEE, None, "Kumar 3000"),
        ("员工", W.EMPLOYEE, None, ""),
        ("Asingkan 3000", None, None, "Asingkan 3000"),  # a word inside a longer word is not read
        ("Ali 3000", None, None, "Ali 3000"),
    ],
)
def test_worker_words(text: str, worker: WorkerType | None, age: int | None, rest: str) -> None:
    got = read_worker_words(text)
    assert (got.worker, got.age, got.rest) == (worker, age, rest)


@pytest.mark.parametrize("text", ["maid", "helper 1700", "女佣", "pembantu rumah"])
def test_a_domestic_word_without_nationality_is_unclear(text: str) -> None:
    got = read_worker_words(text)
    assert got.worker is None and got.domestic_unclear


def test_an_impossible_age_is_flagged() -> None:
    got = read_worker_words("Ali 3500 umur 200")
    assert got.age is None and got.bad_age


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_worker_words_never_fail(text: str) -> None:
    got = read_worker_words(text)
    assert got.age is None or 0 <= got.age <= 130
    assert len(got.rest) <= len(text) * 3 + 1


def test_pasted_lines_with_errors_keep_the_rest() -> None:
    sheet = read_lines("Siti, 1800, domestic-local\nBob abc\n\nAli 2500 45\nLee, RM3,500.50, foreign, 30\nTotal 9999")
    assert [(r.row, r.name, r.wage, r.worker, r.age) for r in sheet.rows] == [
        (1, "Siti", Decimal("1800.00"), W.DOMESTIC_LOCAL, None),
        (4, "Ali", Decimal("2500.00"), W.EMPLOYEE, 45),
        (5, "Lee", Decimal("3500.50"), W.FOREIGN, 30),
    ]
    assert [(e.row, e.code) for e in sheet.errors] == [(2, "no-wage"), (6, "total-row")]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("Ali, 15/hour", "wage-hourly"),
        ("Ali, -3000", "wage-negative"),
        ("Ali, 3000, astronaut", "type-unknown"),
        ("Ali 3000 umur 300", "bad-age"),
        ("Ali, 2000000", "wage-absurd"),
    ],
)
def test_row_errors(line: str, code: str) -> None:
    sheet = read_lines(f"Siti, 1800\n{line}")
    assert [(e.row, e.code) for e in sheet.errors] == [(2, code)]


def test_looks_like_staff_lines() -> None:
    assert looks_like_staff_lines("Siti, 1800\nAhmad 3500 umur 61")
    assert looks_like_staff_lines("王明 2800 外劳\n李华 3500")
    assert not looks_like_staff_lines("RM3500")
    assert not looks_like_staff_lines("how do I pay\nfor 2 maids")
    assert not looks_like_staff_lines("RM3500\nRM2000")  # no names
    assert not looks_like_staff_lines("Siti, 1800\nwhat about Ahmad 3500?")


@pytest.mark.parametrize(
    "header",
    [
        ["Name", "Salary", "Type", "Age", "IC No."],
        ["NAMA", "Gaji (RM)", "Jenis Pekerja", "Umur", "No. Kad Pengenalan"],
        ["姓名", "薪水", "类别", "年龄", "身份证号码"],
    ],
)
def test_headers_in_three_languages(header: list[str]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    ws.append(["Siti", 1800, "maid tempatan", None, "900101-14-5678"])
    ws.append(["Ahmad", "3.5k", "", 61, None])
    ws.append([None, None, None, None, None])
    ws.append(["X", 1833.333, "", "", ""])
    buf = io.BytesIO()
    wb.save(buf)
    sheet = read_file(buf.getvalue(), "s.xlsx")
    assert [(r.row, r.name, r.wage, r.worker, r.age, r.ic) for r in sheet.rows] == [
        (2, "Siti", Decimal("1800.00"), W.DOMESTIC_LOCAL, None, "900101-14-5678"),
        (3, "Ahmad", Decimal("3500.00"), W.EMPLOYEE, 61, ""),
    ]
    assert [(e.row, e.code) for e in sheet.errors] == [(5, "wage-decimals")]
    assert sheet.has_ic


def test_headerless_csv_reads_rows_like_lines() -> None:
    sheet = read_file(b"Siti;1800;foreign\nAhmad;3500;;61\n", "s.csv")
    assert [(r.name, r.worker, r.age) for r in sheet.rows] == [("Siti", W.FOREIGN, None), ("Ahmad", W.EMPLOYEE, 61)]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 ...", "not-spreadsheet"),
        (b"\x89PNG\r\n\x1a\n....", "not-spreadsheet"),
        (b"PK\x03\x04broken", "not-spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptedPackage".encode("utf-16-le"), "encrypted"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"Workbook", "xls"),
        (b"hello\nworld\n", "no-rows"),
        (b"x" * (2 * 1024 * 1024 + 1), "too-large"),
        (("Name,Wage\n" + "Ali,2000\n" * (MAX_ROWS + 1)).encode(), "too-many-rows"),
    ],
)
def test_files_that_cannot_be_read(data: bytes, code: str) -> None:
    with pytest.raises(SheetError) as exc:
        read_file(data, "f.csv")
    assert exc.value.code == code


def test_exactly_the_row_limit_is_read() -> None:
    sheet = read_file(("Name,Wage\n" + "Ali,2000\n" * MAX_ROWS).encode(), "f.csv")
    assert len(sheet.rows) == MAX_ROWS


def test_result_files_sum_to_the_totals_and_formulas_are_defused() -> None:
    sheet = read_lines("=HYPERLINK(1), 1800\nAhmad 3500 umur 61\n王明 2800 外劳")
    result = calculate_all(sheet, 2026, 11)
    expected = [calculate(r.wage, 2026, 11, r.worker, age=r.age) for r in sheet.rows]
    assert [p.c for p in result.people] == expected
    assert result.totals.employer == sum((c.employer_total for c in expected), Decimal(0))
    wb = load_workbook(io.BytesIO(write_xlsx(result, labels("en"))))
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    assert rows[1][1] == "'=HYPERLINK(1)"  # a name is never run as a formula
    employer = rows[0].index("Employer pays (RM)")
    assert sum(Decimal(str(r[employer])) for r in rows[1:-1]) == Decimal(str(rows[-1][employer]))
    text = write_csv(result, labels("ms")).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Baris,Nama,Gaji (RM)")


def _cli(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    calc_cli.register(parser.add_subparsers())
    args = parser.parse_args(["calc", *argv])
    out, err = io.StringIO(), io.StringIO()
    return calc_cli.run(args, out=out, err=err), out.getvalue(), err.getvalue()


def test_cli_file_json_and_out(tmp_path: Path) -> None:
    src = tmp_path / "staff.csv"
    src.write_text("Nama,Gaji,Jenis,Umur\nSiti,1800,domestic-local,\nAhmad,3500,,61\nX,abc,,\n", encoding="utf-8")
    code, out, err = _cli(["--file", str(src), "--month", "2026-11", "--json", "--out", str(tmp_path / "r.xlsx")])
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0]["name"] == "Siti" and lines[0]["row"] == 2
    single = json.loads(_cli(["1800", "--worker", "domestic-local", "--month", "2026-11", "--json"])[1])
    assert {k: v for k, v in lines[0].items() if k not in ("row", "name")} == single
    assert lines[2] == {"row": 4, "error": "wage-none", "reason": "can't read the wage “abc”"}
    assert (tmp_path / "r.xlsx").stat().st_size > 0


def test_cli_file_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "photo.xlsx"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    code, out, err = _cli(["--file", str(bad), "--lang", "ms"])
    assert code == 2 and out == ""
    assert err.startswith("calc: photo.xlsx: Saya tidak dapat membaca fail ini sebagai hamparan.")
    assert _cli(["--file", str(tmp_path / "missing.csv")])[0] == 2
    assert _cli(["--file", str(bad), "--out", str(tmp_path / "r.pdf")])[0] == 2
    assert _cli(["--out", str(tmp_path / "r.csv"), "3500"])[0] == 2


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_is_read_without_failing(text: str) -> None:
    looks_like_staff_lines(text)
    try:
        sheet = read_lines(text)
    except SheetError as exc:
        assert exc.code in ("empty", "too-many-rows")
        return
    assert all(e.row >= 1 for e in sheet.errors)
    assert all(r.wage >= 0 for r in sheet.rows)


def test_chinese_numeral_wage_and_salary_words() -> None:
    sheet = read_lines("李华 三千五\nAli RM3,500 sebulan\nLim 月薪3500\n王二")
    assert [(r.name, r.wage) for r in sheet.rows] == [
        ("李华", Decimal("3500.00")), ("Ali", Decimal("3500.00")), ("Lim", Decimal("3500.00"))
    ]
    assert [(e.row, e.code) for e in sheet.errors] == [(4, "no-wage")]


def test_cli_file_equals_cli_wage_in_a_real_process(tmp_path: Path) -> None:
    """One real `python -m bot calc` run each way: --file and a single wage agree."""
    import subprocess
    import sys

    src = tmp_path / "staff.csv"
    src.write_text("Name,Wage,Type,Age\nAhmad,3500,,61\n", encoding="utf-8")
    run = [sys.executable, "-m", "bot", "calc", "--month", "2026-11", "--json"]
    listed = subprocess.run([*run, "--file", str(src)], capture_output=True, text=True, timeout=60, check=True)
    single = subprocess.run([*run, "3500", "--age", "61"], capture_output=True, text=True, timeout=60, check=True)
    row = json.loads(listed.stdout)
    assert (row.pop("row"), row.pop("name")) == (2, "Ahmad")
    assert row == json.loads(single.stdout)
    bad = subprocess.run([*run, "--file", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("calc: cannot read")


def test_a_workbook_that_unpacks_to_a_huge_file_is_refused() -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<row/>" * (8 * 1024 * 1024))  # 48 MB, ~50 KB packed
    assert len(buf.getvalue()) < 2 * 1024 * 1024
    with pytest.raises(SheetError) as exc:
        read_file(buf.getvalue(), "bomb.xlsx")
    assert exc.value.code == "too-large"


def test_blank_rows_count_towards_the_limit() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["Name", "Wage"])
    ws.cell(row=25_000, column=1, value="Ali")
    ws.cell(row=25_000, column=2, value=2000)
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(SheetError) as exc:
        read_file(buf.getvalue(), "sparse.xlsx")
    assert exc.value.code == "too-many-rows"


def test_numbered_and_bulleted_lines() -> None:
    sheet = read_lines("1. Siti 1800 maid tempatan\n2) Ahmad RM3,500 umur 61\n- 王明 2800 外劳\n• Kumar: 4200")
    assert [(r.name, r.wage, r.worker, r.age) for r in sheet.rows] == [
        ("Siti", Decimal("1800.00"), W.DOMESTIC_LOCAL, None),
        ("Ahmad", Decimal("3500.00"), W.EMPLOYEE, 61),
        ("王明", Decimal("2800.00"), W.FOREIGN, None),
        ("Kumar", Decimal("4200.00"), W.EMPLOYEE, None),
    ]
