"""The calculator in the chat, end to end: the real Application through the local Bot API server.

Expected amounts come from the domain calculator (bot.domain.rates.calculate) and Babel formatting,
plus one worked example straight from FACTS.md §6; the clock is frozen at July 2026.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bot.domain.rates import Contribution, WorkerType, calculate
from bot.handlers import calc as calc_handlers
from bot.i18n import format_money, format_month, t
from bot.localapi.server import ChatMessage
from tests.harness import BotHarness

YEAR, MONTH = 2026, 7  # July 2026: LINDUNG 24 JAM Phase 1, opt-out possible for local employees


@pytest.fixture(autouse=True)
def frozen_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calc_handlers, "current_month", lambda tz: (YEAR, MONTH))


def _data(message: ChatMessage, prefix: str) -> str:
    """The one callback_data on ``message`` starting with ``prefix``."""
    found = [d for d in message.callback_data if d.startswith(prefix)]
    assert len(found) == 1, (prefix, message.callback_data)
    return found[0]


def _button_by_label(message: ChatMessage, label: str) -> str:
    found = [b["callback_data"] for b in message.buttons if b["text"] == label]
    assert len(found) == 1, (label, [b["text"] for b in message.buttons])
    return found[0]


def _section(text: str, heading: str) -> list[str]:
    """The lines under ``<b>heading</b>`` (one blank-line separated block)."""
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if lines[0] == f"<b>{heading}</b>":
            return lines[1:]
    raise AssertionError(f"no section {heading!r} in:\n{text}")


def _has_section(text: str, heading: str) -> bool:
    return any(block.split("\n")[0] == f"<b>{heading}</b>" for block in text.split("\n\n"))


def assert_breakdown(text: str, c: Contribution, lang: str) -> None:
    """Every amount of ``c`` on its own line, as the user sees it in ``lang``."""

    def money(d: Decimal) -> str:
        return format_money(d, lang)

    assert text.startswith(t("calc.title", lang, wage=money(c.wage), month=format_month(c.year, c.month, lang)))
    if c.socso is not None:
        key = "calc.h.socso_first" if c.socso.category == "first" else "calc.h.socso_second"
        lines = _section(text, t(key, lang))
        assert t("calc.line.employer", lang, amount=money(c.socso.employer)) in lines
        if c.socso.category == "first":
            assert t("calc.line.employee", lang, amount=money(c.socso.employee)) in lines
    if c.lindung is not None:
        lines = _section(text, t("calc.h.lindung", lang, phase=c.lindung.phase))
        assert lines == [t("calc.line.employee", lang, amount=money(c.lindung.employee))]
    else:
        assert "LINDUNG 24 JAM ·" not in text
    if c.eis is not None:
        lines = _section(text, t("calc.h.eis", lang))
        assert lines == [
            t("calc.line.employer", lang, amount=money(c.eis.employer)),
            t("calc.line.employee", lang, amount=money(c.eis.employee)),
        ]
    else:
        assert not _has_section(text, t("calc.h.eis", lang))
    assert t("calc.total.employer", lang, amount=money(c.employer_total)) in text
    assert t("calc.total.employee", lang, amount=money(c.employee_total)) in text
    for note in c.notes:
        assert note.message_key.startswith("note.")
        head = str(t(note.message_key, lang)).split("{")[0]
        assert head and head in text, note


async def _result_for(bot: BotHarness, user: int, text: str, worker: str = "e", lang: str = "en") -> ChatMessage:
    """Type a salary; pick the worker type if asked; return the result message."""
    (msg,) = await bot.say(user, text, lang=lang)
    if msg.text.startswith(t("calc.ask_worker", lang)):
        await bot.press(user, msg, next(d for d in msg.callback_data if d.split(":")[4] == worker))
        msg = await bot.server.wait_for_edit(user, msg.message_id)
    return msg


@pytest.mark.parametrize(
    ("lang", "typed", "wage"),
    [("en", "RM3,500", "3500"), ("ms", "gaji RM2800", "2800"), ("zh", "月薪3500", "3500")],
)
async def test_typed_salary_asks_worker_then_answers(bot: BotHarness, lang: str, typed: str, wage: str) -> None:
    user = 300 + ["en", "ms", "zh"].index(lang)
    (ask,) = await bot.say(user, typed, lang=lang)
    assert ask.text.startswith(t("calc.ask_worker", lang))
    labels = [b["text"] for b in ask.buttons]
    assert labels == [t(f"calc.pick.{w.value}", lang) for w in WorkerType]
    assert all(d.startswith("c:W:") and len(d.encode()) <= 64 for d in ask.callback_data)

    await bot.press(user, ask, _button_by_label(ask, t("calc.pick.employee", lang)))
    result = await bot.server.wait_for_edit(user, ask.message_id)
    c = calculate(Decimal(wage), YEAR, MONTH, WorkerType.EMPLOYEE)
    assert result.parse_mode == "HTML"
    assert_breakdown(result.text, c, lang)
    assert t("note.age-assumed", lang) in result.text
    assert t("calc.worker.employee", lang) in result.text
    assert f"g:pay-socso:1:{lang}" in result.callback_data
    assert bot.storage.get_user(user)["worker_type"] == "employee"


async def test_facts_worked_example(bot: BotHarness) -> None:
    """FACTS §6: band RM2,400-2,500, Phase 1: employer 42.85; employee 12.25 + 18.35 LINDUNG."""
    result = await _result_for(bot, 310, "RM2,450")
    socso = _section(result.text, t("calc.h.socso_first", "en"))
    assert socso == ["Employer: RM42.85", "Employee: RM12.25"]
    assert _section(result.text, t("calc.h.lindung", "en", phase=1)) == ["Employee: RM18.35"]
    c = calculate(Decimal("2450"), YEAR, MONTH, WorkerType.EMPLOYEE)
    assert c.employee_total == Decimal("12.25") + Decimal("18.35") + c.eis.employee
    assert_breakdown(result.text, c, "en")


async def test_previous_and_chosen_month_edit_in_place(bot: BotHarness) -> None:
    user = 311
    result = await _result_for(bot, user, "RM3,500")
    prev = _button_by_label(result, t("calc.btn.prev", "en", month=format_month(2026, 6, "en")))
    await bot.press(user, result, prev)
    june = await bot.server.wait_for_edit(user, result.message_id)
    c_june = calculate(Decimal("3500"), 2026, 6, WorkerType.EMPLOYEE)
    assert_breakdown(june.text, c_june, "en")
    # June 2026: no opt-out yet; a later month can be reached again.
    assert not [d for d in june.callback_data if d.startswith("c:O:")]
    assert t("calc.btn.next", "en", month=format_month(2026, 7, "en")) in [b["text"] for b in june.buttons]

    edits = len(june.edits)
    await bot.press(user, june, _data(june, "c:m:"))
    picker = await bot.server.wait_for_edit(user, june.message_id, after_edits=edits)
    assert picker.text.startswith(t("calc.ask_month", "en"))
    month_labels = [b["text"].lstrip("• ") for b in picker.buttons if b["callback_data"].startswith("c:r:")]
    expected = [format_month(2026 if m > 0 else 2025, m if m > 0 else m + 12, "en") for m in range(7, -5, -1)]
    assert month_labels[:12] == expected  # the last 12 months, newest first

    edits = len(picker.edits)
    await bot.press(user, picker, _button_by_label(picker, format_month(2026, 5, "en")))
    may = await bot.server.wait_for_edit(user, picker.message_id, after_edits=edits)
    c_may = calculate(Decimal("3500"), 2026, 5, WorkerType.EMPLOYEE)
    assert c_may.lindung is None  # before LINDUNG 24 JAM
    assert_breakdown(may.text, c_may, "en")
    assert c_may.employee_total < c_june.employee_total


async def test_change_worker_type(bot: BotHarness) -> None:
    user = 312
    result = await _result_for(bot, user, "RM3,500")
    await bot.press(user, result, _data(result, "c:w:"))
    picker = await bot.server.wait_for_edit(user, result.message_id)
    assert picker.text.startswith(t("calc.ask_worker", "en"))
    assert t("calc.btn.back", "en") in [b["text"] for b in picker.buttons]

    edits = len(picker.edits)
    await bot.press(user, picker, _button_by_label(picker, t("calc.pick.foreign", "en")))
    foreign = await bot.server.wait_for_edit(user, picker.message_id, after_edits=edits)
    c = calculate(Decimal("3500"), YEAR, MONTH, WorkerType.FOREIGN)
    assert c.eis is None and c.lindung is not None
    assert_breakdown(foreign.text, c, "en")
    assert t("note.foreign-not-eis", "en") in foreign.text
    assert not [d for d in foreign.callback_data if d.startswith("c:O:")]  # no opt-out for foreign
    assert bot.storage.get_user(user)["worker_type"] == "foreign"

    edits = len(foreign.edits)
    await bot.press(user, foreign, _data(foreign, "c:w:"))
    picker = await bot.server.wait_for_edit(user, foreign.message_id, after_edits=edits)
    edits = len(picker.edits)
    await bot.press(user, picker, _button_by_label(picker, t("calc.pick.domestic-foreign", "en")))
    maid = await bot.server.wait_for_edit(user, picker.message_id, after_edits=edits)
    c = calculate(Decimal("3500"), YEAR, MONTH, WorkerType.DOMESTIC_FOREIGN)
    assert_breakdown(maid.text, c, "en")
    assert t("note.lindung-domestic-unconfirmed", "en") in maid.text
    assert "g:domestic-pay:1:en" in maid.callback_data


async def test_lindung_opt_out_toggle(bot: BotHarness) -> None:
    user = 313
    result = await _result_for(bot, user, "RM3,000")
    toggle = _button_by_label(result, t("calc.btn.optout_off", "en"))
    await bot.press(user, result, toggle)
    out = await bot.server.wait_for_edit(user, result.message_id)
    c = calculate(Decimal("3000"), YEAR, MONTH, WorkerType.EMPLOYEE, lindung_opt_out=True)
    assert c.lindung is None
    assert_breakdown(out.text, c, "en")
    assert t("note.lindung-opted-out", "en") in out.text
    assert bot.storage.get_user(user)["lindung_opt_out"] == 1
    assert t("calc.btn.optout_on", "en") in [b["text"] for b in out.buttons]


async def test_age_band(bot: BotHarness) -> None:
    user = 314
    result = await _result_for(bot, user, "RM3,000", lang="ms")
    assert t("calc.btn.age", "ms", band=t("calc.age.assumed", "ms")) in [b["text"] for b in result.buttons]
    await bot.press(user, result, _data(result, "c:a:"))
    picker = await bot.server.wait_for_edit(user, result.message_id)
    edits = len(picker.edits)
    await bot.press(user, picker, _button_by_label(picker, t("calc.pick.age.60", "ms")))
    old = await bot.server.wait_for_edit(user, picker.message_id, after_edits=edits)
    c = calculate(Decimal("3000"), YEAR, MONTH, WorkerType.EMPLOYEE, age=60)
    assert c.socso.category == "second" and c.eis is None
    assert_breakdown(old.text, c, "ms")
    assert t("note.age-assumed", "ms") not in old.text
    assert bot.storage.get_user(user)["age_band"] == "60plus"


async def test_ambiguous_amount_offers_two_buttons(bot: BotHarness) -> None:
    user = 315
    (ask,) = await bot.say(user, "3.500")
    assert [b["text"] for b in ask.buttons] == ["RM3,500.00", "RM3.50"]
    await bot.press(user, ask, _button_by_label(ask, "RM3.50"))
    picker = await bot.server.wait_for_edit(user, ask.message_id)
    assert picker.text.startswith(t("calc.ask_worker", "en"))
    edits = len(picker.edits)
    await bot.press(user, picker, _button_by_label(picker, t("calc.pick.employee", "en")))
    result = await bot.server.wait_for_edit(user, picker.message_id, after_edits=edits)
    assert_breakdown(result.text, calculate(Decimal("3.50"), YEAR, MONTH, WorkerType.EMPLOYEE), "en")


@pytest.mark.parametrize(
    ("typed", "lang", "key", "params"),
    [
        ("RM15/hour", "en", "calc.bad.hourly", {}),
        ("RM80 sehari", "ms", "calc.bad.daily", {}),
        ("-100", "en", "calc.bad.negative", {}),
        ("0", "zh", "calc.bad.zero", {"amount": "RM0.00"}),
        ("RM2,000,000", "en", "calc.bad.absurd", {"amount": "RM2,000,000.00", "limit": "RM1,000,000.00"}),
        ("/calc abc", "en", "calc.bad.none", {}),
    ],
)
async def test_bad_input_is_explained(bot: BotHarness, typed: str, lang: str, key: str, params: dict) -> None:
    (reply,) = await bot.say(320, typed, lang=lang)
    assert reply.text == t(key, lang, **params)
    assert reply.buttons == []


async def test_calc_command_and_menu(bot: BotHarness) -> None:
    user = 321
    (prompt,) = await bot.say(user, "/calc")
    assert prompt.text == t("calc.prompt", "en")
    (bad,) = await bot.say(user, "3500.555")
    assert bad.text == t("calc.bad.none", "en")
    (ask,) = await bot.say(user, "/calc 4200")
    assert ask.text.startswith(t("calc.ask_worker", "en"))
    assert format_money(Decimal("4200"), "en") in ask.text

    (menu,) = await bot.say(user, "/start")
    await bot.press(user, menu, "menu:calc")
    prompt = await bot.server.wait_for_bot_message(user)
    assert prompt.text == t("calc.prompt", "en")


@pytest.mark.parametrize(
    "forged",
    [
        "c:r:3500.00:202613:e:-:0",  # month 13
        "c:W:3500.00:202607:x:-:0",  # unknown worker type
        "c:r:9999999.00:202607:e:-:0",  # above RM1,000,000
        "c:r:3500.00:202607:e:-:0:202601",  # an anchor where none belongs
        "c:m:3500.00:202607:e:-:0",  # the month picker without its anchor
        "c:A:3500.00:202607:e:70:0",  # unknown age band
        "c:O:3500.00:202607:e:-:2",
        "c:r:3500.00:2026",  # truncated
        "c:r:-35.00:202607:e:-:0",
    ],
)
async def test_forged_buttons_change_nothing(bot: BotHarness, forged: str) -> None:
    user = 330
    result = await _result_for(bot, user, "RM3,500")
    before = bot.storage.get_user(user)
    edits = len(result.edits)
    query_id = await bot.server.press_button(user, result.message_id, forged, strict=False)
    answer = await bot.server.wait_for_callback_answer(query_id)
    assert answer.get("text") == t("error.stale_button", "en")
    await bot.server.wait_idle()
    assert len(bot.server.message(user, result.message_id).edits) == edits
    after = bot.storage.get_user(user)
    for column in ("worker_type", "age_band", "lindung_opt_out"):
        assert after[column] == before[column]


async def test_old_button_still_works_after_restart(bot: BotHarness) -> None:
    """The worker choice is remembered, and a result's buttons work on the restarted bot."""
    user = 331
    result = await _result_for(bot, user, "RM1,700", worker="dl")
    await bot.restart()
    (again,) = await bot.say(user, "RM2,000")  # no worker question this time
    c = calculate(Decimal("2000"), YEAR, MONTH, WorkerType.DOMESTIC_LOCAL)
    assert_breakdown(again.text, c, "en")
    assert t("calc.worker.domestic-local", "en") in again.text
    # A button on the message sent before the restart.
    await bot.press(user, result, _data(result, "c:r:"))
    june = await bot.server.wait_for_edit(user, result.message_id)
    assert_breakdown(june.text, calculate(Decimal("1700"), 2026, 6, WorkerType.DOMESTIC_LOCAL), "en")


