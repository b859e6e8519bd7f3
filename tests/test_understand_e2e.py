"""Understanding typed messages, end to end through the local Bot API server (issue 16):
wages inside questions, small talk, "not sure" / "no guide", yes/no questions, two topics.

Expected amounts come from the domain calculator; expected guides from the guides' own ids.
The clock is frozen at July 2026 for the calculator.
"""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest
from markupsafe import escape

from bot.config import CONTENT_DIR
from bot.domain.guides import load_guides
from bot.domain.rates import WorkerType, calculate
from bot.handlers import calc as calc_handlers
from bot.i18n import t
from bot.localapi.server import ChatMessage
from tests.harness import BotHarness
from tests.test_calc_e2e import _has_section, assert_breakdown

YEAR, MONTH = 2026, 7


@pytest.fixture(autouse=True)
def frozen_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calc_handlers, "current_month", lambda tz: (YEAR, MONTH))


def _labels(message: ChatMessage) -> list[str]:
    return [b["text"] for b in message.buttons]


def _press_label(message: ChatMessage, label: str) -> str:
    found = [b["callback_data"] for b in message.buttons if b["text"] == label]
    assert len(found) == 1, (label, _labels(message))
    return found[0]


# --------------------------------------------------------------------------- 1. wages in questions


@pytest.mark.parametrize(
    ("lang", "typed", "wage"),
    [
        ("en", "how much is socso for RM3000", "3000"),
        ("en", "how much socso for 3k", "3000"),
        ("ms", "gaji RM2,500 berapa perkeso", "2500"),
        ("zh", "工资3000要交多少", "3000"),
        ("zh", "3000块要扣多少社险", "3000"),
    ],
)
async def test_wage_question_goes_to_the_calculator(bot: BotHarness, lang: str, typed: str, wage: str) -> None:
    user = 1600 + zlib.crc32(typed.encode()) % 1000
    (ask,) = await bot.say(user, typed, lang=lang)
    assert ask.text.startswith(t("calc.ask_worker", lang)), ask.text
    assert _labels(ask) == [t(f"calc.pick.{w.value}", lang) for w in WorkerType]
    await bot.press(user, ask, _press_label(ask, t("calc.pick.employee", lang)))
    result = await bot.server.wait_for_edit(user, ask.message_id)
    assert_breakdown(result.text, calculate(Decimal(wage), YEAR, MONTH, WorkerType.EMPLOYEE), lang)


@pytest.mark.parametrize(
    ("lang", "typed", "wage", "age"),
    [
        ("en", "salary 4000 age 58", "4000", 58),
        ("ms", "gaji 3000 umur 60", "3000", 60),
        ("zh", "60岁员工工资3000", "3000", 60),
    ],
)
async def test_age_is_read_from_the_words(bot: BotHarness, lang: str, typed: str, wage: str, age: int) -> None:
    user = 1700 + ["en", "ms", "zh"].index(lang)
    (ask,) = await bot.say(user, typed, lang=lang)
    assert ask.text.startswith(t("calc.ask_worker", lang)), ask.text
    await bot.press(user, ask, _press_label(ask, t("calc.pick.employee", lang)))
    result = await bot.server.wait_for_edit(user, ask.message_id)
    c = calculate(Decimal(wage), YEAR, MONTH, WorkerType.EMPLOYEE, age=age)
    assert_breakdown(result.text, c, lang)
    band = "55" if age < 60 else "60"
    assert t("calc.btn.age", lang, band=t(f"calc.age.{band}", lang)) in _labels(result)
    if age >= 60:
        assert c.eis is None and not _has_section(result.text, t("calc.h.eis", lang))


