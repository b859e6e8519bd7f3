"""Telegram and the database misbehave; the real bot (polling the local Bot API server) copes.

1. Telegram answers 429, 500, 502, a slow 504 ("timeout"), 403 and "chat not found" at random on
   20% of the calls of a whole scripted session (guides, calculator, reminders, language) while a
   broadcast and a reminder run drain through the outbox. Every action of every user ends with the
   answer a fault-free twin got, or a clear "please try again", or (only after a final 403/400 that
   Telegram itself gave) nothing; no ERROR is logged; every outbox row is accounted for.
2. The database becomes read-only, full, or locked by another process: reading features answer as
   usual, writes get the short storage apology, ONE error is logged for the outage, the outbox
   sender keeps its rows and delivers them once the database recovers.

Fault decisions are seeded per request (method, chat, text, how many times that same request was
seen), so concurrent users and the outbox do not change which requests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.agencies import AgencyService
from bot.app import build_application, start_application
from bot.domain.deadlines import KL, deadline
from bot.i18n import t
from bot.localapi.server import ApiError, ChatMessage, FaultPlan, LocalBotAPI
from bot.metrics import metrics_for
from bot.outbox import Outbox
from bot.reminders import send_due
from bot.storage import Storage
from tests.harness import BotHarness

FAULT_KINDS = ("500", "502", "timeout", "429", "403", "chat_not_found")
LANG_CODES = {"en": "en", "ms": "ms", "zh": "zh-hans"}
QUESTIONS = {
    "en": "how do I pay EIS",
    "ms": "macam mana nak daftar maid dengan PERKESO",
    "zh": "怎么缴纳社险",
}
BROADCAST_TEXT = "Kadar caruman baharu mula 1 Disember: semak gaji pekerja anda."


# --- deterministic fault injection -----------------------------------------------------------


@dataclass
class Served:
    method: str
    chat_id: int | None
    code: int
    text: str | None
    at: float


@dataclass
class FaultLog:
    """Seeded, per-request fault decisions and a record of every error the server answered."""

    seed: int
    calls: int = 0  # requests the fault plan applied to
    seen: Counter = field(default_factory=Counter)
    served: list[Served] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    # LocalBotAPI calls server.random.random() then .choice(kinds) for each request.
    def random(self) -> float:
        return self._rng.random()

    def choice(self, seq: Any) -> Any:
        return self._rng.choice(seq)

    def install(self, server: LocalBotAPI) -> None:
        original = server._dispatch

        async def dispatch(method: str, params: dict[str, Any]) -> Any:
            chat = params.get("chat_id")
            if method == "answerCallbackQuery":
                chat = server._callbacks.get(str(params.get("callback_query_id")), {}).get("user_id")
            chat = int(chat) if isinstance(chat, int | str) and str(chat).lstrip("-").isdigit() else None
            key = (method, chat, str(params.get("text") or params.get("data") or ""))
            if server.faults is not None and server.faults.applies_to(method):
                self.calls += 1
            self._rng = random.Random(f"{self.seed}|{key}|{self.seen[key]}")
            self.seen[key] += 1
            try:
                return await original(method, params)
            except ApiError as exc:
                self.served.append(Served(method, chat, exc.code, params.get("text"), time.monotonic()))
                raise

        server._dispatch = dispatch  # type: ignore[method-assign]
        server.random = self  # type: ignore[assignment]

    def final_4xx(self, chat: int, since: float, outbox_texts: set[str]) -> list[Served]:
        """Interactive requests to ``chat`` since ``since`` that Telegram refused for good."""
        return [
            s for s in self.served
            if s.chat_id == chat and s.at >= since and s.code in (400, 403)
            and s.text not in outbox_texts
        ]  # fmt: skip


# --- a scripted session ------------------------------------------------------------------------


class Handled(logging.Handler):
    """Collects the update ids the bot has finished with (bot.logs' one line per update, written
    after the handlers and the error handler)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ids: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        update_id = getattr(record, "update_id", None)
        if isinstance(update_id, int):
            self.ids.add(update_id)


@dataclass
class Observed:
    messages: list[str]  # texts of the new bot messages (outbox messages left out)
    edits: list[str]  # new texts of edited bot messages, by message id
    first: ChatMessage | None  # the first new message (a later press may target it)


def _snapshot(server: LocalBotAPI, chat: int) -> dict[int, tuple[Any, Any]]:
    return {m.message_id: (m.text, m.reply_markup) for m in server.bot_messages(chat)}


