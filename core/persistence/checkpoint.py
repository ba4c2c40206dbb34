"""WAL checkpoints on a connection and a thread of their own, never inside the engine's commits.

SQLite checkpoints a WAL database by itself when a COMMIT finds the WAL past 1000 pages: that
commit then copies the WAL into the database file and fsyncs it, a few milliseconds that some
order's write-ahead commit would pay (about one commit in a hundred: right at the p99). The
store turns that off (``PRAGMA wal_autocheckpoint=0``) and asks this checkpointer instead, after
its flushes: a PASSIVE checkpoint, from a second connection in a worker thread, while the engine's
connection goes on committing (SQLite lets a checkpoint and a writer run at once; PASSIVE never
waits for a lock). A failed checkpoint loses nothing (the WAL still holds every commit): it is
logged and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("cockpit.store")

#: A checkpoint after this many commits (about the 1000 WAL pages SQLite's own would wait for) ...
EVERY_COMMITS = 100
#: ... or this long after the last one, if anything was committed since.
EVERY_SECONDS = 1.0


class Checkpointer:
    """``after_commit()`` from the loop after each commit; ``close()`` before the store's connection closes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Future[None] | None = None
        self._commits = 0
        self._last = time.monotonic()
        self.checkpoints = 0
        self.failures = 0
        self._closing = False

    def closing(self) -> None:
        """No more checkpoints: the store is about to close (its final commit need not start one, which
        ``close()`` would then wait for just before SQLite checkpoints the WAL once more itself)."""
        self._closing = True

    def after_commit(self) -> None:
        self._commits += 1
        if self._closing:
            return  # the store's last connection checkpoints the rest as it closes
        if self._task is not None and not self._task.done():
            return  # one at a time; the next commit asks again
        if self._commits < EVERY_COMMITS and time.monotonic() - self._last < EVERY_SECONDS:
            return
        self._commits = 0
        self._last = time.monotonic()
        self._task = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                # used by one worker thread at a time (the task above), never concurrently
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 100 == 0:
                log.warning("store %s: a WAL checkpoint failed (%s; %d so far); the WAL keeps every commit "
                            "and the next checkpoint tries again", self.path.name, exc, self.failures)

    async def close(self) -> None:
        """Wait for a checkpoint in flight and close the connection (the store's, closed last, then
        checkpoints the rest and removes the WAL)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)
        self._closing = False  # a store opened again checkpoints again
