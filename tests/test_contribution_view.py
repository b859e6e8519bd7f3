"""One renderer for a contribution: the chat's answer (HTML) and ``python -m bot calc``'s text
carry the same amounts and the same notes, because both come from bot/contribution_view.py."""

from __future__ import annotations

import argparse
import io
from decimal import Decimal

import pytest

from bot.commands import calc as calc_cli
from bot.contribution_view import contribution_html, note_html, note_text, plain, summary_text
from bot.domain.rates import Contribution, WorkerType
from bot.domain.stafflist import calculate_all, read_lines
from bot.handlers import calc as calc_handlers
from bot.handlers.calc import AGE_FOR_CALC, FIRST_AGE_FOR_CALC, CalcState
from bot.i18n import format_money, use_lang

E, F = WorkerType.EMPLOYEE, WorkerType.FOREIGN
DL, DF = WorkerType.DOMESTIC_LOCAL, WorkerType.DOMESTIC_FOREIGN

# (wage, YYYY-MM, worker, age band or None, LINDUNG opt-out): every part of the answer shows up
# somewhere here: both SOCSO categories, LINDUNG and its phases, EIS or not, nothing due, notes.
CASES = [
    ("3500", "2026-11", E, "u55", False),
    ("2450", "2026-06", E, None, False),
    ("3000", "2026-11", E, "55f", False),
    ("3000", "2026-11", E, "60", True),
    ("3000", "2028-07", E, "55", False),
    ("0", "2026-11", E, "u55", False),
    ("1700", "2021-03", DL, None, False),
    ("1700", "2026-11", DF, "60", False),
    ("2450", "2025-01", F, "u55", False),
    ("9000.50", "2024-12", F, None, False),
]


def _state(wage: str, month: str, worker: WorkerType, age: str | None, opt_out: bool) -> CalcState:
    year, mon = (int(x) for x in month.split("-"))
    return CalcState(Decimal(wage), year * 12 + mon - 1, worker, age, opt_out)


def chat(case: tuple, lang: str) -> tuple[str, Contribution]:
    """The chat calculator's answer, as the handler builds it."""
    with use_lang(lang):
        return calc_handlers.result_text(_state(*case))


def cli(case: tuple, lang: str) -> str:
    """``python -m bot calc`` with the same choices (the age a band stands for)."""
    wage, month, worker, age, opt_out = case
    argv = ["calc", wage, "--month", month, "--worker", worker.value, "--lang", lang]
    if age is not None:
        argv += ["--age", str(AGE_FOR_CALC[age])]
    if age in FIRST_AGE_FOR_CALC:
        argv += ["--first-contribution-age", str(FIRST_AGE_FOR_CALC[age])]
    if opt_out:
        argv.append("--lindung-opt-out")
    parser = argparse.ArgumentParser()
    calc_cli.register(parser.add_subparsers())
    out, err = io.StringIO(), io.StringIO()
    assert calc_cli.run(parser.parse_args(argv), out=out, err=err) == 0, err.getvalue()
    return out.getvalue()


def _amounts(c: Contribution, lang: str) -> list[str]:
    parts = [c.wage]
    if c.socso or c.lindung or c.eis:  # nothing due: no totals either
        parts += [c.employer_total, c.employee_total, c.total]
    if c.socso is not None:
        parts.append(c.socso.employer)
        if c.socso.category == "first":
            parts.append(c.socso.employee)
    if c.lindung is not None:
        parts.append(c.lindung.employee)
    if c.eis is not None:
        parts += [c.eis.employer, c.eis.employee]
    return [format_money(d, lang) for d in parts]


@pytest.mark.parametrize("lang", ["en", "ms", "zh"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2].value}-{c[3]}" for c in CASES])
def test_cli_text_is_the_chat_answer_without_markup(case: tuple, lang: str) -> None:
    html, c = chat(case, lang)
    text = cli(case, lang)
    assert text == plain(html) + "\n"
    assert "<b>" in html and "<b>" not in text  # the chat has markup, the terminal none
    for amount in _amounts(c, lang):
        assert amount in html and amount in text, amount
    assert c.notes or case[3] is not None  # an assumed age always carries a note
    for note in c.notes:
        assert str(note_html(note, lang)) in html
        assert note_text(note, lang) in text
    assert "calc." not in text and "note." not in text  # no key shows through


def test_the_age_band_of_the_command_line_reads_as_the_chats() -> None:
    for band in ("u55", "55", "55f", "60"):
        case = ("3000", "2026-11", E, band, False)
        assert cli(case, "en") == plain(contribution_html(chat(case, "en")[1], band, "en")) + "\n"


def test_markup_in_a_name_is_escaped_in_the_chat_and_read_back_in_plain_text() -> None:
    result = calculate_all(read_lines("<b>Ali</b> & Co, 2000\nSiti, 1800"), 2026, 11)
    html = summary_text(result, lang="en")
    assert "&lt;b&gt;Ali&lt;/b&gt; &amp; Co" in html
    assert "<b>Ali</b> & Co" in plain(html)


@pytest.mark.parametrize("lang", ["en", "ms", "zh"])
def test_a_staff_list_names_its_notes_with_the_single_calculators_sentences(lang: str) -> None:
    result = calculate_all(read_lines("Ahmad 3500 umur 61\nSiti 0\n王明 2800 外劳"), 2026, 11)
    html = summary_text(result, lang=lang)
    notes = result.note_counts()
    assert notes
    for note, _ in notes:
        assert str(note_html(note, lang)) in html
