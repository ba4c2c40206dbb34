"""A store's schema: its pending migrations run as one script in one transaction, and the schema
that gives is the one the migrations give applied one at a time, each in its own transaction
(as the store did before, and as a store upgraded version by version over the years got it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from brokers.paper.broker import PAPER_MIGRATIONS
from cockpit.research.walkforward.storage import MIGRATIONS as WALKFORWARD_MIGRATIONS
from core.alerts.records import MIGRATIONS as ALERTS_MIGRATIONS
from core.analytics.recorder import REPORTS_MIGRATIONS
from core.audit.schema import AUDIT_MIGRATIONS
from core.persistence.store import CORE_MIGRATIONS, Store

# Every component's migrations, in the order an engine opens them ("core" first: Store.open).
COMPONENTS: dict[str, list[str]] = {
    "core": CORE_MIGRATIONS, "reports": REPORTS_MIGRATIONS, "audit": AUDIT_MIGRATIONS, "paper": PAPER_MIGRATIONS,
    "alerts": ALERTS_MIGRATIONS, "walkforward": WALKFORWARD_MIGRATIONS,
}


def _one_at_a_time(path: Path, components: dict[str, list[str]]) -> None:
    """The reference: every migration its own transaction, in order, with its version recorded."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        for component, migrations in components.items():
            for number, script in enumerate(migrations, start=1):
                conn.executescript(
                    "BEGIN;\n" + script + f";\nINSERT INTO schema_migrations VALUES ('{component}', {number})"
                    f" ON CONFLICT(component) DO UPDATE SET version = {number};\nCOMMIT;")
    finally:
        conn.close()


def _schema(path: Path) -> tuple[list[tuple[str, str, str, str | None]], list[tuple[str, int]]]:
    conn = sqlite3.connect(path)
    try:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        versions = conn.execute("SELECT component, version FROM schema_migrations ORDER BY component").fetchall()
        return master, versions
    finally:
        conn.close()


async def test_a_new_store_has_the_schema_of_its_migrations_applied_one_at_a_time(tmp_path: Path) -> None:
    _one_at_a_time(tmp_path / "stepwise.sqlite", COMPONENTS)
    store = Store(tmp_path / "new.sqlite")
    await store.open()  # "core", in one transaction
    for component, migrations in COMPONENTS.items():
        assert await store.migrate(component, migrations) == len(migrations)
    await store.close()
    master, versions = _schema(tmp_path / "new.sqlite")
    assert (master, versions) == _schema(tmp_path / "stepwise.sqlite")
    assert len(master) > 20 and dict(versions) == {c: len(m) for c, m in COMPONENTS.items()}

    reopened = Store(tmp_path / "stepwise.sqlite")  # the stepwise store is current: nothing more is run
    await reopened.open()
    for component, migrations in COMPONENTS.items():
        assert await reopened.migrate(component, migrations) == len(migrations)
    await reopened.close()
    assert _schema(tmp_path / "stepwise.sqlite") == (master, versions)


async def test_an_old_store_takes_the_steps_it_lacks_in_one_go(tmp_path: Path) -> None:
    """A store from before the last versions (core at v1, audit at v1): the rest, the same schema."""
    _one_at_a_time(tmp_path / "old.sqlite", {"core": CORE_MIGRATIONS[:1], "audit": AUDIT_MIGRATIONS[:1]})
    _one_at_a_time(tmp_path / "stepwise.sqlite", {"core": CORE_MIGRATIONS, "audit": AUDIT_MIGRATIONS})
    store = Store(tmp_path / "old.sqlite")
    await store.open()
    assert await store.migrate("audit", AUDIT_MIGRATIONS) == len(AUDIT_MIGRATIONS)
    await store.close()
    assert _schema(tmp_path / "old.sqlite") == _schema(tmp_path / "stepwise.sqlite")


async def test_a_failing_step_leaves_none_of_the_pending_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    await store.open()
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        await store.migrate("extra", ["CREATE TABLE a (x)", "CREATE TABLE b (y)", "CREATE TABLE a (z)"])
    assert await store.fetchone("SELECT 1 FROM sqlite_master WHERE name IN ('a', 'b')") is None
    assert await store.fetchone("SELECT 1 FROM schema_migrations WHERE component = 'extra'") is None
    assert await store.migrate("extra", ["CREATE TABLE a (x)", "CREATE TABLE b (y)"]) == 2  # usable after it
    store.append("INSERT INTO a VALUES (?)", (1,))
    await store.flush()
    await store.close()


@pytest.mark.parametrize("durability", ["process", "power"])
async def test_a_new_file_is_the_same_bytes_however_its_switch_to_wal_is_journaled(tmp_path: Path,
                                                                                  durability: str) -> None:
    """A new store ("process": its first page written without a rollback journal) is byte for byte
    the file SQLite makes with one (the default journal, then WAL), and in WAL mode."""
    reference = tmp_path / "reference.sqlite"
    conn = sqlite3.connect(reference, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.executescript(
        "BEGIN;\n" + "".join(s + ";\n" for s in CORE_MIGRATIONS)
        + f"INSERT INTO schema_migrations VALUES ('core', {len(CORE_MIGRATIONS)}) ON CONFLICT(component) DO UPDATE"
        f" SET version = {len(CORE_MIGRATIONS)};\nCOMMIT;")
    conn.close()
    store = Store(tmp_path / "new.sqlite", durability=durability)
    await store.open()
    assert (await store.fetchone("PRAGMA journal_mode"))[0] == "wal"
    await store.close()
    assert (tmp_path / "new.sqlite").read_bytes() == reference.read_bytes()
    assert not (tmp_path / "new.sqlite-journal").exists()
