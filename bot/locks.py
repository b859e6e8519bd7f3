"""The single-sender lock: a lease in SQLite so that only one process sends the outbox.

Two bot processes on one database (a rolling deploy, a web and a worker started by mistake)
would both drain the outbox, and the sender's crash recovery assumes it is alone. The lease is a
row of the ``locks`` table (migration 6): ``name``, ``owner`` (host:pid:random), ``heartbeat_at``
and ``expires_at``. A process takes it when nobody holds it, when it has expired or when it is
already its own, in one ``BEGIN IMMEDIATE`` transaction; it refreshes it every ``ttl / 3`` s
and deletes it at a clean stop. A process that cannot take it keeps answering users but does not
send; it tries again at every heartbeat and takes over once the holder stops or dies (at most
``ttl`` s later), so a rolling deploy hands over by itself.

Wiring: :func:`install_sender_lock` wraps the outbox's start/stop hooks of an Application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telegram.ext import Application

    from bot.storage import Storage

log = logging.getLogger(__name__)

SENDER_LOCK = "outbox-sender"
_local_owners: set[str] = set()  # owner ids created by this process


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def new_owner_id() -> str:
    """host:pid:random — unique per process start, readable in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (host:pid:random) names a process of this host that is gone (a crash
    or kill -9, then a restart). Another host's owner is never presumed dead: it expires."""
    rest = owner.split(":")
    if len(rest) < 3 or not rest[-2].isdigit():
        return False
    host, pid = ":".join(rest[:-2]), int(rest[-2])
    if host != socket.gethostname():
        return False
    if pid == os.getpid():  # an earlier process with our pid (a restarted container), unless
        return owner not in _local_owners  # it is another lock object of this very process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SenderLock:
    """A named lease in the ``locks`` table of ``storage``'s database."""

    def __init__(
        self, storage: Storage, name: str = SENDER_LOCK, ttl: float = 30.0, owner: str | None = None
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.storage = storage
        self.name = name
        self.ttl = ttl
        self.owner = owner or new_owner_id()
        _local_owners.add(self.owner)

    def acquire(self, now: datetime | None = None) -> bool:
        """Take the lease if it is free, expired, ours, or held by a dead process of this host."""
        now = now or datetime.now(UTC)
        stamp, expires = _iso(now), _iso(now + timedelta(seconds=self.ttl))
        conn = self.storage.db.conn
        with self.storage.transaction():
            row = conn.execute("SELECT owner FROM locks WHERE name = ?", [self.name]).fetchone()
            if row is not None and row[0] != self.owner and owner_is_dead(row[0]):
                log.warning(
                    "the outbox sender lock's holder %s is no longer running; taking over", row[0]
                )
                conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", [self.name, row[0]])
            before = conn.total_changes
            conn.execute(
                "INSERT INTO locks (name, owner, acquired_at, heartbeat_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "owner = excluded.owner, heartbeat_at = excluded.heartbeat_at, "
                "expires_at = excluded.expires_at, acquired_at = CASE WHEN locks.owner = "
                "excluded.owner THEN locks.acquired_at ELSE excluded.acquired_at END "
                "WHERE locks.owner = excluded.owner OR locks.expires_at <= excluded.heartbeat_at",
                [self.name, self.owner, stamp, stamp, expires],
            )
            return conn.total_changes > before

    def refresh(self, now: datetime | None = None) -> bool:
        """Extend our lease by ``ttl``; False when it is no longer ours (someone took it over)."""
        now = now or datetime.now(UTC)
        with self.storage.transaction():
            count = self.storage.db.conn.execute(
                "UPDATE locks SET heartbeat_at = ?, expires_at = ? WHERE name = ? AND owner = ?",
                [_iso(now), _iso(now + timedelta(seconds=self.ttl)), self.name, self.owner],
            ).rowcount
        return count == 1

    def release(self) -> bool:
        """Give the lease up (only if it is ours); True when a row was deleted."""
        with self.storage.transaction():
            count = self.storage.db.conn.execute(
                "DELETE FROM locks WHERE name = ? AND owner = ?", [self.name, self.owner]
            ).rowcount
        return count == 1

    def holder(self) -> dict[str, str] | None:
        """The current row (owner, acquired_at, heartbeat_at, expires_at), expired or not."""
        cursor = self.storage.db.conn.execute(
            "SELECT owner, acquired_at, heartbeat_at, expires_at FROM locks WHERE name = ?",
            [self.name],
        )
        row = cursor.fetchone()
        return (
            None if row is None else dict(zip([c[0] for c in cursor.description], row, strict=True))
        )


StartStop = Callable[[], Awaitable[Any]]


class GuardedSender:
    """Runs ``start``/``stop`` only while this process holds ``lock``; heartbeats and takes over.

    ``state`` is "stopped" (not started), "running" (we hold the lock and sent ``start``) or
    "standby" (another process holds it; we retry at every heartbeat).
    """

    def __init__(
        self, lock: SenderLock, start: StartStop, stop: StartStop, *, interval: float | None = None
    ) -> None:
        self.lock = lock
        self._start = start
        self._stop = stop
        self.interval = interval if interval is not None else lock.ttl / 3
        self.state = "stopped"
        self._task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self._announced_standby = False

    @property
    def running(self) -> bool:
        return self.state == "running"

    def describe(self) -> dict[str, Any]:
        """For /healthz: our state, our id, and the lock's holder as stored."""
        info: dict[str, Any] = {"state": self.state, "owner": self.lock.owner}
        with contextlib.suppress(sqlite3.Error):
            holder = self.lock.holder()
            if holder is not None:
                info["lock_owner"] = holder["owner"]
                info["lock_expires_at"] = holder["expires_at"]
        return info

    async def start(self) -> bool:
        """Try to take the lock and start sending; start the heartbeat either way."""
        if self._task is None:
            self._task = asyncio.create_task(self._heartbeat(), name=f"lock-{self.lock.name}")
        return await self._try_take()

    async def _try_take(self) -> bool:
        try:
            taken = self.lock.acquire()
        except sqlite3.Error as exc:
            log.error("cannot read the outbox sender lock (%s); not sending for now", exc)
            taken = False
        else:
            if taken:
                self._last_refresh = time.monotonic()
                was_standby = self.state == "standby"
                self.state = "running"
                self._announced_standby = False
                if was_standby:
                    log.warning(
                        "took over the outbox sender lock (owner %s); sending", self.lock.owner
                    )
                else:
                    log.info("holding the outbox sender lock (owner %s)", self.lock.owner)
                try:
                    await self._start()
                except BaseException:
                    self.state = "standby"
                    with contextlib.suppress(sqlite3.Error):
                        self.lock.release()
                    raise
                return True
        if self.state != "standby" or not self._announced_standby:
            self._announce_standby()
        self.state = "standby"
        return False

    def _announce_standby(self) -> None:
        holder = None
        with contextlib.suppress(sqlite3.Error):
            holder = self.lock.holder()
        owner = holder["owner"] if holder else "unknown"
        until = holder["expires_at"] if holder else "unknown"
        log.warning(
            "another process holds the outbox sender lock (owner %s, until %s); "
            "this process will not send",
            owner,
            until,
        )
        self._announced_standby = True

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self.state == "running":
                    await self._refresh()
                elif self.state == "standby":
                    await self._try_take()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the heartbeat die
                log.exception("outbox sender lock heartbeat failed")

    async def _refresh(self) -> None:
        try:
            ours = self.lock.refresh()
        except sqlite3.Error as exc:
            if time.monotonic() - self._last_refresh < self.lock.ttl * 0.8:
                log.warning("could not refresh the outbox sender lock (%s); retrying", exc)
                return
            ours = False
            log.error("could not refresh the outbox sender lock for too long (%s)", exc)
        if ours:
            self._last_refresh = time.monotonic()
            return
        log.error("lost the outbox sender lock; this process stops sending")
        self.state = "standby"
        self._announced_standby = False
        await self._stop()

    async def stop(self) -> None:
        """Stop the heartbeat; stop sending and release the lock if we held it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was_running = self.state == "running"
        self.state = "stopped"
        if was_running:
            try:
                await self._stop()
            finally:
                try:
                    self.lock.release()
                except sqlite3.Error as exc:
                    log.warning(
                        "could not release the outbox sender lock (%s); it expires by itself", exc
                    )


def _is_outbox_hook(hook: Any) -> bool:
    return getattr(hook, "__module__", None) == "bot.outbox"


def install_sender_lock(app: Application, *, ttl: float = 30.0) -> GuardedSender | None:
    """Put the outbox sender's post_init/post_stop hooks (from bot.outbox.install) under the lock.

    Call after ``bot.outbox.install(app)``. Returns None when the sender is not started with the
    app (``outbox_sender=False``). Idempotent. The guard is ``services.extras["sender_lock"]``.
    """
    services = app.bot_data["services"]
    extras = services.extras
    if "sender_lock" in extras:
        return extras["sender_lock"]
    starts = [h for h in extras.get("post_init", []) if _is_outbox_hook(h)]
    stops = [h for h in extras.get("post_stop", []) if _is_outbox_hook(h)]
    if not starts:
        return None

    async def start_all() -> None:
        for hook in starts:
            await hook(app)

    async def stop_all() -> None:
        for hook in stops:
            await hook(app)

    guard = GuardedSender(SenderLock(services.storage, SENDER_LOCK, ttl), start_all, stop_all)

    async def start_guarded(_app: Application) -> None:
        await guard.start()

    async def stop_guarded(_app: Application) -> None:
        await guard.stop()

    post_init = extras["post_init"]
    post_init[post_init.index(starts[0])] = start_guarded
    extras["post_init"] = [h for h in post_init if h not in starts]
    post_stop = extras.setdefault("post_stop", [])
    if stops:
        post_stop[post_stop.index(stops[0])] = stop_guarded
        extras["post_stop"] = [h for h in post_stop if h not in stops]
    else:
        post_stop.append(stop_guarded)
    extras["sender_lock"] = guard
    return guard
