"""``python -m bot calc``: SOCSO + LINDUNG 24 JAM + EIS contributions for one or more wages.

    python -m bot calc 3500 RM4,200 --month 2026-11 --worker employee --json
    printf '3500\\n1700\\n' | python -m bot calc - --json

Wages are read with the chat's salary parser (``bot.domain.salary``). With ``--json`` one JSON
object per wage is printed, one per line, in input order. Any bad input (wage, month, age) prints
one line on stderr and exits with status 2, before anything is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.clock import utc_now
from bot.domain.rates import Contribution, WorkerType, calculate, schedules, to_json
from bot.domain.salary import parse_salary

KL = ZoneInfo("Asia/Kuala_Lumpur")
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")

_REASONS = {
    "ambiguous": "ambiguous amount",
    "negative": "negative amount",
    "absurd": "amount above RM1,000,000",
    "hourly": "hourly rate, give the monthly wage",
    "daily": "daily rate, give the monthly wage",
    "none": "no amount found (at most 2 decimals)",
}


class InputError(ValueError):
    """Bad command-line input: reported as one stderr line, exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``calc`` subcommand."""
    p = subparsers.add_parser(
        "calc",
        help="SOCSO, LINDUNG 24 JAM and EIS contribution for one or more monthly wages",
        description="Contribution for each WAGE (use - to read one wage per line from stdin).",
    )
    p.add_argument(
        "wages",
        nargs="*",
        metavar="WAGE",
        help='monthly wage, e.g. 3500, "RM3,500.50", 3.5k; - reads stdin',
    )
    p.add_argument(
        "--file",
        help="a staff list (.xlsx or .csv: Name, Wage, optional Type, Age, IC): every person",
    )
    p.add_argument(
        "--out", help="with --file: write the result to this .xlsx or .csv file"
    )
    p.add_argument("--month", help="wage month YYYY-MM (default: this month in Malaysia)")
    p.add_argument(
        "--worker",
        default=WorkerType.EMPLOYEE.value,
        choices=[w.value for w in WorkerType],
        help="worker type (default: employee)",
    )
    p.add_argument("--age", type=int, help="the worker's age in that month")
    p.add_argument(
        "--first-contribution-age",
        type=int,
        dest="first_contribution_age",
        help="age when contributions were first payable (55/57 rules)",
    )
    p.add_argument(
        "--lindung-opt-out",
        action="store_true",
        dest="lindung_opt_out",
        help="a local employee who opted out of LINDUNG 24 JAM (from July 2026)",
    )
    p.add_argument(
        "--lang", default="en", choices=["en", "ms", "zh"], help="language of the text output"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def parse_month(text: str | None, now: dt.datetime | None = None) -> tuple[int, int]:
    """``YYYY-MM`` -> (year, month); None -> the current month in Asia/Kuala_Lumpur."""
    if text is None:
        now = now or utc_now().astimezone(KL)
        return now.year, now.month
    m = _MONTH_RE.fullmatch(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise InputError(f"bad --month {text!r}: expected YYYY-MM")
    return int(m.group(1)), int(m.group(2))


def scheduled_month(text: str | None) -> tuple[int, int]:
    """:func:`parse_month`, refusing a month before the first published schedule."""
    year, month = parse_month(text)
    first = schedules()["socso"][0].effective_from
    if f"{year:04d}-{month:02d}" < first:
        raise InputError(
            f"no contribution schedule for {year:04d}-{month:02d} (the first starts {first})"
        )
    return year, month


def _wage_inputs(args_wages: list[str], stdin: Iterable[str]) -> list[tuple[str, str]]:
    """(label, text) for every wage, in order; '-' expands to stdin lines (blank lines skipped)."""
    out: list[tuple[str, str]] = []
    for i, w in enumerate(args_wages, 1):
        if w == "-":
            for n, line in enumerate(stdin, 1):
                if line.strip():
                    out.append((f"stdin line {n}", line.strip()))
        else:
            out.append((f"argument {i}", w))
    return out


def parse_wage(label: str, text: str) -> Decimal:
    """One wage as Decimal (zero allowed: a month without wages), else InputError."""
    p = parse_salary(text)
    if p.kind in ("ok", "zero") and p.amount is not None:
        return p.amount
    raise InputError(f"{label}: cannot read wage {text!r}: {_REASONS.get(p.kind, p.kind)}")


def render_text(
    c: Contribution,
    age: int | None = None,
    first_contribution_age: int | None = None,
    lang: str | None = None,
) -> str:
    """One result as plain text: the chat calculator's answer (same renderer, same sentences)
    without its markup; ``age`` and ``first_contribution_age`` as given on the command line."""
    from bot.contribution_view import age_band, contribution_text

    band = age_band(age, first_contribution_age) if age is not None else None
    return contribution_text(c, band, lang)


def run(args: argparse.Namespace, stdin: Iterable[str] | None = None, out=None, err=None) -> int:
    """Run the subcommand; returns the exit status (2 on bad input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if getattr(args, "file", None):
        return run_file(args, out, err)
    if getattr(args, "out", None):
        print("calc: --out needs --file", file=err)
        return 2
    if not args.wages:
        print("calc: give a WAGE, - (stdin) or --file", file=err)
        return 2
    try:
        year, month = scheduled_month(args.month)
        inputs = _wage_inputs(args.wages, stdin if stdin is not None else sys.stdin)
        if not inputs:
            raise InputError("no wage given")
        wages = [parse_wage(label, text) for label, text in inputs]
        results = [
            calculate(
                w,
                year,
                month,
                WorkerType(args.worker),
                age=args.age,
                first_contribution_age=args.first_contribution_age,
                lindung_opt_out=args.lindung_opt_out,
            )
            for w in wages
        ]
    except (InputError, ValueError) as exc:
        print(f"calc: {exc}", file=err)
        return 2
    if args.json:
        for r in results:
            out.write(json.dumps(to_json(r), ensure_ascii=False) + "\n")
    else:
        texts = (render_text(r, args.age, args.first_contribution_age, args.lang) for r in results)
        out.write("\n\n".join(texts) + "\n")
    return 0


def run_file(args: argparse.Namespace, out, err) -> int:
    """``calc --file``: a whole staff list, same engine and messages as the chat.

    Prints the summary (or, with ``--json``, one object per person: ``row``, ``name`` and the
    single calculator's fields, then one ``{"row", "error", "reason"}`` per skipped row); with
    ``--out`` writes the result file. Exit 2 when the file cannot be read.
    """
    from pathlib import Path

    from bot.contribution_view import file_error_text, labels, plain, row_error_text, summary_text
    from bot.domain.stafflist import SheetError, calculate_all, read_file, write_csv, write_xlsx
    from bot.i18n import t, use_lang

    lang = args.lang
    if args.wages:
        print("calc: give either WAGEs or --file, not both", file=err)
        return 2
    out_path = Path(args.out) if args.out else None
    if out_path is not None and out_path.suffix.lower() not in (".xlsx", ".csv"):
        print(f"calc: --out must end in .xlsx or .csv, not {out_path.name!r}", file=err)
        return 2
    try:
        year, month = scheduled_month(args.month)
    except InputError as exc:
        print(f"calc: {exc}", file=err)
        return 2
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"calc: cannot read {path}: {exc.strerror or exc}", file=err)
        return 2
    try:
        sheet = read_file(data, path.name)
    except SheetError as exc:
        print(f"calc: {path.name}: {plain(file_error_text(exc.code, lang))}", file=err)
        return 2
    result = calculate_all(sheet, year, month)
    with use_lang(lang):
        if args.json:
            for p in result.people:
                row = {"row": p.row.row, "name": p.row.name, **to_json(p.c)}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            for e in result.errors:
                reason = plain(row_error_text(e, lang))
                out.write(json.dumps({"row": e.row, "error": e.code, "reason": reason}, ensure_ascii=False) + "\n")
        else:
            out.write(plain(summary_text(result)) + "\n")
        if out_path is not None:
            writer = write_xlsx if out_path.suffix.lower() == ".xlsx" else write_csv
            try:
                out_path.write_bytes(writer(result, labels(lang)))
            except OSError as exc:
                print(f"calc: cannot write {out_path}: {exc.strerror or exc}", file=err)
                return 2
            if not args.json:
                out.write(plain(t("stafflist.cli.written", lang, path=str(out_path))) + "\n")
    return 0

