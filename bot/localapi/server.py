"""Local Telegram Bot API server for tests, benchmarks and the terminal chat.

The server speaks the real Bot API over HTTP (``/bot<TOKEN>/<method>``), so the bot's
python-telegram-bot ``Application``/``Bot`` talks to it exactly as to api.telegram.org by
passing ``base_url=server.base_url``. Tests drive the "users" in-process (``send_text``,
``send_media``, ``press_button``) and inspect transcripts (``chat``), sends, command menus
and statistics. Rate limits, blocked/deactivated users and random faults can be simulated.

Method names and required parameters come from ``methods.json`` (generated from the Bot API
10.0 spec by ``make_methods.py``); a subset of methods has real behaviour, the rest answer
``true`` and are recorded in ``server.requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

__all__ = [
    "ApiError",
    "ChatMessage",
    "FaultPlan",
    "LocalBotAPI",
    "SentRecord",
    "Stats",
    "parse_html",
    "serve_forever",
    "utf16_len",
]

_METHODS_PATH = Path(__file__).with_name("methods.json")

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

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


# --------------------------------------------------------------------------------------
# Errors and records
# --------------------------------------------------------------------------------------


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


def _bad(description: str) -> ApiError:
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
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (method, 400 description)


@dataclass
class FaultPlan:
    """Random fault injection (seeded by the server's ``seed``).

    ``kinds``: "500", "502", "timeout" (hold ``timeout_delay`` s then 504), "429"
    (retry_after=``retry_after``), "403" (blocked), "chat_not_found", and
    "deliver_then_timeout" (the send is performed, then the answer is held like "timeout":
    a lost response), "401" (Unauthorized: a revoked token) and "404" (Not Found: what
    Telegram answers when the base URL lacks its ``/bot`` path). ``methods=None`` means
    every method except ``exclude``.
    """

    rate: float = 0.1
    kinds: tuple[str, ...] = ("500", "502", "timeout", "429", "403", "chat_not_found")
    methods: set[str] | frozenset[str] | None = None
    exclude: frozenset[str] = frozenset({"getUpdates"})
    timeout_delay: float = 10.0
    retry_after: int = 1

    def applies_to(self, method: str) -> bool:
        """Whether this plan may fault ``method``."""
        if method in self.exclude:
            return False
        return self.methods is None or method in self.methods


# --------------------------------------------------------------------------------------
# Telegram HTML
# --------------------------------------------------------------------------------------

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z]{1,8}));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_RE = re.compile(
    r"""\s*([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
_PLAIN_RUN = re.compile(r"[^<&]+")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's unit for lengths/offsets)."""
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate (JSON may carry "\ud800") counts as one code unit
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


def _html_error(message: str) -> ApiError:
    return _bad(f"can't parse entities: {message}")


def _decode_entities(src: str, start: int, end: int) -> str:
    """Decode character entities inside an attribute value (strict)."""
    out: list[str] = []
    i = start
    while i < end:
        j = src.find("&", i, end)
        if j < 0:
            out.append(src[i:end])
            break
        out.append(src[i:j])
        ch, i = _entity_at(src, j)
        out.append(ch)
    return "".join(out)


def _entity_at(src: str, i: int) -> tuple[str, int]:
    m = _ENTITY_RE.match(src, i)
    if m:
        dec, hexa, name = m.groups()
        if name is not None:
            ch = _NAMED_ENTITIES.get(name)
            if ch is not None:
                return ch, m.end()
        else:
            code = int(dec) if dec is not None else int(hexa, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), m.end()
    raise _html_error(
        f"Character entity expected at byte offset {_byte_offset(src, i)}: "
        "use &amp; for a literal &"
    )


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-HTML into (plain text, entities) like Telegram does, strictly.

    Raises ApiError(400, "Bad Request: can't parse entities: ...") on unsupported tags,
    unclosed or mismatched tags, a bare ``<`` or a ``&`` that is not an entity.
    """
    if "<" not in src and "&" not in src:
        return src, []
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == "&":
            ch, i = _entity_at(src, i)
            out.append(ch)
            pos16 += 2 if ord(ch) > 0xFFFF else 1
            continue
        if c != "<":
            m = _PLAIN_RUN.match(src, i)
            assert m is not None
            piece = m.group()
            out.append(piece)
            pos16 += utf16_len(piece)
            i = m.end()
            continue
        tag_offset = i
        if src.startswith("</", i):
            j = src.find(">", i)
            if j < 0:
                raise _html_error(
                    f"Unclosed end tag at byte offset {_byte_offset(src, tag_offset)}"
                )
            name = src[i + 2 : j].strip().lower()
            if not stack:
                raise _html_error(
                    f'Unexpected end tag "{name}" at byte offset {_byte_offset(src, tag_offset)}'
                )
            open_name, etype, start16, attrs = stack.pop()
            if name != open_name:
                raise _html_error(
                    f"Unmatched end tag at byte offset {_byte_offset(src, tag_offset)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            i = j + 1
            length = pos16 - start16
            if length <= 0:
                continue
            entity: dict[str, Any] = {"type": etype, "offset": start16, "length": length}
            if etype == "text_link":
                href = attrs.get("href", "")
                if not href:
                    continue
                entity["url"] = href
            elif etype == "custom_emoji":
                entity["custom_emoji_id"] = attrs.get("emoji-id", "")
            elif etype == "blockquote" and "expandable" in attrs:
                entity["type"] = "expandable_blockquote"
            elif etype == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> is one pre entity with a language
                lang = attrs.get("class", "")
                if lang.startswith("language-"):
                    stack[-1][3]["language"] = lang[len("language-") :]
                continue
            elif etype == "pre" and attrs.get("language"):
                entity["language"] = attrs["language"]
            entities.append(entity)
            continue
        # start tag
        m = _TAG_NAME_RE.match(src, i + 1)
        assert m is not None
        name = m.group().lower()
        if not name or name not in _TAGS:
            raise _html_error(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, tag_offset)}'
            )
        i = m.end()
        attrs: dict[str, str] = {}
        while True:
            while i < n and src[i].isspace():
                i += 1
            if i >= n:
                raise _html_error(
                    f"Unclosed start tag at byte offset {_byte_offset(src, tag_offset)}"
                )
            if src[i] == ">":
                i += 1
                break
            if src.startswith("/>", i):
                raise _html_error(
                    f'Unsupported self-closing tag "{name}" at byte offset '
                    f"{_byte_offset(src, tag_offset)}"
                )
            am = _ATTR_RE.match(src, i)
            if not am or am.end() == i:
                raise _html_error(
                    f"Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {_byte_offset(src, i)}'
                )
            aname = am.group(1).lower()
            for group in (2, 3, 4):
                if am.group(group) is not None:
                    value = _decode_entities(src, am.start(group), am.end(group))
                    break
            else:
                value = ""
            attrs[aname] = value
            i = am.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _html_error(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(src, tag_offset)}"
            )
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise _html_error(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(src, tag_offset)}"
            )
        stack.append((name, _TAGS[name], pos16, attrs))
    if stack:
        raise _html_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _load_methods() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, frozenset]]:
    data = json.loads(_METHODS_PATH.read_text(encoding="utf-8"))["methods"]
    canonical = {name.lower(): name for name in data}
    required = {name: tuple(spec["required"]) for name, spec in data.items()}
    strings = {name: frozenset(spec["strings"]) for name, spec in data.items()}
    return canonical, required, strings


_CANONICAL, _REQUIRED, _STRING_FIELDS = _load_methods()


def _valid_button_url(url: Any) -> bool:
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() for c in url):
        return False
    low = url.lower()
    if low.startswith(("http://", "https://")):
        host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        host = host.rsplit("@", 1)[-1].split(":", 1)[0]
        return bool(host) and "." in host or host == "localhost"
    return low.startswith("tg://") and len(url) > 5


def validate_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Check a reply_markup like Telegram; returns the normalised dict (or None)."""
    if markup is None:
        return None
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            raise _bad("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        for row in rows:
            if not isinstance(row, list):
                raise _bad("can't parse inline keyboard button: row must be an Array")
            for button in row:
                _validate_inline_button(button)
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                text = (
                    button
                    if isinstance(button, str)
                    else (button.get("text") if isinstance(button, dict) else None)
                )
                if not isinstance(text, str) or not text:
                    raise _bad("can't parse keyboard button: Text must be non-empty")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise _bad('can\'t find field "inline_keyboard"')


def _validate_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _bad("can't parse inline keyboard button: Text must be non-empty")
    actions = [a for a in _BUTTON_ACTIONS if a in button]
    if not actions:
        raise _bad("text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise _bad(
            "can't parse inline keyboard button: exactly one of the optional fields must be used"
        )
    action = actions[0]
    if action == "callback_data":
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise _bad("BUTTON_DATA_INVALID")
    elif action == "url" and not _valid_button_url(button["url"]):
        raise _bad(f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL")


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    raise _bad(f"invalid {name} specified")


# --------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------


class _Notifier:
    """Wake every waiter on each state change (no polling)."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float) -> Any:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                result = predicate()
                if result:
                    return result
                raise TimeoutError(f"condition not met within {timeout} s") from None


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


@dataclass
class _User:
    user_id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def chat_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_name: str | None
    mime_type: str | None

    def path(self) -> str:
        folder = "photos" if self.kind == "photo" else "documents"
        suffix = (
            Path(self.file_name).suffix
            if self.file_name
            else (".jpg" if self.kind == "photo" else "")
        )
        return f"{folder}/file_{self.file_unique_id}{suffix}"


class LocalBotAPI:
    """An in-process fake of api.telegram.org speaking real HTTP (see module docstring)."""

    def __init__(
        self,
        *,
        rate_limit: float | None = 30.0,
        per_chat_rate: float | None = None,
        seed: int = 0,
        bot_username: str = "perkeso_local_bot",
        bot_first_name: str = "PERKESO Local Bot",
        token: str | None = None,
        early_retry_grace: float = 0.05,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        self.rate_limit = rate_limit
        self.per_chat_rate = per_chat_rate
        self.rate_limited_methods: set[str] = set(SENDING_METHODS)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.token = token
        self.early_retry_grace = early_retry_grace
        self.webhook_retry_delay = webhook_retry_delay
        self.random = random.Random(seed)
        self.faults: FaultPlan | None = None
        self.stats = Stats()

        self.sent: list[SentRecord] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.chat_actions: list[tuple[int, str]] = []

        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._bot_id = int(token.split(":", 1)[0]) if token else 123456
        self._users: dict[int, _User] = {}
        self._blocked: set[int] = set()
        self._deactivated: set[int] = set()
        self._chats: dict[int, list[ChatMessage]] = {}
        self._index: dict[tuple[int, int], ChatMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, _File] = {}
        self._file_paths: dict[str, _File] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._callbacks: dict[str, dict[str, Any]] = {}
        self._callback_counter = itertools.count(1)
        self._extra: dict[str, Any] = {}

        self._pending: deque[dict[str, Any]] = deque()
        self._next_update_id = 1
        self._allowed_updates: list[str] | None = None
        self._update_waiters: list[asyncio.Future[None]] = []
        self._poll_generation = 0

        self._webhook: dict[str, Any] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_wake: asyncio.Event | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._http: aiohttp.ClientSession | None = None

        self._window: deque[float] = deque()
        self._blocked_until = 0.0
        self._blocked_since = 0.0
        self._chat_windows: dict[int, deque[float]] = {}
        self._chat_blocked: dict[int, tuple[float, float]] = {}

        self._seq = 0
        self._last_user_seq: dict[int, int] = {}
        self._notifier = _Notifier()
        self._subscribers: dict[int, list[asyncio.Queue]] = {}
        self._stopping: asyncio.Event | None = None

        self._handlers: dict[str, Callable[[dict[str, Any], str], Any]] = {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageCaption": self._m_edit_message_caption,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "answerCallbackQuery": self._m_answer_callback_query,
            "copyMessage": self._m_copy_message,
            "sendDocument": self._m_send_document,
            "sendPhoto": self._m_send_photo,
            "deleteMessage": self._m_delete_message,
            "sendChatAction": self._m_send_chat_action,
            "getChat": self._m_get_chat,
            "getFile": self._m_get_file,
            "close": self._m_true,
            "logOut": self._m_true,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> LocalBotAPI:
        """Start listening; ``port=0`` picks a free port (see ``self.port``)."""
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.host = host
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop the server, the webhook sender and release every held request."""
        if self._stopping is not None:
            self._stopping.set()
        self._wake_pollers()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Pass to PTB as ``base_url`` (PTB appends the token)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Pass to PTB as ``base_file_url``."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        return {
            "id": self._bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # ------------------------------------------------------------------ test controls: users

    def add_user(
        self,
        user_id: int,
        *,
        language_code: str | None = "en",
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
    ) -> None:
        """Register a user (private chat) that the bot may message without prior contact."""
        self._users[user_id] = _User(user_id, first_name, last_name, username, language_code)
        self._chats.setdefault(user_id, [])

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends answer 403."""
        self._blocked.add(chat_id)

    def deactivate(self, chat_id: int) -> None:
        """The user deletes their account: sends answer 403 "user is deactivated"."""
        self._deactivated.add(chat_id)

    def _touch_user(
        self,
        user_id: int,
        language_code: str | None,
        first_name: str,
        last_name: str | None,
        username: str | None,
    ) -> _User:
        if user_id in self._deactivated:
            raise ValueError(f"user {user_id} is deactivated")
        user = self._users.get(user_id)
        if user is None:
            user = _User(user_id, first_name, last_name, username, language_code)
            self._users[user_id] = user
        else:
            user.language_code = language_code
            user.first_name = first_name
            if last_name is not None:
                user.last_name = last_name
            if username is not None:
                user.username = username
        self._chats.setdefault(user_id, [])
        self._blocked.discard(user_id)
        return user

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A user sends ``text`` to the bot in their private chat; returns the Message dict."""
        user = self._touch_user(user_id, language_code, first_name, last_name, username)
        entities: list[dict[str, Any]] = []
        if text.startswith("/"):
            cmd = text.split(maxsplit=1)[0] if text.strip() else text
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(cmd)})
        msg = self._store(
            user_id,
            from_bot=False,
            text=text,
            parse_mode=None,
            reply_markup=None,
            kind="text",
            plain=text,
            entities=entities,
            sender_id=user.user_id,
            reply_to=reply_to_message_id,
        )
        self._last_user_seq[user_id] = msg.seq
        as_dict = self.message_dict(msg)
        self._push_update({"message": as_dict})
        return as_dict

    async def send_media(
        self,
        user_id: int,
        *,
        photo: bool = False,
        document_name: str | None = None,
        caption: str | None = None,
        caption_entities: list[dict[str, Any]] | None = None,
        data: bytes | None = None,
        mime_type: str | None = None,
        language_code: str | None = "en",
        first_name: str = "Test",
    ) -> dict[str, Any]:
        """A user sends a photo (``photo=True``) or a document; returns the Message dict."""
        if photo == bool(document_name):
            raise ValueError("pass exactly one of photo=True or document_name=...")
        user = self._touch_user(user_id, language_code, first_name, None, None)
        kind = "photo" if photo else "document"
        payload = data if data is not None else f"fake {kind} from {user_id}".encode()
        if mime_type is None:
            mime_type = "image/jpeg" if photo else _guess_mime(document_name or "")
        file = self._new_file(kind, payload, document_name, mime_type)
        msg = self._store(
            user_id,
            from_bot=False,
            text=caption,
            parse_mode=None,
            reply_markup=None,
            kind=kind,
            plain=caption,
            entities=list(caption_entities or []),
            sender_id=user.user_id,
            media=self._media_info(file),
        )
        self._last_user_seq[user_id] = msg.seq
        as_dict = self.message_dict(msg)
        self._push_update({"message": as_dict})
        return as_dict

    async def send_document(
        self,
        user_id: int,
        file_name: str,
        data: bytes,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """A user sends the file ``data`` named ``file_name`` (a document); returns the Message."""
        return await self.send_media(
            user_id,
            document_name=file_name,
            data=data,
            caption=caption,
            mime_type=mime_type,
            language_code=language_code,
        )

    def file_bytes(self, file_id: str) -> bytes:
        """The content of a stored file (one a user or the bot sent): what a download returns."""
        file = self._files.get(file_id)
        if file is None:
            raise KeyError(f"no file {file_id!r}")
        return file.data

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        strict: bool = True,
    ) -> str:
        """The user taps a callback button; returns the callback query id.

        With ``strict`` the message must exist and currently show that callback button.
        """
        msg = self._index.get((user_id, message_id))
        if strict:
            if msg is None or msg.deleted:
                raise ValueError(f"no message {message_id} in chat {user_id}")
            if callback_data not in msg.callback_data:
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}"
                    f" (has {msg.callback_data})"
                )
        user = self._users.get(user_id)
        if user is None:
            user = self._touch_user(user_id, "en", "Test", None, None)
        query_id = f"{self._bot_id}{next(self._callback_counter):010d}"
        query: dict[str, Any] = {
            "id": query_id,
            "from": user.as_dict(),
            "chat_instance": str(-(abs(hash((self._bot_id, user_id))) % 10**18)),
            "data": callback_data,
        }
        if msg is not None:
            query["message"] = self.message_dict(msg)
        self._callbacks[query_id] = {
            "user_id": user_id,
            "message_id": message_id,
            "answered": False,
        }
        self._seq += 1
        self._last_user_seq[user_id] = self._seq
        self._push_update({"callback_query": query})
        return query_id

    # ------------------------------------------------------------------ test controls: views

    def chat(self, chat_id: int) -> list[ChatMessage]:
        """The transcript of a chat in order (deleted messages included, flagged)."""
        return list(self._chats.get(chat_id, ()))

    def bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        """Bot messages of a chat in order."""
        return [
            m
            for m in self._chats.get(chat_id, ())
            if m.from_bot and (include_deleted or not m.deleted)
        ]

    def message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        """One message by id (or None)."""
        return self._index.get((chat_id, message_id))

    def commands(
        self, scope: str | dict[str, Any] = "default", language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command list registered for exactly this scope + language_code."""
        return list(self._commands.get((_scope_key(scope), language_code or ""), []))

    def effective_commands(self, user_id: int, language_code: str = "") -> list[dict[str, str]]:
        """The menu a private-chat user would see, resolved like Telegram's clients."""
        for scope in ({"type": "chat", "chat_id": user_id}, "all_private_chats", "default"):
            key = _scope_key(scope)
            for lang in (language_code, "") if language_code else ("",):
                if (key, lang) in self._commands:
                    return list(self._commands[(key, lang)])
        return []

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every recorded call of ``method``."""
        return [params for name, params in self.requests if name == method]

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed (polling) or delivered (webhook)."""
        return len(self._pending)

    @property
    def webhook_url(self) -> str:
        """The current webhook url ("" when polling)."""
        return self._webhook["url"] if self._webhook else ""

    def subscribe(self, chat_id: int) -> asyncio.Queue:
        """A queue receiving ("message"|"edit"|"delete", ChatMessage) for a chat's bot side."""
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.setdefault(chat_id, []).append(queue)
        return queue

    def unsubscribe(self, chat_id: int, queue: asyncio.Queue) -> None:
        """Stop feeding a queue from ``subscribe``."""
        with contextlib.suppress(KeyError, ValueError):
            self._subscribers[chat_id].remove(queue)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait (event-driven) until ``predicate()`` is truthy; returns its value.

        Raises TimeoutError. Re-checked after every server state change.
        """
        return await self._notifier.wait_until(predicate, timeout)

    def _since_seq(
        self, chat_id: int, after_message_id: int | None
    ) -> Callable[[ChatMessage], bool]:
        if after_message_id is not None:
            return lambda m: m.message_id > after_message_id
        seq = self._last_user_seq.get(chat_id, 0)
        return lambda m: m.seq > seq

    async def wait_for_bot_message(
        self,
        chat_id: int,
        *,
        after_message_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ChatMessage:
        """The first bot message in ``chat_id`` newer than ``after_message_id``.

        Default: newer than the user's latest action in that chat (race-free after
        ``send_text``/``press_button``).
        """
        msgs = await self.wait_for_bot_messages(
            chat_id, 1, after_message_id=after_message_id, timeout=timeout
        )
        return msgs[0]

    async def wait_for_bot_messages(
        self,
        chat_id: int,
        count: int,
        *,
        after_message_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ChatMessage]:
        """Wait for ``count`` new bot messages (see ``wait_for_bot_message``)."""
        newer = self._since_seq(chat_id, after_message_id)

        def found() -> list[ChatMessage] | None:
            msgs = [m for m in self._chats.get(chat_id, ()) if m.from_bot and newer(m)]
            return msgs[:count] if len(msgs) >= count else None

        return await self.wait_until(found, timeout)

    async def wait_for_edit(
        self,
        chat_id: int,
        message_id: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        after_edits: int | None = None,
    ) -> ChatMessage:
        """Wait until the message is edited; returns it (current state, ``edits`` = history).

        Default: an edit made after the user's latest action in that chat; or pass
        ``after_edits`` = the number of edits already seen.
        """
        seq = self._last_user_seq.get(chat_id, 0)

        def edited() -> ChatMessage | None:
            msg = self._index.get((chat_id, message_id))
            if msg is None:
                return None
            if after_edits is not None:
                return msg if len(msg.edits) > after_edits else None
            return msg if msg.edit_seqs and msg.edit_seqs[-1] > seq else None

        return await self.wait_until(edited, timeout)

    async def wait_for_callback_answer(self, query_id: str, timeout: float = 5.0) -> dict:  # noqa: ASYNC109
        """Wait until the bot answers callback query ``query_id``; returns the answer."""

        def answered() -> dict | None:
            for ans in self.callback_answers:
                if ans["callback_query_id"] == query_id:
                    return ans
            return None

        return await self.wait_until(answered, timeout)

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every update has been confirmed/delivered."""
        await self.wait_until(lambda: not self._pending, timeout)

    # ------------------------------------------------------------------ storage

    def _store(
        self,
        chat_id: int,
        *,
        from_bot: bool,
        text: str | None,
        parse_mode: str | None,
        reply_markup: dict[str, Any] | None,
        kind: str,
        plain: str | None,
        entities: list[dict[str, Any]],
        sender_id: int,
        media: dict[str, Any] | None = None,
        copied_from: tuple[int, int] | None = None,
        method: str = "",
        reply_to: int | None = None,
    ) -> ChatMessage:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        self._seq += 1
        msg = ChatMessage(
            message_id=message_id,
            chat_id=chat_id,
            from_bot=from_bot,
            text=text,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            kind=kind,
            date=int(time.time()),
            plain_text=plain,
            entities=entities,
            media=media,
            copied_from=copied_from,
            sender_id=sender_id,
            method=method,
            reply_to_message_id=reply_to,
            seq=self._seq,
        )
        self._chats.setdefault(chat_id, []).append(msg)
        self._index[(chat_id, message_id)] = msg
        if from_bot:
            self.sent.append(SentRecord(method, chat_id, message_id, time.monotonic()))
            self._publish(chat_id, "message", msg)
        self._notifier.notify()
        return msg

    def _publish(self, chat_id: int, event: str, msg: ChatMessage) -> None:
        for queue in self._subscribers.get(chat_id, ()):
            queue.put_nowait((event, msg))

    def message_dict(self, msg: ChatMessage) -> dict[str, Any]:
        """The Telegram Message object for a stored message (current state)."""
        if msg.from_bot:
            sender = self.bot_user
        else:
            user = self._users.get(msg.sender_id)
            sender = (
                user.as_dict()
                if user
                else {"id": msg.sender_id, "is_bot": False, "first_name": "Test"}
            )
        user = self._users.get(msg.chat_id)
        chat = (
            user.chat_dict()
            if user
            else {"id": msg.chat_id, "type": "private", "first_name": "Test"}
        )
        d: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": sender,
            "chat": chat,
            "date": msg.date,
        }
        if msg.edit_date:
            d["edit_date"] = msg.edit_date
        media = msg.media
        if media is None:
            if msg.plain_text is not None:
                d["text"] = msg.plain_text
                if msg.entities:
                    d["entities"] = msg.entities
        else:
            if media["type"] == "photo":
                d["photo"] = [
                    {
                        "file_id": media["file_id"],
                        "file_unique_id": media["file_unique_id"],
                        "width": 320,
                        "height": 320,
                        "file_size": media["file_size"],
                    }
                ]
            else:
                doc = {
                    "file_id": media["file_id"],
                    "file_unique_id": media["file_unique_id"],
                    "file_size": media["file_size"],
                }
                if media.get("file_name"):
                    doc["file_name"] = media["file_name"]
                if media.get("mime_type"):
                    doc["mime_type"] = media["mime_type"]
                d["document"] = doc
            if msg.plain_text:
                d["caption"] = msg.plain_text
                if msg.entities:
                    d["caption_entities"] = msg.entities
        if msg.reply_to_message_id is not None:
            replied = self._index.get((msg.chat_id, msg.reply_to_message_id))
            if replied is not None and replied is not msg:
                inner = self.message_dict(replied)
                inner.pop("reply_to_message", None)
                d["reply_to_message"] = inner
        if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
            d["reply_markup"] = msg.reply_markup
        return d

    def _new_file(
        self, kind: str, data: bytes, file_name: str | None, mime_type: str | None
    ) -> _File:
        n = next(self._file_counter)
        unique = hashlib.blake2b(f"{kind}:{n}".encode(), digest_size=8).hexdigest()
        prefix = "AgAC" if kind == "photo" else "BQAC"
        file = _File(f"{prefix}{unique}{n:06d}", unique, kind, data, file_name, mime_type)
        self._files[file.file_id] = file
        self._file_paths[file.path()] = file
        return file

    @staticmethod
    def _media_info(file: _File) -> dict[str, Any]:
        return {
            "type": file.kind,
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_name": file.file_name,
            "mime_type": file.mime_type,
            "file_size": len(file.data),
        }

    # ------------------------------------------------------------------ updates

    def _push_update(self, body: dict[str, Any]) -> None:
        kind = next(iter(body))
        allowed = self._allowed_updates
        if allowed and kind not in allowed:
            return
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self.stats.updates_created += 1
        self._pending.append(update)
        self._wake_pollers()
        if self._webhook_wake is not None:
            self._webhook_wake.set()
        self._notifier.notify()

    def _wake_pollers(self) -> None:
        waiters, self._update_waiters = self._update_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not _TOKEN_RE.match(token):
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        if self.token is not None and token != self.token:
            return _json_response(ApiError(401, "Unauthorized").payload(), 401)
        method = _CANONICAL.get(request.match_info["method"].lower())
        if method is None:
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        self._bot_id = int(token.split(":", 1)[0])
        self.stats.calls[method] += 1
        self._notifier.notify()
        try:
            params = await self._read_params(request, method)
            result = await self._dispatch(method, params)
        except ApiError as err:
            if err.code == 400:
                self.stats.rejected.append((method, err.description))
            return _json_response(err.payload(), err.code)
        finally:
            self._notifier.notify()
        return _json_response({"ok": True, "result": result}, 200)

    async def _read_params(self, request: web.Request, method: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        strings = _STRING_FIELDS[method]
        for key, value in request.query.items():
            params[key] = value
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON") from None
                if not isinstance(body, dict):
                    raise _bad("request body must be a JSON object")
                params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                params.update(form.items())
        for key, value in params.items():
            if isinstance(value, web.FileField):
                params[key] = _Upload(value.filename, value.file.read(), value.content_type)
            elif isinstance(value, str):
                if key not in strings and value and value[0] in '{["-0123456789tfn':
                    with contextlib.suppress(ValueError):
                        params[key] = json.loads(value)
            elif key in strings and value is not None and not isinstance(value, str):
                params[key] = (
                    json.dumps(value)
                    if isinstance(value, dict | list)
                    else (str(value).lower() if isinstance(value, bool) else str(value))
                )
        if any(_has_lone_surrogate(v) for v in params.values() if not isinstance(v, _Upload)):
            raise _bad("strings must be encoded in UTF-8")  # Telegram's answer to "\ud800"
        return params

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        for name in _REQUIRED[method]:
            value = params.get(name)
            if value is None or value == "":
                raise _bad(_missing_message(method, name))
        if method != "getUpdates":
            self.requests.append((method, _loggable(params)))
        if method in self.rate_limited_methods:
            self._check_rate(params)
        plan = self.faults
        fault: str | None = None
        if plan is not None and plan.rate > 0 and plan.applies_to(method):
            if self.random.random() < plan.rate:
                fault = self.random.choice(plan.kinds)
                self.stats.faults[fault] += 1
                if fault != "deliver_then_timeout":
                    await self._raise_fault(fault, plan)
        handler = self._handlers.get(method, self._m_true)
        result = handler(params, method)
        if asyncio.iscoroutine(result):
            result = await result
        if fault == "deliver_then_timeout":
            assert plan is not None
            await self._raise_fault("timeout", plan)
        return result

    async def _raise_fault(self, kind: str, plan: FaultPlan) -> None:
        if kind == "500":
            raise ApiError(500, "Internal Server Error")
        if kind == "502":
            raise ApiError(502, "Bad Gateway")
        if kind == "429":
            now = time.monotonic()
            retry = max(1, int(plan.retry_after))
            self._blocked_until = max(self._blocked_until, now + retry)
            self._blocked_since = now
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        if kind == "403":
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if kind == "chat_not_found":
            raise _bad("chat not found")
        if kind == "401":
            raise ApiError(401, "Unauthorized")
        if kind == "404":
            raise ApiError(404, "Not Found")
        if kind == "timeout":
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), plan.timeout_delay)
            raise ApiError(504, "Gateway Timeout")
        raise ApiError(500, f"Internal Server Error: unknown fault {kind}")

    def _check_rate(self, params: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.rate_limit is not None:
            if now < self._blocked_until:
                self._too_many(now, self._blocked_until, self._blocked_since)
            window = self._window
            cutoff = now - 1.0
            while window and window[0] <= cutoff:
                window.popleft()
            if len(window) >= self.rate_limit:
                retry = max(1, math.ceil(window[0] + 1.0 - now))
                self._blocked_until = now + retry
                self._blocked_since = now
                self.stats.rate_limited += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
        chat_window = None
        chat_id = params.get("chat_id")
        if self.per_chat_rate is not None and isinstance(chat_id, int):
            blocked = self._chat_blocked.get(chat_id)
            if blocked and now < blocked[0]:
                self._too_many(now, blocked[0], blocked[1])
            chat_window = self._chat_windows.setdefault(chat_id, deque())
            cutoff = now - 1.0
            while chat_window and chat_window[0] <= cutoff:
                chat_window.popleft()
            if len(chat_window) >= self.per_chat_rate:
                retry = max(1, math.ceil(chat_window[0] + 1.0 - now))
                self._chat_blocked[chat_id] = (now + retry, now)
                self.stats.rate_limited += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
        if self.rate_limit is not None:
            self._window.append(now)
        if chat_window is not None:
            chat_window.append(now)

    def _too_many(self, now: float, until: float, since: float) -> None:
        if now - since > self.early_retry_grace:
            self.stats.early_retries += 1
        self.stats.rate_limited += 1
        retry = max(1, math.ceil(until - now))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        file = self._file_paths.get(request.match_info["path"])
        if file is None or not _TOKEN_RE.match(request.match_info["token"]):
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(
            body=file.data, content_type=file.mime_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ chat helpers

    def _resolve_chat(self, value: Any, *, name: str = "chat_id") -> int:
        if isinstance(value, str) and value.startswith("@"):
            for user in self._users.values():
                if user.username and user.username.lower() == value[1:].lower():
                    value = user.user_id
                    break
            else:
                raise _bad("chat not found")
        chat_id = _as_int(value, name)
        if chat_id not in self._chats:
            raise _bad("chat not found")
        return chat_id

    def _writable_chat(self, value: Any) -> int:
        chat_id = self._resolve_chat(value)
        if chat_id in self._deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _parse_text(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[dict[str, Any]]]:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        mode = (parse_mode or "").strip().lower() if isinstance(parse_mode, str) else ""
        if mode == "html":
            plain, ents = parse_html(text)
        elif mode in ("", "markdown", "markdownv2"):
            plain = text
            ents = entities if isinstance(entities, list) else []
        else:
            raise _bad("unsupported parse_mode")
        limit = MAX_CAPTION if caption else MAX_TEXT
        if not caption and not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > limit:
            raise _bad("message caption is too long" if caption else "message is too long")
        return plain, ents

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        message_id = None
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = allow or bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            message_id = params.get("reply_to_message_id")
        if message_id is None:
            return None
        message_id = _as_int(message_id, "reply message identifier")
        msg = self._index.get((chat_id, message_id))
        if msg is None or msg.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return message_id

    def _edit_target(self, params: dict[str, Any], *, for_delete: bool = False) -> ChatMessage:
        what = "delete" if for_delete else "edit"
        chat_id = self._resolve_chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        msg = self._index.get((chat_id, _as_int(message_id, "message identifier")))
        if msg is None or msg.deleted:
            raise _bad(f"message to {what} not found")
        return msg

    def _apply_edit(
        self,
        msg: ChatMessage,
        *,
        text: str | None,
        parse_mode: str | None,
        plain: str | None,
        entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
    ) -> None:
        if plain == msg.plain_text and entities == msg.entities and markup == msg.reply_markup:
            raise _bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        msg.edits.append((msg.text, msg.reply_markup))
        msg.text = text
        msg.parse_mode = parse_mode
        msg.plain_text = plain
        msg.entities = entities
        msg.reply_markup = markup
        msg.edit_date = int(time.time())
        self._seq += 1
        msg.edit_seqs.append(self._seq)
        self._publish(msg.chat_id, "edit", msg)
        self._notifier.notify()

    # ------------------------------------------------------------------ methods

    def _m_true(self, params: dict[str, Any], method: str) -> Any:
        return True

    def _m_get_me(self, params: dict[str, Any], method: str) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, params: dict[str, Any], method: str) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset", 0) or 0, "offset")
        limit = _as_int(params.get("limit", 100) or 100, "limit")
        limit = min(max(limit, 1), 100)
        timeout = params.get("timeout", 0) or 0
        timeout = float(timeout) if isinstance(timeout, int | float | str) else 0.0
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = params["allowed_updates"] or None
        pending = self._pending
        if offset > 0:
            confirmed = False
            while pending and pending[0]["update_id"] < offset:
                pending.popleft()
                confirmed = True
            if confirmed:
                self._notifier.notify()
        elif offset < 0:
            while len(pending) > -offset:
                pending.popleft()
            self._notifier.notify()
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older long poll is terminated with 409, like Telegram
        if not pending and timeout > 0:
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._update_waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, min(timeout, 50.0))
            if generation != self._poll_generation and not (
                self._stopping and self._stopping.is_set()
            ):
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
        return list(itertools.islice(pending, limit))

    async def _m_set_webhook(self, params: dict[str, Any], method: str) -> Any:
        url = params.get("url", "")
        if not url:
            return await self._m_delete_webhook(params, method)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise _bad("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = allowed or None
        self._webhook = {
            "url": url,
            "secret_token": None if secret is None else str(secret),
            "max_connections": int(params.get("max_connections") or 40),
        }
        self._webhook_error = None
        self._wake_pollers()
        if self._webhook_wake is None:
            self._webhook_wake = asyncio.Event()
        self._webhook_wake.set()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())
        return True

    async def _m_delete_webhook(self, params: dict[str, Any], method: str) -> Any:
        self._webhook = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        return True

    def _m_get_webhook_info(self, params: dict[str, Any], method: str) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates:
                info["allowed_updates"] = self._allowed_updates
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _webhook_loop(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        assert self._webhook_wake is not None
        failures = 0
        while self._webhook is not None:
            if not self._pending:
                self._webhook_wake.clear()
                await self._webhook_wake.wait()
                continue
            hook = self._webhook
            update = self._pending[0]
            headers = {"Content-Type": "application/json"}
            if hook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            body = encode_json(update)
            error: str | None = None
            try:
                async with self._http.post(hook["url"], data=body, headers=headers) as resp:
                    await resp.read()
                    if not 200 <= resp.status <= 299:
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {exc.__class__.__name__}"
            if error is None:
                failures = 0
                if self._pending and self._pending[0] is update:
                    self._pending.popleft()
                self.stats.webhook_deliveries += 1
                self._notifier.notify()
            else:
                failures += 1
                self.stats.webhook_failures += 1
                self._webhook_error = (int(time.time()), error)
                await asyncio.sleep(min(self.webhook_retry_delay * 2 ** (failures - 1), 5.0))

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        lang = params.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise _bad("invalid language code specified")
        return _scope_key(scope), lang

    def _m_set_my_commands(self, params: dict[str, Any], method: str) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        clean: list[dict[str, str]] = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = str(cmd.get("command", "")).lstrip("/")
            desc = str(cmd.get("description", ""))
            if not _COMMAND_RE.match(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(desc.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": desc})
        key = self._commands_key(params)
        if clean:
            self._commands[key] = clean
        else:
            self._commands.pop(key, None)
        self._notifier.notify()
        return True

    def _m_get_my_commands(self, params: dict[str, Any], method: str) -> Any:
        return list(self._commands.get(self._commands_key(params), []))

    def _m_delete_my_commands(self, params: dict[str, Any], method: str) -> Any:
        self._commands.pop(self._commands_key(params), None)
        self._notifier.notify()
        return True

    def _m_send_message(self, params: dict[str, Any], method: str) -> Any:
        chat_id = self._writable_chat(params["chat_id"])
        parse_mode = params.get("parse_mode")
        plain, ents = self._parse_text(params["text"], parse_mode, params.get("entities"))
        markup = validate_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        msg = self._store(
            chat_id,
            from_bot=True,
            text=params["text"],
            parse_mode=parse_mode,
            reply_markup=markup,
            kind="text",
            plain=plain,
            entities=ents,
            sender_id=self._bot_id,
            method=method,
            reply_to=reply_to,
        )
        return self.message_dict(msg)

    def _m_edit_message_text(self, params: dict[str, Any], method: str) -> Any:
        if params.get("inline_message_id"):
            return True
        msg = self._edit_target(params)
        if not msg.from_bot:
            raise _bad("message can't be edited")
        if msg.media is not None:
            raise _bad("there is no text in the message to edit")
        parse_mode = params.get("parse_mode")
        plain, ents = self._parse_text(params["text"], parse_mode, params.get("entities"))
        markup = validate_reply_markup(params.get("reply_markup"))
        self._apply_edit(
            msg,
            text=params["text"],
            parse_mode=parse_mode,
            plain=plain,
            entities=ents,
            markup=markup,
        )
        return self.message_dict(msg)

    def _m_edit_message_caption(self, params: dict[str, Any], method: str) -> Any:
        if params.get("inline_message_id"):
            return True
        msg = self._edit_target(params)
        if not msg.from_bot:
            raise _bad("message can't be edited")
        if msg.media is None:
            raise _bad("there is no caption in the message to edit")
        caption = params.get("caption") or ""
        parse_mode = params.get("parse_mode")
        plain, ents = self._parse_text(
            caption, parse_mode, params.get("caption_entities"), caption=True
        )
        markup = validate_reply_markup(params.get("reply_markup"))
        self._apply_edit(
            msg,
            text=caption or None,
            parse_mode=parse_mode,
            plain=plain or None,
            entities=ents,
            markup=markup,
        )
        return self.message_dict(msg)

    def _m_edit_message_reply_markup(self, params: dict[str, Any], method: str) -> Any:
        if params.get("inline_message_id"):
            return True
        msg = self._edit_target(params)
        if not msg.from_bot:
            raise _bad("message can't be edited")
        markup = validate_reply_markup(params.get("reply_markup"))
        self._apply_edit(
            msg,
            text=msg.text,
            parse_mode=msg.parse_mode,
            plain=msg.plain_text,
            entities=msg.entities,
            markup=markup,
        )
        return self.message_dict(msg)

    def _m_answer_callback_query(self, params: dict[str, Any], method: str) -> Any:
        query_id = str(params["callback_query_id"])
        query = self._callbacks.get(query_id)
        if query is None or query["answered"]:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query["answered"] = True
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "user_id": query["user_id"],
                "message_id": query["message_id"],
                "text": text,
                "show_alert": bool(params.get("show_alert", False)),
                "url": params.get("url"),
                "cache_time": params.get("cache_time"),
            }
        )
        self._notifier.notify()
        return True

    def _m_copy_message(self, params: dict[str, Any], method: str) -> Any:
        from_chat = self._resolve_chat(params["from_chat_id"], name="from_chat_id")
        source = self._index.get((from_chat, _as_int(params["message_id"], "message identifier")))
        if source is None or source.deleted:
            raise _bad("message to copy not found")
        chat_id = self._writable_chat(params["chat_id"])
        if "caption" in params and source.media is not None:
            caption = params.get("caption")
            parse_mode = params.get("parse_mode")
            plain, ents = self._parse_text(
                caption or "", parse_mode, params.get("caption_entities"), caption=True
            )
            text, plain_opt = (caption or None), (plain or None)
        else:
            text, parse_mode, plain_opt, ents = (
                source.text,
                source.parse_mode,
                source.plain_text,
                list(source.entities),
            )
        markup = validate_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        msg = self._store(
            chat_id,
            from_bot=True,
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
            kind="copy",
            plain=plain_opt,
            entities=ents,
            sender_id=self._bot_id,
            media=dict(source.media) if source.media else None,
            copied_from=(source.chat_id, source.message_id),
            method=method,
            reply_to=reply_to,
        )
        return {"message_id": msg.message_id}

    def _send_media(self, params: dict[str, Any], method: str, kind: str) -> Any:
        chat_id = self._writable_chat(params["chat_id"])
        value = params[kind]
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, _Upload):
            name = value.filename if kind == "document" else None
            if kind == "document" and (not name or name == "application.octet-stream"):
                name = name or "document"
            mime = value.content_type if kind == "document" else "image/jpeg"
            if not value.data:
                raise _bad("file must be non-empty")
            file = self._new_file(kind, value.data, name, mime)
        elif isinstance(value, str) and value in self._files:
            file = self._files[value]
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            file = self._new_file(kind, b"", value.rsplit("/", 1)[-1] or None, None)
        else:
            raise _bad("wrong file identifier/HTTP URL specified")
        if file.kind != kind and not (kind == "document"):
            raise _bad(f"can't use file of type {file.kind.title()} as {kind.title()}")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        plain, ents = self._parse_text(
            caption or "", parse_mode, params.get("caption_entities"), caption=True
        )
        markup = validate_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        media = self._media_info(file)
        media["type"] = kind
        msg = self._store(
            chat_id,
            from_bot=True,
            text=caption or None,
            parse_mode=parse_mode,
            reply_markup=markup,
            kind=kind,
            plain=plain or None,
            entities=ents,
            sender_id=self._bot_id,
            media=media,
            method=method,
            reply_to=reply_to,
        )
        return self.message_dict(msg)

    def _m_send_document(self, params: dict[str, Any], method: str) -> Any:
        return self._send_media(params, method, "document")

    def _m_send_photo(self, params: dict[str, Any], method: str) -> Any:
        return self._send_media(params, method, "photo")

    def _m_delete_message(self, params: dict[str, Any], method: str) -> Any:
        msg = self._edit_target(params, for_delete=True)
        msg.deleted = True
        self._seq += 1
        self._publish(msg.chat_id, "delete", msg)
        self._notifier.notify()
        return True

    def _m_send_chat_action(self, params: dict[str, Any], method: str) -> Any:
        chat_id = self._writable_chat(params["chat_id"])
        action = params["action"]
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    def _m_get_chat(self, params: dict[str, Any], method: str) -> Any:
        chat_id = self._resolve_chat(params["chat_id"])
        user = self._users.get(chat_id)
        chat = (
            user.chat_dict() if user else {"id": chat_id, "type": "private", "first_name": "Test"}
        )
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": True,
                    "limited_gifts": True,
                    "unique_gifts": True,
                    "premium_subscription": True,
                    "gifts_from_channels": True,
                },
            }
        )
        return chat

    def _m_get_file(self, params: dict[str, Any], method: str) -> Any:
        file = self._files.get(str(params["file_id"]))
        if file is None:
            raise _bad("invalid file_id")
        if len(file.data) > GET_FILE_LIMIT:
            raise _bad("file is too big")  # bots may download files up to 20 MB
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.path(),
        }


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


