"""Every message leads somewhere (issue 18), end to end in English, Malay and Chinese: the real
Application polling the local Bot API server over HTTP.

/help by role, the calculator's way on (a reminder with this amount, another calculation, the
menu) and its "first registered at 55 or older" choice, /remind's true next reminder after
"Paid", a typed reminder hour, /mydata in words with a JSON download, the follower's welcome,
the "Everyone" preview, plural forms.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.deadlines import KL, month_key, next_moment
from bot.i18n import LANG_NAMES, format_date, format_month, n, t
from bot.localapi.server import ChatMessage, LocalBotAPI
from bot.reminders import ReminderStore, due_reminders, next_reminder, row_settings
from tests.harness import BotHarness

OP = 1
LANGS = ("en", "ms", "zh")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(server, tmp_path / "bot.sqlite3", admin_ids=frozenset({OP}))
        await harness.start()
        yield harness
        await harness.stop()


def labels(message: ChatMessage) -> list[str]:
    return [b["text"] for b in message.buttons]


# --- /help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_help_lists_every_command_by_role_with_the_menu(bot: BotHarness, lang: str) -> None:
    user = 700 + LANGS.index(lang)
    (help_msg,) = await bot.say(user, "/help", lang=lang)
    for command, key in (("remind", "cmd.remind"), ("agencies", "agency.cmd_agencies"),
                         ("mydata", "cmd.mydata"), ("forget", "cmd.forget"), ("calc", "cmd.calc"),
                         ("guides", "cmd.guides"), ("language", "cmd.language")):
        assert f"/{command} – {t(key, lang)}" in help_msg.text
    assert "/broadcast" not in help_msg.text and "/agency " not in help_msg.text
    assert "menu:main" not in help_msg.callback_data  # it *is* the main menu's buttons:
    assert help_msg.callback_data == ["menu:guides", "menu:calc", "menu:remind", "menu:lang"]
    assert labels(help_msg)[0] == t("menu.guides", lang)

    (op_help,) = await bot.say(OP, "/help", lang=lang)
    assert str(t("help.cmd_agency", lang)) in op_help.text and str(t("help.cmd_broadcast", lang)) in op_help.text

    # Agency staff see /broadcast, not /agency.
    (created,) = await bot.say(OP, "/agency new Acme Payroll", lang="en")
    staff_payload = created.text.split("?start=")[1].split()[0]
    await bot.say(user, f"/start {staff_payload}", lang=lang)
    (staff_help,) = await bot.say(user, "/help", lang=lang)
    assert str(t("help.cmd_broadcast", lang)) in staff_help.text
    assert str(t("help.cmd_agency", lang)) not in staff_help.text


# --- calculator: the way on, and first registered at 55 or older -----------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_calculator_result_offers_reminder_another_and_menu(bot: BotHarness, lang: str) -> None:
    user = 710 + LANGS.index(lang)
    (picker,) = await bot.say(user, "/calc 3500", lang=lang)
    await bot.press(user, picker, next(d for d in picker.callback_data if d.split(":")[4] == "e"))
    result = await bot.server.wait_for_edit(user, picker.message_id)
    remind_data = "rm:c:employee:3500.00"
    assert result.callback_data[-3:] == [remind_data, "menu:calc", "menu:main"]
    assert labels(result)[-3:] == [t("calc.btn.remind", lang), t("calc.btn.another", lang),
                                   t("calc.btn.main_menu", lang)]

    # "Calculate another" asks for a salary; "Main menu" shows the menu.
    await bot.press(user, result, "menu:calc")
    ask = await bot.server.wait_for_bot_message(user)
    assert ask.text == t("calc.prompt", lang)
    await bot.press(user, result, "menu:main")
    menu = await bot.server.wait_for_bot_message(user)
    assert menu.callback_data == ["menu:guides", "menu:calc", "menu:remind", "menu:lang"]

    # "Set a reminder with this amount": reminders on, only the worker's name is asked.
    await bot.press(user, result, remind_data)
    asked = await bot.server.wait_for_bot_message(user)
    assert asked.text == t("remind.from_calc", lang, salary="RM3,500.00")
    saved, settings = await bot.say(user, "Aminah", lang=lang, count=2)
    assert saved.text == t("remind.worker_saved", lang, name="Aminah", salary="RM3,500.00")
    assert t("remind.status_on", lang) in settings.text
    (worker,) = ReminderStore(bot.storage).workers(user)
    assert (worker.name, worker.worker_type, worker.salary) == ("Aminah", "employee", Decimal("3500.00"))
    assert ReminderStore(bot.storage).get(user)["audience"] == "employer"


@pytest.mark.parametrize("lang", LANGS)
async def test_first_registered_at_55_or_older(bot: BotHarness, lang: str) -> None:
    user = 720 + LANGS.index(lang)
    (picker,) = await bot.say(user, "/calc 3500", lang=lang)
    await bot.press(user, picker, next(d for d in picker.callback_data if d.split(":")[4] == "e"))
    result = await bot.server.wait_for_edit(user, picker.message_id)
    assert t("note.age-assumed", lang) in result.text
    age_data = next(d for d in result.callback_data if d.startswith("c:a:"))
    await bot.press(user, result, age_data)
    ages = await bot.server.wait_for_edit(user, picker.message_id)
    assert t("calc.pick.age.55f", lang) in labels(ages)
    first_at_55 = next(d for d in ages.callback_data if d.split(":")[5] == "55f")
    await bot.press(user, ages, first_at_55)
    second = await bot.server.wait_for_edit(user, picker.message_id)
    # Second Category: employer only, the assumption note gone (FACTS F2(b)).
    assert t("calc.h.socso_second", lang) in second.text
    assert t("note.first-contribution-assumed", lang) not in second.text
    assert t("calc.btn.age", lang, band=t("calc.age.55f", lang)) in labels(second)
    assert bot.storage.get_user(user)["age_band"] == "55to59first"
    # 55-59 without the choice still assumes first registered before 55 (First Category).
    plain = next(d for d in second.callback_data if d.startswith("c:a:"))
    await bot.press(user, second, plain)
    ages = await bot.server.wait_for_edit(user, picker.message_id)
    await bot.press(user, ages, next(d for d in ages.callback_data if d.split(":")[5] == "55"))
    first = await bot.server.wait_for_edit(user, picker.message_id)
    assert t("note.first-contribution-assumed", lang) in first.text


# --- /remind: the true next reminder, a typed hour ---------------------------------------------------


def _next_line(text: str, lang: str) -> str:
    prefix = str(t("remind.next", lang, date="\x00", time="", month="")).split("\x00")[0]
    return next(line for line in text.splitlines() if line.startswith(prefix))


@pytest.mark.parametrize("lang", LANGS)
async def test_remind_shows_the_reminder_that_will_really_come(bot: BotHarness, lang: str) -> None:
    user = 730 + LANGS.index(lang)
    (settings,) = await bot.say(user, "/remind", lang=lang)
    await bot.press(user, settings, "rm:on")
    settings = await bot.server.wait_for_edit(user, settings.message_id)
    store = ReminderStore(bot.storage)
    row = store.get(user)
    naive = next_moment(row_settings(row), datetime.now(UTC))
    assert naive is not None
    local = naive.at.astimezone(KL)
    shown = t("remind.next", lang, date=format_date(local.date(), lang), time=f"{local.hour:02d}:00",
              month=format_month(naive.year, naive.month, lang))
    assert shown in settings.text

    # "✅ Paid" for that month: /remind no longer shows it, but the next one send_due will send.
    store.mark_paid(user, month_key(naive.year, naive.month))
    (after,) = await bot.say(user, "/remind", lang=lang)
    line = _next_line(after.text, lang)
    assert format_month(naive.year, naive.month, lang) + ("" if lang == "zh" else " ") not in line
    upcoming = next_reminder(bot.storage, user, datetime.now(UTC))
    assert upcoming is not None and (upcoming.year, upcoming.month) != (naive.year, naive.month)
    at = upcoming.at.astimezone(KL)
    assert line == t("remind.next", lang, date=format_date(at.date(), lang), time=f"{at.hour:02d}:00",
                     month=format_month(upcoming.year, upcoming.month, lang))
    # The code that sends reminders agrees: due at that moment, for that month, and nothing earlier.
    due = [d for d in due_reminders(bot.storage, upcoming.at) if d.chat_id == user]
    assert [(d.year, d.month, d.kind) for d in due] == [(upcoming.year, upcoming.month, upcoming.kind)]


@pytest.mark.parametrize(
    ("lang", "typed"), [("en", "8pm"), ("ms", "jam 8 malam"), ("zh", "晚上8点")]
)
async def test_a_typed_reminder_hour(bot: BotHarness, lang: str, typed: str) -> None:
    user = 740 + LANGS.index(lang)
    # Not on the settings screen: "8pm" is not taken as a reminder hour.
    await bot.say(user, typed, lang=lang)
    assert ReminderStore(bot.storage).get(user) is None or ReminderStore(bot.storage).get(user)["hour"] != 20
    (settings,) = await bot.say(user, "/remind", lang=lang)
    assert t("remind.ask_hour", lang, first="07:00", last="22:00") in settings.text
    done, shown = await bot.say(user, typed, lang=lang, count=2)
    assert done.text == t("remind.hour_set", lang, time="20:00")
    assert ReminderStore(bot.storage).get(user)["hour"] == 20
    assert t("remind.line_hour", lang, time="20:00") in shown.text
    assert "rm:h:20" in shown.callback_data  # the typed hour is among the buttons, selected
    (late,) = await bot.say(user, "23:00", lang=lang)
    assert late.text == t("remind.hour_out_of_range", lang, first="07:00", last="22:00")
    assert ReminderStore(bot.storage).get(user)["hour"] == 20
    (minutes,) = await bot.say(user, "20:30", lang=lang)
    assert minutes.text == late.text


# --- /mydata in words -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_mydata_in_words_with_a_json_download(bot: BotHarness, lang: str) -> None:
    user = 750 + LANGS.index(lang)
    (settings,) = await bot.say(user, "/remind", lang=lang)
    await bot.press(user, settings, "rm:on")
    await bot.server.wait_for_edit(user, settings.message_id)
    (picker,) = await bot.say(user, "/calc 2000", lang=lang)
    await bot.press(user, picker, next(d for d in picker.callback_data if d.split(":")[4] == "df"))
    await bot.server.wait_for_edit(user, picker.message_id)

    (mydata,) = await bot.say(user, "/mydata", lang=lang)
    for raw in ("lang_chosen", "days_mask", "age_band", "worker_type", "<code>", "domestic-foreign", ": 0"):
        assert raw not in mydata.text, raw
    how = t("privacy.s.lang_detected", lang)
    assert t("privacy.s.language", lang, language=LANG_NAMES[lang], how=how) in mydata.text
    assert t("privacy.s.calc_worker", lang, value=t("remind.type.domestic-foreign", lang)) in mydata.text
    days = str(t("remind.list_sep", lang)).join(str(n("plural.days", d, lang)) for d in (3, 1))
    assert str(t("privacy.s.days_before", lang, days=days)) in mydata.text
    assert mydata.callback_data == [f"pv:json:{user}", "menu:main"]

    await bot.press(user, mydata, f"pv:json:{user}")
    document = await bot.server.wait_for_bot_message(user)
    assert document.media["type"] == "document" and document.media["file_name"] == "mydata.json"
    raw = json.loads(bot.server._files[document.media["file_id"]].data)  # the uploaded bytes
    assert raw["users"][0]["chat_id"] == user and raw["reminder_subs"][0]["days_mask"] == 6
    # A forged button naming another chat sends nothing.
    before = len(bot.server.bot_messages(user))
    query = await bot.server.press_button(user, mydata.message_id, f"pv:json:{user + 1}", strict=False)
    other = await bot.server.wait_for_callback_answer(query)
    assert other["text"] == t("privacy.not_yours", lang)
    assert len(bot.server.bot_messages(user)) == before


# --- followers, the Everyone preview, plurals --------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_follower_welcome_and_links_that_lead_on(bot: BotHarness, lang: str) -> None:
    user = 760 + LANGS.index(lang)
    (created,) = await bot.say(OP, "/agency new Acme Payroll", lang="en")
    follow_payload = [p.split()[0] for p in created.text.split("?start=")[1:] if p.startswith("f-")][0]
    (welcome,) = await bot.say(user, f"/start {follow_payload}", lang=lang)
    assert welcome.text.startswith(t("agency.welcome", lang, agency="Acme Payroll"))
    assert welcome.callback_data == ["menu:guides", "menu:calc", "menu:remind", "menu:lang"]
    (unknown,) = await bot.say(user, "/start f-nosuchagency", lang=lang)
    assert unknown.text.startswith(t("agency.unknown_link", lang))
    assert unknown.callback_data == welcome.callback_data
    (expired,) = await bot.say(user, "/start staff-expiredtoken", lang=lang)
    assert expired.text.startswith(t("agency.invite_invalid", lang))
    assert expired.callback_data == welcome.callback_data

    (listing,) = await bot.say(OP, "/agency list")  # the operator uses English
    assert "1 follower, 0 staff members, 1 unused invite link" in listing.text


@pytest.mark.parametrize("lang", LANGS)
async def test_everyone_preview_says_who_receives_it(bot: BotHarness, lang: str) -> None:
    await bot.say(790, "/start", lang="en")  # one more bot user: OP and 790 are "everyone"
    (ask,) = await bot.say(OP, "/broadcast", lang=lang)  # no agency yet: Everyone is the target
    if "bc:m:one" in ask.callback_data:
        await bot.press(OP, ask, "bc:m:one")
        ask = await bot.server.wait_for_bot_message(OP)
    await bot.server.send_text(OP, "Hello everyone")
    audience = await bot.server.wait_for_bot_message(OP)
    if "bc:a:all" in audience.callback_data:
        await bot.press(OP, audience, "bc:a:all")
    messages = await bot.server.wait_for_bot_messages(OP, 4)
    total = sum(1 for _ in bot.storage.db.query("SELECT 1 FROM users WHERE blocked = 0"))
    who = t("broadcast.preview_everyone", lang, recipients=n("plural.recipients", total, lang))
    assert who in [m.text for m in messages]
    confirm = next(m for m in messages if "bc:send" in m.callback_data)
    assert confirm.text == n("broadcast.confirm_now", total, lang, count=total)
    if lang == "en":
        assert "<b>2</b> recipients." in confirm.text and "2 recipients" in who


def test_plural_forms_in_the_three_languages() -> None:
    assert n("broadcast.confirm_now", 1, "en", count=1).endswith("<b>1</b> recipient. Send it now, or choose a date and time?")
    assert "<b>2</b> recipients" in n("broadcast.confirm_now", 2, "en", count=2)
    assert n("broadcast.confirm_now", 1, "ms", count=1) == n("broadcast.confirm_now", 2, "ms", count=1)
    assert n("plural.followers", 1, "zh") == "1位关注者"


@pytest.mark.parametrize("lang", LANGS)
async def test_an_error_answer_leads_to_the_menu(bot: BotHarness, lang: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.handlers import start as start_handlers

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("a bug in /help")

    monkeypatch.setattr(start_handlers, "help_text", broken)
    (sorry,) = await bot.say(780 + LANGS.index(lang), "/help", lang=lang)
    assert sorry.text == t("error.generic", lang)
    assert sorry.callback_data == ["menu:guides", "menu:calc", "menu:remind", "menu:lang"]
    assert labels(sorry)[1] == t("menu.calc", lang)
