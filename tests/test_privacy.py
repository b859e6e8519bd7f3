"""Privacy (PDPA 2010): what is stored, /mydata, /forget, and nothing personal in the logs.

The end-to-end tests run the real bot in webhook mode (a realistic token and a webhook secret)
against the local Bot API server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.agencies import AgencyService
from bot.app import build_application, start_application, stop_application
from bot.handlers import broadcast as broadcast_handlers
from bot.handlers.privacy import render_export, split_messages
from bot.i18n import format_money, t, use_lang
from bot.localapi.server import ChatMessage, LocalBotAPI
from bot.logs import JsonFormatter, setup_logging
from bot.reminders import ReminderStore
from bot.storage import PERSONAL_COLUMNS, Storage
from bot.web import SECRET_HEADER, WebhookServer
from tests.harness import BotHarness

TOKEN = "7012345678:AAHq3vZ_privacyTestToken-0123456789abcdefXYZ"
SECRET = "whsec_Privacy-Test-9f8e7d6c5b4a"
OP, STAFF, USER, OTHER, NEIGHBOUR = 1, 200, 4242, 5555, 6161
SALARY_TEXT = "3517.35"
QUESTION = "where is the quokka zebra form for my aunt"
WORKER = "Nurul Zebrina"
PERSON_COLUMN_RE = re.compile(r"chat|user|_by$|owner|member|person|recipient", re.I)
# Columns the pattern matches that hold no person's id (reviewed).
NOT_PERSONAL = {
    "broadcasts.recipients": "a count of recipients",
    "locks.owner": "host:pid:random of the process holding a lease",
}


# --- storage level ---------------------------------------------------------------------------


def test_every_chat_or_user_column_is_covered_by_forget(storage: Storage) -> None:
    """A future table with a chat/user column fails here until PERSONAL_COLUMNS says what
    /forget does with it."""
    uncovered = []
    for table in storage.db.table_names():
        for column in storage.db[table].columns_dict:
            if f"{table}.{column}" in NOT_PERSONAL:
                continue
            if PERSON_COLUMN_RE.search(column) and column not in PERSONAL_COLUMNS.get(table, {}):
                uncovered.append(f"{table}.{column}")
    assert uncovered == [], f"add these to PERSONAL_COLUMNS in bot/storage.py: {uncovered}"
    for table, policy in PERSONAL_COLUMNS.items():
        assert table in storage.db.table_names()
        assert set(policy) <= set(storage.db[table].columns_dict)
        assert set(policy.values()) <= {"delete", "null", "keep"}


def test_forget_cleans_an_unlisted_future_table_and_export_shows_it(storage: Storage) -> None:
    storage.db["future_notes"].insert_all(
        [{"id": 1, "chat_id": 77, "note": "mine"}, {"id": 2, "chat_id": 78, "note": "other"}], pk="id"
    )
    storage.touch_user(77, "en")
    assert storage.export_user(77)["future_notes"] == [{"id": 1, "chat_id": 77, "note": "mine"}]
    deleted = storage.forget_user(77)
    assert deleted["future_notes"] == 1 and deleted["users"] == 1
    assert [r["chat_id"] for r in storage.db["future_notes"].rows] == [78]


def test_forget_user_is_one_transaction(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way leaves everything as it was."""
    storage.touch_user(90, "en")
    ReminderStore(storage).add_worker(90, "Ana", "employee", Decimal("2000"))
    original = storage.db.execute

    def failing(sql: str, *args: Any) -> Any:
        if sql.startswith("DELETE FROM [reminder_workers]"):
            raise RuntimeError("disk gone")
        return original(sql, *args)

    monkeypatch.setattr(storage.db, "execute", failing)
    with pytest.raises(RuntimeError):
        storage.forget_user(90)
    monkeypatch.undo()
    assert storage.get_user(90) is not None and ReminderStore(storage).workers(90)