def _observe(server: LocalBotAPI, chat: int, before: dict[int, tuple[Any, Any]],
             outbox_texts: set[str]) -> Observed:
    new = [m for m in server.bot_messages(chat) if m.message_id not in before and m.text not in outbox_texts]
    edits = [
        m.text or "" for m in server.bot_messages(chat)
        if m.message_id in before and before[m.message_id] != (m.text, m.reply_markup)
    ]  # fmt: skip
    return Observed([m.text or "" for m in new], edits, new[0] if new else None)


STATEFUL = 9  # the language press: if it did not happen, later answers differ (other language)


def script(lang: str) -> list[tuple[str, Any, Any]]:
    """(kind, text or the index of the action whose first message to press, button choice)."""
    return [
        ("say", "/start", None),
        ("say", "/help", None),
        ("say", QUESTIONS[lang], None),
        ("press", 2, 0),  # the guide answer's first button
        ("say", "RM2,500", None),
        ("press", 4, 0),  # the calculator's first choice
        ("say", "/remind", None),
        ("press", 6, "rm:on"),
        ("say", "/language", None),
        ("press", 8, "lang:ms"),
        ("say", "/guides", None),
    ]


async def _quiet(server: LocalBotAPI, chat: int, settle: float = 0.5, timeout: float = 10) -> None:
    """Wait for the chat to change, then until it has not changed for ``settle`` seconds."""
    end = time.monotonic() + timeout
    last = _snapshot(server, chat)
    await server.wait_until(lambda: _snapshot(server, chat) != last, timeout=timeout)
    last = _snapshot(server, chat)
    quiet_since = time.monotonic()
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        now = _snapshot(server, chat)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return


def _button(message: ChatMessage, choice: Any) -> str | None:
    data = message.callback_data
    if isinstance(choice, int):
        return data[choice] if len(data) > choice else None
    return choice if choice in data else None


async def run_reference(bot: BotHarness, user: int, lang: str) -> list[Observed]:
    """The session without faults: what each action should produce."""
    server = bot.server
    seen: list[Observed] = []
    for kind, what, choice in script(lang):
        before = _snapshot(server, user)
        if kind == "say":
            await server.send_text(user, what, language_code=LANG_CODES[lang])
        else:
            target = seen[what].first
            assert target is not None and _button(target, choice), (lang, what)
            await server.press_button(user, target.message_id, _button(target, choice))
        await _quiet(server, user)
        seen.append(_observe(server, user, before, set()))
        assert seen[-1].messages or seen[-1].edits, (lang, kind, what)
    return seen


@dataclass
class Outcomes:
    answered: int = 0
    apologised: int = 0
    refused: int = 0  # Telegram gave a final 403/400 for this chat: nothing could be shown
    skipped: int = 0  # a press whose message was replaced by an apology


async def run_faulty(bot: BotHarness, user: int, lang: str, reference: list[Observed],
                     faults: FaultLog, outbox_texts: set[str], outcomes: Outcomes,
                     handled: Handled) -> None:
    server = bot.server
    apologies = {str(t(key, code)) for key in ("error.generic", "error.storage") for code in ("en", "ms", "zh")}
    seen: list[Observed] = []
    diverged = False  # a state-changing action did not happen: compare loosely from there on
    for index, (kind, what, choice) in enumerate(script(lang)):
        ref = reference[index]
        before = _snapshot(server, user)
        started = time.monotonic()
        requests_before = len(server.requests)
        if kind == "say":
            await server.send_text(user, what, language_code=LANG_CODES[lang])
        else:
            target = seen[what].first
            data = _button(target, choice) if target is not None else None
            if data is None:  # the message to press never came (an apology instead)
                outcomes.skipped += 1
                seen.append(Observed([], [], None))
                diverged = diverged or index == STATEFUL
                continue
            await server.press_button(user, target.message_id, data)
        update_id = server._next_update_id - 1  # pushed synchronously just now

        def done(ref: Observed = ref, before: dict = before, diverged: bool = diverged) -> Observed | None:
            got = _observe(server, user, before, outbox_texts)
            if any(text in apologies for text in got.messages):
                return got
            if len(got.messages) >= len(ref.messages) and len(got.edits) >= len(ref.edits):
                return got
            if diverged and (got.messages or got.edits):
                return got
            return None

        end = time.monotonic() + 20
        while update_id not in handled.ids and not done() and time.monotonic() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # a late extra message would show up in the comparison
        got = _observe(server, user, before, outbox_texts)
        seen.append(got)
        context = f"user {user} ({lang}) action {index} {kind} {what!r}: got {got}, expected {ref}"
        if any(text in apologies for text in got.messages):
            outcomes.apologised += 1
            others = [m for m in got.messages if m not in apologies]
            assert diverged or others == ref.messages[: len(others)], context
            diverged = diverged or index == STATEFUL
            continue
        if got.messages == ref.messages and got.edits == ref.edits:
            outcomes.answered += 1
            continue
        if diverged and (got.messages or got.edits):
            outcomes.answered += 1  # an answer, in the state this user is really in
            continue
        refused = faults.final_4xx(user, started, outbox_texts)
        assert refused, f"no answer, no apology, and Telegram refused nothing: {context}"
        if all(s.code == 400 for s in refused):  # not blocked: the bot must have tried to apologise
            assert any(
                m == "sendMessage" and p.get("chat_id") == user and p.get("text") in apologies
                for m, p in server.requests[requests_before:]
            ), context
        assert diverged or got.messages == ref.messages[: len(got.messages)], context
        diverged = diverged or index == STATEFUL
        outcomes.refused += 1


