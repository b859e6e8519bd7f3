"""Local mode (``python -m bot`` without a token) and the command line, as issue 18 asks:
``--lang`` for a returning local user, the ``you>`` prompt, button numbers that stay put through
a guide, a reminder due before the local user typed anything, grammatical CLI output."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.commands.run import LOCAL_USER_ID, run_local
from bot.config import Config
from bot.i18n import t
from bot.localapi.server import LocalBotAPI
from bot.localapi.terminal import ButtonNumbers, run_terminal_chat
from bot.outbox import Outbox
from bot.storage import Storage
from tests.harness import BotHarness


async def test_returning_local_user_gets_lang_and_a_reminder_due_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "bot.sqlite3"
    storage = Storage(db)
    storage.touch_user(LOCAL_USER_ID, "en")  # an earlier English run; no language chosen
    Outbox(storage).enqueue(LOCAL_USER_ID, "reminder", "reminder:local:test",
                            {"type": "text", "text": "Peringatan: bayar caruman PERKESO"})
    storage.close()
    config = dataclasses.replace(Config(), db_path=db, token=None)
    assert config.local_mode

    read_fd, write_fd = os.pipe()
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read_fd, "r"))
    monkeypatch.setattr(sys, "stdout", stdout)
    task = asyncio.create_task(run_local(config, lang="ms"))
    try:
        # Delivered (not "unreachable") and shown, before the user has typed anything.
        for _ in range(200):
            if "bot> Peringatan: bayar caruman PERKESO" in stdout.getvalue():
                break
            await asyncio.sleep(0.05)
        assert "bot> Peringatan: bayar caruman PERKESO" in stdout.getvalue()
        os.write(write_fd, b"/start\n")
        menu_prompt = str(t("start.menu_prompt", "ms")).split("(")[0]
        for _ in range(200):
            if menu_prompt in stdout.getvalue():
                break
            await asyncio.sleep(0.05)
        assert menu_prompt in stdout.getvalue()  # --lang ms applies to the returning user
        os.write(write_fd, b"/quit\n")
        assert await asyncio.wait_for(task, 20) == 0
    finally:
        os.close(write_fd)
        if not task.done():
            task.cancel()
    storage = Storage(db)
    try:
        assert storage.get_user(LOCAL_USER_ID)["lang"] == "ms"
        states = [r["state"] for r in storage.db.query("SELECT state FROM outbox")]
        assert states == ["sent"]
    finally:
        storage.close()


async def test_you_prompt_while_typing(localapi_server: LocalBotAPI) -> None:
    localapi_server.add_user(91, language_code="en")
    stdout = io.StringIO()
    await run_terminal_chat(localapi_server, user_id=91, stdin=io.StringIO("hello\n"), stdout=stdout,
                            reply_wait=0.05, prompt=True)
    out = stdout.getvalue()
    assert "you> hello\n" in out  # the prompt, then what was typed on the same line
    assert out.endswith("\nyou> \n")  # prompted again for the next line (then end of input)


async def test_backlog_is_shown_when_the_chat_opens(localapi_server: LocalBotAPI) -> None:
    import telegram

    localapi_server.add_user(92, language_code="en")
    bot = telegram.Bot("123:TEST", base_url=localapi_server.base_url)
    async with bot:
        await bot.send_message(92, "Due before you typed")
    stdout = io.StringIO()
    await run_terminal_chat(localapi_server, user_id=92, stdin=io.StringIO(""), stdout=stdout)
    assert "bot> Due before you typed" in stdout.getvalue()


@pytest.fixture
async def localapi_server():
    async with LocalBotAPI(rate_limit=None) as server:
        yield server


async def test_button_numbers_stay_put_through_a_guide(bot: BotHarness) -> None:
    user = 93
    (step1,) = await bot.say(user, "/guides how to pay EIS")
    numbering = ButtonNumbers()

    def number_of(msg, label: str) -> int:
        return dict(zip([b["text"] for b in msg.buttons], numbering.numbers(msg), strict=True))[label]

    next_label, back_label = str(t("guides.next", "en")), str(t("guides.back", "en"))
    next_no = number_of(step1, next_label)
    all_no = number_of(step1, str(t("guides.all_guides", "en")))
    await bot.press(user, step1, next(b["callback_data"] for b in step1.buttons if b["text"] == next_label))
    step2 = await bot.server.wait_for_edit(user, step1.message_id)
    assert number_of(step2, next_label) == next_no and number_of(step2, str(t("guides.all_guides", "en"))) == all_no
    back_no = number_of(step2, back_label)
    assert numbering.button(step2, next_no)["text"] == next_label
    await bot.press(user, step2, next(b["callback_data"] for b in step2.buttons if b["text"] == next_label))
    step3 = await bot.server.wait_for_edit(user, step1.message_id)
    assert number_of(step3, back_label) == back_no
    if next_label in [b["text"] for b in step3.buttons]:
        assert number_of(step3, next_label) == next_no
    # An edit to something else altogether starts again at 1.
    (other,) = await bot.say(user, "/start")
    assert sorted(numbering.numbers(other)) == list(range(1, len(other.buttons) + 1))


def test_cli_plurals_and_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("BOT_DB", str(tmp_path / "bot.sqlite3"))
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    storage = Storage(tmp_path / "bot.sqlite3")
    storage.touch_user(111, "ms")
    storage.db.execute(
        "INSERT INTO reminder_subs (chat_id, enabled, since, created_at, updated_at) "
        "VALUES (111, 1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', "
        "'2026-01-01T00:00:00+00:00')"
    )
    storage.db.conn.commit()
    storage.close()
    assert main(["reminders", "send-due", "--now", "2026-12-14T09:00+08:00"]) == 0
    assert capsys.readouterr().out.strip() == "enqueued 1 reminder"
    assert main(["reminders", "send-due", "--now", "2026-12-14T09:00+08:00"]) == 0
    assert capsys.readouterr().out.strip() == "enqueued 0 reminders"

    monkeypatch.setattr(sys, "stdin", io.StringIO("how to pay EIS\n\n   \nbayar SIP\n"))
    assert main(["ask", "-", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # the blank lines are skipped, not answered
