"""A whole staff list in the chat, end to end: real XLSX and CSV files built here, sent as documents
through the local Bot API server to the real Application; the result file is downloaded back.

Each person's amounts in the result file are compared with ``python -m bot calc --json`` for that
person (the CLI's code path, ``bot.commands.calc.run``); the clock is frozen at July 2026.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from bot.commands import calc as calc_cli
from bot.contribution_view import file_error_text, plural
from bot.domain.stafflist import MAX_BYTES
from bot.handlers import calc as calc_handlers
from bot.i18n import format_money, format_month, t
from bot.localapi.server import ChatMessage
from tests.harness import BotHarness

YEAR, MONTH = 2026, 7
LANGS = ("en", "ms", "zh")
HEADERS = {
    "en": ["Name", "IC", "Salary", "Type", "Age"],
    "ms": ["Nama", "No IC", "Gaji (RM)", "Jenis", "Umur"],
    "zh": ["姓名", "身份证", "工资", "类别", "年龄"],
}
# (name, ic, wage, type, age) -> expected CLI worker/age; one bad row (row 6: wage "abc").
PEOPLE: list[tuple[str, str, Any, str, Any]] = [
    ("Siti Aminah", "900101-14-5678", 1800, "domestic-local", None),
    ("Ahmad", "", 3500, "", 61),
    ("王明", "", "RM2,800", "外劳", None),
    ("Maria", "", 1700, "maid asing", 45),
    ("Bad Row", "", "abc", "", None),
    ("Kumar", "", 6500.5, "tempatan", "58"),
]
CLI_ARGS = [  # worker, age for `calc --json` of each good row
    ("domestic-local", None),
    ("employee", 61),
    ("foreign", None),
    ("domestic-foreign", 45),
    ("employee", 58),
]
WAGES = ["1800", "3500", "2800", "1700", "6500.50"]


@pytest.fixture(autouse=True)
def frozen_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calc_handlers, "current_month", lambda tz: (YEAR, MONTH))


def make_xlsx(lang: str, people: list[tuple] = PEOPLE) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS[lang])
    for row in people:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def make_csv(lang: str, people: list[tuple] = PEOPLE) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADERS[lang])
    for row in people:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue().encode("utf-8-sig")


def cli_json(wage: str, worker: str, age: int | None, month: str = f"{YEAR:04d}-{MONTH:02d}") -> dict:
    """``python -m bot calc WAGE --worker W [--age N] --month M --json`` through its own run()."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    calc_cli.register(sub)
    argv = ["calc", wage, "--worker", worker, "--month", month, "--json"]
    if age is not None:
        argv += ["--age", str(age)]
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    assert calc_cli.run(args, out=out, err=err) == 0, err.getvalue()
    return json.loads(out.getvalue())


def _money(v: Any) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"))


def result_rows(data: bytes) -> tuple[list[str], list[list[Any]], list[list[Any]]]:
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    skipped = [list(r) for r in wb.worksheets[1].iter_rows(values_only=True)] if len(wb.worksheets) > 1 else []
    return rows[0], rows[1:], skipped


def col(lang: str, name: str) -> str:
    return str(t(f"stafflist.col.{name}", lang))


def check_against_cli(headers: list[str], body: list[list[Any]], lang: str, month: str) -> None:
    """Every person row equals `calc --json`; the totals row is the sum of the rows."""
    ix = {h: i for i, h in enumerate(headers)}
    people, total = body[:-1], body[-1]
    assert len(people) == len(CLI_ARGS)
    sums: dict[str, Decimal] = {}
    for row, (worker, age), wage in zip(people, CLI_ARGS, WAGES, strict=True):
        j = cli_json(wage, worker, age, month)
        assert _money(row[ix[col(lang, "wage")]]) == Decimal(j["wage"])
        socso = j["socso"] or {"employer": "0", "employee": "0", "category": None}
        lindung = j["lindung"] or {"employee": "0"}
        eis = j["eis"] or {"employer": "0", "employee": "0"}
        expect = {
            "socso_employer": socso["employer"], "socso_employee": socso["employee"],
            "lindung_employee": lindung["employee"], "eis_employer": eis["employer"],
            "eis_employee": eis["employee"], "employer_total": j["employer_total"],
            "employee_total": j["employee_total"],
        }
        for name, value in expect.items():
            assert _money(row[ix[col(lang, name)]]) == Decimal(value), (name, row)
            sums[name] = sums.get(name, Decimal(0)) + Decimal(value)
        assert row[ix[col(lang, "socso_category")]] == str(t(f"stafflist.cat.{socso['category']}", lang))
        assert row[ix[col(lang, "type")]] == str(t(f"calc.worker.{worker}", lang))
        notes = row[ix[col(lang, "notes")]] or ""
        for code in j["notes"]:  # the single calculator's notes, in the user's language
            head = str(t(f"note.{code}", lang)).split("{")[0][:20]
            if code in ("second-category-reason", "eis-not-eligible"):
                continue  # keyed by reason; checked through the amounts
            assert head in notes, (code, notes)
    for name, value in sums.items():
        assert _money(total[ix[col(lang, name)]]) == value, name


