"""SQLite state store (WAL, through aiosqlite) with batched writes and migrations.

Writes are buffered in memory and committed together by ``flush()``: the engine never
waits per row. A flush is one transaction, so what is on disk is always a consistent
prefix of the engine's history. Callers that must be durable before acting (an order
before it is sent) await ``write_ahead()``: the same one transaction of everything buffered
(but the puts of hooks registered ``ahead=False``: position marks, left to the next flush),
made on the loop's own thread when no other commit is in flight (no hop to aiosqlite's thread
and back, which cost about a millisecond), else after the one in flight. On the loop's thread it
waits at most ``WRITE_AHEAD_BUSY_SECONDS`` for SQLite's write lock (another process writing):
then the transaction goes through aiosqlite's thread as ``flush()`` does, so the loop is never
held longer. With durability "power" (an fsync per commit) the write-ahead goes through
aiosqlite's thread too: the loop is never held for an fsync.

Every commit, a flush's on aiosqlite's thread as a write-ahead's on the loop's, is made on one
connection of its own (the writer), one at a time (the store's lock): SQLite empties a
connection's page cache whenever another connection has written since its last transaction, so
with two writing connections each write-ahead read its tables' pages again after every
background commit of a broker's report. aiosqlite's connection only reads, after the migrations.

Two kinds of write: ``append`` (history rows, kept in order) and ``put`` (current-state
rows keyed by what they describe; only the latest put per key is written). A put may hand a
function instead of the row: it is called when the flush begins, so a row that changed four
times since the last flush (an order: new, sent, accepted, filled) is turned into text once,
off the order path, and says what the object holds at the commit.

Before the first migration it runs on a store that already held an account, the store
is backed up (reason "pre-migration", core/persistence/backup.py, with the ``copy_checks``
its components registered): a migration that goes wrong can be undone with `cockpit restore`.
A backup that cannot be made refuses the migration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite

from core.common.clock import Clock, LiveClock
from core.persistence.backup import BACKUPS_DIR, PRE_MIGRATION, BackupDiskFull, BackupError, CopyCheck, write_backup
from core.persistence.checkpoint import Checkpointer
from core.persistence.disk_full import DiskFull, is_disk_full
from core.persistence.files import DB_FILENAME as FILES_DB_FILENAME

log = logging.getLogger("cockpit.store")

Params = tuple[Any, ...]

#: ``[engine] order_durability`` -> ``PRAGMA synchronous`` (WAL). NORMAL: a commit is in the WAL file
#: (the OS has it) when COMMIT returns, so it survives the process being killed at any moment;
#: only checkpoints fsync. FULL: the WAL is also fsynced at every commit, so a commit survives a
#: power cut or a kernel panic too (sqlite.org/pragma.html#pragma_synchronous).
SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}

DB_FILENAME = FILES_DB_FILENAME  # re-exported: core/persistence/files.py has the name (no imports)
#: How long a write-ahead commit on the loop's thread may wait for the write lock (SQLite's busy
#: timeout on the writer) before it goes through aiosqlite's thread instead.
WRITE_AHEAD_BUSY_SECONDS = 0.005
#: How long a commit on aiosqlite's thread waits for the write lock (the loop runs on meanwhile).
THREAD_BUSY_MS = 5000

CORE_MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        order_type TEXT NOT NULL,
        tif TEXT NOT NULL,
        limit_price TEXT,
        status TEXT NOT NULL,
        filled_qty TEXT NOT NULL,
        avg_fill_price TEXT,
        broker_order_id TEXT,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_status ON orders(status);
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        exec_id TEXT NOT NULL UNIQUE,
        client_order_id TEXT NOT NULL,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        commission TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE INDEX fills_ts ON fills(ts);
    CREATE TABLE positions (
        symbol TEXT PRIMARY KEY,
        qty TEXT NOT NULL,
        avg_cost TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        commissions TEXT NOT NULL,
        last_price TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE account (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE risk_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        strategy TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE feed_cursor (feed TEXT PRIMARY KEY, ts TEXT NOT NULL, n_at_ts INTEGER NOT NULL);
    """,
    # v2: operator settings made at run time (risk limits, strategies on/off, trading state)
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
    """,
    # v3: adjustment fills (operator overrides, accepted breaks) and who owns each fill
    """
    ALTER TABLE fills ADD COLUMN kind TEXT NOT NULL DEFAULT 'trade';
    ALTER TABLE fills ADD COLUMN actor TEXT;
    ALTER TABLE fills ADD COLUMN reason TEXT;
    CREATE TABLE fill_allocations (
        exec_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        symbol TEXT NOT NULL,
        qty TEXT NOT NULL,
        PRIMARY KEY (exec_id, owner)
    );
    """,
    # v4: equity points (the curve and the max drawdown survive a restart)
    """
    CREATE TABLE equity_points (
        ts TEXT PRIMARY KEY,
        equity TEXT NOT NULL,
        peak TEXT NOT NULL,
        max_drawdown TEXT NOT NULL,
        day_open TEXT NOT NULL
    );
    """,
]


class StoreFailed(Exception):
    """A commit failed earlier: the store takes no more writes."""


class MigrationRefused(Exception):
    """The store could not be backed up before a migration, so it was not migrated."""


class Store:
    """The engine's one writer to SQLite."""

    def __init__(self, path: Path, *, copy_checks: Sequence[CopyCheck] = (), backups: Path | None = None,
                 clock: Clock | None = None, durability: str = "power") -> None:
        self.path = Path(path)
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability must be one of {', '.join(SYNCHRONOUS)}, not {durability!r}")
        # What a commit survives (set before open; the engine sets its config's, [engine] order_durability).
        self.durability = durability
        # What a copy of this store must pass besides SQLite's integrity check (the audit chain's
        # check registers itself: core.audit.writer); used by the pre-migration backup.
        self.copy_checks: list[CopyCheck] = list(copy_checks)
        self.backups = backups if backups is not None else self.path.parent / BACKUPS_DIR
        self._clock: Clock = clock or LiveClock()
        self._had_data = False  # the file held an account when opened: migrating it backs it up first
        self._backed_up = False
        self._db: aiosqlite.Connection | None = None
        self._writer: sqlite3.Connection | None = None  # every commit, on one thread at a time (the lock)
        self._loop_commits = False  # write-aheads on the loop's thread ("process"): the writer's busy wait is short
        # Held while a transaction is made on the writer, by either thread: the store's asyncio lock
        # orders the commits, this one also covers a commit whose awaiting task was cancelled.
        self._writing = threading.Lock()
        self.write_aheads = 0  # made on the loop's thread
        self.write_ahead_fallbacks = 0  # the lock was busy: made through aiosqlite's thread
        self.checkpointer = Checkpointer(self.path)  # WAL checkpoints off the commits (core/persistence/checkpoint.py)
        self._appends: list[tuple[str, Params | Callable[[], Params]]] = []
        self._puts: dict[Any, tuple[str, Params | Callable[[], Params]]] = {}
        self._lock = asyncio.Lock()
        self._before_flush: list[Callable[[], None]] = []
        self._flush_only: list[Callable[[], None]] = []  # not run by a write-ahead: see before_flush
        self._last_hooks: list[Callable[[], None]] = []
        self.rows_written = 0
        self.commits = 0
        self.failed: BaseException | None = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        """Open (creating and migrating as needed); a full disk is ``DiskFull``, not a SQLite error."""
        try:
            await self._open()
        except Exception as exc:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._db is not None:  # its thread would keep the process alive after the error
                await self._db.close()
                self._db = None
            if is_disk_full(exc):
                raise DiskFull(self.path.parent) from exc
            raise

    async def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)  # the state dir holds fills and cash: its user's only
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        os.chmod(self.path, 0o600)
        # One hop to the database thread for the settings and the first look (each hop costs ~100 us).
        self._had_data = await self._in_db_thread(_set_up, SYNCHRONOUS[self.durability])
        await self.migrate("core", CORE_MIGRATIONS)
        # The writer, set as aiosqlite's connection is. Its commits run on the loop's thread (write-aheads
        # with "process") or on aiosqlite's (the rest), never two at once: the store's lock is held
        # around each. Not on the loop with "power": each commit then waits for an fsync (milliseconds).
        self._loop_commits = self.durability == "process"
        timeout = WRITE_AHEAD_BUSY_SECONDS if self._loop_commits else THREAD_BUSY_MS / 1000
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout, check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[self.durability]}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA foreign_keys=ON")
        self._writer = conn

    async def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of ``component`` not applied yet; return the version now.

        Those pending run as one script in one transaction (all or none; a new store takes every
        step in one commit): the same statements in the same order as one at a time, so the same
        schema (tests/test_store.py compares them)."""
        version = await self._in_db_thread(_schema_version, component)
        if version > len(migrations):
            raise RuntimeError(
                f"{self.path}: schema of '{component}' is version {version}, newer than this "
                f"cockpit knows ({len(migrations)}): upgrade cockpit or use another state dir"
            )
        if version < len(migrations):
            await self._backup_before_migrating(component, version, len(migrations))
            number = len(migrations)
            await self._in_db_thread(_run_script, "BEGIN;\n" + "".join(s + ";\n" for s in migrations[version:])
                                     + f"INSERT INTO schema_migrations VALUES ('{component}', {number})"
                                     f" ON CONFLICT(component) DO UPDATE SET version = {number};\nCOMMIT;")
            for done in range(version + 1, number + 1):
                log.info("store %s: migrated %s to schema v%d", self.path.name, component, done)
        return len(migrations)

    def check_copies_with(self, check: CopyCheck) -> None:
        """Every backup of this store must also pass ``check`` (registered once)."""
        if check not in self.copy_checks:
            self.copy_checks.append(check)

    async def _backup_before_migrating(self, component: str, version: int, target: int) -> None:
        """The first migration of a store that held an account is preceded by a verified backup (a
        store still being created, even one killed half-way before, has nothing to keep)."""
        if not self._had_data or self._backed_up:
            return
        try:
            made = await asyncio.to_thread(write_backup, self.path, self.backups, PRE_MIGRATION, self._clock.now(),
                                           tuple(self.copy_checks))
        except BackupDiskFull as exc:
            raise DiskFull(self.path.parent) from exc
        except BackupError as exc:
            raise MigrationRefused(
                f"{self.path}: not migrating {component} from schema v{version} to v{target}: the backup before it "
                f"failed ({exc})") from None
        self._backed_up = True
        log.warning("store %s: backed up to %s before migrating %s from schema v%d to v%d", self.path.name,
                    made.path, component, version, target)

    def before_flush(self, hook: Callable[[], None], *, last: bool = False, ahead: bool = True) -> None:
        """Run ``hook`` at the start of every flush (to put coalesced state such as cursors).

        ``last``: after every other hook (the audit trail chains the rows they may add).
        ``ahead=False``: not before a write-ahead, only at the next ``flush()`` (after the other
        hooks' puts of that flush): for current-state rows no order depends on, such as the
        marks of positions (last prices), which the write-ahead would otherwise carry to disk
        on the order's path and which the next flush writes as they are then. The hook must
        not record audit rows (they would be chained after the write-ahead's)."""
        if last:
            self._last_hooks.append(hook)
        elif not ahead:
            self._flush_only.append(hook)
        else:
            self._before_flush.append(hook)

    def append(self, sql: str, params: Params | Callable[[], Params]) -> None:
        """A history row, written by the next flush in the order appended. ``params`` as a function
        is called at the start of that flush: give one only over values that cannot change (a frozen
        event), since a history row says what was, not what is."""
        self._appends.append((sql, params))

    def put(self, key: Any, sql: str, params: Params | Callable[[], Params]) -> None:
        """The row ``key`` describes, written by the next flush unless put again; ``params`` as a
        function is called at the start of that flush (on the loop, before the commit)."""
        self._puts[key] = (sql, params)

    async def flush(self) -> None:
        """Commit everything buffered so far in one transaction."""
        self._refuse_if_failed()
        async with self._lock:
            taken = self._take(ahead=False)
            if taken is not None:
                await self._commit(*taken)

    async def write_ahead(self) -> None:
        """``flush()`` before an order is sent: the same one transaction, made here on the loop's
        thread unless SQLite's write lock stays busy for ``WRITE_AHEAD_BUSY_SECONDS`` (or the writer
        is still finishing a commit on aiosqlite's thread); a flush in flight is waited for first,
        as ``flush()`` does."""
        self._refuse_if_failed()
        async with self._lock:  # free (the usual case): taken without yielding to the loop
            taken = self._take(ahead=True)
            if taken is None:
                return
            groups, rows = taken
            if self._loop_commits:
                if self._writing.acquire(blocking=False):  # never held across an await: free unless the thread has it
                    try:
                        _write_batch(self.writer, groups)
                    except sqlite3.OperationalError as exc:
                        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                            self._failed_with(exc)
                        # Busy: nothing was written (rolled back); the same rows through aiosqlite's thread.
                    except BaseException as exc:
                        self._failed_with(exc)
                    else:
                        self.write_aheads += 1
                        self._committed(rows)
                        return
                    finally:
                        self._writing.release()
                self.write_ahead_fallbacks += 1
            await self._commit(groups, rows)

    def _refuse_if_failed(self) -> None:
        if self.failed is not None:
            if is_disk_full(self.failed):
                raise DiskFull(self.path.parent) from self.failed
            raise StoreFailed(f"{self.path}: an earlier commit failed ({self.failed!r}); refusing to write on")

    def _take(self, *, ahead: bool) -> tuple[list[tuple[str, list[tuple[Any, ...]]]], int] | None:
        """Run the hooks (``ahead``: those a write-ahead runs) and take the buffers, their rows made
        (under the lock); None if empty."""
        for hook in self._before_flush:
            hook()
        if not ahead:
            for hook in self._flush_only:
                hook()
        for hook in self._last_hooks:
            hook()
        if not self._appends and not self._puts:
            return None
        queued, self._appends = self._appends, []
        pending, self._puts = self._puts, {}
        try:
            appends = [(sql, params() if callable(params) else params) for sql, params in queued]
            puts = [(sql, params() if callable(params) else params) for sql, params in pending.values()]
        except BaseException as exc:
            self._failed_with(exc)
        # History rows in the order appended; current-state rows (one per key, so their order does not
        # matter) by statement: one executemany per table however the puts came.
        return _group(appends) + _group(sorted(puts, key=_statement)), len(queued) + len(pending)

    @property
    def writer(self) -> sqlite3.Connection:
        """The connection every commit is made on (under the store's lock, on one thread at a time)."""
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def _commit(self, groups: list[tuple[str, list[tuple[Any, ...]]]], rows: int) -> None:
        """The transaction on aiosqlite's thread, on the writer (under the store's lock), in one hop.

        A whole transaction in one hop instead of one per statement: each hop costs ~100 us, which
        dominated the replay. ``_execute`` is aiosqlite's own (pinned 0.22.1) queueing primitive,
        left untyped by it.
        """
        writer, writing = self.writer, self._writing
        write = _write_batch_waiting if self._loop_commits else _write_batch

        def commit() -> None:
            with writing:  # a commit whose awaiting task was cancelled still has it: the loop's waits
                write(writer, groups)

        try:
            await self.db._execute(commit)  # type: ignore[no-untyped-call]
        except BaseException as exc:
            self._failed_with(exc)
        self._committed(rows)

    def _failed_with(self, exc: BaseException) -> NoReturn:
        # The batch is lost from memory; committing anything after it would store
        # later state on top of a hole. The store refuses all further writes: what
        # is on disk stays a consistent prefix and a restart resumes from it.
        self.failed = exc
        if is_disk_full(exc):
            raise DiskFull(self.path.parent) from exc
        raise exc

    def _committed(self, rows: int) -> None:
        self.rows_written += rows
        self.commits += 1
        self.checkpointer.after_commit()

    async def _in_db_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(sqlite3_connection, *args)`` on aiosqlite's worker thread in one hop (each hop
        costs ~100 us). ``_execute``/``_conn`` are aiosqlite's own (pinned 0.22.1) queueing primitive
        and connection, left untyped by it."""
        db = self.db
        return await db._execute(lambda: fn(db._conn, *args))  # type: ignore[no-untyped-call]

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        """Flush (unless a commit already failed) and close; the connection closes regardless."""
        if self._db is None:
            return
        self.checkpointer.closing()
        try:
            if self.failed is None:
                await self.flush()
        finally:
            try:
                if self._writer is not None:
                    conn, self._writer = self._writer, None
                    # on aiosqlite's thread: behind a commit still there (one whose awaiting task was cancelled)
                    await self._db._execute(conn.close)  # type: ignore[no-untyped-call]
                await self.checkpointer.close()  # first: the store's connection, closed last, removes the WAL
            finally:
                await self._db.close()
                self._db = None


def _set_up(conn: sqlite3.Connection, synchronous: str) -> bool:
    """The connection's settings and the migrations' table; True when the file held an account
    (runs on the database thread, at open)."""
    # The durability first: a new file's switch to WAL is written with it (one fsync fewer at "process").
    conn.execute(f"PRAGMA synchronous={synchronous}")
    if synchronous == SYNCHRONOUS["process"] and conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        # A new, empty file: the switch writes its first page, with nothing before it to roll back to
        # (and one write, whole or not at all if the process is killed), so without a rollback journal:
        # two fsyncs fewer (the journal's and its folder's). The same bytes (tests/test_store_schema.py).
        conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer does it, not a commit
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={THREAD_BUSY_MS}")
    found = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('account', 'orders', 'fills')").fetchone()
    held = found[0] == 3 and conn.execute("SELECT EXISTS(SELECT 1 FROM account) OR EXISTS(SELECT 1 FROM orders)"
                                          " OR EXISTS(SELECT 1 FROM fills)").fetchone()[0]
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    return bool(held)


def _schema_version(conn: sqlite3.Connection, component: str) -> int:
    row = conn.execute("SELECT version FROM schema_migrations WHERE component = ?", (component,)).fetchone()
    return int(row[0]) if row else 0


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """A script with its own BEGIN and COMMIT: rolled back when a statement fails (executescript
    stops there, inside the transaction), so a failed migration leaves nothing behind."""
    try:
        conn.executescript(script)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _write_batch(conn: sqlite3.Connection, groups: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """One transaction: every statement or none (on the loop's thread or the database thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in groups:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may already have rolled back (a full disk at COMMIT does): a second
        # ROLLBACK would raise "no transaction is active" and hide the real cause.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _write_batch_waiting(conn: sqlite3.Connection, groups: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """``_write_batch`` on aiosqlite's thread with the writer whose busy wait is the loop's short one:
    here the transaction is tried again while the write lock stays busy, for up to ``THREAD_BUSY_MS``
    (what a longer busy timeout would do, without setting it per commit); the loop runs on meanwhile."""
    deadline = time.monotonic() + THREAD_BUSY_MS / 1000
    while True:
        try:
            _write_batch(conn, groups)  # busy: at BEGIN IMMEDIATE, nothing written
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise


def _statement(item: tuple[str, tuple[Any, ...]]) -> str:
    return item[0]


def _group(items: Iterable[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive statements with the same SQL become one executemany, order kept."""
    groups: list[tuple[str, list[tuple[Any, ...]]]] = []
    for sql, params in items:
        if groups and groups[-1][0] == sql:
            groups[-1][1].append(params)
        else:
            groups.append((sql, [params]))
    return groups