def _outbox_rows(storage: Storage) -> list[dict[str, Any]]:
    cursor = storage.db.conn.execute("SELECT * FROM outbox")
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


@pytest.mark.slow
async def test_random_telegram_faults_on_20_percent_of_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A final outbox row keeps no text (privacy), so record each text as it is enqueued.
    enqueue_many = Outbox.enqueue_many

    def recording(self: Outbox, items: Iterable[Mapping[str, Any]]) -> int:
        items = list(items)
        for item in items:
            ENQUEUED_TEXTS.setdefault(str(item["dedupe_key"]), item["payload"].get("text"))
        return enqueue_many(self, items)

    ENQUEUED_TEXTS.clear()
    monkeypatch.setattr(Outbox, "enqueue_many", recording)
    caplog.set_level(logging.WARNING)
    handled = Handled()
    update_log = logging.getLogger("bot.updates")
    update_log.addHandler(handled)
    level = update_log.level
    update_log.setLevel(logging.INFO)
    try:
        await _faulty_session(tmp_path, caplog, handled)
    finally:
        update_log.removeHandler(handled)
        update_log.setLevel(level)


ENQUEUED_TEXTS: dict[str, str | None] = {}


async def _faulty_session(tmp_path: Path, caplog: pytest.LogCaptureFixture, handled: Handled) -> None:
    async with LocalBotAPI(rate_limit=None, seed=3) as server:
        bot = BotHarness(server, tmp_path / "bot.sqlite3", outbox_rate=100.0)
        await bot.start()
        assert bot.app is not None and bot.storage is not None
        try:
            sender = bot.app.bot_data["services"].sender
            sender.backoff_base = 0.2  # the outbox's own retries, sped up for the test
            langs = ["en", "ms", "zh"] * 6
            faulty_users = [300 + i for i in range(len(langs))]

            # Fault-free twins (one per language): what every action should produce.
            twins = await asyncio.gather(*(run_reference(bot, 100 + i, lang) for i, lang in enumerate(LANG_CODES)))
            references = [twins[list(LANG_CODES).index(lang)] for lang in langs]

            # Reminder subscribers and broadcast recipients who only get the outbox's messages.
            extra = range(700, 760)
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            hour = (datetime.now(KL).hour + 12) % 24
            with bot.storage.transaction():
                for chat in extra:
                    server.add_user(chat, language_code="ms")
                    bot.storage.db.conn.execute(
                        "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (?, 'ms', ?, ?)",
                        [chat, stamp, stamp])
                    bot.storage.db.conn.execute(
                        "INSERT INTO reminder_subs (chat_id, enabled, hour, since, created_at, "
                        "updated_at) VALUES (?, 1, ?, ?, ?, ?)", [chat, hour, stamp, stamp, stamp])
            for user, lang in zip(faulty_users, langs, strict=True):  # known users, in the broadcast
                bot.storage.touch_user(user, LANG_CODES[lang])

            faults = FaultLog(seed=20261125)
            faults.install(server)
            server.faults = FaultPlan(rate=0.2, kinds=FAULT_KINDS, timeout_delay=1.0, retry_after=1)
            outbox = bot.app.bot_data["services"].outbox
            _, queued = AgencyService(bot.storage).create_broadcast(
                outbox, agency=None, created_by=0, versions={"ms": {"text": BROADCAST_TEXT}})
            today = datetime.now(KL)
            due_day = deadline(today.year, today.month) - timedelta(days=3)
            reminders = send_due(bot.storage, outbox,
                                 datetime(due_day.year, due_day.month, due_day.day, hour, tzinfo=KL))
            assert queued > len(extra) and reminders >= len(extra)
            outbox_texts = {text for text in ENQUEUED_TEXTS.values() if text}

            outcomes = Outcomes()
            started = time.monotonic()
            await asyncio.gather(*(
                run_faulty(bot, u, lang, ref, faults, outbox_texts, outcomes, handled)
                for u, lang, ref in zip(faulty_users, langs, references, strict=True)
            ))  # fmt: skip
            session = time.monotonic() - started
            assert await sender.wait_idle(horizon=30, timeout=40), "the outbox drained"
            server.faults = None
        finally:
            await bot.stop()

        # Every outbox row is accounted for: delivered once, or refused by Telegram for that chat.
        storage = Storage(tmp_path / "bot.sqlite3")
        rows = _outbox_rows(storage)
        storage.close()
        states = Counter(r["state"] for r in rows)
        refused_chats = {s.chat_id for s in faults.served if s.code in (400, 403)}
        for row in rows:
            text = ENQUEUED_TEXTS[row["dedupe_key"]]
            delivered = [m for m in server.bot_messages(row["chat_id"]) if m.text == text]
            if row["state"] == "sent":
                assert len(delivered) == 1, row
            else:
                assert row["state"] == "unreachable" and row["chat_id"] in refused_chats, row
                assert delivered == [], row

        actions = sum(len(script(lang)) for lang in langs)
        assert outcomes.answered + outcomes.apologised + outcomes.refused + outcomes.skipped == actions
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        injected = sum(server.stats.faults.values())
        calls = faults.calls
        print(f"\nfaults: {injected} injected in {calls} calls ({dict(server.stats.faults)}); "
              f"{actions} actions in {session:.1f} s: {outcomes}; outbox {dict(states)} of {len(rows)}")
        assert 0.15 < injected / calls < 0.25
        assert outcomes.answered >= actions * 0.8, outcomes
        assert states["sent"] >= len(rows) * 0.8 and states.keys() <= {"sent", "unreachable"}


