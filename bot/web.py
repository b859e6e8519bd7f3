"""Webhook mode: our own small aiohttp server with the webhook endpoint and ``GET /healthz``.

``POST <path of WEBHOOK_URL>``: Telegram's updates. The ``X-Telegram-Bot-Api-Secret-Token``
header must equal WEBHOOK_SECRET (compared in constant time) or the request gets 403 and nothing
is processed. A valid update is put on the Application's update queue and answered 200 at once.
A body that cannot become an Update (not UTF-8, not JSON, not an object, nested deeper than
:data:`MAX_UPDATE_DEPTH`) gets 400; a body over :data:`MAX_UPDATE_BYTES` (1 MiB) gets 413. Each
refusal is one WARNING line without a traceback.

``GET /healthz``: 200 when the database answers and the job scheduler runs, else 503; the JSON
also shows the outbox backlog, the sender (running, or held by another process) and the
in-process counters. A backlog alone is not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import TelegramError

from bot.handlers.common import services_of
from bot.metrics import metrics_for
from bot.wire import scrub

if TYPE_CHECKING:
    from telegram.ext import Application


log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A real update is a few KB (a 4,096-character message with its entities and a reply);
# nothing Telegram sends comes near these limits.
MAX_UPDATE_BYTES = 1024 * 1024
MAX_UPDATE_DEPTH = 64  # nested objects/arrays; a real update has about a dozen levels


class BadBody(ValueError):
    """A webhook body that cannot become an Update; the message says why (no content)."""


def _reject_constant(name: str) -> Any:
    raise BadBody(f"not JSON ({name})")


def _too_deep(data: Any, limit: int = MAX_UPDATE_DEPTH) -> bool:
    """Whether ``data`` nests objects/arrays deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return False


def parse_update_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a webhook body, or :class:`BadBody` saying why not.

    Strict UTF-8, standard JSON only (no NaN), an object with an integer ``update_id``, at
    most :data:`MAX_UPDATE_DEPTH` levels. Python's JSON decoder recurses: a body of 200,000
    nested arrays raises RecursionError, which is a refusal here, never a 500.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except BadBody:
        raise
    except RecursionError:
        raise BadBody("nested too deeply") from None
    except ValueError:
        raise BadBody("not JSON") from None
    if not isinstance(data, dict):
        raise BadBody(f"a JSON {type(data).__name__}, not an object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise BadBody("no integer update_id")
    if _too_deep(data):
        raise BadBody(f"nested deeper than {MAX_UPDATE_DEPTH} levels")
    return data


def health(app: Application) -> tuple[bool, dict[str, Any]]:
    """(healthy, report) for ``app``: database, scheduler, outbox backlog, sender, counters."""
    services = services_of(app)
    report: dict[str, Any] = {}
    try:
        services.storage.ping()
        report["database"] = True
    except sqlite3.Error as exc:
        log.error("health: database unreachable: %s", exc)
        report["database"] = False
    job_queue = app.job_queue
    report["scheduler"] = bool(job_queue is not None and job_queue.scheduler.running)
    outbox = services.outbox
    backlog: dict[str, Any] = {"backlog": None, "oldest_queued_age_s": None}
    if report["database"]:
        with contextlib.suppress(sqlite3.Error):
            count, age = outbox.backlog()
            backlog = {"backlog": count, "oldest_queued_age_s": round(age, 1)}
    report["outbox"] = backlog
    if services.sender_lock is not None:
        report["sender"] = services.sender_lock.describe()
    else:
        report["sender"] = {"state": "running" if services.sender.running else "stopped"}
    report["counters"] = metrics_for(app).snapshot()
    ok = report["database"] and report["scheduler"]
    return ok, {"ok": ok, **report}


class WebhookServer:
    """aiohttp server for ``app``: the webhook path from ``url`` and ``/healthz``."""

    def __init__(
        self,
        app: Application,
        url: str,
        secret: str | None,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - a platform's router reaches us on every interface
        port: int = 8080,
    ) -> None:
        self.app = app
        self.url = url
        self.secret = secret
        self.host = host
        self.port = port
        self.path = urlsplit(url).path or "/"
        self._runner: web.AppRunner | None = None

    def make_web_app(self) -> web.Application:
        web_app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        web_app.router.add_post(self.path, self.handle_update)
        web_app.router.add_get("/healthz", self.handle_health)
        return web_app

    async def handle_update(self, request: web.Request) -> web.Response:
        metrics = metrics_for(self.app)
        if self.secret is not None:
            given = request.headers.get(SECRET_HEADER)
            # surrogateescape: a header of non-UTF-8 bytes is a wrong secret, not a 500
            presented = None if given is None else given.encode("utf-8", "surrogateescape")
            if presented is None or not hmac.compare_digest(presented, self.secret.encode()):
                metrics.inc("webhook_rejected")
                log.warning(
                    "webhook: refused a request with a %s secret token from %s",
                    "missing" if given is None else "wrong",
                    request.remote,
                )
                return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        if (request.content_length or 0) > MAX_UPDATE_BYTES:
            return self._refuse(request, 413, f"larger than {MAX_UPDATE_BYTES} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # no Content-Length (chunked), read past the limit
            return self._refuse(request, 413, f"larger than {MAX_UPDATE_BYTES} bytes")
        try:
            data = scrub(parse_update_body(raw))  # lone surrogates become U+FFFD (bot/wire.py)
        except BadBody as exc:
            return self._refuse(request, 400, str(exc))
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception as exc:  # a malformed update: say so, never crash the server
            return self._refuse(
                request, 400, f"update {data.get('update_id')} malformed ({type(exc).__name__})"
            )
        await self.app.update_queue.put(update)
        return web.json_response({"ok": True})

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        """One WARNING line (no traceback, no content of the body) and a JSON error answer."""
        metrics_for(self.app).inc("webhook_rejected")
        log.warning("webhook: refused a body from %s with %d: %s", request.remote, status, reason)
        error = "too large" if status == 413 else "not an update"
        return web.json_response({"ok": False, "error": error, "reason": reason}, status=status)

    async def handle_health(self, request: web.Request) -> web.Response:
        ok, report = health(self.app)
        return web.json_response(report, status=200 if ok else 503)

    async def start(self, *, set_webhook: bool = True) -> None:
        """Listen, then tell Telegram (setWebhook) where to post updates."""
        if self.secret is None:
            log.warning(
                "WEBHOOK_SECRET is not set: the webhook accepts requests from anyone who knows "
                "its URL; set WEBHOOK_SECRET to a long random value"
            )
        self._runner = web.AppRunner(self.make_web_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # tests: the port the OS chose
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]
        log.info("webhook server listening on %s:%d, path %s", self.host, self.port, self.path)
        if set_webhook:
            await self.set_webhook()

    async def set_webhook(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await self.app.bot.set_webhook(
                    url=self.url, secret_token=self.secret, allowed_updates=Update.ALL_TYPES
                )
                return
            except TelegramError as exc:
                if attempt == attempts:
                    raise
                log.warning("setWebhook failed (%s); retrying", exc)
                await asyncio.sleep(2.0 * attempt)

    async def stop(self) -> None:
        """Stop listening. The webhook stays set at Telegram, which queues updates meanwhile."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
