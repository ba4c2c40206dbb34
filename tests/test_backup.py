"""Backups of the store (issue 13): a checked copy under a timestamped name, rotation, restore,
the pre-migration backup, and the engine's schedule on its wall clock (a SimClock here).
Real SQLite files throughout."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.audit.subscriber import AuditRecorder
from core.audit.verify import copy_problems
from core.audit.writer import AuditLog
from core.common.bus import Bus
from core.common.clock import SimClock
from core.domain.events import DailySummaryReady
from core.persistence.backup import (
    BACKUPS_DIR,
    PRE_MIGRATION,
    BackupDiskFull,
    BackupError,
    BackupFile,
    backup_name,
    check_file,
    find_backup,
    list_backups,
    prune,
    restore,
    to_prune,
    write_backup,
)
from core.persistence.store import MigrationRefused, Store
from tests.test_disk_full import small_disk  # noqa: F401 - the fixture: a 1 MB tmpfs

T0 = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
CHECKS = (copy_problems,)
FILL = ("INSERT INTO fills (exec_id, client_order_id, strategy, symbol, side, qty, price, commission, realized_pnl, ts)"
        " VALUES (?, 'c', 's', 'AAPL', 'BUY', '1', '1', '0', '0', '2020-01-01')")


async def make_store(db: Path, fills: int = 3, start: int = 0) -> None:
    """A store with an account, ``fills`` fills and an audit row per fill (as the engine writes them)."""
    store = Store(db)
    audit = AuditLog(store, SimClock(T0))
    await store.open()
    await audit.load()
    if (await store.fetchone("SELECT 1 FROM account")) is None:
        store.append("INSERT INTO account (key, value) VALUES ('cash', '100000')", ())
    for n in range(start, start + fills):
        store.append(FILL, (f"e{n}",))
        audit.record("order.fill", subject=f"e{n}")
    await store.close()


def fills_in(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT exec_id FROM fills ORDER BY seq")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- writing and checking ------------------------------------------------------------------


async def test_a_backup_is_a_checked_single_file_copy_under_its_time_and_reason(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=5)
    folder = tmp_path / BACKUPS_DIR
    made = write_backup(db, folder, "manual", T0, CHECKS)
    assert made.name == "cockpit-20261202T153000Z-manual.sqlite" and made.taken_at == T0
    assert made.size == made.path.stat().st_size > 0
    assert oct(made.path.stat().st_mode & 0o777) == "0o600" and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert fills_in(made.path) == fills_in(db) == [f"e{n}" for n in range(5)]
    with sqlite3.connect(made.path) as conn:  # one self-contained file: no WAL to carry along
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert check_file(made.path, CHECKS) == []
    assert sorted(p.name for p in folder.iterdir()) == [".backup.lock", made.name]  # no temporary left
    again = write_backup(db, folder, "manual", T0 + timedelta(milliseconds=400), CHECKS)
    assert again.name == "cockpit-20261202T153000Z-manual-2.sqlite"  # same second, same reason: numbered
    assert [b.name for b in list_backups(folder)] == [again.name, made.name]  # newest first


async def test_a_copy_whose_audit_chain_is_broken_is_not_kept(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=3)
    with sqlite3.connect(db) as conn:  # someone edits history (the triggers dropped first)
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET subject = 'forged' WHERE seq = 2")
    folder = tmp_path / BACKUPS_DIR
    with pytest.raises(BackupError, match=r"failed its check, so it was not kept: audit chain: .*row 2 was edited"):
        write_backup(db, folder, "manual", T0, CHECKS)
    assert list_backups(folder) == [] and [p.name for p in folder.iterdir()] == [".backup.lock"]


def test_check_file_names_what_is_wrong(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 200)
    assert check_file(garbage)[0].startswith("not a readable SQLite database")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert check_file(foreign) == ["not a cockpit store: it has no core schema"]
    assert check_file(tmp_path / "missing.sqlite")[0].startswith("no such file")


async def test_a_damaged_page_fails_the_integrity_check(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=400)
    made = write_backup(db, tmp_path / BACKUPS_DIR, "manual", T0, CHECKS)
    data = bytearray(made.path.read_bytes())
    page = 4096
    for i in range(len(data) - 3 * page, len(data) - 2 * page):  # scribble over one page near the end
        data[i] = 0x5A
    made.path.write_bytes(bytes(data))
    problems = check_file(made.path, CHECKS)
    assert problems and ("integrity check" in problems[0] or "not a readable" in problems[0]), problems


async def test_what_a_killed_backup_left_is_deleted_and_nothing_else(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db)
    folder = tmp_path / BACKUPS_DIR
    older = write_backup(db, folder, "manual", T0, CHECKS)
    before = digest(older.path)
    for stale in (".cockpit-20261202T160000Z-manual.sqlite.tmp", ".cockpit-20261202T160000Z-manual.sqlite.tmp-journal"):
        (folder / stale).write_bytes(b"half a copy")
    (folder / "notes.txt").write_text("mine")
    write_backup(db, folder, "manual", T0 + timedelta(hours=1), CHECKS)
    names = sorted(p.name for p in folder.iterdir())
    assert not any(n.endswith((".tmp", ".tmp-journal")) for n in names), names
    assert (folder / "notes.txt").read_text() == "mine" and digest(older.path) == before


async def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path: Path, small_disk: Path) -> None:  # noqa: F811
    db = tmp_path / "cockpit.sqlite"  # the store on a roomy disk, the backups on a 1 MB one
    await make_store(db, fills=3)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.execute("INSERT INTO ballast VALUES (randomblob(3000000))")
    conn.close()  # the last connection: checkpointed into the file
    assert db.stat().st_size > 2_000_000
    before = digest(db)
    folder = small_disk / BACKUPS_DIR
    with pytest.raises(BackupDiskFull, match=r"disk full: [\d.]+ MB free in .*the backup was not written \(the store "
                                              r"and older backups are untouched\)"):
        write_backup(db, folder, "manual", T0, CHECKS)
    assert [p.name for p in folder.iterdir()] == [".backup.lock"] and digest(db) == before


def test_no_store_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no store at .*nothing to back up"):
        write_backup(tmp_path / "cockpit.sqlite", tmp_path / BACKUPS_DIR, "manual", T0)
    with pytest.raises(BackupError, match="lowercase letters and dashes"):
        backup_name(T0, "../up")


# ---- rotation ------------------------------------------------------------------------------


def _b(when: datetime, reason: str = "scheduled", n: int = 1) -> BackupFile:
    return BackupFile(Path(backup_name(when, reason, n)), when, reason, 1, n)


def test_rotation_keeps_the_newest_and_the_newest_of_each_recent_day() -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    backups = [_b(day + timedelta(days=d, hours=h)) for d in range(5) for h in (1, 7, 13, 19)]
    backups.append(_b(day - timedelta(days=30), PRE_MIGRATION))  # the only copy in the old schema
    doomed = {b.name for b in to_prune(backups, keep_recent=3, keep_daily=3)}
    kept = {b.name for b in backups} - doomed
    expected = {backup_name(day + timedelta(days=4, hours=h), "scheduled") for h in (7, 13, 19)}  # the 3 newest
    expected |= {backup_name(day + timedelta(days=d, hours=19), "scheduled") for d in (2, 3, 4)}  # newest of 3 days
    expected.add(backup_name(day - timedelta(days=30), PRE_MIGRATION))
    assert kept == expected
    assert to_prune(backups, keep_recent=100, keep_daily=0) == []
    only_recent = to_prune(backups, keep_recent=1, keep_daily=0)
    assert len(only_recent) == len(backups) - 2  # the newest, and the pre-migration one


def test_rotation_orders_backups_of_the_same_second_by_their_number() -> None:
    same = [_b(T0, "manual", n) for n in (1, 2, 3)]
    assert [b.n for b in to_prune(same, keep_recent=1, keep_daily=0)] == [2, 1]


async def test_prune_deletes_only_backups_it_chose(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db)
    folder = tmp_path / BACKUPS_DIR
    made = [write_backup(db, folder, "scheduled", T0 + timedelta(hours=h), CHECKS) for h in range(4)]
    (folder / "cockpit-notes.txt").write_text("not a backup")
    gone = prune(folder, keep_recent=2, keep_daily=0)
    assert {b.name for b in gone} == {made[0].name, made[1].name}
    assert {b.name for b in list_backups(folder)} == {made[2].name, made[3].name}
    assert (folder / "cockpit-notes.txt").exists()


# ---- finding and restoring -----------------------------------------------------------------


async def test_a_backup_is_named_never_given_as_a_path(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db)
    folder = tmp_path / BACKUPS_DIR
    made = write_backup(db, folder, "manual", T0, CHECKS)
    assert find_backup(folder, made.name) == list_backups(folder)[0]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    twin = write_backup(db, outside, "manual", T0 + timedelta(hours=1), CHECKS)
    (folder / twin.name).symlink_to(twin.path)  # a link named like a backup is not one of ours
    for bad in ("../elsewhere/" + twin.name, str(twin.path), "", "..", "a\x00b", "cockpit.sqlite", "x" * 300):
        with pytest.raises(BackupError, match="is not a backup name"):
            find_backup(folder, bad)
    with pytest.raises(BackupError, match="no backup named"):
        find_backup(folder, twin.name)


async def test_restore_archives_the_store_and_puts_the_backup_in_its_place(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=3)
    made = write_backup(db, tmp_path / BACKUPS_DIR, "manual", T0, CHECKS)
    await make_store(db, fills=2, start=3)  # the store moves on after the backup
    later = fills_in(db)
    done = restore(made, db, tmp_path / "archive" / "restore-1", CHECKS)
    assert done.replaced_by == "sqlite backup" and done.archived_as == "copy"
    assert fills_in(db) == ["e0", "e1", "e2"]
    assert done.archived is not None and fills_in(done.archived) == later  # nothing lost: it is all archived
    assert check_file(db, CHECKS) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # still the store's mode
    await make_store(db, fills=1, start=10)  # and the engine's store opens and writes on it
    assert fills_in(db) == ["e0", "e1", "e2", "e10"]


async def test_a_store_sqlite_cannot_read_is_archived_as_it_is_and_replaced_with_its_wal_gone(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=3)
    made = write_backup(db, tmp_path / BACKUPS_DIR, "manual", T0, CHECKS)
    db.write_bytes(b"\x00garbage" * 1000)
    wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
    wal.write_bytes(b"stale wal of another file" * 40)
    shm.write_bytes(b"stale shm" * 40)
    sums = {p.name: digest(p) for p in (db, wal)}  # the -shm is SQLite's index, rebuilt by whoever opens it
    done = restore(made, db, tmp_path / "archive" / "restore-1", CHECKS)
    assert done.archived_as == "raw files" and done.replaced_by == "file"
    assert done.archived is not None and sorted(p.name for p in done.archived.iterdir()) == [
        db.name, shm.name, wal.name]
    assert {p.name: digest(p) for p in done.archived.iterdir() if p.name != shm.name} == sums
    assert not wal.exists() and not shm.exists()  # the new file never meets the old one's WAL
    assert fills_in(db) == ["e0", "e1", "e2"] and check_file(db, CHECKS) == []


async def test_a_damaged_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=3)
    made = write_backup(db, tmp_path / BACKUPS_DIR, "manual", T0, CHECKS)
    made.path.write_bytes(made.path.read_bytes()[:5000])  # cut short
    before = digest(db)
    with pytest.raises(BackupError, match="is damaged, nothing was changed"):
        restore(made, db, tmp_path / "archive" / "restore-1", CHECKS)
    assert digest(db) == before and not (tmp_path / "archive").exists()


# ---- before a migration --------------------------------------------------------------------


async def test_a_store_with_an_account_is_backed_up_before_it_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=2)
    folder = tmp_path / BACKUPS_DIR
    assert list_backups(folder) == []  # creating a store is not a migration of one
    store = Store(db, copy_checks=CHECKS, clock=SimClock(T0))
    await store.open()
    await store.migrate("extra", ["CREATE TABLE extra_v1 (x)", "CREATE TABLE extra_v2 (y)"])
    await store.migrate("more", ["CREATE TABLE more_v1 (x)"])  # the same opening: one backup covers both
    await store.close()
    backups = list_backups(folder)
    assert [(b.reason, b.taken_at) for b in backups] == [(PRE_MIGRATION, T0)]
    with sqlite3.connect(backups[0].path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "extra_v1" not in tables and "fills" in tables and check_file(backups[0].path, CHECKS) == []
    store = Store(db, clock=SimClock(T0 + timedelta(hours=1)))
    await store.open()
    await store.migrate("extra", ["CREATE TABLE extra_v1 (x)", "CREATE TABLE extra_v2 (y)"])  # nothing pending
    await store.close()
    assert len(list_backups(folder)) == 1


async def test_a_migration_whose_backup_fails_is_not_run(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    await make_store(db, fills=1)
    (tmp_path / BACKUPS_DIR).write_text("a file where the folder goes")
    store = Store(db)
    await store.open()
    with pytest.raises(MigrationRefused, match=r"not migrating extra from schema v0 to v1: the backup before it"):
        await store.migrate("extra", ["CREATE TABLE extra_v1 (x)"])
    assert await store.fetchone("SELECT 1 FROM schema_migrations WHERE component = 'extra'") is None
    await store.close()


# ---- the engine's schedule -----------------------------------------------------------------


def _engine(state: Path, wall: SimClock, end: str = "2008-01-31", **backup: object):
    from cockpit.wiring import build_engine
    from core.config import load_config
    from tests.conftest import CONFIG

    settings = load_config(CONFIG, state_dir=state, overrides={
        "feed": {"speed": "max", "start": "2008-01-01", "end": end}, "deadman": {"enabled": False},
        "backup": {"every_hours": 6, "min_gap_minutes": 30, **backup}})
    return build_engine(settings, wall_clock=wall, alert_sinks=[])


def _audited(db: Path, kind: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT actor, subject, detail FROM audit WHERE kind = ? ORDER BY seq", (kind,)).fetchall()


async def test_the_engine_backs_up_on_its_wall_clock_timer_while_it_trades(tmp_path: Path) -> None:
    from core.domain.model import Bar

    wall = SimClock(T0)
    engine = _engine(tmp_path, wall, end="2008-06-30", at_session_close=False)
    bars = 0

    def on_bar(_bar: Bar) -> None:  # six wall hours pass in the middle of the replay
        nonlocal bars
        bars += 1
        if bars == 300:
            wall.advance(timedelta(hours=6, minutes=1))

    engine.bus.subscribe(Bar, on_bar)
    await engine.start()
    try:
        await engine.run()
    finally:
        await engine.shutdown()
    backups = list_backups(tmp_path / BACKUPS_DIR)
    assert [(b.reason, b.taken_at) for b in backups] == [("scheduled", T0 + timedelta(hours=6, minutes=1))]
    assert check_file(backups[0].path, CHECKS) == []
    taken, final = fills_in(backups[0].path), fills_in(tmp_path / "cockpit.sqlite")
    assert 0 < len(taken) < len(final) and final[:len(taken)] == taken  # the store at one commit, mid-run
    assert [(a, s) for a, s, _ in _audited(tmp_path / "cockpit.sqlite", "backup.written")] == [
        ("engine", backups[0].name)]


async def test_the_engine_backs_up_at_its_first_session_close_and_not_again_within_the_gap(tmp_path: Path) -> None:
    wall = SimClock(T0)  # it stands still: every close after the first is within 30 wall minutes
    engine = _engine(tmp_path, wall, every_hours=0)
    closes = 0

    def count(_e: DailySummaryReady) -> None:
        nonlocal closes
        closes += 1

    engine.bus.subscribe(DailySummaryReady, count)
    await engine.start()
    try:
        await engine.run()
        await engine.backups.idle()  # made on a worker thread while the replay went on
    finally:
        await engine.shutdown()
    assert closes > 15 and [b.reason for b in list_backups(tmp_path / BACKUPS_DIR)] == ["session-close"]


async def test_the_gap_is_counted_from_the_last_backup_on_the_wall_clock(tmp_path: Path) -> None:
    from core.config import BackupConfig
    from core.control.backups import BackupService

    db = tmp_path / "cockpit.sqlite"
    await make_store(db)
    store = Store(db)
    await store.open()
    wall, bus = SimClock(T0), Bus()
    service = BackupService(BackupConfig(every_hours=0, min_gap_minutes=30), store, bus, wall)
    service.start()
    try:
        for minutes in (0, 10, 29, 31, 45, 62):  # a close at each of these wall minutes
            wall.advance_to(T0 + timedelta(minutes=minutes))
            bus.publish(DailySummaryReady(None))  # type: ignore[arg-type]  # only its arrival counts here
            await service.idle()
    finally:
        service.stop()
        await store.close()
    assert sorted(b.taken_at for b in list_backups(tmp_path / BACKUPS_DIR)) == [
        T0, T0 + timedelta(minutes=31), T0 + timedelta(minutes=62)]


async def test_a_failed_backup_is_an_alert_and_an_audit_row_and_trading_goes_on(tmp_path: Path) -> None:
    wall = SimClock(T0)
    engine = _engine(tmp_path, wall, every_hours=0)
    (tmp_path / BACKUPS_DIR).write_text("a file where the folder goes")
    await engine.start()
    try:
        finished = await engine.run()
        await engine.backups.idle()
        made = None
        with pytest.raises(BackupError):
            made = await engine.backups.take("manual", "tester")
        assert made is None
        (tmp_path / BACKUPS_DIR).unlink()  # the operator fixes it
        await engine.backups.take("manual", "tester")
    finally:
        await engine.shutdown()
    assert finished  # the replay ran to its end
    failed = _audited(tmp_path / "cockpit.sqlite", "backup.failed")
    assert [(a, s) for a, s, _ in failed] == [("engine", "session-close"), ("tester", "manual")]
    with sqlite3.connect(tmp_path / "cockpit.sqlite") as conn:
        alerts = conn.execute("SELECT severity, title, resolved FROM alerts WHERE kind = 'backup.failed' "
                              "ORDER BY rowid").fetchall()
    assert alerts[0] == ("error", "Backup FAILED", 0)
    assert alerts[-1] == ("error", "Backups work again", 1)  # the next backup that worked resolved it


async def test_the_backup_command_is_planned_audited_with_its_actor_and_rotates(tmp_path: Path) -> None:
    wall = SimClock(T0)
    engine = _engine(tmp_path, wall, every_hours=0, at_session_close=False, keep_recent=2, keep_daily=0)
    await engine.start()
    try:
        await engine.run()
        plan = await engine.controls.plan(__import__("core.domain.commands", fromlist=["Backup"]).Backup("alice"))
        assert plan.lines[0].startswith("BACKUP the store now into ") and "keeps the 2 newest;" in plan.lines[1]
        names = []
        for minute in range(3):
            wall.advance(timedelta(minutes=minute + 1))
            result = await engine.controls.backup(actor="uid 1000 (alice) via socket: cli:alice@box")
            names.append(result.data["backup"]["name"])
    finally:
        await engine.shutdown()
    assert [b.name for b in list_backups(tmp_path / BACKUPS_DIR)] == names[:0:-1]  # the 2 newest stay
    commands = _audited(tmp_path / "cockpit.sqlite", "operator.backup")
    assert [(a, s) for a, s, _ in commands] == [("uid 1000 (alice) via socket: cli:alice@box", n) for n in names]
    written = _audited(tmp_path / "cockpit.sqlite", "backup.written")
    assert names[0] in written[-1][2]  # the third one rotated the first out, and says so


def test_the_recorder_follows_the_backup_events(tmp_path: Path) -> None:
    """Offline (`cockpit backup`, `cockpit restore`) the same events reach the trail through a bus."""
    import asyncio

    from core.domain.events import BackupRestored, BackupWritten

    db = tmp_path / "cockpit.sqlite"

    async def run() -> None:
        await make_store(db, fills=1)
        store = Store(db)
        await store.open()
        audit = AuditLog(store, SimClock(T0))
        await audit.load()
        bus = Bus()
        AuditRecorder(audit, bus, lambda: store.is_open)
        bus.publish(BackupWritten("cockpit-x.sqlite", "manual", 10, "cli:bob@box"))
        bus.publish(BackupRestored("cockpit-x.sqlite", T0, str(tmp_path / "archive"), "cli:bob@box"))
        await store.close()

    asyncio.run(run())
    assert [r[0] for r in _audited(db, "backup.written")] == ["cli:bob@box"]
    assert [r[1] for r in _audited(db, "backup.restored")] == ["cockpit-x.sqlite"]
    assert os.path.exists(db)


def test_a_second_restore_in_the_same_second_gets_an_archive_of_its_own(tmp_path: Path) -> None:
    from cockpit.backup_cli import _new_archive

    first = _new_archive(tmp_path, T0)
    assert first.name == "restore-20261202T153000Z"
    first.mkdir()
    assert _new_archive(tmp_path, T0).name == "restore-20261202T153000Z-2"