# --- the database fails --------------------------------------------------------------------------


class FlakyDisk:
    """Stands in for the Storage's sqlite3 connection: while ``mode`` is "disk_full" every write
    statement fails as SQLite does on a full disk; while "read_only", every statement goes to a
    real read-only connection (``mode=ro``) to the same file. Everything else is the real one."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self.mode: str | None = None
        self.failed_writes = 0

    def _target(self, sql: str | None = None) -> sqlite3.Connection:
        if self.mode == "disk_full" and sql is not None and sql.lstrip().upper().startswith(self.WRITES):
            self.failed_writes += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._ro if self.mode == "read_only" else self._conn

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._target(sql).execute(sql, params)

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        return self._target(sql).executemany(sql, params)

    def __enter__(self) -> sqlite3.Connection:
        return self._target().__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._target().__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def close(self) -> None:
        self._ro.close()
        self._conn.close()


@contextlib.contextmanager
def outage(kind: str, disk: FlakyDisk, db: Path) -> Iterator[None]:
    if kind == "locked":  # another process holds the write lock past the busy timeout
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("COMMIT")
            locker.close()
        return
    disk.mode = kind
    try:
        yield
    finally:
        disk.mode = None


@pytest.mark.parametrize("kind", ["disk_full", "read_only", "locked"])
async def test_database_outage_apologises_logs_once_and_recovers(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "bot.sqlite3"
    reader, writer, newcomer = 801, 802, 803
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(server, db)
        storage = Storage(db)
        disk = FlakyDisk(storage.db.conn, db)
        storage.db.conn = disk  # type: ignore[assignment]
        app = build_application(harness.config, storage)
        harness.app, harness.storage = app, storage
        await start_application(app)
        try:
            sender = app.bot_data["services"].sender
            outbox = app.bot_data["services"].outbox
            for user in (reader, writer):
                await harness.say(user, "/start")
            # The calm before: the answers reading features give.
            (guide,) = await harness.say(reader, QUESTIONS["en"])
            (calc,) = await harness.say(reader, "RM2,500")
            (menu,) = await harness.say(writer, "/language")
            # Outbox rows that fall due during the outage (not for "locked": a claim would hold
            # the event loop for the busy timeout at every retry).
            rows = 0 if kind == "locked" else 5
            for i in range(rows):
                server.add_user(900 + i)
                outbox.enqueue(900 + i, "test", f"outage-{i}", {"type": "text", "text": f"queued {i}"},
                               not_before=datetime.now(UTC) + timedelta(seconds=0.5))
            caplog.clear()
            storage_apology = str(t("error.storage", "en"))

            with outage(kind, disk, db):
                await asyncio.sleep(1.0 if rows else 0)  # the rows fall due; claims fail
                started = time.monotonic()
                (guide2,) = await harness.say(reader, QUESTIONS["en"], timeout=10)
                (calc2,) = await harness.say(reader, "RM2,500", timeout=10)
                read_latency = time.monotonic() - started
                assert (guide2.text, guide2.reply_markup) == (guide.text, guide.reply_markup)
                assert (calc2.text, calc2.reply_markup) == (calc.text, calc.reply_markup)
                await harness.press(writer, menu, "lang:ms", timeout=10)
                apology = await server.wait_for_bot_message(writer, timeout=10)
                assert apology.text == storage_apology
                (apology2,) = await harness.say(newcomer, "/remind", timeout=10)
                assert apology2.text == storage_apology
                assert all(server.bot_messages(900 + i) == [] for i in range(rows))
                assert sender.running and all(not task.done() for task in sender._tasks)

            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]  # ONE error for the outage
            assert errors[0].name == "bot.database" and "database unavailable" in errors[0].getMessage()

            # Recovered: the same write goes through, the recovery is logged once, rows go out once.
            await asyncio.sleep(2.1)  # past the alarm's cool-down for optional writes
            (menu2,) = await harness.say(writer, "/language")
            await harness.press(writer, menu2, "lang:ms")
            chosen = await server.wait_for_edit(writer, menu2.message_id)
            assert chosen.text != storage_apology and storage.get_user(writer)["lang"] == "ms"
            assert await sender.wait_idle(horizon=5, timeout=15)
            for i in range(rows):
                assert [m.text for m in server.bot_messages(900 + i)] == [f"queued {i}"]
                assert outbox.get(f"outage-{i}")["state"] == "sent"
            recovered = [r for r in caplog.records if "database available again" in r.getMessage()]
            assert len(recovered) == 1
            assert [r for r in caplog.records if r.levelno >= logging.ERROR] == errors
            print(f"\n{kind}: reading answers in {read_latency:.1f} s during the outage")
            assert read_latency < 8
        finally:
            await harness.stop()


async def test_outbox_outcome_write_fails_then_is_recorded_once(tmp_path: Path) -> None:
    """The disk fills up the moment a message is delivered: the worker holds its row, retries the
    write, records it once the disk has room; the message is not sent twice."""
    db = tmp_path / "bot.sqlite3"
    async with LocalBotAPI(rate_limit=None) as server:
        harness = BotHarness(server, db)
        storage = Storage(db)
        disk = FlakyDisk(storage.db.conn, db)
        storage.db.conn = disk  # type: ignore[assignment]
        app = build_application(harness.config, storage)
        harness.app, harness.storage = app, storage
        await start_application(app)
        try:
            outbox = app.bot_data["services"].outbox
            sender = app.bot_data["services"].sender
            server.add_user(950)
            original = server._dispatch

            async def fill_disk_on_delivery(method: str, params: dict[str, Any]) -> Any:
                result = await original(method, params)
                if method == "sendMessage" and params.get("chat_id") == 950:
                    disk.mode = "disk_full"
                return result

            server._dispatch = fill_disk_on_delivery  # type: ignore[method-assign]
            outbox.enqueue(950, "test", "full-1", {"type": "text", "text": "hello"})
            await server.wait_for_bot_message(950)
            await asyncio.sleep(1.0)
            assert disk.failed_writes >= 2, "the outcome write was retried"
            assert outbox.get("full-1")["state"] == "sending"
            disk.mode = None
            assert await sender.wait_idle(horizon=5, timeout=10)
            assert outbox.get("full-1")["state"] == "sent"
            assert [m.text for m in server.bot_messages(950)] == ["hello"]
            assert metrics_for(app).snapshot()["messages_out"] >= 1
        finally:
            await harness.stop()
