"""The state of the local Bot API server and the changes every part makes to it.

``ServerState`` holds the users, chats and their transcripts, files, command menus, pending
updates, webhook and flood-limit bookkeeping of one ``LocalBotAPI``, and the few operations
both the Bot API methods and the test driver use: storing a message, rendering it as a
Telegram Message object, storing a file and queueing an update. ``Notifier`` wakes every
``wait_until`` after each state change (no polling).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bot.localapi.model import SENDING_METHODS, ChatMessage, File, SentRecord, Stats, User

if TYPE_CHECKING:
    from bot.localapi.faults import FaultPlan


class Notifier:
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


class ServerState:
    """Everything one ``LocalBotAPI`` remembers (see the module docstring)."""

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
        self._users: dict[int, User] = {}
        self._blocked: set[int] = set()
        self._deactivated: set[int] = set()
        self._chats: dict[int, list[ChatMessage]] = {}
        self._index: dict[tuple[int, int], ChatMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, File] = {}
        self._file_paths: dict[str, File] = {}
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
        self._notifier = Notifier()
        self._subscribers: dict[int, list[asyncio.Queue]] = {}
        self._stopping: asyncio.Event | None = None

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        return {
            "id": self._bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

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
    ) -> File:
        n = next(self._file_counter)
        unique = hashlib.blake2b(f"{kind}:{n}".encode(), digest_size=8).hexdigest()
        prefix = "AgAC" if kind == "photo" else "BQAC"
        file = File(f"{prefix}{unique}{n:06d}", unique, kind, data, file_name, mime_type)
        self._files[file.file_id] = file
        self._file_paths[file.path()] = file
        return file

    @staticmethod
    def _media_info(file: File) -> dict[str, Any]:
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