@dataclass
class _Upload:
    filename: str | None
    data: bytes
    content_type: str | None


def _scope_key(scope: str | dict[str, Any]) -> str:
    if isinstance(scope, str):
        return scope
    kind = scope.get("type", "default")
    parts = [kind]
    if "chat_id" in scope:
        parts.append(str(scope["chat_id"]))
    if "user_id" in scope:
        parts.append(str(scope["user_id"]))
    return ":".join(parts)


def _missing_message(method: str, name: str) -> str:
    if name == "text":
        return "message text is empty"
    if name in ("photo", "document", "audio", "video", "animation", "voice", "sticker"):
        return f"there is no {name} in the request"
    return f"{name} is empty"


def _loggable(params: dict[str, Any]) -> dict[str, Any]:
    if not any(isinstance(v, _Upload) for v in params.values()):
        return params
    return {
        k: (f"<upload {v.filename} {len(v.data)} bytes>" if isinstance(v, _Upload) else v)
        for k, v in params.items()
    }


def _guess_mime(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {
        ".pdf": "application/pdf",
        ".txt": "text/plain",
        ".csv": "text/csv",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }.get(suffix, "application/octet-stream")


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DUMPS_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_json(body: Any) -> bytes:
    """UTF-8 JSON; a lone surrogate (a user's text may carry one) goes out as a \\uXXXX
    escape, as JSON allows, instead of failing to encode."""
    try:
        return _DUMPS(body).encode("utf-8")
    except UnicodeEncodeError:
        return _DUMPS_ASCII(body).encode("ascii")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _json_response(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(body=encode_json(body), status=status, content_type="application/json")


async def serve_forever(
    port: int,
    *,
    host: str = "127.0.0.1",
    terminal: bool = False,
    user_id: int = 1000001,
    language_code: str = "en",
    rate_limit: float | None = 30.0,
) -> None:
    """Run a standalone server until cancelled (Ctrl+C); with ``terminal`` also chat in it.

    Point the bot at it with base_url ``http://HOST:PORT/bot`` (any ``123:abc`` token).
    """
    server = LocalBotAPI(rate_limit=rate_limit)
    await server.start(host=host, port=port)
    print(f"Local Bot API listening: base_url={server.base_url}", flush=True)
    try:
        if terminal:
            from bot.localapi.terminal import run_terminal_chat

            await run_terminal_chat(server, user_id=user_id, language_code=language_code)
        else:
            await asyncio.Event().wait()
    finally:
        await server.stop()