def test_split_messages_respects_the_limit() -> None:
    blocks = ["<b>T</b>", "\n".join(f"• line {i} " + "x" * 50 for i in range(200)), "end"]
    messages = split_messages(blocks)
    assert len(messages) > 1
    assert all(len(m.encode("utf-16-le")) // 2 <= 4096 for m in messages)
    assert "".join(messages).replace("\n", "") == "".join(blocks).replace("\n", "")


def test_export_values_are_escaped() -> None:
    data = {
        "users": [{"chat_id": 1, "lang": "en", "start_payload": "<b>x</b>&"}],
        "reminder_workers": [{"name": "<i>Ali</i>", "worker_type": "employee", "salary": "1500"}],
    }
    with use_lang("en"):
        text = "\n\n".join(render_export(data))
    assert "<i>Ali</i>" not in text and "&lt;i&gt;Ali&lt;/i&gt;" in text
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in text and "RM1,500.00" in text


# --- end to end in webhook mode --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookHarness(BotHarness):
    """BotHarness in webhook mode with a realistic token and a webhook secret."""

    web: WebhookServer

    async def start(self) -> WebhookHarness:
        self.storage = Storage(self.config.db_path)
        self.app = build_application(self.config, self.storage, token=TOKEN)
        await start_application(self.app, poll=False)
        self.web = WebhookServer(self.app, self.config.webhook_url, SECRET, host="127.0.0.1",
                                 port=self.config.port)
        await self.web.start()
        return self

    async def stop(self) -> None:
        if self.app is None:
            return
        await self.web.stop()
        await stop_application(self.app)
        assert self.storage is not None
        self.storage.close()
        self.app = None


class RawCapture(logging.Handler):
    """Keeps each record's text as emitted, before the production handler's redacting filter
    rewrites the (shared) record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())
        self.texts.append(JsonFormatter().format(record))
        if record.exc_info:
            self.texts.append(logging.Formatter().formatException(record.exc_info))


@dataclasses.dataclass
class Logs:
    caplog: pytest.LogCaptureFixture
    raw: RawCapture
    stream: io.StringIO

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.caplog.records

    def everything(self) -> str:
        """Raw record texts, caplog's records and the JSON lines the production handler wrote."""
        parts = [self.stream.getvalue(), *self.raw.texts]
        for record in self.records:
            parts.append(record.getMessage())
            if record.exc_text:
                parts.append(record.exc_text)
        return "\n".join(parts)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Logs]:
    """Production logging (LOG_FORMAT=json, INFO, secrets redacted) plus caplog and a raw
    capture, which see every record at INFO (of every logger) before any redaction."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    noisy = ("httpx", "httpcore", "apscheduler", "aiohttp.access", "telegram.ext.Updater")
    saved_levels = {name: logging.getLogger(name).level for name in noisy}
    setup_logging("json", logging.INFO, TOKEN, SECRET)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO)
    raw = RawCapture()
    root.handlers[:0] = [raw, caplog.handler]
    try:
        yield Logs(caplog, raw, stream)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WebhookHarness]:
    monkeypatch.setattr(broadcast_handlers, "PROGRESS_INTERVAL", 0.3)
    port = free_port()
    async with LocalBotAPI(rate_limit=None) as server:
        harness = WebhookHarness(
            server,
            tmp_path / "bot.sqlite3",
            admin_ids=frozenset({OP}),
            webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
            webhook_secret=SECRET,
            port=port,
        )
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()


async def settle(bot: BotHarness, user: int, count: int = 1) -> list[ChatMessage]:
    """The bot's next ``count`` messages to ``user``, then a moment for any that follow."""
    messages = await bot.server.wait_for_bot_messages(user, count)
    await asyncio.sleep(0.2)
    await bot.server.wait_idle()
    return messages


async def press_last(bot: BotHarness, user: int, data: str) -> dict:
    message = next(m for m in reversed(bot.server.bot_messages(user)) if data in m.callback_data)
    return await bot.press(user, message, data)


@dataclasses.dataclass
class Session:
    agency: str
    queued_reminder_key: str


