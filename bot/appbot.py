"""The Application's bot: PTB's ``ExtBot``, with a lighter getUpdates and a lighter reply.

PTB's Updater passes the same ``allowed_updates`` to every getUpdates call. This bot asks for
all of them (``Update.ALL_TYPES``, 25 names), and PTB serializes the list name by name on each
poll: about 250 Python calls, some 7 % of the work of an update that arrives on its own.
Telegram keeps the previous setting when the parameter is left out ("If not specified, the
previous setting will be used", Bot API, getUpdates), so :class:`AppBot` sends the list only
when it differs from what the last successful call sent: once per process, normally.
``python bench/calls.py`` (a poll per update at a steady 150 updates/s): 3,481 Python calls per
update with the list on every poll, 3,263-3,299 with this bot.

A busy bot can also poll less often. A getUpdates answer comes back as soon as one update is
there, so a bot that polls again at once takes steady traffic one update per answer, and pays
a whole HTTP round trip for each (some 0.5 ms of CPU through PTB, ``bench/roundtrip.py``).
With ``batch_hold`` > 0 (``BOT_POLL_HOLD_MS``; off by default), after an answer that brought
two updates or more :class:`AppBot` waits that long before it polls again, so that what arrives
meanwhile comes in one answer; an answer with one update or none is followed at once by the
next poll. It saves CPU (0.1-0.25 of a core at 60 % of the burst rate against the local
server) but each update waits for its batch: since replies stopped being parsed
(``send_html``), ``bench/versus.py`` has shown no better p95 with a hold of 2 or 5 ms than
without, and a p50 up to three times longer, hence off by default.

A reply does not need Telegram's answer. ``send_message`` turns that answer into a ``Message``
(its sender, chat, entities and keyboard, some 250 attribute sets in PTB's frozen objects), and
the bot's replies never look at it. :meth:`AppBot.send_html` sends the same request through
PTB's own path (defaults, the rate limiter, the error mapping) and keeps only the new message's
id. ``python bench/calls.py``: 2,626 Python calls per update in a burst with ``send_message``,
1,855 with ``send_html``; 3,297 and 2,532 at a steady 150 updates/s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.constants import ParseMode
from telegram.ext import ExtBot

__all__ = ["AppBot"]


class AppBot(ExtBot[Any]):
    """``ExtBot`` whose getUpdates leaves out ``allowed_updates`` when Telegram already has it,
    and waits ``batch_hold`` seconds after an answer with two updates or more (0: never); with
    :meth:`send_html` for replies whose answer nobody reads.

    Built by ``bot.app.build_application`` and given to ``ApplicationBuilder.bot`` (PTB's
    documented way to use a bot of one's own). A failed call changes nothing: the next one
    sends the list again, and does not wait.
    """

    __slots__ = ("_allowed_sent", "_batch_hold", "_last_batch")

    def __init__(self, *args: Any, batch_hold: float = 0.0, **kwargs: Any) -> None:
        if batch_hold < 0:
            raise ValueError("batch_hold must not be negative")
        super().__init__(*args, **kwargs)
        # What the last successful getUpdates sent (None: nothing yet, in this process).
        self._allowed_sent: tuple[str, ...] | None = None
        self._batch_hold = batch_hold
        self._last_batch = 0  # updates the last getUpdates brought (0 after a failed one)

    async def send_html(
        self, chat_id: int, text: str, reply_markup: Mapping[str, Any] | None = None
    ) -> int:
        """sendMessage with ``text`` as HTML, no link preview, and ``reply_markup`` given as the
        Bot API's JSON object; returns the new message's id. Errors are PTB's, as with
        ``send_message`` (``BadRequest``, ``Forbidden``, ``RetryAfter``, ``TimedOut`` ...)."""
        data: JSONDict = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": ParseMode.HTML,
            "link_preview_options": {"is_disabled": True},
        }
        if reply_markup is not None:
            data["reply_markup"] = reply_markup
        # Bot._post: the path every Bot method takes (defaults, then ExtBot's rate limiter).
        result = await self._post("sendMessage", data)
        return int(result["message_id"])

    @property
    def batch_hold(self) -> float:
        """Seconds to wait before polling again after an answer with two updates or more."""
        return self._batch_hold

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        wanted = None if allowed_updates is None else tuple(allowed_updates)
        if self._batch_hold and self._last_batch >= 2:
            await asyncio.sleep(self._batch_hold)
        self._last_batch = 0
        updates = await super().get_updates(
            offset=offset,
            limit=limit,
            timeout=timeout,
            allowed_updates=None if wanted == self._allowed_sent else wanted,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
            api_kwargs=api_kwargs,
        )
        if wanted is not None:
            self._allowed_sent = wanted
        self._last_batch = len(updates)
        return updates
