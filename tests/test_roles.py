"""Roles matrix: every staff and operator command and button × {operator, staff of agency A,
staff of agency B, follower, stranger}, through the real bot and the local Bot API server.

Each cell starts from the same world (agencies A and B, one staff member each, one follower
each) and checks the database: only allowed cells change agencies, staff, staff_invites,
broadcasts or outbox rows; refused cells get the polite "not allowed" answer and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.agencies import AgencyService
from bot.handlers import broadcast as broadcast_handlers
from bot.i18n import n, t
from bot.localapi.server import LocalBotAPI
from tests.harness import BotHarness

OP, STAFF_A, STAFF_B, FOLLOWER, FOLLOWER_B, STRANGER = 1, 200, 201, 301, 302, 999
ROLES = {"operator": OP, "staff_a": STAFF_A, "staff_b": STAFF_B, "follower": FOLLOWER, "stranger": STRANGER}
TABLES = ("agencies", "staff", "staff_invites", "broadcasts", "outbox", "follows")
LINK_RE = re.compile(r"https://t\.me/perkeso_local_bot\?start=staff-([A-Za-z0-9_-]+)")
NOT_ALLOWED_BC = str(t("broadcast.not_allowed", "en"))
NOT_ALLOWED_AG = str(t("agency.not_allowed", "en"))


@dataclass
class World:
    bot: BotHarness
    a: str  # agency codes
    b: str

    @property
    def server(self) -> LocalBotAPI:
        return self.bot.server

    @property
    def service(self) -> AgencyService:
        assert self.bot.storage is not None
        return AgencyService(self.bot.storage)

    def rows(self, table: str, where: str = "1 = 1", params: tuple = ()) -> list[dict]:
        assert self.bot.storage is not None
        return list(self.bot.storage.db.query(f"SELECT * FROM {table} WHERE {where}", params))

    def snapshot(self) -> dict[str, list[tuple]]:
        return {
            table: sorted(tuple(str(v) for v in row.values()) for row in self.rows(table))
            for table in TABLES
        }

    async def press(self, user: int, data: str) -> dict:
        """``user`` presses a button with ``data`` on their newest message showing it, or a
        forged one on their newest message (any chat of their own)."""
        if not self.server.bot_messages(user):  # a real button always sits on a message
            await self.bot.say(user, "/help")
        messages = self.server.bot_messages(user)
        shown = [m for m in messages if data in m.callback_data]
        message_id = (shown or messages)[-1].message_id
        query = await self.server.press_button(user, message_id, data, strict=False)
        return await self.server.wait_for_callback_answer(query)

    async def scheduled_broadcast(self, code: str, created_by: int) -> int:
        outbox = self.bot.app.bot_data["services"].outbox
        broadcast_id, count = self.service.create_broadcast(
            outbox,
            agency=code,
            created_by=created_by,
            versions={"en": {"text": "Scheduled note"}},
            scheduled_at=datetime.now(UTC) + timedelta(days=2),
            progress_chat_id=created_by,
        )
        assert count == 1
        return broadcast_id


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setattr(broadcast_handlers, "PROGRESS_INTERVAL", 0.3)
    async with LocalBotAPI(rate_limit=None) as server:
        bot = BotHarness(server, tmp_path / "bot.sqlite3", admin_ids=frozenset({OP}))
        await bot.start()
        assert bot.storage is not None
        service = AgencyService(bot.storage)
        agency_a, token_a = service.create_agency("Acme Payroll", OP)
        agency_b, token_b = service.create_agency("Beta Agency", OP)
        for user in ROLES.values():
            server.add_user(user)
            bot.storage.touch_user(user, "en")
        server.add_user(FOLLOWER_B)
        bot.storage.touch_user(FOLLOWER_B, "en")
        assert service.redeem_invite(token_a, STAFF_A) is not None
        assert service.redeem_invite(token_b, STAFF_B) is not None
        service.follow(agency_a.code, FOLLOWER)
        service.follow(agency_b.code, FOLLOWER_B)
        try:
            yield World(bot, agency_a.code, agency_b.code)
        finally:
            await bot.stop()


# --- the cells -------------------------------------------------------------------------------


async def agency_new(w: World, user: int, allowed: bool) -> None:
    before = w.snapshot()
    (answer,) = await w.bot.say(user, "/agency new Gamma Services")
    if allowed:
        [gamma] = w.rows("agencies", "name = ?", ("Gamma Services",))
        assert gamma["created_by"] == user
        assert len(w.rows("staff_invites", "agency = ?", (gamma["code"],))) == 1
        assert "Gamma Services" in answer.text and LINK_RE.search(answer.text)
    else:
        assert answer.text == NOT_ALLOWED_AG
        assert w.snapshot() == before


async def agency_list(w: World, user: int, allowed: bool) -> None:
    before = w.snapshot()
    (answer,) = await w.bot.say(user, "/agency list")
    if allowed:
        assert "Acme Payroll" in answer.text and w.a in answer.text and w.b in answer.text
    else:
        assert answer.text == NOT_ALLOWED_AG
        assert w.a not in answer.text
    assert w.snapshot() == before


async def agency_invite(w: World, user: int, allowed: bool) -> None:
    before = w.snapshot()
    (answer,) = await w.bot.say(user, f"/agency invite {w.a}")
    if allowed:
        [token] = LINK_RE.findall(answer.text)
        open_invites = w.rows("staff_invites", "agency = ? AND used_by IS NULL", (w.a,))
        assert [i["token_hash"] for i in open_invites] == [hashlib.sha256(token.encode()).hexdigest()]
    else:
        assert answer.text == NOT_ALLOWED_AG
        assert w.snapshot() == before


async def agency_revoke(w: World, user: int, allowed: bool) -> None:
    before = w.snapshot()
    (answer,) = await w.bot.say(user, f"/agency revoke {w.a}")
    if allowed:
        assert w.rows("staff", "agency = ?", (w.a,)) == []
        assert w.rows("agencies", "code = ?", (w.a,))[0]["revoked"] == 1
        assert w.rows("staff", "agency = ?", (w.b,)) != []  # the other agency is untouched
        (refused,) = await w.bot.say(STAFF_A, "/broadcast")  # revoked staff: refused at once
        assert refused.text == NOT_ALLOWED_BC
    else:
        assert answer.text == NOT_ALLOWED_AG
        assert w.snapshot() == before


async def broadcast_start(w: World, user: int, allowed: bool) -> None:
    before = w.snapshot()
    (answer,) = await w.bot.say(user, "/broadcast")
    if allowed:
        if user == OP:
            assert answer.text == t("broadcast.choose_target", "en")
            assert answer.callback_data[0] == "bc:t:*" and answer.callback_data[-1] == "bc:cancel"
            assert sorted(answer.callback_data[1:-1]) == sorted([f"bc:t:{w.a}", f"bc:t:{w.b}"])
        else:  # a staff member's own agency, one language: straight to the message
            assert answer.text == t("broadcast.ask_message_one", "en")
    else:
        assert answer.text == NOT_ALLOWED_BC
    assert w.snapshot() == before  # composing writes nothing


async def broadcast_send_to_a(w: World, user: int, allowed: bool) -> None:
    """The whole compose → confirm flow aimed at agency A's followers."""
    server = w.server
    (first,) = await w.bot.say(user, "/broadcast")
    if user == OP:
        await w.bot.press(user, first, f"bc:t:{w.a}")
        await server.wait_for_bot_message(user)
    elif not allowed:
        answer = await w.press(user, f"bc:t:{w.a}")  # forged in their own chat
        assert answer.get("text") in (NOT_ALLOWED_BC, t("broadcast.stale", "en"))
        if first.text == NOT_ALLOWED_BC:
            answer = await w.press(user, "bc:send")
            assert answer.get("text") == NOT_ALLOWED_BC
        assert w.rows("broadcasts", "agency = ?", (w.a,)) == []
        assert w.rows("outbox", "chat_id = ?", (FOLLOWER,)) == []
        return
    await server.send_text(user, "Rates change next month")
    preview = await server.wait_for_bot_messages(user, 3)
    assert preview[2].callback_data == ["bc:send", "bc:sched", "bc:cancel"]
    await w.bot.press(user, preview[2], "bc:send")
    await server.wait_until(lambda: w.rows("broadcasts"), 5)
    [row] = w.rows("broadcasts")
    assert row["agency"] == w.a and row["created_by"] == user and row["recipients"] == 1
    assert [r["chat_id"] for r in w.rows("outbox", "group_ref = ?", (f"broadcast:{row['id']}",))] == [FOLLOWER]


