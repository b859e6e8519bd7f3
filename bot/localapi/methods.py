"""The Bot API methods the local server really performs.

``MethodsMixin`` is the part of ``LocalBotAPI`` behind sendMessage, copyMessage,
sendDocument / sendPhoto, the edits, deleteMessage, answerCallbackQuery, the command menus,
sendChatAction, getMe, getChat and getFile: each checks its parameters like Telegram (the
chat exists and is writable, the text and keyboard are valid, the message to edit or reply
to exists) and changes the chat transcripts. Methods without behaviour answer ``true``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bot.localapi.markup import parse_text, validate_reply_markup
from bot.localapi.model import GET_FILE_LIMIT, ApiError, ChatMessage, Upload, as_int, bad, scope_key
from bot.localapi.state import ServerState

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
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


class MethodsMixin(ServerState):
    """The Bot API methods of ``LocalBotAPI`` (``_m_<name>``, registered in ``server.py``)."""

    def _resolve_chat(self, value: Any, *, name: str = "chat_id") -> int:
        if isinstance(value, str) and value.startswith("@"):
            for user in self._users.values():
                if user.username and user.username.lower() == value[1:].lower():
                    value = user.user_id
                    break
            else:
                raise bad("chat not found")
        chat_id = as_int(value, name)
        if chat_id not in self._chats:
            raise bad("chat not found")
        return chat_id

    def _writable_chat(self, value: Any) -> int:
        chat_id = self._resolve_chat(value)
        if chat_id in self._deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

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
        message_id = as_int(message_id, "reply message identifier")
        msg = self._index.get((chat_id, message_id))
        if msg is None or msg.deleted:
            if allow:
                return None
            raise bad("message to be replied not found")
        return message_id

    def _edit_target(self, params: dict[str, Any], *, for_delete: bool = False) -> ChatMessage:
        what = "delete" if for_delete else "edit"
        chat_id = self._resolve_chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        msg = self._index.get((chat_id, as_int(message_id, "message identifier")))
        if msg is None or msg.deleted:
            raise bad(f"message to {what} not found")
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
            raise bad(
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

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad("can't parse BotCommandScope JSON object")
        lang = params.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise bad("invalid language code specified")
        return scope_key(scope), lang

    def _m_set_my_commands(self, params: dict[str, Any], method: str) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad("too many commands")
        clean: list[dict[str, str]] = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise bad("can't parse BotCommand JSON object")
            name = str(cmd.get("command", "")).lstrip("/")
            desc = str(cmd.get("description", ""))
            if not _COMMAND_RE.match(name):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(desc.strip()) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
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
        plain, ents = parse_text(params["text"], parse_mode, params.get("entities"))
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
            raise bad("message can't be edited")
        if msg.media is not None:
            raise bad("there is no text in the message to edit")
        parse_mode = params.get("parse_mode")
        plain, ents = parse_text(params["text"], parse_mode, params.get("entities"))
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
            raise bad("message can't be edited")
        if msg.media is None:
            raise bad("there is no caption in the message to edit")
        caption = params.get("caption") or ""
        parse_mode = params.get("parse_mode")
        plain, ents = parse_text(caption, parse_mode, params.get("caption_entities"), caption=True)
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
            raise bad("message can't be edited")
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
            raise bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad("MESSAGE_TOO_LONG")
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
        source = self._index.get((from_chat, as_int(params["message_id"], "message identifier")))
        if source is None or source.deleted:
            raise bad("message to copy not found")
        chat_id = self._writable_chat(params["chat_id"])
        if "caption" in params and source.media is not None:
            caption = params.get("caption")
            parse_mode = params.get("parse_mode")
            plain, ents = parse_text(
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
        if isinstance(value, Upload):
            name = value.filename if kind == "document" else None
            if kind == "document" and (not name or name == "application.octet-stream"):
                name = name or "document"
            mime = value.content_type if kind == "document" else "image/jpeg"
            if not value.data:
                raise bad("file must be non-empty")
            file = self._new_file(kind, value.data, name, mime)
        elif isinstance(value, str) and value in self._files:
            file = self._files[value]
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            file = self._new_file(kind, b"", value.rsplit("/", 1)[-1] or None, None)
        else:
            raise bad("wrong file identifier/HTTP URL specified")
        if file.kind != kind and not (kind == "document"):
            raise bad(f"can't use file of type {file.kind.title()} as {kind.title()}")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        plain, ents = parse_text(
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
            raise bad("wrong parameter action in request")
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
            raise bad("invalid file_id")
        if len(file.data) > GET_FILE_LIMIT:
            raise bad("file is too big")  # bots may download files up to 20 MB
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.path(),
        }