@pytest.mark.parametrize(
    ("lang", "typed", "wage", "worker"),
    [
        ("en", "RM1800 foreign maid", "1800", WorkerType.DOMESTIC_FOREIGN),
        ("ms", "RM1800 pembantu rumah asing", "1800", WorkerType.DOMESTIC_FOREIGN),
        ("zh", "外劳工资3000要交多少", "3000", WorkerType.FOREIGN),
        ("en", "3000 foreign worker", "3000", WorkerType.FOREIGN),
        ("ms", "gaji 1500 pembantu rumah tempatan", "1500", WorkerType.DOMESTIC_LOCAL),
    ],
)
async def test_worker_type_from_the_words_answers_at_once(
    bot: BotHarness, lang: str, typed: str, wage: str, worker: WorkerType
) -> None:
    user = 1710 + zlib.crc32(typed.encode()) % 1000
    (result,) = await bot.say(user, typed, lang=lang)
    c = calculate(Decimal(wage), YEAR, MONTH, worker)
    assert_breakdown(result.text, c, lang)
    assert t(f"calc.worker.{worker.value}", lang) in result.text
    if worker in (WorkerType.FOREIGN, WorkerType.DOMESTIC_FOREIGN):
        assert c.eis is None and not _has_section(result.text, t("calc.h.eis", lang))
    assert t("understand.remembered", lang, choices="x").split("x")[0] not in result.text


@pytest.mark.parametrize(("lang", "typed"), [("en", "3.5k maid"), ("ms", "RM3500 untuk pembantu rumah saya"), ("zh", "女佣3500")])
async def test_maid_asks_only_local_or_foreign(bot: BotHarness, lang: str, typed: str) -> None:
    user = 1720 + ["en", "ms", "zh"].index(lang)
    (ask,) = await bot.say(user, typed, lang=lang)
    assert ask.text.startswith(t("calc.ask_worker", lang)), ask.text
    assert _labels(ask) == [t("calc.pick.domestic-local", lang), t("calc.pick.domestic-foreign", lang)]
    await bot.press(user, ask, _press_label(ask, t("calc.pick.domestic-foreign", lang)))
    result = await bot.server.wait_for_edit(user, ask.message_id)
    assert_breakdown(result.text, calculate(Decimal("3500"), YEAR, MONTH, WorkerType.DOMESTIC_FOREIGN), lang)


@pytest.mark.parametrize(("lang", "typed"), [("en", "3000 foreign worker"), ("ms", "3000 pekerja asing"), ("zh", "外劳3000")])
async def test_remembered_choices_never_override_the_words(bot: BotHarness, lang: str, typed: str) -> None:
    """A saved 'employee, 55-59' from an earlier answer: the foreign worker gets no EIS, and the
    age band that is reused is named on the result with a button to change it."""
    user = 1730 + ["en", "ms", "zh"].index(lang)
    await bot.say(user, "/start", lang=lang)
    bot.storage.set_calc_prefs(user, worker_type="employee", age_band="55to59")
    (result,) = await bot.say(user, typed, lang=lang)
    c = calculate(Decimal("3000"), YEAR, MONTH, WorkerType.FOREIGN, age=55)
    assert c.eis is None
    assert_breakdown(result.text, c, lang)
    age = t("calc.age.55", lang)
    assert str(t("understand.remembered", lang, choices=t("understand.age", lang, band=age))) in result.text
    assert t("calc.btn.age", lang, band=age) in _labels(result)
    assert t("calc.btn.worker", lang) in _labels(result)

    # A plain salary afterwards reuses the saved worker type too, and says so.
    (plain,) = await bot.say(user, "2000", lang=lang)
    assert t("calc.worker.employee", lang) in plain.text
    assert t("calc.worker.employee", lang) in plain.text.split("ℹ️")[-1]


# --------------------------------------------------------------------------- 2. small talk


def _unanswered(bot: BotHarness) -> list[str]:
    return [r["text"] for r in bot.storage.db["unanswered"].rows]