async def test_how_to_pay_opens_the_guide(bot: BotHarness) -> None:
    from bot.config import CONTENT_DIR
    from bot.domain.guides import load_guides

    user = 332
    result = await _result_for(bot, user, "gaji RM1,700", worker="df", lang="ms")
    data = _button_by_label(result, t("calc.btn.how_to_pay", "ms"))
    assert data == "g:domestic-pay:1:ms"
    answer = await bot.press(user, result, data)
    assert answer.get("text") != t("error.stale_button", "ms")
    # The guide opens below; the breakdown stays on screen, unedited.
    guide = await bot.server.wait_for_bot_message(user, after_message_id=result.message_id)
    assert load_guides(CONTENT_DIR).get("domestic-pay", "ms").title in guide.text
    assert bot.server.message(user, result.message_id).edits == result.edits


async def test_double_tap_is_harmless(bot: BotHarness) -> None:
    user = 333
    result = await _result_for(bot, user, "RM3,500")
    prev = _data(result, "c:r:")
    await bot.press(user, result, prev)
    june = await bot.server.wait_for_edit(user, result.message_id)
    edits = len(june.edits)
    # The second tap arrives after the message already shows June.
    query_id = await bot.server.press_button(user, result.message_id, prev, strict=False)
    answer = await bot.server.wait_for_callback_answer(query_id)
    assert answer.get("text") in (None, "")
    await bot.server.wait_idle()
    await asyncio.sleep(0.3)  # an error message would arrive after the answer
    assert len(bot.server.message(user, result.message_id).edits) == edits
    assert bot.last_bot_message(user).message_id == result.message_id  # no error message sent
