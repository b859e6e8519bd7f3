"""Records and errors of the local Bot API server.

The plain data every other module of the package shares: the error answer (``ApiError``),
one message of a chat transcript (``ChatMessage``), one bot send (``SentRecord``), the
server's counters (``Stats``), the users, files and uploads it keeps, and the JSON encoding
of its answers. No behaviour of the server lives here.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

#: Methods subject to the flood limits by default.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "sendDocument",
        "sendPhoto",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
    }
)

GET_FILE_LIMIT = 20 * 1024 * 1024


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would answer with."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad(description: str) -> ApiError:
    """A 400 answer: ``Bad Request: <description>``."""
    return ApiError(400, f"Bad Request: {description}")


class SentRecord(NamedTuple):
    """One successful bot send (a new message in a chat)."""

    method: str
    chat_id: int
    message_id: int
    time: float  # time.monotonic()


@dataclass
class ChatMessage:
    """One message in a chat transcript (user or bot), in its current state."""

    message_id: int
    chat_id: int
    from_bot: bool
    text: str | None  # text or caption exactly as sent (HTML source when parse_mode=HTML)
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    kind: str  # "text" | "photo" | "document" | "copy"
    date: int
    edits: list[tuple[str | None, dict[str, Any] | None]] = field(default_factory=list)
    deleted: bool = False
    plain_text: str | None = None  # text/caption after entity parsing
    entities: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] | None = None  # {"type": "photo"|"document", "file_id", ...}
    copied_from: tuple[int, int] | None = None  # (chat_id, message_id) of the original
    sender_id: int = 0
    method: str = ""
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    seq: int = 0
    edit_seqs: list[int] = field(default_factory=list)

    @property
    def caption(self) -> str | None:
        """Caption of a media message (alias of ``text`` for media kinds)."""
        return self.text if self.media else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, flattened row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [b for row in rows for b in row]

    @property
    def callback_data(self) -> list[str]:
        """The callback_data of every callback button, in order."""
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]


@dataclass
class Stats:
    """Counters updated by the server."""

    calls: Counter = field(default_factory=Counter)
    rate_limited: int = 0
    early_retries: int = 0
    faults: Counter = field(default_factory=Counter)
    updates_created: int = 0
    webhook_deliveries: int = 0
    webhook_failures: int = 0
    allowed_updates_sent: int = 0  # getUpdates calls that carried allowed_updates
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (method, 400 description)


def as_int(value: Any, name: str) -> int:
    """An integer parameter (JSON number or decimal string), else 400 ``invalid <name>``."""
    if isinstance(value, bool):
        raise bad(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    raise bad(f"invalid {name} specified")


@dataclass
class User:
    """A user the server knows; their private chat has the same id."""

    user_id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None

    def as_dict(self) -> dict[str, Any]:
        """The Telegram User object."""
        d: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def chat_dict(self) -> dict[str, Any]:
        """The Telegram Chat object of the private chat."""
        d: dict[str, Any] = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class File:
    """A stored photo or document (sent by a user or uploaded by the bot)."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_name: str | None
    mime_type: str | None

    def path(self) -> str:
        """The ``file_path`` getFile answers (and the download URL uses)."""
        folder = "photos" if self.kind == "photo" else "documents"
        suffix = (
            Path(self.file_name).suffix
            if self.file_name
            else (".jpg" if self.kind == "photo" else "")
        )
        return f"{folder}/file_{self.file_unique_id}{suffix}"


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None


def scope_key(scope: str | dict[str, Any]) -> str:
    """The key a BotCommandScope (or a short name like ``"default"``) is stored under."""
    if isinstance(scope, str):
        return scope
    kind = scope.get("type", "default")
    parts = [kind]
    if "chat_id" in scope:
        parts.append(str(scope["chat_id"]))
    if "user_id" in scope:
        parts.append(str(scope["user_id"]))
    return ":".join(parts)


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DUMPS_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def encode_json(body: Any) -> bytes:
    """UTF-8 JSON; a lone surrogate (a user's text may carry one) goes out as a \\uXXXX
    escape, as JSON allows, instead of failing to encode."""
    try:
        return _DUMPS(body).encode("utf-8")
    except UnicodeEncodeError:
        return _DUMPS_ASCII(body).encode("ascii")
