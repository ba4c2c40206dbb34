from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.persistence.store import CORE_MIGRATIONS, Store, StoreFailed


async def test_wal_and_migrations_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    assert (await store.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await store.fetchone("SELECT version FROM schema_migrations WHERE component='core'"))[0] == len(
        CORE_MIGRATIONS)
    assert await store.migrate("extra", ["CREATE TABLE a (x)", "CREATE TABLE b (y)"]) == 2
    await store.close()
    again = Store(tmp_path / "s.sqlite")
    await again.open()  # re-opening applies nothing twice
    assert await again.migrate("extra", ["CREATE TABLE a (x)", "CREATE TABLE b (y)", "CREATE TABLE c (z)"]) == 3
    await again.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    await store.migrate("extra", ["CREATE TABLE a (x)", "CREATE TABLE b (y)"])
    with pytest.raises(RuntimeError, match="newer than this cockpit knows"):
        await store.migrate("extra", ["CREATE TABLE a (x)"])
    await store.close()


async def test_flush_is_one_transaction_and_puts_keep_only_the_latest(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    upsert = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
    store.put(("meta", "a"), upsert, ("a", "1"))
    store.put(("meta", "a"), upsert, ("a", "2"))
    store.append("INSERT INTO meta (key, value) VALUES (?, ?)", ("b", "x"))
    store.append("INSERT INTO meta (key, value) VALUES (?, ?)", ("b", "duplicate key fails the batch"))
    with pytest.raises(sqlite3.IntegrityError):
        await store.flush()
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:  # nothing of the failed batch landed
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    # After a lost batch the store writes nothing more (no later state on top of a hole)...
    store.put(("meta", "c"), upsert, ("c", "later"))
    with pytest.raises(StoreFailed, match="an earlier commit failed"):
        await store.flush()
    await store.close()  # ...and still closes its connection (no thread left hanging)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    store.put(("meta", "a"), upsert, ("a", "1"))
    store.put(("meta", "a"), upsert, ("a", "2"))
    await store.flush()
    assert store.commits == 1
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='a'").fetchone()[0] == "2"
    await store.close()


async def test_a_put_given_as_a_function_is_made_once_at_the_flush_from_the_latest_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    upsert = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
    state = {"status": "NEW"}
    made: list[str] = []

    def row() -> tuple[str, str]:
        made.append(state["status"])
        return ("order", state["status"])

    for status in ("NEW", "SUBMITTED", "ACCEPTED", "FILLED"):
        state["status"] = status
        store.put(("meta", "order"), upsert, row)
    assert made == []  # nothing serialized on the way
    await store.flush()
    assert made == ["FILLED"]
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='order'").fetchone()[0] == "FILLED"

    def broken() -> tuple[str, str]:
        raise ValueError("cannot serialize")

    store.put(("meta", "x"), upsert, broken)
    store.append("INSERT INTO meta (key, value) VALUES (?, ?)", ("y", "1"))
    with pytest.raises(ValueError, match="cannot serialize"):
        await store.flush()
    with pytest.raises(StoreFailed):  # the batch is gone: nothing more is written on top of the hole
        await store.flush()
    await store.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE key IN ('x', 'y')").fetchone()[0] == 0


async def test_a_write_ahead_commits_everything_buffered_on_the_loops_thread(tmp_path: Path) -> None:
    import threading

    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    await store.migrate("extra", ["CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"])
    threads: list[str] = []
    store.before_flush(lambda: threads.append(threading.current_thread().name))
    store.append("INSERT INTO t VALUES (?, ?)", ("a", "1"))
    store.put(("t", "b"), "INSERT INTO t VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", ("b", "2"))
    await store.write_ahead()
    assert (store.write_aheads, store.write_ahead_fallbacks, store.commits) == (1, 0, 1)
    with sqlite3.connect(tmp_path / "s.sqlite") as other:
        assert other.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [("a", "1"), ("b", "2")]
    assert threads == [threading.main_thread().name]
    await store.close()


async def test_a_write_ahead_leaves_flush_only_hooks_to_the_next_flush(tmp_path: Path) -> None:
    """A hook registered ``ahead=False`` (position marks) is not run by a write-ahead: the order's
    commit carries only what the other hooks put; the next flush runs it, before the audit chain."""
    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    await store.migrate("extra", ["CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"])
    upsert = "INSERT INTO t VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v"
    calls: list[str] = []
    store.before_flush(lambda: (calls.append("cursor"), store.put(("t", "cursor"), upsert, ("cursor", "7"))))
    store.before_flush(lambda: (calls.append("mark"), store.put(("t", "mark"), upsert, ("mark", "101.5"))),
                       ahead=False)
    store.before_flush(lambda: calls.append("chain"), last=True)
    store.put(("t", "order"), upsert, ("order", "new"))
    await store.write_ahead()
    with sqlite3.connect(tmp_path / "s.sqlite") as other:
        assert other.execute("SELECT k FROM t ORDER BY k").fetchall() == [("cursor",), ("order",)]
    assert calls == ["cursor", "chain"]
    await store.flush()
    assert calls == ["cursor", "chain", "cursor", "mark", "chain"]
    with sqlite3.connect(tmp_path / "s.sqlite") as other:
        assert other.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
            ("cursor", "7"), ("mark", "101.5"), ("order", "new")]
    await store.close()