async def send_file(bot: BotHarness, user: int, name: str, data: bytes, lang: str, count: int = 2) -> list[ChatMessage]:
    await bot.server.send_document(user, name, data, language_code=lang)
    return await bot.server.wait_for_bot_messages(user, count, timeout=10)


@pytest.mark.parametrize("lang", LANGS)
async def test_xlsx_every_person_equals_the_cli(bot: BotHarness, lang: str) -> None:
    user = 1900 + LANGS.index(lang)
    summary, doc = await send_file(bot, user, "staff.xlsx", make_xlsx(lang), lang)
    month = format_month(YEAR, MONTH, lang)
    assert t("stafflist.title", lang, month=month, people=plural("stafflist.people", 5, lang)) in summary.text
    # the bad row, with its spreadsheet row number (header = row 1) and reason
    assert t("stafflist.skipped_line", lang, row=6, reason=t("stafflist.err.wage-none", lang, value="abc")) in summary.text
    assert t("stafflist.privacy", lang, minutes=15) in summary.text
    assert doc.kind == "document" and doc.media["file_name"].endswith(f"-{YEAR}-{MONTH:02d}.xlsx")
    headers, body, skipped = result_rows(bot.server.file_bytes(doc.media["file_id"]))
    assert headers[:3] == [col(lang, "row"), col(lang, "name"), col(lang, "ic")]
    assert body[0][1] == "Siti Aminah" and body[0][2] == "900101-14-5678"
    check_against_cli(headers, body, lang, f"{YEAR:04d}-{MONTH:02d}")
    assert skipped[1][0] == 6
    # the summary's totals are the file's totals
    ix = {h: i for i, h in enumerate(headers)}
    total = body[-1]
    assert t("calc.total.employer", lang, amount=format_money(_money(total[ix[col(lang, "employer_total")]]), lang)) in summary.text
    assert t("calc.total.employee", lang, amount=format_money(_money(total[ix[col(lang, "employee_total")]]), lang)) in summary.text


@pytest.mark.parametrize("lang", LANGS)
async def test_csv_upload_csv_button_and_previous_month(bot: BotHarness, lang: str) -> None:
    user = 1910 + LANGS.index(lang)
    summary, doc = await send_file(bot, user, "staff.csv", make_csv(lang), lang)
    assert doc.media["file_name"].endswith(".xlsx")
    csv_button = next(d for d in summary.callback_data if d.startswith("sl:c:"))
    await bot.press(user, summary, csv_button)
    (csv_doc,) = await bot.server.wait_for_bot_messages(user, 1)
    assert csv_doc.media["file_name"].endswith(".csv")
    rows = list(csv.reader(io.StringIO(bot.server.file_bytes(csv_doc.media["file_id"]).decode("utf-8-sig"))))
    check_against_cli(rows[0], rows[1:], lang, "2026-07")

    prev = next(d for d in summary.callback_data if d.startswith("sl:m:"))
    assert prev.endswith("202606")
    await bot.press(user, summary, prev)
    june, june_doc = await bot.server.wait_for_bot_messages(user, 2)
    assert format_month(2026, 6, lang) in june.text
    headers, body, _ = result_rows(bot.server.file_bytes(june_doc.media["file_id"]))
    check_against_cli(headers, body, lang, "2026-06")  # June 2026: no opt-out, same engine


