"""Every callback-data format the bot produces, fuzzed against the real bot.

The data is collected by walking the bot's own menus (every button reachable from /start,
/calc 3500, /guides, a question, /remind, /agencies, and a staff member's /broadcast). Then
each format is pressed forged, truncated at every length, with mutated fields, by another
user, for a deleted guide or broadcast, and again after it completed. Every press must be
answered (never left spinning), raise nothing, make no call Telegram would reject, and change
no stored state unless the data is a well-formed button of the bot's own grammar (the module
docstrings of the handlers); presses by another user never touch anyone else's rows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.guides import GuideLibrary
from bot.handlers import broadcast as broadcast_handlers
from bot.handlers import reminders as reminder_handlers
from bot.i18n import LANGS, t
from tests.fuzz_support import LiveBot

OPERATOR, STAFF, FOLLOWER, WALKER, INTRUDER = 1, 2, 3, 10, 11
LINK_RE = re.compile(r"https://t\.me/perkeso_local_bot\?start=([A-Za-z0-9_-]+)")
MAX_WALK = 160

# The bot's callback grammar, written from the handlers' docstrings (not their parsers).
_L = "(?:en|ms|zh)"
WELL_FORMED = re.compile(
    "|".join(
        [
            r"menu:\w+",
            rf"lang:{_L}",
            r"c:[rWAOwams]:\d{1,7}\.\d{2}:\d{6}:(?:e|f|dl|df|-):(?:-|u55|55|60):[01](?::\d{6})?",
            rf"g:[\w.-]+:\d+:{_L}", rf"ga:[\w.-]+:{_L}", rf"gt:[a-z]+:{_L}", rf"gm:{_L}",
            rf"gf:[\w.-]+:{_L}:[01]", rf"gq:{_L}", rf"gd:{_L}",
            r"rm:(?:open|on|off|po|stop|d:\d+|h:\d+|a:[\w-]+|w:add|w:cancel|w:del:\d+|wt:[\w-]+"
            r"|c:[\w-]+:\d{1,7}\.\d{2}"  # from a calculator result: worker type and salary
            r"|paid:\d{4}-\d{2}|snooze:\d{4}-\d{2})",
            r"af:u:[\w-]+",
            r"bc:(?:t:.+|m:(?:one|each)|skip|a:\w+|send|sched|cancel|x:\d+)",
        ]
    )
)
# Tables and the column naming the user a row belongs to (None: nobody's in particular).
OWNER = {
    "users": "chat_id", "reminder_subs": "chat_id", "reminder_workers": "chat_id",
    "reminder_months": "chat_id", "follows": "chat_id", "staff": "user_id", "outbox": "chat_id",
    "broadcasts": "created_by", "feedback": None, "unanswered": None, "agencies": None,
    "staff_invites": None,
}
TRIED: dict[str, int] = {}


def polite_texts() -> set[str]:
    keys = ["error.stale_button", "broadcast.stale", "broadcast.not_allowed", "agency.not_following",
            "remind.already_paid", "guides.thanks_yes", "guides.thanks_no"]
    return {str(t(k, lang)) for k in keys for lang in LANGS}


@dataclass(frozen=True)
class Button:
    owner: int
    message_id: int
    data: str

    @property
    def format(self) -> str:
        """``rm:paid``, ``c:W``, ``gf``...: the prefix and, where it names the action, the action."""
        parts = self.data.split(":")
        if parts[0] in ("rm", "bc", "c", "af") and len(parts) > 1:
            return ":".join(parts[:3] if parts[:2] == ["rm", "w"] else parts[:2])
        return parts[0]


# --- the bot and its buttons ------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBot]:
    interval = broadcast_handlers.PROGRESS_INTERVAL
    broadcast_handlers.PROGRESS_INTERVAL = 0.3
    path = tmp_path_factory.mktemp("fuzz_callbacks") / "bot.sqlite3"
    bot = LiveBot(path, admin_ids=frozenset({OPERATOR})).start()
    assert bot.bot is not None and bot.bot.app is not None
    for job in bot.bot.app.job_queue.get_jobs_by_name(reminder_handlers.JOB_NAME):
        job.schedule_removal()  # no reminder may appear in the outbox while we compare it
    try:
        yield bot
    finally:
        bot.stop()
        broadcast_handlers.PROGRESS_INTERVAL = interval


@pytest.fixture(scope="module")
def buttons(live: LiveBot) -> dict[str, list[Button]]:
    """Walk the menus; every button the bot showed, grouped by format."""
    say = lambda user, text, **kw: live.run(live.say(user, text, **kw))  # noqa: E731
    (created,) = say(OPERATOR, "/agency new Acme Payroll")
    staff_link, follow_link = LINK_RE.findall(created.text)
    say(STAFF, f"/start {staff_link}")
    for user in (FOLLOWER, WALKER):
        say(user, f"/start {follow_link}")
    # A scheduled broadcast far in the future: its cancel button bc:x:<id> is real.
    say(STAFF, "/broadcast")
    confirm = say(STAFF, "Office closed on Friday.")[-1]
    live.run(live.press(STAFF, confirm.message_id, "bc:sched", strict=True))
    (confirm,) = say(STAFF, "2099-01-01 09:00")
    live.run(live.press(STAFF, confirm.message_id, "bc:send", strict=True))
    say(STAFF, "/broadcast status")
    say(STAFF, "/broadcast")  # a compose left open: its bc:cancel button
    for text in ["/start", "/calc 3500", "3.500", "/guides", "how do I pay socso for my maid",
                 "bagaimana bayar caruman perkeso", "/remind", "/agencies"]:
        say(WALKER, text)
    seen: set[str] = set()
    per_format: dict[str, int] = {}
    pressed = 0
    while pressed < MAX_WALK:
        todo = [
            (m.message_id, d)
            for m in live.server.bot_messages(WALKER)
            for d in _all_data(m)
            if d not in seen and not d.startswith(("af:u:", "rm:off", "rm:stop"))
        ]
        if not todo:
            break
        # breadth first over formats: the format pressed least so far goes next
        message_id, data = min(todo, key=lambda item: per_format.get(Button(0, 0, item[1]).format, 0))
        seen.add(data)
        per_format[Button(0, 0, data).format] = per_format.get(Button(0, 0, data).format, 0) + 1
        live.run(live.press(WALKER, message_id, data))
        pressed += 1
        if data == "rm:w:add":  # finish the conversation: the worker's delete button appears
            say(WALKER, "Siti")
            reply = live.server.bot_messages(WALKER)[-1]
            live.run(live.press(WALKER, reply.message_id, "rm:wt:domestic-foreign", strict=True))
            say(WALKER, "1800")
    assert not live.problems(), live.problems()
    found: dict[str, list[Button]] = {}
    for user in (WALKER, STAFF, FOLLOWER):
        for m in live.server.bot_messages(user):
            for d in _all_data(m):
                b = Button(user, m.message_id, d)
                found.setdefault(b.format, [])
                if all(x.data != d for x in found[b.format]):
                    found[b.format].append(b)
    # Buttons only reminders themselves carry (sent by the scheduler job): same grammar.
    settings_id = next(m.message_id for m in live.server.bot_messages(WALKER) if "rm:po" in m.callback_data)
    for data in ("rm:paid:2026-11", "rm:snooze:2026-11", "rm:stop"):
        found.setdefault(Button(WALKER, settings_id, data).format, []).append(Button(WALKER, settings_id, data))
    return found


def _all_data(message: Any) -> list[str]:
    """Callback data the message shows now or showed before an edit."""
    markups = [message.reply_markup] + [markup for _, markup in message.edits]
    return [
        b["callback_data"]
        for markup in markups
        for row in (markup or {}).get("inline_keyboard") or []
        for b in row
        if "callback_data" in b
    ]


def test_walk_reaches_every_format(buttons: dict[str, list[Button]]) -> None:
    prefixes = {key.split(":")[0] for key in buttons}
    assert {"menu", "lang", "c", "g", "ga", "gt", "gm", "gf", "gq", "gd", "rm", "af", "bc"} <= prefixes
    for key in ("c:r", "c:W", "c:A", "c:w", "c:a", "c:m", "c:s", "rm:d", "rm:h", "rm:a", "rm:w:add",
                "rm:w:del", "rm:wt", "bc:x", "bc:cancel", "af:u"):
        assert key in buttons, sorted(buttons)
    TRIED["formats"] = len(buttons)
    TRIED["distinct data collected"] = sum(len(v) for v in buttons.values())


# --- one press, checked -------------------------------------------------------------------------


def _mine(snapshot: dict[str, list[tuple]], live: LiveBot, user: int) -> dict[str, list[tuple]]:
    """The snapshot without ``user``'s own rows."""
    out = {}
    for table, rows in snapshot.items():
        col = OWNER.get(table)
        if col is None:
            out[table] = rows
            continue
        idx = live.columns[table].index(col)
        out[table] = [r for r in rows if r[idx] != user]
    return out