def _status_ids(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"#(\d+)", text)}


async def broadcast_status(w: World, user: int, allowed: bool) -> None:
    id_a = await w.scheduled_broadcast(w.a, STAFF_A)
    id_b = await w.scheduled_broadcast(w.b, STAFF_B)
    before = w.snapshot()
    (answer,) = await w.bot.say(user, "/broadcast status")
    expected = {OP: {id_a, id_b}, STAFF_A: {id_a}, STAFF_B: {id_b}}
    if allowed:
        assert _status_ids(answer.text) == expected[user]
        assert answer.callback_data == [f"bc:x:{i}" for i in sorted(expected[user], reverse=True)]
    else:
        assert answer.text == NOT_ALLOWED_BC
    assert w.snapshot() == before


async def _cancel_check(w: World, user: int, allowed: bool, run: Callable[[int], Awaitable[str]]) -> None:
    id_a = await w.scheduled_broadcast(w.a, STAFF_A)
    before = w.snapshot()
    text = await run(id_a)
    if allowed:
        assert w.service.get_broadcast(id_a)["state"] == "cancelled"
        states = [r["state"] for r in w.rows("outbox", "group_ref = ?", (f"broadcast:{id_a}",))]
        assert states == ["cancelled"]
    else:
        assert w.snapshot() == before
        assert w.service.get_broadcast(id_a)["state"] == "scheduled"
        # Staff of another agency are told there is nothing (never shown others' broadcasts).
        polite = {NOT_ALLOWED_BC, str(t("broadcast.nothing_to_cancel", "en"))}
        assert text in polite


