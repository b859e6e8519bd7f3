"""Agencies, their staff and followers, and broadcasts: the queries behind /agency and /broadcast.

No Telegram imports: handlers (bot/handlers/broadcast.py) and the CLI (bot/commands/broadcast.py)
call :class:`AgencyService`. Roles:

* operators: the user ids in ``config.admin_ids`` (checked by the caller with :func:`is_operator`);
* staff: users who redeemed a single-use invite token (stored as a SHA-256 hash); they broadcast
  to their own agency's followers only;
* followers: chats following an agency (several agencies allowed).

A broadcast becomes outbox rows (one per recipient, ``kind="broadcast"``, dedupe key
``broadcast:<id>:<chat>``, ``group_ref="broadcast:<id>"``) together with its ``broadcasts`` row in
ONE transaction, so a confirmed broadcast is never lost and a follower who joins later is never
added. A scheduled broadcast's rows wait in the outbox with ``not_before`` = the scheduled time.
The lifecycle (scheduled -> sending -> done, progress, final report) is decided here too; the
progress job in bot/handlers/broadcast.py only renders and sends.

(A little over 500 lines: the one store and service of the agencies table group — agencies,
invites, staff, follows, broadcasts — kept together so their SQL has one home.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from bot.callbacks import AgencyUnfollow
from bot.domain.clock import now_text, parse_utc_or_none, utc_now, utc_text
from bot.i18n import LANGS, PLACEHOLDER_RE, catalogs
from bot.storage import Storage

if TYPE_CHECKING:
    from bot.outbox import Outbox

FALLBACK_ORDER: tuple[str, ...] = ("en", "ms", "zh")
CODE_ALPHABET = string.ascii_lowercase + string.digits
CODE_LENGTH = 8
MAX_NAME = 64
STAFF_PREFIX = "staff-"
FOLLOW_PREFIX = "f-"
KIND = "broadcast"
ACTIVE_STATES = ("scheduled", "sending")
ENQUEUE_CHUNK = 2000
MAX_TEXT = 4096  # Telegram's limits, in UTF-16 units of the text once parsed
MAX_CAPTION = 1024


class AgencyError(ValueError):
    """A request that cannot be done (unknown agency, bad name...); ``key`` is a message key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class BroadcastStep:
    """Where a broadcast stands at one progress tick (see :meth:`AgencyService.progress_step`)."""

    counts: dict[str, int]  # outbox rows per state: queued, sending, sent, unreachable, failed...
    finished: bool  # nothing queued or in flight any more


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    revoked: bool = False


def is_operator(user_id: int | None, admin_ids: frozenset[int] | set[int]) -> bool:
    """True for the Telegram user ids listed in BOT_ADMIN_IDS."""
    return user_id is not None and user_id in admin_ids


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def choose_version(versions: Mapping[str, Any], lang: str) -> str | None:
    """The version a follower using ``lang`` gets: theirs, else English, Malay, Chinese."""
    if lang in versions:
        return lang
    for fallback in FALLBACK_ORDER:
        if fallback in versions:
            return fallback
    return None


def plain_text(key: str, lang: str, **params: Any) -> str:
    """Catalog text with raw (unescaped) parameters, for button labels (not parsed as HTML)."""
    text = catalogs().text(key, lang if lang in LANGS else "en")
    return PLACEHOLDER_RE.sub(lambda m: str(params.get(m.group(1), m.group(0))), text)


def unfollow_markup(agency: Agency, lang: str) -> dict[str, Any]:
    """The footer of every copy: one button naming the agency that stops following it."""
    label = plain_text("broadcast.unfollow_button", lang, agency=agency.name)
    return {"inline_keyboard": [[{"text": label[:64], "callback_data": AgencyUnfollow(agency.code).pack()}]]}