async def _background_settled(live: LiveBot) -> None:
    """Wait until the broadcast progress job has finished what an earlier (well-formed) press
    started, e.g. stamping finished_at on a cancelled broadcast: otherwise it can change the
    database between the two snapshots of an unrelated press."""
    assert live.bot is not None and live.bot.storage is not None
    db = live.bot.storage.db

    def settled() -> bool:
        return not db.execute(
            "SELECT 1 FROM broadcasts WHERE state = 'sending' "
            "OR (state IN ('cancelled', 'done') AND finished_at IS NULL) LIMIT 1"
        ).fetchone()

    deadline = asyncio.get_running_loop().time() + 5
    while not settled():
        assert asyncio.get_running_loop().time() < deadline, "a broadcast never settled"
        await asyncio.sleep(0.05)


async def _press_checked(live: LiveBot, user: int, message_id: int, data: str) -> tuple[Any, ...]:
    await _background_settled(live)
    before = await live.snapshot(OWNER)
    answer, replies = await live.press(user, message_id, data)
    after = await live.snapshot(OWNER)
    return answer, replies, before != after, before, after


def press_forged(live: LiveBot, button: Button, data: str, *, presser: int | None = None) -> dict:
    """Press ``data`` on ``button``'s message; check the common properties; return the answer."""
    user = button.owner if presser is None else presser
    answer, replies, changed, before, after = live.run(_press_checked(live, user, button.message_id, data))
    problems = live.problems()
    live.clear()
    assert not problems, (data, problems)
    assert answer is not None, f"{data!r} was left spinning"
    if presser is not None:  # another user: nobody else's rows change
        assert _mine(before, live, user) == _mine(after, live, user), data
    elif not WELL_FORMED.fullmatch(data):
        assert not changed, f"malformed {data!r} changed {_diff(before, after)}"
        assert answer["text"] in polite_texts() or (answer["text"] is None and replies), (data, answer)
    return answer


