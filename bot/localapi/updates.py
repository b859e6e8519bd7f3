"""How updates reach the bot: long polling (getUpdates) or a webhook.

``UpdatesMixin`` is the part of ``LocalBotAPI`` that answers getUpdates (offsets, long
polls, the 409 of a competing poller), setWebhook / deleteWebhook / getWebhookInfo, and
pushes pending updates to the webhook URL with retries and Telegram's secret-token header.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from typing import Any

import aiohttp

from bot.localapi.model import ApiError, as_int, bad, encode_json
from bot.localapi.state import ServerState

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class UpdatesMixin(ServerState):
    """getUpdates and the webhook of ``LocalBotAPI``."""

    @property
    def webhook_url(self) -> str:
        """The current webhook url ("" when polling)."""
        return self._webhook["url"] if self._webhook else ""

    async def _m_get_updates(self, params: dict[str, Any], method: str) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset", 0) or 0, "offset")
        limit = as_int(params.get("limit", 100) or 100, "limit")
        limit = min(max(limit, 1), 100)
        timeout = params.get("timeout", 0) or 0
        timeout = float(timeout) if isinstance(timeout, int | float | str) else 0.0
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = params["allowed_updates"] or None
            self.stats.allowed_updates_sent += 1
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
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise bad("secret token contains unallowed characters")
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