async def scripted_session(bot: WebhookHarness) -> Session:
    """start, a salary, a question, /remind with a worker and salary, a followed agency's
    broadcast (sent) and a scheduled one (queued), plus a queued reminder."""
    server = bot.server
    assert bot.storage is not None
    await server.send_text(USER, "/start")
    await settle(bot, USER)
    await server.send_text(USER, SALARY_TEXT)
    await settle(bot, USER)
    await server.send_text(USER, QUESTION)
    await settle(bot, USER)
    await server.send_text(USER, "/remind")
    await settle(bot, USER)
    await press_last(bot, USER, "rm:w:add")
    await settle(bot, USER)
    await server.send_text(USER, WORKER)
    await settle(bot, USER)
    await press_last(bot, USER, "rm:wt:domestic-foreign")
    await settle(bot, USER)
    await server.send_text(USER, SALARY_TEXT)
    await settle(bot, USER, 2)
    await press_last(bot, USER, "rm:on")
    await asyncio.sleep(0.2)

    # An agency with a staff member; the user follows it; a broadcast reaches them.
    (created,) = await bot.say(OP, "/agency new Acme Payroll")
    staff_link, follow_link = re.findall(r"\?start=([A-Za-z0-9_-]+)", created.text)
    await bot.say(STAFF, f"/start {staff_link}")
    await bot.say(USER, f"/start {follow_link}")
    code = follow_link.removeprefix("f-")
    await bot.say(STAFF, "/broadcast")
    await server.send_text(STAFF, "Contribution rates change on 1 December.")
    preview = await server.wait_for_bot_messages(STAFF, 3)
    await bot.press(STAFF, preview[2], "bc:send")
    # the follower's copy: a text (sendMessage) or a copy (copyMessage) whose first line names
    # the agency, with the unfollow button
    head = re.sub(r"<[^>]+>", "", str(t("broadcast.header", "en", agency="Acme Payroll")))
    await server.wait_until(
        lambda: [m for m in server.bot_messages(USER)
                 if (m.plain_text or "").startswith(f"{head}\n") and m.buttons], 10
    )
    # The staff member's report comes a moment later: wait for it, so that it does not land
    # among the answers a test awaits next in the staff chat.
    report = t("broadcast.report", "en", id=1, delivered=1, unreachable=0, failed=0, cancelled=0)
    await server.wait_until(lambda: [m for m in server.bot_messages(STAFF) if m.text == report], 10)

    # Still waiting in the outbox: a scheduled broadcast and a reminder due tomorrow.
    outbox = bot.app.bot_data["services"].outbox
    AgencyService(bot.storage).create_broadcast(
        outbox, agency=code, created_by=STAFF, versions={"en": {"text": "Next month"}},
        scheduled_at=datetime.now(UTC) + timedelta(days=3), progress_chat_id=STAFF,
    )
    key = f"reminder:{USER}:2099-01:deadline:3"
    outbox.enqueue(USER, "reminder", key, {"type": "text", "text": f"{WORKER}: RM1.00"},
                   not_before=datetime.now(UTC) + timedelta(days=1))
    return Session(code, key)


def rows_mentioning(storage: Storage, chat_id: int) -> list[tuple[str, str, Any]]:
    """(table, column, value) of every stored value equal to ``chat_id`` or containing it as
    a number inside text (dedupe keys, JSON)."""
    pattern = re.compile(rf"(?<!\d){chat_id}(?!\d)")
    found = []
    for table in storage.db.table_names():
        for row in storage.db.query(f"SELECT * FROM [{table}]"):
            for column, value in row.items():
                if value == chat_id or (isinstance(value, str) and pattern.search(value)):
                    found.append((table, column, value))
    return found