def _diff(before: dict, after: dict) -> dict:
    return {k: (sorted(set(before.get(k, [])) ^ set(after.get(k, [])), key=repr))[:4]
            for k in set(before) | set(after) if before.get(k) != after.get(k)}


# --- the fuzzing ----------------------------------------------------------------------------------


def truncation_points(data: str) -> list[int]:
    """Where to cut ``data`` (lengths of the kept prefix): around every separator (just before
    it, ending with it, one character into the next field), after the first character and
    before the last. Every other cut falls inside a field, which the codec reads whole (its
    parse of every malformed field is in tests/test_callbacks.py)."""
    points = {1, len(data) - 1}
    for i, ch in enumerate(data):
        if ch == ":":
            points.update((i, i + 1, i + 2))
    return sorted(k for k in points if 0 < k < len(data))


def test_truncations_of_every_format(live: LiveBot, buttons: dict[str, list[Button]]) -> None:
    count = 0
    for group in buttons.values():
        button = group[0]
        for k in truncation_points(button.data):
            press_forged(live, button, button.data[:k])
            count += 1
    TRIED["truncations"] = count


JUNK = ["", "x", "-1", "0", "00", "999999999999", "9" * 40, "../", "😀", "<b>", "%00", "\x00", " ",
        "en", "zh", "ms", "xx", "*", "NaN", "1e9", "3500.00", "202613", "999912", "2026-13", "0000-00",
        "pay-socso", "::", "true", "None", "e", "df", "u55", "all", "paid", "add"]


