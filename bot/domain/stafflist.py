"""A whole staff list at once: read a spreadsheet (XLSX, CSV) or pasted lines, calculate every person.

Pure Python (openpyxl for XLSX, the csv module for CSV); no Telegram, no storage. The flow:

* :func:`read_file` (bytes + file name) or :func:`read_lines` (pasted text) -> :class:`Sheet`:
  the people that could be read and, for every row that could not, a :class:`RowError` with the
  row number as the user sees it (spreadsheet row / line number) and a code the chat and the CLI
  localize (``stafflist.err.<code>``). A file that cannot be read at all raises
  :class:`SheetError` (codes ``too-large``, ``too-many-rows``, ``empty``, ``not-spreadsheet``,
  ``encrypted``, ``xls``, ``no-rows``).
* Column headers are recognised in English, Malay and Chinese (Name/Nama/姓名, Wage/Salary/Gaji/
  工资/薪水, Type/Jenis/类别, Age/Umur/年龄, IC/MyKad/身份证). Without a header row each row is read
  like a pasted line: "name, wage[, type][, age]" or "Ahmad 3500 umur 61".
* Wages are read by :func:`bot.domain.salary.parse_salary`, types and ages by
  :func:`bot.domain.worker_words.read_worker_words`; a row without a type is a local employee
  (flagged ``type_assumed``), as in ``python -m bot calc``.
* :func:`calculate_all` runs :func:`bot.domain.rates.calculate` for every person and sums the
  schemes; :func:`write_xlsx` / :func:`write_csv` write the result with the caller's (localized)
  labels. The sums written are the sums of the rows written.

Limits: :data:`MAX_BYTES` (2 MB) and :data:`MAX_ROWS` (1,000 people); an XLSX may also unpack
to at most :data:`MAX_UNPACKED` and have at most :data:`MAX_SHEET_ROWS` rows, blank ones included,
so a small file cannot make the reader work for long.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain.rates import Contribution, Note, WorkerType, calculate
from bot.domain.salary import ABSURD_ABOVE, parse_salary
from bot.domain.worker_words import MAX_AGE, read_worker_words

__all__ = [
    "COLUMNS",
    "MAX_BYTES",
    "MAX_ROWS",
    "Labels",
    "Person",
    "RowError",
    "Sheet",
    "SheetError",
    "StaffResult",
    "StaffRow",
    "Totals",
    "calculate_all",
    "looks_like_staff_lines",
    "read_file",
    "read_lines",
    "write_csv",
    "write_xlsx",
]

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 1000
MAX_COLUMNS = 50  # cells read per row
MAX_UNPACKED = 40 * 1024 * 1024  # an XLSX is a zip: its content may unpack to at most this
MAX_SHEET_ROWS = 20 * MAX_ROWS  # rows read from a worksheet, blank ones included
CENT = Decimal("0.01")
ZERO = Decimal("0.00")

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Compound File: old .xls, or an encrypted .xlsx
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
_NOT_TEXT_MAGIC = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"Rar!", b"\x1f\x8b", b"7z\xbc\xaf")


class SheetError(ValueError):
    """The whole input cannot be read; ``code`` names why (``stafflist.file.<code>``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class StaffRow:
    """One person as read: ``row`` is the spreadsheet row or line number (1-based)."""

    row: int
    name: str
    wage: Decimal
    worker: WorkerType
    age: int | None = None
    ic: str = ""
    type_assumed: bool = False


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that was skipped: ``code`` is localized as ``stafflist.err.<code>``; ``value`` is
    the cell or line in question, cut to 40 characters (shown to the user, never logged)."""

    row: int
    code: str
    value: str = ""


@dataclass(slots=True)
class Sheet:
    rows: list[StaffRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    has_ic: bool = False


# --- header recognition -------------------------------------------------------------------

COLUMNS = ("name", "ic", "wage", "type", "age")
# Checked in this order: a header cell belongs to the first field with a matching word.
_HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "type": (
        "type", "worker type", "jenis", "jenis pekerja", "kategori", "category", "类别", "类型",
        "员工类别", "员工类型", "工人类别",
    ),
    "age": ("age", "umur", "usia", "年龄", "年齡", "岁数"),
    "ic": (
        "ic", "ic no", "no ic", "nric", "mykad", "passport", "pasport", "no pasport", "passport no",
        "kad pengenalan", "no kad pengenalan", "身份证", "身份证号", "身份证号码", "护照", "护照号码",
        "id", "id no",
    ),
    "wage": (
        "wage", "wages", "salary", "monthly wage", "monthly salary", "basic", "basic salary",
        "gross", "gross wage", "pay", "gaji", "gaji bulanan", "gaji pokok", "upah", "工资", "薪水",
        "月薪", "薪金", "底薪", "工资rm", "薪水rm",
    ),
    "name": (
        "name", "full name", "employee", "employee name", "worker name", "staff", "staff name",
        "nama", "nama penuh", "nama pekerja", "姓名", "名字", "员工", "员工姓名", "名称",
    ),
}
_HEADER_NOISE = re.compile(r"\(?\b(?:rm|myr)\b\)?|[()\[\]:：.#*/]|\bno\b\.?$", re.I)


def _norm_header(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).casefold()
    text = re.sub(r"[_\-]+", " ", text)
    text = _HEADER_NOISE.sub(" ", text)
    return " ".join(text.split())


def _header_field(cell: str) -> str | None:
    text = _norm_header(cell)
    if not text:
        return None
    bare = text.replace(" ", "")
    for fld, words in _HEADER_WORDS.items():
        for w in words:
            if text == w or bare == w.replace(" ", ""):
                return fld
    return None


def _header_map(cells: Sequence[str]) -> dict[str, int] | None:
    """{field: column} when ``cells`` is a header row with a wage column, else None."""
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        fld = _header_field(cell)
        if fld is not None and fld not in found:
            found[fld] = i
    return found if "wage" in found else None


# --- reading one value --------------------------------------------------------------------

_IC_RE = re.compile(r"(?<!\d)(\d{6}-?\d{2}-?\d{4})(?!\d)")
_TOTAL_WORDS = frozenset({"total", "totals", "jumlah", "jumlah besar", "合计", "总计", "合計", "總計"})
_WAGE_ERRORS = {
    "ambiguous": "wage-ambiguous",
    "negative": "wage-negative",
    "absurd": "wage-absurd",
    "hourly": "wage-hourly",
    "daily": "wage-daily",
    "none": "wage-none",
}


def _cut(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 40 else text[:39] + "…"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _wage_of(value: Any) -> Decimal | str:
    """A wage Decimal, or an error code."""
    if isinstance(value, bool):
        return "wage-none"
    if isinstance(value, int | float | Decimal):
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            return "wage-none"
        if not d.is_finite():
            return "wage-none"
        if d < 0:
            return "wage-negative"
        if d > ABSURD_ABOVE:
            return "wage-absurd"
        if d != d.quantize(CENT):
            return "wage-decimals"  # never rounded, as for a typed wage
        return d.quantize(CENT)
    text = str(value).strip()
    if not text:
        return "no-wage"
    p = parse_salary(text)
    if p.kind in ("ok", "zero") and p.amount is not None:
        if re.search(r"[^\W\d_]", _WAGE_WORDS.sub(" ", unicodedata.normalize("NFKC", text))):
            return "wage-none"  # "abc0": words that are not about money around a number
        return p.amount
    return _WAGE_ERRORS.get(p.kind, "wage-none")


def _age_of(value: Any) -> int | None | str:
    """An age, None (not given), or an error code."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "bad-age"
    if isinstance(value, int | float | Decimal):
        if value != int(value) or not 0 <= int(value) <= MAX_AGE:
            return "bad-age"
        return int(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if re.fullmatch(r"\d{1,3}", text):
        age = int(text)
        return age if age <= MAX_AGE else "bad-age"
    ww = read_worker_words(text)
    if ww.age is not None and not ww.rest:
        return ww.age
    return "bad-age"


def _type_of(value: Any) -> WorkerType | None | str:
    """A worker type, None (not given), or an error code."""
    text = _cell_text(value)
    if not text:
        return None
    ww = read_worker_words(text)
    if ww.domestic_unclear:
        return "type-domestic-unclear"
    if ww.worker is None or ww.rest.strip(" ,;-"):
        return "type-unknown"
    return ww.worker


# --- a row ----------------------------------------------------------------------------------

_SPLIT_RE = re.compile(r"\s*(?:[;\t|]|(?<!\d),|,(?!\d{3}(?:\D|$)))\s*")
_BULLET = re.compile(r"^(?:\d{1,4}[.)]\s+|[-*]\s+|[•·]\s*)")  # "1. Siti 1800", "- Ahmad 3500"
_WAGE_START = re.compile(r"(?:rm|myr)?\s*[-−–]?\d", re.I)


# What may stand next to a wage: numbers, currency and salary words, k / rb / ribu multipliers.
_WAGE_WORDS = re.compile(
    r"[-−–]?[\d.,\s]+|(?<![a-z])(?:rm|myr|ringgit|k|rb|ribu|gaji|salary|wages?|monthly|month|"
    r"sebulan|bulan|bulanan|per|a|pokok|basic|gross)(?![a-z])|月薪|工资|薪水|薪金|底薪|令吉|马币|元|每月|[/零〇一二两三四五六七八九十百千万萬仟]",
    re.I,
)


_NAME_TAIL = re.compile(r"\s*(?:月薪|工资|薪水|gaji|salary|wage)\s*[:：]?\s*$", re.I)


def _is_total(name: str) -> bool:
    return unicodedata.normalize("NFKC", name).casefold().strip(" :：") in _TOTAL_WORDS


def _line_row(row: int, line: str) -> StaffRow | RowError | None:
    """One pasted line or header-less spreadsheet row; None for a blank line."""
    line = _BULLET.sub("", unicodedata.normalize("NFKC", line).strip())
    if not line.strip(" ,;\t|"):
        return None
    ic = ""
    m = _IC_RE.search(line)
    if m is not None:
        ic = m.group(1)
        line = (line[: m.start()] + " " + line[m.end() :]).strip()
    fields = _SPLIT_RE.split(line)
    if len(fields) > 1:
        name = fields[0].strip()
        rest = " ".join(f for f in fields[1:] if f.strip())
        if _WAGE_START.match(name) and not _WAGE_START.match(rest or "x"):
            name, rest = rest, name  # "3500, Ahmad": wage first
        ww = read_worker_words(rest)
        name_ww = None
    else:
        ww = read_worker_words(line)
        m2 = _WAGE_START.search(ww.rest)
        if m2 is not None:
            name, rest = ww.rest[: m2.start()], ww.rest[m2.start() :]
        else:  # no digit: the wage may be in Chinese numerals, "李华 三千五"
            words = ww.rest.split()
            if len(words) < 2 or parse_salary(words[-1]).kind != "ok":
                return RowError(row, "no-wage", _cut(line))
            name, rest = " ".join(words[:-1]), words[-1]
        name_ww = ww
    name = _NAME_TAIL.sub("", name).strip(" ,;:-\t|")
    if _is_total(name):
        return RowError(row, "total-row", _cut(name))
    if ww.bad_age:
        return RowError(row, "bad-age", _cut(line))
    if ww.domestic_unclear:
        return RowError(row, "type-domestic-unclear", _cut(line))
    age = ww.age
    tail = ww.rest if name_ww is None else rest
    tokens = tail.split()
    if age is None and len(tokens) >= 2 and re.fullmatch(r"\d{1,3}", tokens[-1]):
        value = int(tokens[-1])  # "Ali 2500 45": a trailing small whole number is the age
        if value > MAX_AGE:
            return RowError(row, "bad-age", _cut(line))
        age = value
        tail = " ".join(tokens[:-1])
    if not tail.strip():
        return RowError(row, "no-wage", _cut(line))
    kind = parse_salary(tail).kind
    leftover = _WAGE_WORDS.sub(" ", unicodedata.normalize("NFKC", tail))
    if re.search(r"[^\W\d_]", leftover) and kind not in ("hourly", "daily"):
        return RowError(row, "type-unknown", _cut(tail))  # a word that is neither type nor age
    wage = _wage_of(tail)
    if isinstance(wage, str):
        return RowError(row, wage, _cut(tail))
    worker = ww.worker or WorkerType.EMPLOYEE
    return StaffRow(row, name, wage, worker, age, ic, ww.worker is None)


def _table_row(row: int, cells: Sequence[Any], cols: dict[str, int]) -> StaffRow | RowError | None:
    def cell(fld: str) -> Any:
        i = cols.get(fld)
        return cells[i] if i is not None and i < len(cells) else None

    if not any(_cell_text(c) for c in cells):
        return None
    name = _cell_text(cell("name"))
    if _is_total(name):
        return RowError(row, "total-row", _cut(name))
    raw_wage = cell("wage")
    if not _cell_text(raw_wage):
        return RowError(row, "no-wage", _cut(name))
    wage = _wage_of(raw_wage)
    if isinstance(wage, str):
        return RowError(row, wage, _cut(_cell_text(raw_wage)))
    worker = _type_of(cell("type"))
    if isinstance(worker, str) and not isinstance(worker, WorkerType):
        return RowError(row, worker, _cut(_cell_text(cell("type"))))
    age = _age_of(cell("age"))
    if isinstance(age, str):
        return RowError(row, age, _cut(_cell_text(cell("age"))))
    return StaffRow(
        row, name, wage, worker or WorkerType.EMPLOYEE, age, _cell_text(cell("ic")), worker is None
    )


def _read_table(rows: Iterable[tuple[int, Sequence[Any]]]) -> Sheet:
    """Rows of cells (with their row numbers) -> a Sheet; the first non-empty row may be a header."""
    sheet = Sheet()
    cols: dict[str, int] | None = None
    seen_first = False
    count = 0
    for row_no, cells in rows:
        cells = list(cells[:MAX_COLUMNS])
        texts = [_cell_text(c) for c in cells]
        if not any(texts):
            continue
        if not seen_first:
            seen_first = True
            cols = _header_map(texts)
            if cols is not None:
                sheet.has_ic = "ic" in cols
                continue
        count += 1
        if count > MAX_ROWS:
            raise SheetError("too-many-rows")
        if cols is not None:
            got = _table_row(row_no, cells, cols)
        else:
            got = _line_row(row_no, ", ".join(t for t in texts if t))
        if isinstance(got, StaffRow):
            sheet.rows.append(got)
            sheet.has_ic = sheet.has_ic or bool(got.ic)
        elif isinstance(got, RowError):
            sheet.errors.append(got)
    if not seen_first:
        raise SheetError("empty")
    if not sheet.rows and cols is None:
        raise SheetError("no-rows")  # no header and no readable person: not a staff list
    return sheet


# --- files ----------------------------------------------------------------------------------


def _xlsx_rows(data: bytes) -> Iterable[tuple[int, Sequence[Any]]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SheetError("not-spreadsheet") from exc
    if unpacked > MAX_UNPACKED:  # a small file that unpacks to a huge one
        raise SheetError("too-large")
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises assorted errors on a damaged workbook
        raise SheetError("not-spreadsheet") from exc
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise SheetError("empty")
        out: list[tuple[int, Sequence[Any]]] = []
        non_empty = 0
        for i, values in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS), 1):
            if i > MAX_SHEET_ROWS:  # blank rows count too: reading them costs time
                raise SheetError("too-many-rows")
            if any(v is not None and str(v).strip() for v in values):
                non_empty += 1
                if non_empty > MAX_ROWS + 1:  # + a header row
                    raise SheetError("too-many-rows")
            out.append((i, values))
        return out
    except SheetError:
        raise
    except Exception as exc:
        raise SheetError("not-spreadsheet") from exc
    finally:
        wb.close()


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SheetError("not-spreadsheet") from exc
    if b"\x00" in data or data.startswith(_NOT_TEXT_MAGIC):
        raise SheetError("not-spreadsheet")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # "CSV" saved by Excel on Windows
    if sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t") > 0:
        raise SheetError("not-spreadsheet")
    return text


def _csv_rows(text: str) -> Iterable[tuple[int, Sequence[Any]]]:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    if delimiter == "," and first.count(",") == 0:
        # one column: read each line as a pasted line
        return [(i, [ln]) for i, ln in enumerate(lines, 1)]
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise SheetError("not-spreadsheet") from exc


def read_file(data: bytes, filename: str | None = None) -> Sheet:
    """Read an uploaded XLSX or CSV file (see the module docstring); raises :class:`SheetError`."""
    if len(data) > MAX_BYTES:
        raise SheetError("too-large")
    if not data.strip():
        raise SheetError("empty")
    if data.startswith(_OLE_MAGIC):
        raise SheetError("encrypted" if _ENCRYPTED_MARK in data else "xls")
    if data.startswith(b"PK\x03\x04"):
        return _read_table(_xlsx_rows(data))
    name = (filename or "").lower()
    if name.endswith((".xls", ".xlsx", ".xlsm", ".ods", ".numbers")):
        raise SheetError("not-spreadsheet")  # said to be a workbook, but is not one
    rows = _csv_rows(_decode(data))
    if len(rows) > MAX_ROWS * 2 + 10 and sum(1 for _, r in rows if any(c.strip() for c in r)) > MAX_ROWS + 1:
        raise SheetError("too-many-rows")
    return _read_table(rows)


def read_lines(text: str) -> Sheet:
    """Pasted lines, one person each; line numbers count from 1."""
    rows = [(i, [ln]) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not rows:
        raise SheetError("empty")
    if len(rows) > MAX_ROWS:
        raise SheetError("too-many-rows")
    sheet = Sheet()
    for i, (row_no, (line,)) in enumerate(rows):
        if i == 0 and _header_map([c for c in _SPLIT_RE.split(line)]) is not None:
            continue  # pasted from a sheet with its header
        got = _line_row(row_no, line)
        if isinstance(got, StaffRow):
            sheet.rows.append(got)
            sheet.has_ic = sheet.has_ic or bool(got.ic)
        elif isinstance(got, RowError):
            sheet.errors.append(got)
    return sheet


def looks_like_staff_lines(text: str) -> bool:
    """True when a message is a pasted staff list: at least 2 lines, and at least 2 lines (and
    two thirds of them) are "a name and a wage of RM100 or more" with nothing else unread."""
    if not text or text.startswith("/") or "?" in text or "？" in text:
        return False
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2 or len(lines) > MAX_ROWS + 1:
        return False
    good = 0
    for i, line in enumerate(lines[:50]):
        got = _line_row(i + 1, line)
        if isinstance(got, StaffRow) and got.name and got.wage >= 100 and not any(ch.isdigit() for ch in got.name):
            good += 1
    checked = min(len(lines), 50)
    return good >= 2 and good * 3 >= checked * 2


# --- calculating ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    row: StaffRow
    c: Contribution


@dataclass(frozen=True, slots=True)
class Totals:
    wages: Decimal
    socso_employer: Decimal
    socso_employee: Decimal
    lindung_employee: Decimal
    eis_employer: Decimal
    eis_employee: Decimal
    employer: Decimal
    employee: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class StaffResult:
    year: int
    month: int
    people: tuple[Person, ...]
    errors: tuple[RowError, ...]
    totals: Totals
    has_ic: bool

    def schedules(self) -> list[str]:
        """Schedule ids used, in scheme order (SOCSO, LINDUNG, EIS)."""
        out: dict[str, None] = {}
        for part in ("socso", "lindung", "eis"):
            for p in self.people:
                s = getattr(p.c, part)
                if s is not None:
                    out[s.schedule] = None
        return list(out)

    def note_counts(self) -> list[tuple[Note, int]]:
        """Each distinct note with the number of people it applies to, first seen first."""
        counts: dict[tuple[str, tuple[tuple[str, Any], ...]], list[Any]] = {}
        for p in self.people:
            for n in p.c.notes:
                key = (n.code, tuple(sorted((k, str(v)) for k, v in n.params.items())))
                counts.setdefault(key, [n, 0])[1] += 1
        return [(n, c) for n, c in counts.values()]


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def calculate_all(sheet: Sheet, year: int, month: int) -> StaffResult:
    """Every person's contribution for the month (same engine as the single calculator)."""
    people = tuple(
        Person(r, calculate(r.wage, year, month, r.worker, age=r.age)) for r in sheet.rows
    )
    cs = [p.c for p in people]
    totals = Totals(
        wages=_sum(c.wage for c in cs),
        socso_employer=_sum(c.socso.employer for c in cs if c.socso),
        socso_employee=_sum(c.socso.employee for c in cs if c.socso),
        lindung_employee=_sum(c.lindung.employee for c in cs if c.lindung),
        eis_employer=_sum(c.eis.employer for c in cs if c.eis),
        eis_employee=_sum(c.eis.employee for c in cs if c.eis),
        employer=_sum(c.employer_total for c in cs),
        employee=_sum(c.employee_total for c in cs),
        total=_sum(c.total for c in cs),
    )
    return StaffResult(year, month, people, tuple(sheet.errors), totals, sheet.has_ic)


# --- writing --------------------------------------------------------------------------------

# Result columns in order; "ic" only when the input had IC numbers.
RESULT_COLUMNS = (
    "row", "name", "ic", "wage", "type", "age", "socso_category", "socso_employer",
    "socso_employee", "lindung_employee", "eis_employer", "eis_employee", "employer_total",
    "employee_total", "total", "notes",
)
_MONEY_COLUMNS = frozenset(
    {"wage", "socso_employer", "socso_employee", "lindung_employee", "eis_employer",
     "eis_employee", "employer_total", "employee_total", "total"}
)


@dataclass(frozen=True)
class Labels:
    """Localized texts for the result file (the caller's language).

    ``headers`` has a text for every name in :data:`RESULT_COLUMNS` plus ``"totals"`` (the
    label of the totals row), ``"sheet"``, ``"skipped_sheet"``, ``"skipped_row"`` and
    ``"skipped_reason"``; ``worker`` maps a WorkerType value to its label, ``category`` maps
    "first"/"second"/"none" to the SOCSO category label; ``note`` and ``error`` give the sentence
    of a calculator note and of a skipped row.
    """

    headers: dict[str, str]
    worker: dict[str, str]
    category: dict[str, str]
    note: Callable[[Note], str]
    error: Callable[[RowError], str]
    type_assumed: str = ""


def _columns(result: StaffResult) -> list[str]:
    return [c for c in RESULT_COLUMNS if c != "ic" or result.has_ic]


def _person_values(p: Person, labels: Labels) -> dict[str, Any]:
    c = p.c
    notes = [labels.note(n) for n in c.notes]
    if p.row.type_assumed and labels.type_assumed:
        notes.insert(0, labels.type_assumed)
    return {
        "row": p.row.row,
        "name": p.row.name,
        "ic": p.row.ic,
        "wage": c.wage,
        "type": labels.worker.get(c.worker.value, c.worker.value),
        "age": p.row.age if p.row.age is not None else "",
        "socso_category": labels.category[c.socso.category if c.socso else "none"],
        "socso_employer": c.socso.employer if c.socso else ZERO,
        "socso_employee": c.socso.employee if c.socso else ZERO,
        "lindung_employee": c.lindung.employee if c.lindung else ZERO,
        "eis_employer": c.eis.employer if c.eis else ZERO,
        "eis_employee": c.eis.employee if c.eis else ZERO,
        "employer_total": c.employer_total,
        "employee_total": c.employee_total,
        "total": c.total,
        "notes": " ".join(f"• {n}" for n in notes),
    }


def _total_values(result: StaffResult, labels: Labels) -> dict[str, Any]:
    tt = result.totals
    return {
        "name": labels.headers["totals"],
        "wage": tt.wages,
        "socso_employer": tt.socso_employer,
        "socso_employee": tt.socso_employee,
        "lindung_employee": tt.lindung_employee,
        "eis_employer": tt.eis_employer,
        "eis_employee": tt.eis_employee,
        "employer_total": tt.employer,
        "employee_total": tt.employee,
        "total": tt.total,
    }


def _safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is written as plain text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def write_xlsx(result: StaffResult, labels: Labels) -> bytes:
    """The result workbook: one sheet of people with a totals row, one of skipped rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    cols = _columns(result)
    wb = Workbook()
    ws = wb.active
    ws.title = labels.headers["sheet"][:31]
    ws.append([labels.headers[c] for c in cols])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for p in result.people:
        values = _person_values(p, labels)
        ws.append([_safe_cell(values.get(c, "")) for c in cols])
    totals = _total_values(result, labels)
    ws.append([_safe_cell(totals.get(c, "")) for c in cols])
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for i, c in enumerate(cols, 1):
        letter = ws.cell(row=1, column=i).column_letter
        if c in _MONEY_COLUMNS:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = "#,##0.00"
        ws.column_dimensions[letter].width = 40 if c == "notes" else (22 if c == "name" else 14)
    ws.freeze_panes = "A2"
    if result.errors:
        ws2 = wb.create_sheet(labels.headers["skipped_sheet"][:31])
        ws2.append([labels.headers["skipped_row"], labels.headers["skipped_reason"]])
        for e in result.errors:
            ws2.append([e.row, _safe_cell(labels.error(e))])
        ws2.column_dimensions["B"].width = 80
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_csv(result: StaffResult, labels: Labels) -> bytes:
    """The same table as CSV (UTF-8 with BOM, so Excel shows Chinese and Malay names right)."""
    cols = _columns(result)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([labels.headers[c] for c in cols])

    def fmt(v: Any) -> Any:
        return f"{v:.2f}" if isinstance(v, Decimal) else _safe_cell(v)

    for p in result.people:
        values = _person_values(p, labels)
        w.writerow([fmt(values.get(c, "")) for c in cols])
    totals = _total_values(result, labels)
    w.writerow([fmt(totals.get(c, "")) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