async def _store_and_a_blocker(tmp_path: Path) -> tuple[Store, sqlite3.Connection]:
    """A "process" store with a table t, and another connection holding SQLite's write lock."""
    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    await store.migrate("extra", ["CREATE TABLE t (k TEXT PRIMARY KEY)"])
    blocker = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    return store, blocker


async def test_a_write_ahead_the_lock_keeps_busy_goes_through_the_thread_and_waits(tmp_path: Path) -> None:
    """Another connection holds SQLite's write lock: the loop's thread tries for at most
    WRITE_AHEAD_BUSY_SECONDS, then the same rows go through aiosqlite's thread, which waits for the
    lock while the loop runs on."""
    import asyncio

    store, blocker = await _store_and_a_blocker(tmp_path)
    store.append("INSERT INTO t VALUES (?)", ("a",))
    task = asyncio.ensure_future(store.write_ahead())
    while store.write_ahead_fallbacks == 0:
        await asyncio.sleep(0)  # the loop is free while the thread waits
    assert not task.done()
    blocker.execute("COMMIT")
    await task
    assert (store.write_aheads, store.write_ahead_fallbacks, store.failed) == (0, 1, None)
    assert blocker.execute("SELECT k FROM t").fetchall() == [("a",)]
    blocker.close()
    await store.close()


async def test_with_power_durability_the_write_ahead_goes_through_the_thread(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", durability="power")  # an fsync per commit: never on the loop
    await store.open()
    store.append("INSERT INTO meta (key, value) VALUES (?, ?)", ("a", "1"))
    await store.write_ahead()
    assert (store.write_aheads, store.commits) == (0, 1)
    await store.close()


async def test_every_commit_is_made_on_the_one_writer_from_either_thread(tmp_path: Path) -> None:
    """A flush commits on aiosqlite's thread, a write-ahead ("process") on the loop's: both on the
    store's one writing connection (another connection's commit would empty its page cache)."""
    import threading

    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    await store.migrate("extra", ["CREATE TABLE t (k TEXT PRIMARY KEY)"])
    seen: list[tuple[str, str]] = []
    store.writer.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql)))
    store.append("INSERT INTO t VALUES (?)", ("flushed",))
    await store.flush()
    store.append("INSERT INTO t VALUES (?)", ("ahead",))
    await store.write_ahead()
    inserts = [(name, sql) for name, sql in seen if sql.startswith("INSERT")]
    assert [sql for _, sql in inserts] == ["INSERT INTO t VALUES ('flushed')", "INSERT INTO t VALUES ('ahead')"]
    assert inserts[0][0] != threading.main_thread().name and inserts[1][0] == threading.main_thread().name
    assert (store.write_aheads, store.write_ahead_fallbacks, store.commits) == (1, 0, 2)
    store.writer.set_trace_callback(None)
    await store.close()


async def test_a_cancelled_flush_keeps_the_writer_until_its_commit_ends(tmp_path: Path) -> None:
    """The task awaiting a flush is cancelled while aiosqlite's thread still waits for the write lock:
    the store refuses further writes (its batch is no longer known to be on disk), the commit goes
    on in the thread, and closing the store waits for it before the writer is closed."""
    import asyncio

    store, blocker = await _store_and_a_blocker(tmp_path)
    store.append("INSERT INTO t VALUES (?)", ("a",))
    task = asyncio.ensure_future(store.flush())

    async def thread_has_the_writer() -> None:  # and waits in it for the write lock
        while not store._writing.locked():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(thread_has_the_writer(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(StoreFailed):
        await store.write_ahead()
    closing = asyncio.ensure_future(store.close())
    for _ in range(50):
        await asyncio.sleep(0)  # the loop runs on (closing the writer here would hold it): close waits
    assert not closing.done() and store._writing.locked()
    blocker.execute("COMMIT")
    await closing
    assert blocker.execute("SELECT k FROM t").fetchall() == [("a",)]
    blocker.close()