def agency_line(key: str, agency: Agency, lang: str) -> str:
    """``broadcast.header`` or ``broadcast.footer`` naming ``agency`` in ``lang`` (Telegram HTML,
    the name escaped)."""
    text = catalogs().text(key, lang if lang in LANGS else "en")
    return PLACEHOLDER_RE.sub(
        lambda m: str(escape(agency.name)) if m.group(1) == "agency" else m.group(0), text
    )


_TAG_RE = re.compile(r"<[^>]*>")


def html_length(html: str) -> int:
    """How long Telegram counts a Telegram-HTML text: its characters once the tags are gone and
    the entities read, in UTF-16 code units (an emoji outside the BMP counts 2)."""
    plain = unescape(_TAG_RE.sub("", html))
    return len(plain.encode("utf-16-le")) // 2


_UNSENDABLE_TAGS_RE = re.compile(r"</?tg-(?:emoji|time)\b[^>]*>")


def sendable_html(html: str) -> str:
    """A user's formatted message (Telegram HTML made from its entities) as the bot may send it
    to anyone: custom emoji become their ordinary emoji (a bot may send custom emoji only with a
    Fragment username or a Premium owner, and then only in some chats) and a formatted date its
    text; every other tag, and all the text, stays as it is."""
    return _UNSENDABLE_TAGS_RE.sub("", html)


def payload_for(version: Any, agency: Agency | None, lang: str) -> dict[str, Any]:
    """The outbox payload a follower using ``lang`` gets for one broadcast version.

    ``version`` is ``{"text": html}`` (a text: sent with the header line naming the agency and
    the "sent by" footer), ``{"copy": [from_chat_id, message_id], "caption": html}`` (a photo,
    document...: copied with a caption of the header line and the agency's own caption), or
    ``[from_chat_id, message_id]`` (copied as is: versions stored before headers existed).
    An agency's copies carry the unfollow button; broadcasts to everyone have no header.
    """
    markup = unfollow_markup(agency, lang) if agency is not None else None
    if isinstance(version, Mapping) and "text" in version:
        text = str(version["text"])
        if agency is not None:
            header, footer = (agency_line(k, agency, lang) for k in ("broadcast.header", "broadcast.footer"))
            text = f"{header}\n\n{text}\n\n{footer}"
        return {"type": "text", "text": text, "parse_mode": "HTML", "reply_markup": markup}
    if isinstance(version, Mapping):
        from_chat_id, message_id = version["copy"]
        payload: dict[str, Any] = {
            "type": "copy",
            "from_chat_id": int(from_chat_id),
            "message_id": int(message_id),
            "reply_markup": markup,
        }
        if agency is not None:
            caption = str(version.get("caption") or "")
            header = agency_line("broadcast.header", agency, lang)
            payload["caption"] = f"{header}\n\n{caption}" if caption else header
            payload["parse_mode"] = "HTML"
        return payload
    from_chat_id, message_id = version
    return {
        "type": "copy",
        "from_chat_id": int(from_chat_id),
        "message_id": int(message_id),
        "reply_markup": markup,
    }


def version_overflow(version: Any, agency: Agency | None) -> tuple[int, int] | None:
    """None when ``version`` fits Telegram's limits (4096 for a text, 1024 for a caption) once
    the header (and footer) are added in every language; else (the agency's own length, the
    most that fits), both counted as Telegram does (:func:`html_length`)."""
    if not isinstance(version, Mapping):
        return None
    field, limit = ("text", MAX_TEXT) if "text" in version else ("caption", MAX_CAPTION)
    own = html_length(str(version.get(field) or ""))
    room = limit
    for lang in LANGS:
        sent = payload_for(version, agency, lang).get(field)
        if sent is not None:
            room = min(room, limit - (html_length(str(sent)) - own))
    return (own, max(room, 0)) if own > room else None


