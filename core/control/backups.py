"""The engine's backups of its store: asked for (the ``backup`` command), on a wall-clock timer
(``[backup] every_hours``) and at each exchange session close (``DailySummaryReady``).

The copy runs on a worker thread (core/persistence/backup.py: SQLite's backup API on its own
read-only connection), so trading goes on while it is made; the store is flushed first, so
the copy holds everything the engine did up to the moment it was asked. One backup at a time.
Each outcome is an event on the bus, ``BackupWritten`` or ``BackupFailed``: the audit trail
records it (who, which file) and a failure is an alert. A scheduled backup within
``min_gap_minutes`` of the last one is skipped, and one that fails never stops the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from core.common.bus import Bus
from core.common.clock import Clock, TimerHandle
from core.config import BackupConfig
from core.domain.events import BackupFailed, BackupWritten, DailySummaryReady
from core.persistence.backup import MANUAL, SCHEDULED, SESSION_CLOSE, BackupError, BackupFile, prune, write_backup
from core.persistence.store import Store

log = logging.getLogger("cockpit.backup")

ENGINE = "engine"  # who asked for a scheduled backup


class BackupService:
    """Makes, rotates and reports the backups of one engine's store (on the engine's loop)."""

    def __init__(self, config: BackupConfig, store: Store, bus: Bus, wall_clock: Clock) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.wall_clock = wall_clock
        self.directory = store.backups
        self.last: BackupFile | None = None
        self.last_pruned: tuple[str, ...] = ()  # what rotation deleted after the last one
        self.last_error: str | None = None
        self._last_at: datetime | None = None  # wall time of the last backup written
        self._lock = asyncio.Lock()
        self._timer: TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._running = False
        bus.subscribe(DailySummaryReady, self._on_session_close, critical=False)

    # ---- the schedule --------------------------------------------------------------

    def start(self) -> None:
        """Start the timer (while the engine trades)."""
        self._running = True
        self._arm()

    def stop(self) -> None:
        """No more scheduled backups; one in progress finishes (``idle``)."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def idle(self) -> None:
        """Wait until no backup is being made (before the store closes)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        async with self._lock:
            pass

    def _arm(self) -> None:
        if self._running and self.config.every_hours > 0:
            self._timer = self.wall_clock.call_later(timedelta(hours=self.config.every_hours), self._on_timer)

    def _on_timer(self) -> None:
        self._scheduled(SCHEDULED)
        self._arm()

    def _on_session_close(self, _event: DailySummaryReady) -> None:
        if self.config.at_session_close and self._running:
            self._scheduled(SESSION_CLOSE)

    def _scheduled(self, reason: str) -> None:
        """A scheduled backup, unless one is being made or the last is within the minimum gap."""
        if self._lock.locked() or self._tasks:  # a task spawned but not started yet counts too
            log.debug("%s backup skipped: a backup is being made", reason)
            return
        gap = timedelta(minutes=self.config.min_gap_minutes)
        if self._last_at is not None and self.wall_clock.now() - self._last_at < gap:
            log.debug("%s backup skipped: the last one is less than %s old", reason, gap)
            return
        self._spawn(self._quietly(reason))

    async def _quietly(self, reason: str) -> None:
        try:
            await self.take(reason, ENGINE)
        except Exception:  # already published as BackupFailed (and logged): trading goes on
            pass

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- one backup ----------------------------------------------------------------

    async def take(self, reason: str = MANUAL, actor: str = ENGINE) -> BackupFile:
        """Flush, copy, check, name, rotate; publish the outcome. Raises ``BackupError``."""
        async with self._lock:
            try:
                await self.store.flush()
                made = await asyncio.to_thread(write_backup, self.store.path, self.directory, reason,
                                               self.wall_clock.now(), tuple(self.store.copy_checks))
            except Exception as exc:
                error = str(exc) if isinstance(exc, BackupError) else f"{type(exc).__name__}: {exc}"
                self.last_error = error
                log.error("backup (%s, asked by %s) FAILED: %s", reason, actor, error)
                self.bus.publish(BackupFailed(reason, error, actor))
                if isinstance(exc, BackupError):
                    raise
                raise BackupError(f"backup failed: {error}") from exc
            self.last, self.last_error, self._last_at = made, None, self.wall_clock.now()
            pruned: list[BackupFile] = []
            try:
                pruned = await asyncio.to_thread(prune, self.directory, self.config.keep_recent,
                                                 self.config.keep_daily)
            except (BackupError, OSError) as exc:  # the backup itself is good; rotation runs again next time
                log.warning("backup rotation in %s failed: %s", self.directory, exc)
            self.last_pruned = tuple(p.name for p in pruned)
            log.info("backup written (%s, asked by %s): %s, %d bytes%s", reason, actor, made.path, made.size,
                     f"; rotated out {', '.join(self.last_pruned)}" if pruned else "")
            self.bus.publish(BackupWritten(made.name, reason, made.size, actor, self.last_pruned))
            return made
