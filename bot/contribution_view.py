"""The text of a contribution and of a staff list, for the chat and the command line alike.

One renderer: :func:`contribution_html` is the chat calculator's answer (Telegram HTML, from
``content/templates/calc_result.html``) and :func:`contribution_text` is ``python -m bot calc``'s
text output, the same rendering with the markup taken out (:func:`plain`). The staff-list
summary, its result file's labels and its error sentences live here too, for the chat
(``bot/handlers/stafflist.py``) and ``calc --file``. So a sentence has one catalog key, and a
translator fixes it once.

It renders text and knows no Telegram: it imports only :mod:`bot.i18n` and the domain (the same
idea as :mod:`bot.reminder_views` for reminders).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from babel import Locale
from markupsafe import Markup

from bot.domain.rates import Contribution, Note, WorkerType, schedules
from bot.domain.salary import ABSURD_ABOVE
from bot.domain.stafflist import MAX_BYTES, MAX_ROWS, RESULT_COLUMNS, Labels, RowError, StaffResult
from bot.i18n import BABEL_LOCALES, format_money, format_month, render, resolve_lang, t, use_lang

__all__ = [
    "FIRST_AT_55",
    "age_band",
    "age_label",
    "contribution_html",
    "contribution_text",
    "file_error_text",
    "labels",
    "note_html",
    "note_text",
    "plain",
    "plural",
    "row_error_text",
    "schedule_names",
    "summary_text",
    "worker_label",
]

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
_TAG_RE = re.compile(r"<[^>]+>")

FIRST_AT_55 = "55f"  # 55-59 and first registered at 55 or older: Second Category (F2(b))


def plain(markup: str) -> str:
    """Telegram HTML as plain text: the tags taken out, the entities (``&lt;``) read back."""
    return html.unescape(_TAG_RE.sub("", str(markup)))


# --- one contribution ---------------------------------------------------------------------------


def age_band(age: int, first_contribution_age: int | None = None) -> str:
    """The calculator's age band of an age in years (``55f``: 55-59, first contributed at 55
    or older)."""
    if age < 55:
        return "u55"
    if age < 60:
        return FIRST_AT_55 if first_contribution_age is not None and first_contribution_age >= 55 else "55"
    return "60"


def worker_label(worker: WorkerType, lang: str | None = None) -> Markup:
    """"Employee", "Foreign worker", ..."""
    return t(f"calc.worker.{worker.value}", lang)


def age_label(band: str | None, lang: str | None = None) -> Markup:
    """"under 55", "55–59", ...; no band: "under 55 (assumed)"."""
    return t(f"calc.age.{band}" if band else "calc.age.assumed", lang)


def note_html(note: Note, lang: str | None = None) -> Markup:
    """The sentence for a calculator note; a ``YYYY-MM`` parameter reads as a month name."""
    params: dict[str, Any] = {}
    for key, value in note.params.items():
        if key == "reason":  # chooses the note's key, it is not a word of the sentence
            continue
        m = _MONTH_RE.fullmatch(value) if isinstance(value, str) else None
        params[key] = format_month(int(m[1]), int(m[2]), lang) if m else value
    return t(note.message_key, lang, **params)


def note_text(note: Note, lang: str | None = None) -> str:
    """:func:`note_html` as plain text."""
    return plain(note_html(note, lang))


def schedule_names(ids: Iterable[str], lang: str | None = None) -> list[Markup]:
    """The published schedules with these ids ("Act 4 Third Schedule (wage ceiling RM6,000.00,
    from October 2024)"), in the order given; an unknown id is left out."""
    by_id = {s.id: s for group in schedules().values() for s in group}
    names: list[Markup] = []
    for sid in ids:
        s = by_id.get(sid)
        if s is None:
            continue
        y, m = s.effective_from.split("-")
        names.append(
            t(
                f"calc.sched.{s.scheme}",
                lang,
                ceiling=format_money(s.ceiling, lang),
                start=format_month(int(y), int(m), lang),
                phase=s.phase or "",
            )
        )
    return names


def contribution_html(c: Contribution, age: str | None = None, lang: str | None = None) -> str:
    """The calculator's answer for ``c`` as Telegram HTML: wage and month, worker type and age
    band (``age``; None: assumed under 55), each scheme's amounts, the totals, the schedules
    used and the notes."""
    with use_lang(resolve_lang(lang)):
        parts = [p.schedule for p in (c.socso, c.lindung, c.eis) if p is not None]
        return render(
            "calc_result.html",
            c=c,
            worker_label=worker_label(c.worker),
            age_label=age_label(age),
            nothing_due=c.socso is None and c.lindung is None and c.eis is None,
            schedules=schedule_names(parts),
            notes=[note_html(n) for n in c.notes],
        )


def contribution_text(c: Contribution, age: str | None = None, lang: str | None = None) -> str:
    """:func:`contribution_html` as plain text (the command line's output)."""
    return plain(contribution_html(c, age, lang))


# --- a staff list -------------------------------------------------------------------------------

MAX_LISTED_ERRORS = 20
MESSAGE_LIMIT = 4096  # Telegram's message length (UTF-16 units; HTML tags count here, not there)
MAX_LISTED_PEOPLE = 10  # a summary lists each person up to this many (the file always does)