async def test_mydata_then_forget_end_to_end(bot: WebhookHarness, logs: Logs) -> None:
    server = bot.server
    assert bot.storage is not None
    session = await scripted_session(bot)

    # /mydata: everything, readable, escaped.
    await server.send_text(USER, "/mydata")
    mydata = await settle(bot, USER)
    text = "\n".join(m.text for m in server.bot_messages(USER)[-5:] if m.message_id >= mydata[0].message_id)
    assert text.startswith(str(t("privacy.mydata_title", "en")))
    for key in ("privacy.h_profile", "privacy.h_calc", "privacy.h_reminders", "privacy.h_workers",
                "privacy.h_follows", "privacy.h_staff", "privacy.h_outbox", "privacy.h_broadcasts"):
        assert str(t(key, "en")) in text, key
    assert WORKER in text and format_money(Decimal(SALARY_TEXT), "en") in text
    assert "Acme Payroll" in text and session.agency in text
    kinds = f"{t('privacy.kind.broadcast', 'en')}: 1, {t('privacy.kind.reminder', 'en')}: 1"
    assert str(t("privacy.outbox_queued", "en", count=2, kinds=kinds)) in text
    assert str(t("privacy.outbox_kept", "en", count=1)) in text  # the broadcast delivered
    assert "domestic-foreign" not in text  # the worker type is shown in words
    assert str(t("remind.type.domestic-foreign", "en")) in text

    # The staff member's /mydata: their role and the broadcasts they created.
    await server.send_text(STAFF, "/mydata")
    (staff_data,) = await settle(bot, STAFF)
    assert "Acme Payroll" in staff_data.text and str(t("privacy.h_staff", "en")) in staff_data.text
    created = staff_data.text.split(str(t("privacy.h_broadcasts", "en")))[1]
    assert "#1 " in created and "#2 " in created
    assert str(t("privacy.s.bstate.scheduled", "en")) in created and "<code>" not in created
    assert str(t("privacy.json_button", "en")) in [b["text"] for b in staff_data.buttons]

    # /forget: a pending add-a-worker conversation is going on.
    await server.send_text(USER, "/remind")
    await settle(bot, USER)
    await press_last(bot, USER, "rm:w:add")
    await settle(bot, USER)
    (confirm,) = await bot.say(USER, "/forget")
    assert confirm.callback_data == [f"pv:yes:{USER}", f"pv:no:{USER}"]
    assert [b["text"] for b in confirm.buttons] == [t("privacy.btn_yes", "en"), t("privacy.btn_cancel", "en")]

    # Forged: another user presses "Yes" with USER's chat id in their own chat; USER presses a
    # button naming another chat. Nothing is deleted.
    await bot.say(OTHER, "/start")
    before = rows_mentioning(bot.storage, USER)
    other_msg = server.bot_messages(OTHER)[-1]
    for who, message_id, data in ((OTHER, other_msg.message_id, f"pv:yes:{USER}"),
                                  (USER, confirm.message_id, f"pv:yes:{OTHER}"),
                                  (USER, confirm.message_id, "pv:yes:")):
        query = await server.press_button(who, message_id, data, strict=False)
        answer = await server.wait_for_callback_answer(query)
        assert answer.get("text") == t("privacy.not_yours", "en")
    assert bot.storage.get_user(OTHER) is not None
    assert {r[:2] for r in rows_mentioning(bot.storage, USER)} >= {r[:2] for r in before}
    assert ReminderStore(bot.storage).workers(USER)

    # Cancel keeps everything.
    await bot.press(USER, confirm, f"pv:no:{USER}")
    (kept,) = await settle(bot, USER)
    assert kept.text == t("privacy.forget_cancelled", "en")
    assert ReminderStore(bot.storage).workers(USER)

    (confirm,) = await bot.say(USER, "/forget")
    await bot.press(USER, confirm, f"pv:yes:{USER}")
    (done,) = await settle(bot, USER)
    assert done.text == t("privacy.forgotten", "en")
    assert rows_mentioning(bot.storage, USER) == []
    assert bot.storage.get_user(OTHER) is not None  # nobody else's data
    assert AgencyService(bot.storage).is_staff(STAFF, session.agency)
    assert bot.storage.db.execute(
        "SELECT count(*) FROM outbox WHERE dedupe_key = ?", [session.queued_reminder_key]
    ).fetchone()[0] == 0

    # The pending add-a-worker step is gone: the next text is an ordinary message again.
    await server.send_text(USER, "Ahmad")
    await settle(bot, USER)
    assert ReminderStore(bot.storage).workers(USER) == []
    assert ReminderStore(bot.storage).pending(USER) is None

    # Logs at INFO: no token, webhook secret, salary, question or worker name.
    await post_with_wrong_secret(bot)
    assert_no_secrets(logs)