@st.composite
def mutations(draw: st.DrawFn, pool: list[Button]) -> tuple[Button, str]:
    button = draw(st.sampled_from(pool))
    fields = button.data.split(":")
    how = draw(st.sampled_from(["replace", "replace", "drop", "add", "swapcase", "bytes"]))
    i = draw(st.integers(0, len(fields) - 1))
    junk = draw(st.one_of(st.sampled_from(JUNK), st.text(max_size=8)))
    if how == "replace":
        fields[i] = junk
    elif how == "drop" and len(fields) > 1:
        del fields[i]
    elif how == "add":
        fields.insert(i + 1, junk)
    elif how == "swapcase":
        fields[i] = fields[i].swapcase()
    data = ":".join(fields)
    if how == "bytes":
        data = draw(st.text(min_size=1, max_size=64))
    return button, data


def _fits(item: tuple[Button, str]) -> bool:
    return 1 <= len(item[1].encode()) <= 64


def test_mutated_fields(live: LiveBot, buttons: dict[str, list[Button]]) -> None:
    pool = [b for group in buttons.values() for b in group[:3]]
    count = 0

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(mutations(pool).filter(_fits))
    def run(item: tuple[Button, str]) -> None:
        nonlocal count
        count += 1
        press_forged(live, *item)

    run()
    TRIED["mutations"] = count


def test_real_buttons_pressed_by_another_user(live: LiveBot, buttons: dict[str, list[Button]]) -> None:
    """A button pressed in a chat where its message doesn't exist (or is another message)."""
    live.run(live.say(INTRUDER, "/start"))  # the intruder's message 1 is their own greeting
    count = 0
    for group in buttons.values():
        for button in group[:2]:
            for message_id in (button.message_id, 10_000):
                press_forged(live, Button(button.owner, message_id, button.data), button.data, presser=INTRUDER)
                count += 1
    TRIED["presses by another user"] = count


# --- deleted things and replays ---------------------------------------------------------------------


def test_deleted_guide(live: LiveBot, buttons: dict[str, list[Button]]) -> None:
    assert live.bot is not None and live.bot.app is not None
    svc = live.bot.app.bot_data["services"]
    library: GuideLibrary = svc.guides
    victim = next(b.data.split(":")[1] for b in buttons["gf"])
    olds = [b for key in ("g", "ga", "gf") for b in buttons[key] if b.data.split(":")[1] == victim]
    assert olds
    svc.guides = GuideLibrary(
        g for gid in library.ids() if gid != victim for lang in LANGS
        if (g := library.get(gid, lang)) is not None and g.lang == lang
    )
    try:
        for button in olds:
            before = live.run(live.snapshot(OWNER))
            answer = press_forged(live, button, button.data)
            assert answer["text"] in polite_texts(), (button.data, answer)
            assert live.run(live.snapshot(OWNER)) == before
    finally:
        svc.guides = library
    TRIED["deleted-guide presses"] = len(olds)


def _last_with(live: LiveBot, user: int, prefix: str) -> tuple[int, str]:
    for m in reversed(live.server.bot_messages(user)):
        for d in m.callback_data:
            if d.startswith(prefix):
                return m.message_id, d
    raise AssertionError(f"no {prefix} button for {user}")