@pytest.mark.parametrize(
    ("user_lang", "typed", "kind", "answer_lang"),
    [
        ("en", "hello", "hello", "en"),
        ("en", "Thanks a lot!", "thanks", "en"),
        ("en", "who are you?", "who", "en"),
        ("ms", "terima kasih", "thanks", "ms"),
        ("ms", "selamat pagi", "hello", "ms"),
        ("ms", "siapa awak", "who", "ms"),
        ("zh", "你好", "hello", "zh"),
        ("zh", "谢谢！", "thanks", "zh"),
        ("zh", "你是谁", "who", "zh"),
        ("en", "你好", "hello", "zh"),  # the words' language wins over the user's setting
        ("ms", "ok", "ok", "ms"),  # "ok" is every language's: the user's
        ("zh", "👍", "ok", "zh"),
    ],
)
async def test_small_talk_gets_a_friendly_answer_and_the_menu(
    bot: BotHarness, user_lang: str, typed: str, kind: str, answer_lang: str
) -> None:
    user = 1800 + zlib.crc32(typed.encode()) % 1000
    (answer,) = await bot.say(user, typed, lang=user_lang)
    assert answer.text.startswith(str(t(f"understand.{kind}", answer_lang))), answer.text
    assert t("start.menu_prompt", answer_lang) in answer.text
    assert "menu:calc" in answer.callback_data and "menu:guides" in answer.callback_data
    assert _unanswered(bot) == []


async def test_greeting_with_a_question_is_a_question(bot: BotHarness) -> None:
    (answer,) = await bot.say(1899, "hi, how do I pay my maid's socso on assist", lang="en")
    assert not answer.text.startswith(str(t("understand.hello", "en")))
    assert any(d.startswith("g:domestic-pay:") or d.startswith("ga:domestic-pay:") for d in answer.callback_data)


# --------------------------------------------------------------------------- 3. not sure / no guide

HELPLINE = "1-300-22-8000"


@pytest.mark.parametrize(
    ("lang", "typed"),
    [
        ("en", "what is the meaning of life"),
        ("en", "how do i check my epf balance"),
        ("ms", "bila tarikh akhir hantar borang be lhdn"),
        ("ms", "macam mana nak semak baki kwsp"),
        ("zh", "公积金55岁可以全部领出来吗"),
        ("zh", "个人所得税几时要报"),
    ],
)
async def test_out_of_scope_gets_no_guide_the_helpline_and_is_logged(bot: BotHarness, lang: str, typed: str) -> None:
    user = 1900 + zlib.crc32(typed.encode()) % 1000
    (answer,) = await bot.say(user, typed, lang=lang)
    assert answer.text.startswith(str(t("understand.no_guide", lang))), answer.text
    assert HELPLINE in answer.text
    assert not any(d.startswith("g:") for d in answer.callback_data)  # no guide opened or offered
    assert f"gt:employers:{lang}" in answer.callback_data and "menu:main" in answer.callback_data
    assert _unanswered(bot) == [typed]


@pytest.mark.parametrize(("lang", "typed"), [("en", "maid"), ("ms", "pembantu rumah"), ("zh", "社险")])
async def test_not_sure_offers_two_or_three_guides(bot: BotHarness, lang: str, typed: str) -> None:
    user = 1950 + ["en", "ms", "zh"].index(lang)
    (answer,) = await bot.say(user, typed, lang=lang)
    assert answer.text == str(t("understand.not_sure", lang))
    offered = [d for d in answer.callback_data if d.startswith("g:")]
    assert 2 <= len(offered) <= 3
    assert all(d.endswith(f":1:{lang}") for d in offered)
    assert "menu:main" in answer.callback_data
    # One of them opens its guide's first step.
    await bot.press(user, answer, offered[0])
    opened = await bot.server.wait_for_edit(user, answer.message_id)
    assert f"ga:{offered[0].split(':')[1]}:{lang}" in opened.callback_data


# --------------------------------------------------------------------------- 4. yes/no questions

LIB = load_guides(CONTENT_DIR)


def _answer_text(gid: str, lang: str, when: set[str]) -> str:
    guide = LIB.get(gid, lang)
    assert guide is not None
    (answer,) = [a for a in guide.answers if set(a.when) == when]
    return answer.text


