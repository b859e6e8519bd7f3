"""The Application's bot: PTB's ``ExtBot``, with a lighter getUpdates.

PTB's Updater passes the same ``allowed_updates`` to every getUpdates call. This bot asks for
all of them (``Update.ALL_TYPES``, 25 names), and PTB serializes the list name by name on each
poll: about 250 Python calls, some 7 % of the work of an update that arrives on its own.
Telegram keeps the previous setting when the parameter is left out ("If not specified, the
previous setting will be used", Bot API, getUpdates), so :class:`PollingBot` sends the list only
when it differs from what the last successful call sent: once per process, normally.
``python bench/calls.py`` (a poll per update at a steady 150 updates/s): 3,481 Python calls per
update with the list on every poll, 3,263-3,299 with this bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.ext import ExtBot

__all__ = ["PollingBot"]


class PollingBot(ExtBot[Any]):
    """``ExtBot`` whose getUpdates leaves out ``allowed_updates`` when Telegram already has it.

    Built by ``bot.app.build_application`` and given to ``ApplicationBuilder.bot`` (PTB's
    documented way to use a bot of one's own). A failed call changes nothing: the next one
    sends the list again.
    """

    __slots__ = ("_allowed_sent",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What the last successful getUpdates sent (None: nothing yet, in this process).
        self._allowed_sent: tuple[str, ...] | None = None

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
        return updates
