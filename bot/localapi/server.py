"""Local Telegram Bot API server for tests, benchmarks and the terminal chat.

The server speaks the real Bot API over HTTP (``/bot<TOKEN>/<method>``), so the bot's
python-telegram-bot ``Application``/``Bot`` talks to it exactly as to api.telegram.org by
passing ``base_url=server.base_url``. Tests drive the "users" in-process (``send_text``,
``send_media``, ``press_button``) and inspect transcripts (``chat``), sends, command menus
and statistics. Rate limits, blocked/deactivated users and random faults can be simulated.

Method names and required parameters come from ``methods.json`` (generated from the Bot API
10.0 spec by ``make_methods.py``); a subset of methods has real behaviour, the rest answer
``true`` and are recorded in ``server.requests``.

This module is the HTTP front: the aiohttp app, routing, reading parameters, and
``LocalBotAPI`` assembled from the package's parts:

- ``model.py``   records and errors (``ChatMessage``, ``ApiError``, ``Stats``, ...)
- ``markup.py``  Telegram-HTML, UTF-16 lengths, text limits, keyboard validation
- ``state.py``   what the server remembers, storing messages and queueing updates
- ``faults.py``  flood limits and random fault injection (``FaultPlan``)
- ``updates.py`` getUpdates and the webhook
- ``methods.py`` the Bot API methods with real behaviour
- ``driver.py``  the test-driver API (``send_text``, ``press_button``, ``wait_until``, ...)

Every public name tests and tools import from here is re-exported below.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.localapi.driver import DriverMixin
from bot.localapi.faults import FaultPlan, FaultsMixin
from bot.localapi.markup import (
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_TEXT,
    parse_html,
    parse_text,
    utf16_len,
    validate_reply_markup,
)
from bot.localapi.methods import MethodsMixin
from bot.localapi.model import (
    GET_FILE_LIMIT,
    SENDING_METHODS,
    ApiError,
    ChatMessage,
    SentRecord,
    Stats,
    Upload,
    bad,
    encode_json,
)
from bot.localapi.updates import UpdatesMixin

__all__ = [
    "GET_FILE_LIMIT",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_TEXT",
    "SENDING_METHODS",
    "ApiError",
    "ChatMessage",
    "FaultPlan",
    "LocalBotAPI",
    "SentRecord",
    "Stats",
    "encode_json",
    "parse_html",
    "parse_text",
    "serve_forever",
    "utf16_len",
    "validate_reply_markup",
]

_METHODS_PATH = Path(__file__).with_name("methods.json")
_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _load_methods() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, frozenset]]:
    data = json.loads(_METHODS_PATH.read_text(encoding="utf-8"))["methods"]
    canonical = {name.lower(): name for name in data}
    required = {name: tuple(spec["required"]) for name, spec in data.items()}
    strings = {name: frozenset(spec["strings"]) for name, spec in data.items()}
    return canonical, required, strings


_CANONICAL, _REQUIRED, _STRING_FIELDS = _load_methods()


class LocalBotAPI(DriverMixin, MethodsMixin, UpdatesMixin, FaultsMixin):
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
        super().__init__(
            rate_limit=rate_limit,
            per_chat_rate=per_chat_rate,
            seed=seed,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            token=token,
            early_retry_grace=early_retry_grace,
            webhook_retry_delay=webhook_retry_delay,
        )
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
                    raise bad("can't parse JSON") from None
                if not isinstance(body, dict):
                    raise bad("request body must be a JSON object")
                params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                params.update(form.items())
        for key, value in params.items():
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.file.read(), value.content_type)
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
        if any(_has_lone_surrogate(v) for v in params.values() if not isinstance(v, Upload)):
            raise bad("strings must be encoded in UTF-8")  # Telegram's answer to "\ud800"
        return params

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        for name in _REQUIRED[method]:
            value = params.get(name)
            if value is None or value == "":
                raise bad(_missing_message(method, name))
        if method != "getUpdates":
            self.requests.append((method, _loggable(params)))
        if method in self.rate_limited_methods:
            self._check_rate(params)
        lost_answer = await self._inject_fault(method)
        handler = self._handlers.get(method, self._m_true)
        result = handler(params, method)
        if asyncio.iscoroutine(result):
            result = await result
        if lost_answer is not None:  # "deliver_then_timeout": done, but the answer is lost
            await self._raise_fault("timeout", lost_answer)
        return result

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        file = self._file_paths.get(request.match_info["path"])
        if file is None or not _TOKEN_RE.match(request.match_info["token"]):
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(
            body=file.data, content_type=file.mime_type or "application/octet-stream"
        )


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _missing_message(method: str, name: str) -> str:
    if name == "text":
        return "message text is empty"
    if name in ("photo", "document", "audio", "video", "animation", "voice", "sticker"):
        return f"there is no {name} in the request"
    return f"{name} is empty"


def _loggable(params: dict[str, Any]) -> dict[str, Any]:
    if not any(isinstance(v, Upload) for v in params.values()):
        return params
    return {
        k: (f"<upload {v.filename} {len(v.data)} bytes>" if isinstance(v, Upload) else v)
        for k, v in params.items()
    }


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