async def test_pasted_lines_in_chinese(bot: BotHarness) -> None:
    user = 1920
    text = "Siti, 1800, domestic-local\nAhmad 3500 umur 61\n王明 2800 外劳\nMaria 1700 maid"
    summary, doc = await bot.say(user, text, lang="zh", count=2)
    assert t("stafflist.title", "zh", month=format_month(YEAR, MONTH, "zh"), people=plural("stafflist.people", 3, "zh")) in summary.text
    assert t("stafflist.err.type-domestic-unclear", "zh") in summary.text  # line 4: maid, local or foreign?
    assert "第 4 行" in summary.text
    wang = cli_json("2800", "foreign", None)  # a short list shows each person's share too
    assert t("stafflist.person_line", "zh", name="王明", employer=format_money(Decimal(wang["employer_total"]), "zh"),
             employee=format_money(Decimal(wang["employee_total"]), "zh")) in summary.text
    headers, body, _ = result_rows(bot.server.file_bytes(doc.media["file_id"]))
    assert [r[1] for r in body[:-1]] == ["Siti", "Ahmad", "王明"]
    ahmad = body[1]
    j = cli_json("3500", "employee", 61)
    assert ahmad[headers.index(col("zh", "age"))] == 61
    assert _money(ahmad[headers.index(col("zh", "employer_total"))]) == Decimal(j["employer_total"])


async def test_english_plural_one_person(bot: BotHarness) -> None:
    data = make_csv("en", [("Ali", "", 2500, "", None), ("Bad", "", "-5", "", None)])
    summary, _ = await send_file(bot, 1921, "one.csv", data, "en")
    assert "Contributions for 1 person\n" in summary.text
    assert "1 row skipped" in summary.text