def plural(key: str, count: int, lang: str | None = None) -> Markup:
    """``<key>.one`` / ``<key>.other`` (CLDR plural rules of the language) with ``{count}``."""
    form = Locale.parse(BABEL_LOCALES[resolve_lang(lang)]).plural_form(count)
    return t(f"{key}.{form}" if form == "one" else f"{key}.other", lang, count=f"{count:,}")


def _limits() -> dict[str, Any]:
    return {"max_rows": f"{MAX_ROWS:,}", "max_mb": MAX_BYTES // (1024 * 1024)}


def file_error_text(code: str, lang: str | None = None) -> str:
    """The localized answer to a file that cannot be read at all."""
    return str(t(f"stafflist.file.{code}", lang, **_limits()))


def row_error_text(e: RowError, lang: str | None = None) -> Markup:
    """Why a row of a staff list was skipped."""
    return t(f"stafflist.err.{e.code}", lang, value=e.value, limit=format_money(ABSURD_ABOVE, lang))


def labels(lang: str | None = None) -> Labels:
    """The result file's texts in ``lang``."""
    heads = list(RESULT_COLUMNS) + ["totals", "sheet", "skipped_sheet", "skipped_row", "skipped_reason"]
    return Labels(
        headers={h: plain(t(f"stafflist.col.{h}", lang)) for h in heads},
        worker={w.value: plain(worker_label(w, lang)) for w in WorkerType},
        category={c: plain(t(f"stafflist.cat.{c}", lang)) for c in ("first", "second", "none")},
        note=lambda n: note_text(n, lang),
        error=lambda e: plain(row_error_text(e, lang)),
        type_assumed=plain(t("stafflist.type_assumed_row", lang)),
    )


def summary_text(result: StaffResult, minutes: int | None = None, lang: str | None = None) -> str:
    """The summary of a staff list (HTML) in ``lang`` (default: the current language), within
    Telegram's 4,096 characters: skipped rows (then people) beyond what fits are left to the file.
    ``minutes``: how long the chat keeps the list (the privacy line); None leaves it out."""
    with use_lang(resolve_lang(lang)):
        for errors, people in ((MAX_LISTED_ERRORS, True), (10, True), (5, True), (5, False), (0, False)):
            text = _summary(result, minutes, errors, people)
            if len(text.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT:
                break
        return text


def _summary(result: StaffResult, minutes: int | None, max_errors: int, list_people: bool) -> str:
    parts: list[str] = []
    month = format_month(result.year, result.month)
    n = len(result.people)
    if n:
        tt = result.totals
        head = [
            str(t("stafflist.title", month=month, people=plural("stafflist.people", n))),
            str(t("stafflist.line.wages", amount=format_money(tt.wages))),
        ]
        parts.append("\n".join(head))
        if list_people and n <= MAX_LISTED_PEOPLE:  # a short list: each person's share, as on the payslip
            parts.append("\n".join(
                str(t("stafflist.person_line",
                      name=p.row.name or t("stafflist.unnamed", row=p.row.row),
                      employer=format_money(p.c.employer_total), employee=format_money(p.c.employee_total)))
                for p in result.people
            ))
        schemes = [str(t("stafflist.line.socso", employer=format_money(tt.socso_employer),
                         employee=format_money(tt.socso_employee)))]
        if any(p.c.lindung for p in result.people):
            schemes.append(str(t("stafflist.line.lindung", employee=format_money(tt.lindung_employee))))
        if any(p.c.eis for p in result.people):
            schemes.append(str(t("stafflist.line.eis", employer=format_money(tt.eis_employer),
                                 employee=format_money(tt.eis_employee))))
        parts.append("\n".join(schemes))
        parts.append("\n".join([
            str(t("calc.total.employer", amount=format_money(tt.employer))),
            str(t("calc.total.employee", amount=format_money(tt.employee))),
            str(t("calc.total.all", amount=format_money(tt.total))),
        ]))
        names = schedule_names(result.schedules())
        if names:
            parts.append("\n".join([f"<i>{t('calc.schedules')}</i>"] + [f"• {x}" for x in names]))
        notes = []
        assumed = sum(1 for p in result.people if p.row.type_assumed)
        if assumed:
            notes.append("ℹ️ " + str(t("stafflist.type_assumed", people=plural("stafflist.people", assumed))))
        for note, count in result.note_counts():
            notes.append(str(t("stafflist.note_line", people=plural("stafflist.people", count), note=note_html(note))))
        if notes:
            parts.append("\n".join(notes))
    else:
        parts.append(str(t("stafflist.nobody")))
    if result.errors:
        lines = [str(t("stafflist.skipped", rows=plural("stafflist.rows", len(result.errors))))]
        for e in result.errors[:max_errors]:
            lines.append(str(t("stafflist.skipped_line", row=e.row, reason=row_error_text(e))))
        more = len(result.errors) - max_errors
        if more > 0:
            lines.append(str(t("stafflist.skipped_more", rows=plural("stafflist.rows", more))))
        parts.append("\n".join(lines))
    if not n:
        parts.append(str(t("stafflist.format_hint")))
    if minutes is not None:
        parts.append(str(t("stafflist.privacy", minutes=minutes)))
    return "\n\n".join(parts)