async def broadcast_cancel_command(w: World, user: int, allowed: bool) -> None:
    async def run(broadcast_id: int) -> str:
        (answer,) = await w.bot.say(user, f"/broadcast cancel {broadcast_id}")
        if allowed:
            assert answer.text == t("broadcast.cancelled", "en", id=broadcast_id, count=1)
        return answer.text

    await _cancel_check(w, user, allowed, run)


async def broadcast_cancel_button(w: World, user: int, allowed: bool) -> None:
    async def run(broadcast_id: int) -> str:
        answer = await w.press(user, f"bc:x:{broadcast_id}")  # forged unless it is theirs
        if allowed:
            done = await w.server.wait_for_bot_message(user)
            assert done.text == t("broadcast.cancelled", "en", id=broadcast_id, count=1)
        else:
            assert answer.get("text") == NOT_ALLOWED_BC
        return answer.get("text") or ""

    await _cancel_check(w, user, allowed, run)


def _forged_button(data: str) -> Callable[[World, int, bool], Awaitable[None]]:
    async def cell(w: World, user: int, allowed: bool) -> None:
        """A compose button with no compose in progress: never acts; outsiders are told no."""
        before = w.snapshot()
        answer = await w.press(user, data.format(a=w.a, b=w.b))
        if allowed:
            assert answer.get("text") in (str(t("broadcast.stale", "en")), None)
        else:
            assert answer.get("text") == NOT_ALLOWED_BC
        assert w.snapshot() == before
        assert w.rows("broadcasts") == []

    return cell


STAFF_OR_OP = {"operator", "staff_a", "staff_b"}
ACTIONS: dict[str, tuple[Callable[[World, int, bool], Awaitable[None]], set[str]]] = {
    "agency_new": (agency_new, {"operator"}),
    "agency_list": (agency_list, {"operator"}),
    "agency_invite": (agency_invite, {"operator"}),
    "agency_revoke": (agency_revoke, {"operator"}),
    "broadcast_start": (broadcast_start, STAFF_OR_OP),
    "broadcast_send_to_a": (broadcast_send_to_a, {"operator", "staff_a"}),
    "broadcast_status": (broadcast_status, STAFF_OR_OP),
    "broadcast_cancel_command": (broadcast_cancel_command, {"operator", "staff_a"}),
    "broadcast_cancel_button": (broadcast_cancel_button, {"operator", "staff_a"}),
}
# Buttons pressed with no compose in progress (forged or someone else's): "allowed" here means
# the polite "stale" answer for staff and operators, "not allowed" for everyone else.
for _data in ("bc:t:{a}", "bc:t:*", "bc:m:one", "bc:m:each", "bc:skip", "bc:a:all", "bc:send", "bc:sched", "bc:cancel"):
    ACTIONS[f"button_{_data.split(':', 1)[1].replace(':', '_').replace('{a}', 'A')}"] = (
        _forged_button(_data),
        STAFF_OR_OP,
    )


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("action", list(ACTIONS))
async def test_role_matrix(world: World, action: str, role: str) -> None:
    cell, allowed_roles = ACTIONS[action]
    await cell(world, ROLES[role], role in allowed_roles)


# --- someone else's buttons, revoked staff, invite tokens ---------------------------------------


@pytest.mark.parametrize("role", ["follower", "stranger", "staff_b"])
async def test_staff_confirm_button_pressed_by_someone_else(world: World, role: str) -> None:
    """STAFF_A reaches the confirm step; another user forges the same buttons in their own chat."""
    server = world.server
    await world.bot.say(STAFF_A, "/broadcast")
    await server.send_text(STAFF_A, "Hello followers")
    preview = await server.wait_for_bot_messages(STAFF_A, 3)
    user = ROLES[role]
    await world.bot.say(user, "/start")
    for data in ("bc:send", "bc:sched", "bc:cancel", "bc:m:one", f"bc:t:{world.a}"):
        answer = await world.press(user, data)
        expected = {NOT_ALLOWED_BC} if role != "staff_b" else {NOT_ALLOWED_BC, str(t("broadcast.stale", "en"))}
        assert answer.get("text") in expected, data
    assert world.rows("broadcasts") == [] and world.rows("outbox") == []
    # The owner's draft is intact: their own confirm button still works.
    await world.bot.press(STAFF_A, preview[2], "bc:send")
    await server.wait_until(lambda: world.rows("broadcasts"), 5)
    assert world.rows("broadcasts")[0]["created_by"] == STAFF_A