@pytest.mark.parametrize("lang", LANGS)
async def test_files_that_cannot_be_read(bot: BotHarness, lang: str) -> None:
    user = 1930 + LANGS.index(lang)
    cases = [
        ("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not-spreadsheet"),
        ("staff.xlsx", b"PK\x03\x04 this is not a workbook", "not-spreadsheet"),
        ("big.csv", b"Name,Wage\n" + b"Ali,2500\n" * (MAX_BYTES // 9 + 10), "too-large"),
        ("empty.csv", b"\n\n", "empty"),
        # An encrypted workbook is a Compound File holding an "EncryptedPackage" stream.
        ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "EncryptedPackage".encode("utf-16-le"), "encrypted"),
    ]
    for name, data, code in cases:
        (answer,) = await send_file(bot, user, name, data, lang, count=1)
        assert answer.text == file_error_text(code, lang), name
    assert "1,000" in file_error_text("too-large", lang) and "2 MB" in file_error_text("too-large", lang)


async def test_too_many_rows(bot: BotHarness) -> None:
    people = [(f"P{i}", "", 2000, "", None) for i in range(1001)]
    (answer,) = await send_file(bot, 1940, "many.xlsx", make_xlsx("en", people), "en", count=1)
    assert answer.text == file_error_text("too-many-rows", "en")


async def test_save_as_reminder_workers_only_when_asked(bot: BotHarness) -> None:
    user = 1950
    summary, _ = await send_file(bot, user, "staff.xlsx", make_xlsx("en"), "en")
    from bot.reminders import ReminderStore

    store = ReminderStore(bot.storage)
    assert store.workers(user) == []  # nothing saved without the button
    await bot.press(user, summary, next(d for d in summary.callback_data if d.startswith("sl:s:")))
    (done,) = await bot.server.wait_for_bot_messages(user, 1)
    assert done.text == t("stafflist.saved", "en", people=plural("stafflist.people", 5, "en"))
    saved = store.workers(user)
    assert [(w.name, w.worker_type, w.salary) for w in saved] == [
        ("Siti Aminah", "domestic-local", Decimal("1800.00")),
        ("Ahmad", "employee", Decimal("3500.00")),
        ("王明", "foreign", Decimal("2800.00")),
        ("Maria", "domestic-foreign", Decimal("1700.00")),
        ("Kumar", "employee", Decimal("6500.50")),
    ]
    await bot.press(user, summary, next(d for d in summary.callback_data if d.startswith("sl:s:")))
    await bot.server.wait_for_bot_messages(user, 1)
    assert len(store.workers(user)) == 5  # pressed twice: not saved twice


async def test_buttons_after_the_list_is_dropped(bot: BotHarness) -> None:
    user = 1960
    summary, _ = await send_file(bot, user, "staff.xlsx", make_xlsx("ms"), "ms")
    bot.app.chat_data[user].pop("stafflist")  # what the 15-minute expiry or a restart does
    await bot.press(user, summary, next(d for d in summary.callback_data if d.startswith("sl:c:")))
    (answer,) = await bot.server.wait_for_bot_messages(user, 1)
    assert answer.text == t("stafflist.expired", "ms", minutes=15)
    query_id = await bot.server.press_button(user, summary.message_id, "sl:c:zzzz", strict=False)
    await bot.server.wait_for_callback_answer(query_id)  # a forged button is answered
    await bot.server.wait_idle()
    assert len(bot.server.bot_messages(user)) == 3  # summary, file, "no longer in memory"


async def test_logs_carry_no_names_ic_or_wages(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the bot's log level (bot.logs.setup_logging)
    caplog.set_level(logging.DEBUG, logger="bot")  # and everything the bot's own code says
    await send_file(bot, 1970, "staff.xlsx", make_xlsx("en"), "en")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("Siti", "900101", "Ahmad", "王明", "3500", "1800", "6500"):
        assert secret not in logged, secret
    assert "staff list: 5 people, 1 rows skipped" in logged


async def test_a_single_salary_still_goes_to_the_calculator(bot: BotHarness) -> None:
    (msg,) = await bot.say(1980, "RM3,500")
    assert msg.text.startswith(t("calc.ask_worker", "en"))


async def test_local_api_user_document_download_and_size_limit() -> None:
    """The server pieces this feature needs: a user's document, getFile, download, 20 MB limit."""
    import telegram
    from telegram.error import BadRequest

    from bot.localapi.server import GET_FILE_LIMIT, LocalBotAPI

    async with LocalBotAPI(rate_limit=None) as server:
        bot = telegram.Bot("123456:TEST", base_url=server.base_url, base_file_url=server.base_file_url)
        await bot.initialize()
        try:
            sent = await server.send_document(77, "staff.csv", b"Name,Wage\nAli,2500\n", language_code="ms")
            assert sent["document"]["file_name"] == "staff.csv"
            assert sent["document"]["mime_type"] == "text/csv"
            (update,) = await bot.get_updates(timeout=1)
            doc = update.message.document
            got = await (await bot.get_file(doc.file_id)).download_as_bytearray()
            assert bytes(got) == b"Name,Wage\nAli,2500\n" == server.file_bytes(doc.file_id)
            await server.send_document(77, "huge.xlsx", b"x" * (GET_FILE_LIMIT + 1))
            (update,) = await bot.get_updates(offset=update.update_id + 1, timeout=1)
            with pytest.raises(BadRequest, match="(?i)file is too big"):
                await bot.get_file(update.message.document.file_id)
        finally:
            await bot.shutdown()


async def test_local_mode_terminal_sends_a_file(bot: BotHarness, tmp_path) -> None:
    """Local mode: ``/file PATH`` in the terminal chat sends the file as a document."""
    from bot.localapi.terminal import run_terminal_chat

    path = tmp_path / "staff.xlsx"
    path.write_bytes(make_xlsx("en"))
    stdout = io.StringIO()
    stdin = io.StringIO(f"/file {path}\n/file {tmp_path / 'missing.csv'}\n")
    await run_terminal_chat(bot.server, user_id=1990, stdin=stdin, stdout=stdout, reply_wait=2)
    await bot.server.wait_for_bot_messages(1990, 2, timeout=10)
    out = stdout.getvalue()
    assert "→ cannot read" in out and "missing.csv" in out
    (sent,) = [m for m in bot.server.chat(1990) if not m.from_bot]
    assert sent.media["file_name"] == "staff.xlsx"
    assert bot.server.file_bytes(sent.media["file_id"]) == path.read_bytes()


async def test_a_list_full_of_long_bad_rows_still_fits_one_message(bot: BotHarness) -> None:
    """Every reason is long and every note differs: the summary is cut to Telegram's limit."""
    people = [("Amir", "", 2000 + i, "", 20 + i * 5) for i in range(9)]  # ages 20..60: many notes
    people += [(f"Orang {i}", "", 2000, "angkasawan " * 6 + str(i), None) for i in range(40)]
    people += [("Daud", "", 1700, "foreign maid", None), ("Esa", "", 1700, "maid tempatan", 58)]
    summary, doc = await send_file(bot, 1995, "long.csv", make_csv("ms", people), "ms")
    assert len(summary.plain_text.encode("utf-16-le")) // 2 <= 4096
    listed = summary.text.count(str(t("stafflist.skipped_line", "ms", row=99, reason="")).split("99")[0])
    assert 0 < listed < 20  # 20 long reasons would not fit: fewer are listed, the file has all
    assert t("stafflist.skipped", "ms", rows=plural("stafflist.rows", 40, "ms")) in summary.text
    _, body, skipped = result_rows(bot.server.file_bytes(doc.media["file_id"]))
    assert len(body) == 12 and len(skipped) == 41  # 11 people + totals; header + 40 reasons