async def test_staff_forget_keeps_only_the_broadcast_audit_trail(bot: WebhookHarness, logs: Logs) -> None:
    server = bot.server
    assert bot.storage is not None
    session = await scripted_session(bot)
    # A draft in progress when the staff member asks to be forgotten.
    await bot.say(STAFF, "/broadcast")
    await server.send_text(STAFF, "Draft that must not go out")
    # the preview ends with the confirm buttons (the number of messages before it varies with
    # the audience: "Everyone" is introduced by a line saying who receives it)
    (send_button,) = await server.wait_until(
        lambda: [m for m in server.bot_messages(STAFF) if "bc:send" in m.callback_data] or None,
        timeout=30,
    )
    (confirm,) = await bot.say(STAFF, "/forget")
    await bot.press(STAFF, confirm, f"pv:yes:{STAFF}")
    (done,) = await settle(bot, STAFF)
    assert done.text == t("privacy.forgotten", "en")
    assert not AgencyService(bot.storage).is_staff(STAFF, session.agency)
    # What remains is the broadcast audit trail: who created which broadcast, the source
    # message it copies, and the copies still queued for followers.
    left = {(table, column) for table, column, _ in rows_mentioning(bot.storage, STAFF)}
    assert left <= {("broadcasts", "created_by"), ("broadcasts", "versions"), ("outbox", "payload")}
    assert ("broadcasts", "created_by") in left
    for row in bot.storage.db.query("SELECT * FROM broadcasts"):
        assert row["progress_chat_id"] is None and row["progress_message_id"] is None
    for table, column, _ in rows_mentioning(bot.storage, STAFF):
        if table == "outbox":
            assert column == "payload"
    # The old confirm button of the draft does nothing now.
    answer = await bot.press(STAFF, send_button, "bc:send")
    assert answer.get("text") in (t("broadcast.not_allowed", "en"), t("broadcast.stale", "en"))
    await asyncio.sleep(0.2)
    assert bot.storage.db.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == 2
    assert_no_secrets(logs)


async def post_with_wrong_secret(bot: WebhookHarness) -> None:
    """A request carrying a wrong secret: refused, and logged without any secret."""
    update = {"update_id": 999999, "message": {"message_id": 1, "date": 0, "text": SALARY_TEXT,
                                               "chat": {"id": 1, "type": "private"}}}
    async with aiohttp.ClientSession() as http:
        async with http.post(bot.config.webhook_url, json=update,
                             headers={SECRET_HEADER: SECRET[:-1] + "X"}) as resp:
            assert resp.status == 403


def assert_no_secrets(logs: Logs) -> None:
    everything = logs.everything()
    assert len(logs.records) > 20 and len(logs.raw.texts) > 40  # the session was logged at INFO
    assert any(json.loads(line).get("event") == "update" for line in logs.stream.getvalue().splitlines())
    forbidden = {
        "the bot token": TOKEN,
        "the token's secret part": TOKEN.split(":", 1)[1],
        "the webhook secret": SECRET,
        "the salary": SALARY_TEXT,
        "the salary, formatted": "3,517.35",
        "the question": QUESTION,
        "part of the question": "quokka",
        "the worker's name": WORKER,
        "the worker's first name": WORKER.split()[0],
        "a broadcast's text": "Contribution rates change",
    }
    leaks = {what: value for what, value in forbidden.items() if value in everything}
    assert leaks == {}