@pytest.mark.parametrize("step", ["confirm", "message", "mode"])
async def test_revoked_staff_pending_compose_is_refused(world: World, step: str) -> None:
    server = world.server
    # A second language among A's followers makes the mode step appear.
    server.add_user(303)
    world.bot.storage.touch_user(303, "ms")
    world.service.follow(world.a, 303)
    (mode,) = await world.bot.say(STAFF_A, "/broadcast")
    assert mode.callback_data == ["bc:m:one", "bc:m:each", "bc:cancel"]
    if step != "mode":
        await world.bot.press(STAFF_A, mode, "bc:m:one")
        await server.wait_for_bot_message(STAFF_A)
    if step == "confirm":
        await server.send_text(STAFF_A, "Hello")
        audience = await server.wait_for_bot_message(STAFF_A)
        await world.bot.press(STAFF_A, audience, "bc:a:all")
        await server.wait_for_bot_messages(STAFF_A, 3)
    world.service.revoke(world.a)  # the operator revokes agency A's staff
    if step == "message":
        (answer,) = await world.bot.say(STAFF_A, "Hello")
        assert answer.text == NOT_ALLOWED_BC
    else:
        answer = await world.press(STAFF_A, "bc:send" if step == "confirm" else "bc:m:one")
        assert answer.get("text") == NOT_ALLOWED_BC
    (again,) = await world.bot.say(STAFF_A, "/broadcast")
    assert again.text == NOT_ALLOWED_BC
    assert world.rows("broadcasts") == [] and world.rows("outbox") == []


def _db_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, raw."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _all_text(world: World) -> str:
    """Every value of every table, as one string (to look for a secret anywhere)."""
    storage = world.bot.storage
    assert storage is not None
    parts = []
    for table in storage.db.table_names():
        for row in storage.db.query(f"SELECT * FROM [{table}]"):
            parts.extend(str(v) for v in row.values())
    return "\n".join(parts)


async def test_invite_tokens_are_unguessable_hashed_single_use_and_revocable(world: World) -> None:
    (created,) = await world.bot.say(OP, "/agency new Delta Agency")
    [token] = LINK_RE.findall(created.text)
    (second,) = await world.bot.say(OP, f"/agency invite {world.a}")
    [token2] = LINK_RE.findall(second.text)
    for value in (token, token2):
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        assert len(raw) * 8 >= 128 and len(value) >= 22  # >= 128 bits of randomness
        assert len(set(value)) > 10  # not a repeated or sequential pattern
        digest = hashlib.sha256(value.encode()).hexdigest()
        assert world.rows("staff_invites", "token_hash = ?", (digest,))  # only the hash is stored
        assert value not in _all_text(world)
        assert value.encode() not in _db_bytes(Path(world.bot.config.db_path))
    assert token != token2

    (ok,) = await world.bot.say(STRANGER, f"/start staff-{token}")
    assert ok.text.startswith(t("agency.staff_welcome", "en", agency="Delta Agency"))
    assert world.bot.storage.get_user(STRANGER)["start_payload"] is None
    before = world.snapshot()
    (used,) = await world.bot.say(FOLLOWER, f"/start staff-{token}")  # single use
    assert used.text.startswith(t("agency.invite_invalid", "en"))
    assert world.snapshot() == before

    (revoked,) = await world.bot.say(OP, f"/agency revoke {world.a}")
    assert revoked.text == t("agency.revoked", "en", name="Acme Payroll", invites=n("plural.invites", 1, "en"),
                                staff=n("plural.staff", 1, "en"))
    before = world.snapshot()
    (late,) = await world.bot.say(FOLLOWER, f"/start staff-{token2}")  # revoked
    assert late.text.startswith(t("agency.invite_invalid", "en"))
    guessed = token2[:-2] + ("AA" if not token2.endswith("AA") else "BB")
    (guess,) = await world.bot.say(FOLLOWER, f"/start staff-{guessed}")
    assert guess.text.startswith(t("agency.invite_invalid", "en"))
    assert world.snapshot() == before
    assert not world.service.is_staff(FOLLOWER, world.a)
    (gone,) = await world.bot.say(STAFF_A, "/broadcast")
    assert gone.text == NOT_ALLOWED_BC