def group_ref(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


parse_iso_utc = parse_utc_or_none  # the name the handlers import


class AgencyService:
    """Every agency/follower/broadcast query, over one :class:`Storage` connection."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.conn = storage.db.conn

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> dict[str, Any] | None:
        cursor = self.conn.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _all(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- agencies (operators) ----------------------------------------------------------------

    def create_agency(self, name: str, created_by: int | None) -> tuple[Agency, str]:
        """A new agency and its first staff invite token (returned once, stored hashed)."""
        name = " ".join(name.split())
        if not name:
            raise AgencyError("agency.name_missing")
        if len(name) > MAX_NAME:
            raise AgencyError("agency.name_too_long")
        with self.storage.transaction():
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                if self._one("SELECT 1 FROM agencies WHERE code = ?", [code]) is None:
                    break
            self.conn.execute(
                "INSERT INTO agencies (code, name, created_at, created_by) VALUES (?, ?, ?, ?)",
                [code, name, now_text(), created_by],
            )
            token = self.new_invite(code, created_by)
        return Agency(code, name), token

    def new_invite(self, code: str, created_by: int | None) -> str:
        """A fresh single-use staff invite token (>= 128 bits) for agency ``code``."""
        agency = self.get_agency(code)
        if agency is None:
            raise AgencyError("agency.unknown")
        token = secrets.token_urlsafe(24)  # 192 bits
        with self.storage.transaction():
            self.conn.execute(
                "UPDATE agencies SET revoked = 0 WHERE code = ?", [agency.code]
            )
            self.conn.execute(
                "INSERT INTO staff_invites (token_hash, agency, created_at, created_by) "
                "VALUES (?, ?, ?, ?)",
                [hash_token(token), agency.code, now_text(), created_by],
            )
        return token

    def get_agency(self, code: str) -> Agency | None:
        row = self._one(
            "SELECT code, name, revoked FROM agencies WHERE code = ?", [code.strip().lower()]
        )
        return Agency(row["code"], row["name"], bool(row["revoked"])) if row else None

    def list_agencies(self) -> list[dict[str, Any]]:
        """Every agency with its follower, staff and open-invite counts."""
        return self._all(
            "SELECT a.code, a.name, a.revoked, a.created_at, "
            "(SELECT count(*) FROM follows f WHERE f.agency = a.code) AS followers, "
            "(SELECT count(*) FROM staff s WHERE s.agency = a.code) AS staff, "
            "(SELECT count(*) FROM staff_invites i WHERE i.agency = a.code AND i.used_by IS NULL "
            " AND i.revoked = 0) AS open_invites FROM agencies a ORDER BY a.created_at, a.code"
        )

    def followers_by_agency(self) -> list[dict[str, Any]]:
        """Every agency (code, name, revoked) with its number of followers, most followed first."""
        return self._all(
            "SELECT a.code, a.name, a.revoked, count(f.chat_id) AS followers FROM agencies a "
            "LEFT JOIN follows f ON f.agency = a.code GROUP BY a.code ORDER BY followers DESC, a.code"
        )

    def revoke(self, code: str) -> tuple[int, int]:
        """Revoke the agency's unused invite tokens and remove its staff; (invites, staff)."""
        agency = self.get_agency(code)
        if agency is None:
            raise AgencyError("agency.unknown")
        with self.storage.transaction():
            invites = self.conn.execute(
                "UPDATE staff_invites SET revoked = 1 WHERE agency = ? AND revoked = 0 "
                "AND used_by IS NULL",
                [agency.code],
            ).rowcount
            staff = self.conn.execute("DELETE FROM staff WHERE agency = ?", [agency.code]).rowcount
            self.conn.execute("UPDATE agencies SET revoked = 1 WHERE code = ?", [agency.code])
        return invites, staff

    # -- staff ---------------------------------------------------------------------------------

    def redeem_invite(self, token: str, user_id: int) -> Agency | None:
        """Use a staff invite token once: the user becomes staff. None if unknown/used/revoked."""
        digest = hash_token(token)
        with self.storage.transaction():
            row = self._one(
                "SELECT agency FROM staff_invites WHERE token_hash = ? AND used_by IS NULL "
                "AND revoked = 0",
                [digest],
            )
            if row is None:
                return None
            self.conn.execute(
                "UPDATE staff_invites SET used_by = ?, used_at = ? WHERE token_hash = ?",
                [user_id, now_text(), digest],
            )
            self.conn.execute(
                "INSERT INTO staff (user_id, agency, joined_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [user_id, row["agency"], now_text()],
            )
        return self.get_agency(row["agency"])

    def staff_agencies(self, user_id: int) -> list[Agency]:
        """The agencies ``user_id`` is staff of (none for most users)."""
        return [
            Agency(r["code"], r["name"], bool(r["revoked"]))
            for r in self._all(
                "SELECT a.code, a.name, a.revoked FROM staff s JOIN agencies a ON a.code = s.agency "
                "WHERE s.user_id = ? ORDER BY a.name",
                [user_id],
            )
        ]

    def is_staff(self, user_id: int, code: str) -> bool:
        return self._one(
            "SELECT 1 FROM staff WHERE user_id = ? AND agency = ?", [user_id, code]
        ) is not None

    def may_broadcast(self, user_id: int, code: str | None, operator: bool) -> bool:
        """Operators: to everyone (``code=None``) and any agency; staff: their own agency only."""
        if code is None:
            return operator
        if self.get_agency(code) is None:
            return False
        return operator or self.is_staff(user_id, code)

    # -- followers -----------------------------------------------------------------------------

    def follow(self, code: str, chat_id: int) -> tuple[Agency, bool] | None:
        """Follow an agency; (agency, newly followed) or None when the code is unknown."""
        agency = self.get_agency(code)
        if agency is None:
            return None
        with self.storage.transaction():
            added = self.conn.execute(
                "INSERT INTO follows (agency, chat_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [agency.code, chat_id, now_text()],
            ).rowcount
        return agency, bool(added)

    def unfollow(self, code: str, chat_id: int) -> Agency | None:
        """Stop following; the agency, or None when the chat did not follow it."""
        agency = self.get_agency(code)
        if agency is None:
            return None
        with self.storage.transaction():
            removed = self.conn.execute(
                "DELETE FROM follows WHERE agency = ? AND chat_id = ?", [agency.code, chat_id]
            ).rowcount
        return agency if removed else None

    def followed(self, chat_id: int) -> list[Agency]:
        return [
            Agency(r["code"], r["name"], bool(r["revoked"]))
            for r in self._all(
                "SELECT a.code, a.name, a.revoked FROM follows f JOIN agencies a ON a.code = f.agency "
                "WHERE f.chat_id = ? ORDER BY a.name",
                [chat_id],
            )
        ]

    def _audience_sql(self, code: str | None) -> tuple[str, list[Any]]:
        """SELECT chat_id, lang of the audience: an agency's followers, or every user."""
        if code is None:
            return "SELECT u.chat_id AS chat_id, u.lang AS lang FROM users u", []
        return (
            "SELECT f.chat_id AS chat_id, COALESCE(u.lang, 'en') AS lang FROM follows f "
            "LEFT JOIN users u ON u.chat_id = f.chat_id WHERE f.agency = ?",
            [code],
        )

    def audience_by_lang(self, code: str | None) -> dict[str, int]:
        """How many recipients use each language (only languages with at least one)."""
        sql, params = self._audience_sql(code)
        counts = {lang: n for lang, n in self.conn.execute(
            f"SELECT lang, count(*) FROM ({sql}) GROUP BY lang", params
        )}  # fmt: skip
        return {lang: counts[lang] for lang in LANGS if counts.get(lang)}

    def _recipients(self, code: str | None, audience: str) -> Iterator[tuple[int, str]]:
        sql, params = self._audience_sql(code)
        if audience != "all":
            sql = f"SELECT chat_id, lang FROM ({sql}) WHERE lang = ?"
            params = [*params, audience]
        yield from self.conn.execute(sql, params)

    # -- broadcasts ----------------------------------------------------------------------------

    def create_broadcast(
        self,
        outbox: Outbox,
        *,
        agency: str | None,
        created_by: int,
        versions: Mapping[str, Any],
        audience: str = "all",
        scheduled_at: datetime | None = None,
        progress_chat_id: int | None = None,
        progress_message_id: int | None = None,
    ) -> tuple[int, int]:
        """Confirm a broadcast: its row and one outbox row per recipient, in ONE transaction.

        ``versions``: {lang: {"text": html}} (texts), {lang: {"copy": [from_chat_id, message_id],
        "caption": html}} (media, copied with the header as caption) or {lang: [from_chat_id,
        message_id]} (copied as is); see :func:`payload_for`. A version too long once the header
        is added raises ``broadcast.too_long`` (the compose handler says so earlier, with figures).
        Returns (broadcast id, recipients enqueued).
        """
        versions = {lang: v for lang, v in versions.items() if lang in LANGS}
        if not versions:
            raise AgencyError("broadcast.no_versions")
        if audience != "all" and audience not in LANGS:
            raise AgencyError("broadcast.bad_audience")
        found = self.get_agency(agency) if agency is not None else None
        if agency is not None and found is None:
            raise AgencyError("agency.unknown")
        if any(version_overflow(v, found) for v in versions.values()):
            raise AgencyError("broadcast.too_long")
        now = utc_now()
        due = scheduled_at.astimezone(UTC) if scheduled_at is not None else None
        state = "scheduled" if due is not None and due > now else "sending"
        payloads = {
            lang: payload_for(versions[choose_version(versions, lang)], found, lang)  # type: ignore[index]
            for lang in LANGS
        }
        with self.storage.transaction():
            cursor = self.conn.execute(
                "INSERT INTO broadcasts (agency, created_by, state, versions, audience, "
                "scheduled_at, created_at, progress_chat_id, progress_message_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    found.code if found else None,
                    created_by,
                    state,
                    json.dumps(versions, ensure_ascii=False),
                    audience,
                    utc_text(due) if due else None,
                    now_text(),
                    progress_chat_id,
                    progress_message_id,
                ],
            )
            broadcast_id = int(cursor.lastrowid)
            ref = group_ref(broadcast_id)
            recipients = self._recipients(found.code if found else None, audience)
            count = 0
            while chunk := list(itertools.islice(recipients, ENQUEUE_CHUNK)):
                # Chunks keep memory flat; all of them are inside this one transaction.
                count += outbox.enqueue_many(
                    {
                        "chat_id": chat_id,
                        "kind": KIND,
                        "dedupe_key": f"{ref}:{chat_id}",
                        "payload": payloads.get(lang, payloads["en"]),
                        "lang": lang,
                        "not_before": due,
                        "group_ref": ref,
                    }
                    for chat_id, lang in chunk
                )
            self.conn.execute(
                "UPDATE broadcasts SET recipients = ? WHERE id = ?", [count, broadcast_id]
            )
        return broadcast_id, count

    @staticmethod
    def payload(version: Any, agency: Agency | None, lang: str) -> dict[str, Any]:
        """The outbox payload a follower using ``lang`` gets for ``version`` (see
        :func:`payload_for`); the compose preview sends exactly this."""
        return payload_for(version, agency, lang)

    def get_broadcast(self, broadcast_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM broadcasts WHERE id = ?", [broadcast_id])

    def pending_reports(self) -> list[dict[str, Any]]:
        """Broadcasts scheduled or sending, and cancelled ones whose report is not yet sent."""
        return self._all(
            "SELECT * FROM broadcasts WHERE state IN ('scheduled', 'sending') "
            "OR (state = 'cancelled' AND finished_at IS NULL) ORDER BY id"
        )

    def visible_broadcasts(
        self, user_id: int, operator: bool, *, active_only: bool = False, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The newest broadcasts ``user_id`` may see: operators all, staff their agencies'."""
        where = ["1 = 1"] if operator else [
            "agency IN (SELECT agency FROM staff WHERE user_id = ?)"
        ]
        params: list[Any] = [] if operator else [user_id]
        if active_only:
            where.append("state IN ('scheduled', 'sending')")
        return self._all(
            f"SELECT * FROM broadcasts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )

    def may_manage(self, broadcast: Mapping[str, Any], user_id: int, operator: bool) -> bool:
        """Operators manage every broadcast; staff only their own agency's."""
        if operator:
            return True
        return broadcast["agency"] is not None and self.is_staff(user_id, broadcast["agency"])

    def progress(self, outbox: Outbox, broadcast_id: int) -> dict[str, int]:
        return outbox.group_progress(group_ref(broadcast_id))

    def set_state(self, broadcast_id: int, state: str, *, finished: bool = False) -> None:
        with self.storage.transaction():
            self.conn.execute(
                "UPDATE broadcasts SET state = ?, finished_at = CASE WHEN ? THEN ? ELSE "
                "finished_at END WHERE id = ?",
                [state, int(finished), now_text(), broadcast_id],
            )

    def set_progress_message(
        self, broadcast_id: int, chat_id: int | None, message_id: int | None
    ) -> None:
        with self.storage.transaction():
            self.conn.execute(
                "UPDATE broadcasts SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
                [chat_id, message_id, broadcast_id],
            )

    def set_last_progress(self, broadcast_id: int, text: str) -> None:
        with self.storage.transaction():
            self.conn.execute(
                "UPDATE broadcasts SET last_progress = ? WHERE id = ?", [text, broadcast_id]
            )

    def cancel(self, outbox: Outbox, broadcast_id: int) -> int:
        """Cancel the queued rows (rows already claimed still go) and mark it cancelled; the
        progress job sends the final report once nothing is in flight (finished_at)."""
        with self.storage.transaction():
            count = outbox.cancel_group(group_ref(broadcast_id))
            self.conn.execute(
                "UPDATE broadcasts SET state = 'cancelled' WHERE id = ? "
                "AND state IN ('scheduled', 'sending')",
                [broadcast_id],
            )
        return count

    # -- the lifecycle: scheduled -> sending -> done (or cancelled), progress, final report ------
    #
    # The progress job (bot/handlers/broadcast.py) calls, for each of :meth:`pending_reports`:
    # :meth:`start_if_due`, then :meth:`progress_step`; it edits the progress message when
    # :meth:`needs_progress_edit` says so (then :meth:`set_last_progress`), and once the step is
    # finished calls :meth:`finish`, which says whether the final report goes.

    def start_if_due(self, row: dict[str, Any], now: datetime) -> bool | None:
        """A scheduled broadcast whose time has come moves to "sending" (``row`` too).

        Returns None while it is still waiting (nothing else to do this tick), True when it just
        started (the caller posts a fresh progress message and stores it with
        :meth:`set_progress_message`), False when it was not scheduled."""
        if row["state"] != "scheduled":
            return False
        due = parse_iso_utc(row["scheduled_at"])
        if due is not None and due > now:
            return None
        self.set_state(row["id"], "sending")
        row["state"] = "sending"
        return True

    def progress_step(self, outbox: Outbox, row: Mapping[str, Any]) -> BroadcastStep:
        counts = self.progress(outbox, row["id"])
        return BroadcastStep(counts, counts["queued"] + counts["sending"] == 0)

    @staticmethod
    def needs_progress_edit(row: Mapping[str, Any], text: str) -> bool:
        """Whether the progress message exists and would change with ``text``."""
        return bool(
            row["progress_chat_id"] and row["progress_message_id"] and text != row["last_progress"]
        )

    def finish(self, row: Mapping[str, Any]) -> bool:
        """Close a finished broadcast: "sending" becomes "done" (a cancelled one stays cancelled),
        with ``finished_at``. Returns whether the final report is to be sent to its chat."""
        self.set_state(row["id"], "done" if row["state"] == "sending" else row["state"], finished=True)
        return bool(row["progress_chat_id"]) and bool(
            row["state"] == "sending" or row["progress_message_id"]
        )