@pytest.mark.parametrize(
    ("lang", "typed", "gid", "when"),
    [
        ("en", "do foreign workers pay eis?", "eis-not-eligible", {"foreign", "eis"}),
        ("ms", "pembantu rumah asing kena bayar SIP ke?", "eis-not-eligible", {"foreign", "eis"}),
        ("zh", "外佣要交EIS吗", "eis-not-eligible", {"foreign", "eis"}),
        ("en", "is socso compulsory for my maid", "domestic-coverage", {"maid", "socso"}),
        ("ms", "wajib ke daftar perkeso untuk pembantu rumah", "domestic-coverage", {"maid", "socso"}),
        ("zh", "女佣一定要买社险吗", "domestic-coverage", {"maid", "socso"}),
        ("en", "why can't I pay this month's contribution yet", "payment-deadlines", {"cantpay"}),
        ("ms", "kenapa tak boleh bayar caruman bulan ini lagi", "payment-deadlines", {"cantpay"}),
        ("zh", "为什么这个月的缴纳金还不能付", "payment-deadlines", {"cantpay"}),
    ],
)
async def test_yes_no_question_opens_the_guide_with_the_short_answer_first(
    bot: BotHarness, lang: str, typed: str, gid: str, when: set[str]
) -> None:
    user = 2000 + zlib.crc32(typed.encode()) % 1000
    (answer,) = await bot.say(user, typed, lang=lang)
    short = _answer_text(gid, lang, when)
    assert answer.text.startswith(f"<b>{escape(short)}</b>\n\n"), answer.text
    assert f"ga:{gid}:{lang}" in answer.callback_data  # the guide's first step follows
    assert f"g:{gid}:2:{lang}" in answer.callback_data
    assert _unanswered(bot) == []


async def test_a_how_to_question_gets_no_short_answer(bot: BotHarness) -> None:
    (answer,) = await bot.say(2999, "how to pay socso for my maid", lang="en")
    assert "ga:domestic-pay:en" in answer.callback_data
    assert not answer.text.startswith("<b>Yes") and not answer.text.startswith("<b>No")


# --------------------------------------------------------------------------- 5. two topics


@pytest.mark.parametrize(
    ("lang", "typed", "offered", "about_both"),
    [
        ("en", "How to pay SOCSO and EIS on ASSIST", ["pay-socso", "pay-eis"], "payment-methods"),
        ("ms", "macam mana bayar perkeso dan sip di assist", ["pay-socso", "pay-eis"], "payment-methods"),
        ("zh", "怎么在ASSIST缴社险和就业保险", ["pay-socso", "pay-eis"], "payment-methods"),
        ("en", "how to register and pay for my maid", ["domestic-register", "domestic-pay"], None),
        ("ms", "cara daftar dan bayar caruman pembantu rumah", ["domestic-register", "domestic-pay"], None),
        ("zh", "女佣怎么注册和缴费", ["domestic-register", "domestic-pay"], None),
    ],
)
async def test_two_topics_open_the_guide_about_both_or_offer_both(
    bot: BotHarness, lang: str, typed: str, offered: list[str], about_both: str | None
) -> None:
    """Either the guide about both opens (the combined payment), or one guide per topic is
    offered (and the guide about both, if there is one, after them)."""
    user = 3000 + zlib.crc32(typed.encode()) % 1000
    (answer,) = await bot.say(user, typed, lang=lang)
    if about_both is not None and f"ga:{about_both}:{lang}" in answer.callback_data:
        assert not answer.text.startswith(str(t("understand.two_topics", lang)))
    else:
        assert answer.text == str(t("understand.two_topics", lang))
        shown = [d for d in answer.callback_data if d.startswith("g:")]
        assert shown[:2] == [f"g:{g}:1:{lang}" for g in offered]
        assert shown[2:] in ([], [f"g:{about_both}:1:{lang}"])
        assert _labels(answer)[:2] == [LIB.get(g, lang).title for g in offered]
    assert _unanswered(bot) == []


@pytest.mark.parametrize(
    ("lang", "typed"),
    [("en", "SOCSO and EIS payment deadline"), ("ms", "tarikh akhir bayar perkeso dan sip"), ("zh", "社险和就业保险的截止日期")],
)
async def test_two_topics_open_the_guide_about_both(bot: BotHarness, lang: str, typed: str) -> None:
    user = 3100 + ["en", "ms", "zh"].index(lang)
    (answer,) = await bot.say(user, typed, lang=lang)
    assert f"ga:payment-deadlines:{lang}" in answer.callback_data
