"""The test-driver API of the local Bot API server: the users' side of the chats.

``DriverMixin`` is the part of ``LocalBotAPI`` tests, benchmarks and the terminal chat use:
register users, have them send texts, photos and documents or tap buttons (each becomes an
update for the bot), block or deactivate them, read the transcripts and command menus, and
wait, event-driven, for the bot's answers, edits and callback answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.localapi.markup import utf16_len
from bot.localapi.model import ChatMessage, User, scope_key
from bot.localapi.state import ServerState

# How long a wait_* call waits before it gives up: a guard against a hang, not a speed target
# (no test asserts how long a reply took). The first question in Chinese on a loaded machine
# took over 5 s once (the matcher and jieba load on first use), hence the margin.
WAIT_GUARD = 30.0


class DriverMixin(ServerState):
    """What a test does to and reads from ``LocalBotAPI`` (see the module docstring)."""

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
        self._users[user_id] = User(user_id, first_name, last_name, username, language_code)
        self._chats.setdefault(user_id, [])

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends answer 403."""
        self._blocked.add(chat_id)

    async def block_bot(self, user_id: int) -> None:
        """The user blocks the bot as Telegram reports it: sends to the chat answer 403 and the
        bot gets a ``my_chat_member`` update (member -> kicked). :meth:`block` only does the
        first (as when the update was missed)."""
        self.block(user_id)
        self._push_member_change(user_id, "member", "kicked")

    async def unblock_bot(self, user_id: int) -> None:
        """The user unblocks the bot (without writing): sends work again, and the bot gets a
        ``my_chat_member`` update (kicked -> member)."""
        self._blocked.discard(user_id)
        self._push_member_change(user_id, "kicked", "member")

    def _push_member_change(self, user_id: int, old: str, new: str) -> None:
        user = self._users.get(user_id)
        if user is None:
            raise ValueError(f"no user {user_id}")

        def member(status: str) -> dict[str, Any]:
            found = {"status": status, "user": self.bot_user}
            return {**found, "until_date": 0} if status == "kicked" else found

        self._push_update({
            "my_chat_member": {
                "chat": user.chat_dict(),
                "from": user.as_dict(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        })  # fmt: skip

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
    ) -> User:
        if user_id in self._deactivated:
            raise ValueError(f"user {user_id} is deactivated")
        user = self._users.get(user_id)
        if user is None:
            user = User(user_id, first_name, last_name, username, language_code)
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
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user sends ``text`` to the bot in their private chat; returns the Message dict.

        ``entities``: the formatting the user's app attached (bold, links...), as Telegram
        sends them (UTF-16 offsets); a leading command gets its bot_command entity anyway."""
        user = self._touch_user(user_id, language_code, first_name, last_name, username)
        entities = list(entities or [])
        if text.startswith("/") and not any(e.get("type") == "bot_command" for e in entities):
            cmd = text.split(maxsplit=1)[0] if text.strip() else text
            entities.insert(0, {"type": "bot_command", "offset": 0, "length": utf16_len(cmd)})
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
            mime_type = "image/jpeg" if photo else guess_mime(document_name or "")
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
        return list(self._commands.get((scope_key(scope), language_code or ""), []))

    def effective_commands(self, user_id: int, language_code: str = "") -> list[dict[str, str]]:
        """The menu a private-chat user would see, resolved like Telegram's clients."""
        for scope in ({"type": "chat", "chat_id": user_id}, "all_private_chats", "default"):
            key = scope_key(scope)
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

    def subscribe(self, chat_id: int) -> asyncio.Queue:
        """A queue receiving ("message"|"edit"|"delete", ChatMessage) for a chat's bot side."""
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.setdefault(chat_id, []).append(queue)
        return queue

    def unsubscribe(self, chat_id: int, queue: asyncio.Queue) -> None:
        """Stop feeding a queue from ``subscribe``."""
        with contextlib.suppress(KeyError, ValueError):
            self._subscribers[chat_id].remove(queue)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = WAIT_GUARD) -> Any:  # noqa: ASYNC109
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
        timeout: float = WAIT_GUARD,  # noqa: ASYNC109
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
        timeout: float = WAIT_GUARD,  # noqa: ASYNC109
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
        timeout: float = WAIT_GUARD,  # noqa: ASYNC109
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

    async def wait_for_callback_answer(self, query_id: str, timeout: float = WAIT_GUARD) -> dict:  # noqa: ASYNC109
        """Wait until the bot answers callback query ``query_id``; returns the answer."""

        def answered() -> dict | None:
            for ans in self.callback_answers:
                if ans["callback_query_id"] == query_id:
                    return ans
            return None

        return await self.wait_until(answered, timeout)

    async def wait_idle(self, timeout: float = WAIT_GUARD) -> None:  # noqa: ASYNC109
        """Wait until every update has been confirmed/delivered."""
        await self.wait_until(lambda: not self._pending, timeout)


def guess_mime(name: str) -> str:
    """The MIME type a client would send for a file named ``name``."""
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
