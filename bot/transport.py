"""A lean HTTP transport for python-telegram-bot on aiohttp (``BOT_HTTP_CLIENT=aiohttp``).

PTB's default client (httpx over httpcore) costs about half of the bot's CPU per update; aiohttp's
C-accelerated client does the same work for a fraction of it. :class:`AiohttpRequest` implements
PTB's :class:`~telegram.request.BaseRequest` contract: :meth:`do_request` returns ``(status,
body)`` and PTB itself turns a non-2xx status into its exceptions (429 -> RetryAfter, 400 ->
BadRequest, 403 -> Forbidden, 5xx -> NetworkError ...), exactly as with ``HTTPXRequest``. This
class only maps what happens *below* HTTP, the way ``HTTPXRequest`` does:

- a timeout (connect, read, the upload's write, or waiting for a pooled connection) ->
  :class:`~telegram.error.TimedOut` (a pool timeout says the request was not sent);
- any other client error (refused, reset, disconnected) -> :class:`~telegram.error.NetworkError`
  named ``aiohttp.<ErrorClass>``.

Messages never contain the bot token: the request URL (``.../bot<token>/method``) is scrubbed
from every error text.

Bodies: parameters go as one JSON object (``RequestData.parameters``, which the Bot API accepts
like a form); a request with files (photos, PDFs: ``RequestData.multipart_data``) goes as
``multipart/form-data`` with the other parameters as form fields, as ``HTTPXRequest`` sends it.

Timeouts: ``connect_timeout`` bounds opening a connection, ``read_timeout`` each wait for data
from the server, ``pool_timeout`` the wait for one of ``connection_pool_size`` connections. aiohttp
has no per-write timeout, so ``write_timeout`` (``media_write_timeout`` for uploads) is added to
the others as a bound on the whole request: an upload that stalls still ends in TimedOut.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot.config import redact
from bot.wire import WireJSON

_POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent "
    "to Telegram. Consider adjusting the connection pool size or the pool timeout."
)
_TOKEN_SEGMENT = re.compile(r"bot[^/\s]*:[^/\s]*")


def scrub(text: str, url: str) -> str:
    """``text`` without the bot token that ``url``'s path carries (or anything token-shaped)."""
    for segment in urlsplit(url).path.split("/"):
        if ":" in segment:
            text = text.replace(segment, "[REDACTED]")
    return redact(_TOKEN_SEGMENT.sub("bot[REDACTED]", text))


class AiohttpRequest(WireJSON, BaseRequest):
    """``BaseRequest`` on one ``aiohttp.ClientSession`` with a bounded connection pool.

    Same constructor arguments and defaults as PTB's ``HTTPXRequest`` (the ones this bot uses).
    The session is opened by :meth:`initialize` (or on first use) inside the running event loop
    and closed by :meth:`shutdown`; a shut-down request can be initialized again. A request made
    after :meth:`shutdown` fails (PTB reports it as a ``NetworkError``), as with PTB's own
    ``HTTPXRequest``: reopening a session there would leave it open, with nobody to close it.
    """

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_shut",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._pool: asyncio.Semaphore | None = None
        self._shut = False  # shutdown() ran and initialize() has not run since

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        return self._pool_size

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None),
            raise_for_status=False,
            trust_env=False,
        )
        # Our own pool gate, so that waiting for a connection has its own timeout and error.
        self._pool = asyncio.Semaphore(self._pool_size)
        return self._session

    async def initialize(self) -> None:
        self._shut = False
        if self._session is None or self._session.closed:
            self._open()

    async def shutdown(self) -> None:
        self._shut = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            if self._shut:
                raise RuntimeError("this AiohttpRequest is shut down; initialize() it again first")
            session = self._open()
        pool = self._pool
        assert pool is not None

        files = request_data.multipart_data if request_data is not None else None
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect_timeout
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if files else self._write_timeout

        kwargs: dict[str, Any] = {}
        if files:
            form = aiohttp.FormData(quote_fields=False)
            for name, value in request_data.json_parameters.items():  # type: ignore[union-attr]
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename or name, content_type=mimetype)
            kwargs["data"] = form
        elif request_data is not None and request_data.parameters:
            # One JSON object; string values stay strings (PTB's RequestData.json_payload would
            # JSON-encode every nested value a second time).
            kwargs["data"] = json.dumps(request_data.parameters).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}

        total = None
        if None not in (read_timeout, write_timeout, connect_timeout):
            total = read_timeout + write_timeout + connect_timeout  # type: ignore[operator]
        kwargs["timeout"] = aiohttp.ClientTimeout(
            total=total, sock_connect=connect_timeout, sock_read=read_timeout
        )

        try:
            async with asyncio.timeout(pool_timeout):
                await pool.acquire()
        except TimeoutError:
            raise TimedOut(_POOL_TIMEOUT_MESSAGE) from None
        try:
            async with session.request(method, url, **kwargs) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from _scrubbed(err, url)
        except aiohttp.ClientError as err:
            raise NetworkError(
                f"aiohttp.{type(err).__name__}: {scrub(str(err), url)}"
            ) from _scrubbed(err, url)
        finally:
            pool.release()


def _scrubbed(err: BaseException, url: str) -> BaseException | None:
    """``err`` as a cause only if its text is token-free (a traceback prints the cause)."""
    text = str(err)
    return err if scrub(text, url) == text else None


class HTTPXTransport(WireJSON, HTTPXRequest):
    """PTB's own httpx client (``BOT_HTTP_CLIENT=httpx``), decoding answers like the aiohttp one."""

    __slots__ = ()


def make_request(
    client: str,
    *,
    connection_pool_size: int,
    read_timeout: float | None = 5.0,
    write_timeout: float | None = 5.0,
    connect_timeout: float | None = 5.0,
    pool_timeout: float | None = 1.0,
    media_write_timeout: float | None = 20.0,
) -> BaseRequest:
    """The request object for ``BOT_HTTP_CLIENT``: ``"aiohttp"`` (default) or ``"httpx"`` (PTB's)."""
    timeouts = {
        "read_timeout": read_timeout,
        "write_timeout": write_timeout,
        "connect_timeout": connect_timeout,
        "pool_timeout": pool_timeout,
        "media_write_timeout": media_write_timeout,
    }
    if client == "httpx":
        return HTTPXTransport(connection_pool_size=connection_pool_size, **timeouts)
    if client == "aiohttp":
        return AiohttpRequest(connection_pool_size=connection_pool_size, **timeouts)
    raise ValueError(f"unknown HTTP client {client!r}")