def test_replays_change_nothing(live: LiveBot) -> None:
    press = lambda user, mid, data: live.run(live.press(user, mid, data))  # noqa: E731
    snap = lambda: live.run(live.snapshot(OWNER))  # noqa: E731
    # Paid pressed twice.
    settings_id, _ = _last_with(live, WALKER, "rm:po")
    press(WALKER, settings_id, "lang:en")  # the walk left the walker in some language
    answer, _ = press(WALKER, settings_id, "rm:paid:2026-10")
    assert answer["text"] == t("remind.paid_toast", "en")
    before = snap()
    answer, replies = press(WALKER, settings_id, "rm:paid:2026-10")
    assert answer["text"] == t("remind.already_paid", "en") and not replies
    assert snap() == before
    answer, _ = press(WALKER, settings_id, "rm:snooze:2026-10")
    assert answer["text"] == t("remind.already_paid", "en") and snap() == before
    # Feedback twice (the second press comes from the same message, buttons already gone).
    press(WALKER, settings_id, "ga:pay-socso:en")  # the whole guide, 👍/👎 at its end
    mid, data = _last_with(live, WALKER, "gf:pay-socso:en:1")
    before = snap()
    answer, _ = press(WALKER, mid, data)
    assert answer["text"] == t("guides.thanks_yes", "en")
    assert len(snap()["feedback"]) == len(before["feedback"]) + 1
    before = snap()
    for again in (data, data[:-1] + "0"):
        answer, _ = press(WALKER, mid, again)
        assert answer is not None and answer["text"] in polite_texts()
    assert snap() == before
    # Worker deleted twice; a worker type after the conversation ended.
    live.run(live.say(WALKER, "/remind"))
    mid, data = _last_with(live, WALKER, "rm:w:del:")
    press(WALKER, mid, data)
    before = snap()
    answer, _ = press(WALKER, mid, data)
    assert answer["text"] == t("error.stale_button", "en")
    answer, _ = press(WALKER, mid, "rm:wt:employee")
    assert answer["text"] == t("error.stale_button", "en")
    assert snap() == before
    # Unfollow twice.
    live.run(live.say(WALKER, "/agencies"))
    mid, data = _last_with(live, WALKER, "af:u:")
    press(WALKER, mid, data)
    before = snap()
    answer, _ = press(WALKER, mid, data)
    assert answer["text"] == t("agency.not_following", "en") and snap() == before
    assert not live.problems(), live.problems()
    TRIED["replay scenarios"] = 4


def test_broadcast_replays(live: LiveBot) -> None:
    """Confirm pressed again after sending; cancel pressed twice; a deleted broadcast."""
    press = lambda user, mid, data: live.run(live.press(user, mid, data))  # noqa: E731
    snap = lambda: live.run(live.snapshot(["broadcasts", "outbox"]))  # noqa: E731
    live.run(live.say(STAFF, "/cancel"))
    live.run(live.say(STAFF, "/broadcast"))
    confirm = live.run(live.say(STAFF, "Rates change next month."))[-1]
    press(STAFF, confirm.message_id, "bc:send")
    _wait_broadcasts_finished(live)
    before = snap()
    answer, replies = press(STAFF, confirm.message_id, "bc:send")
    assert answer["text"] == t("broadcast.stale", "en") and not replies
    assert snap() == before
    # Cancel the scheduled broadcast, then press its cancel button again; then a deleted one.
    live.run(live.say(STAFF, "/broadcast status"))
    mid, data = _last_with(live, STAFF, "bc:x:")
    press(STAFF, mid, data)
    _wait_broadcasts_finished(live)
    before = snap()
    answer, _ = press(STAFF, mid, data)
    assert answer is not None
    for gone in ("bc:x:99999", "bc:x:0", f"{data}0"):
        answer, _ = press(STAFF, mid, gone)
        assert answer["text"] == t("broadcast.not_allowed", "en")
    assert snap() == before
    assert not live.problems(), live.problems()
    TRIED["broadcast replay scenarios"] = 3
    print("\ncallback fuzzing:", TRIED)


def _wait_broadcasts_finished(live: LiveBot) -> None:
    import time

    # Finished: the progress job has closed it (finished_at, its last write; a cancelled one is
    # closed at the job's next tick, after its progress message). A scheduled one waits as it is.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = live.run(live.snapshot(["broadcasts"]))["broadcasts"]
        state, finished_at = (live.columns["broadcasts"].index(c) for c in ("state", "finished_at"))
        if all(r[state] == "scheduled" or r[finished_at] is not None for r in rows):
            outbox = live.run(live.snapshot(["outbox"]))["outbox"]
            if all(r[live.columns["outbox"].index("state")] != "sending" for r in outbox):
                live.run(live.idle())
                return
        time.sleep(0.1)
    raise AssertionError("broadcasts did not finish")
