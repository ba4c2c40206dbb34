"""Online backups of the store: a consistent copy of the live SQLite file, checked, then named.

SQLite's backup API copies the store from a separate read-only connection, in one step under
a read lock: in WAL mode the engine goes on writing meanwhile, and the copy is the store as it
was at one commit. The copy is written under a hidden temporary name inside the backups folder,
turned into one self-contained file (rollback journal), checked (``PRAGMA integrity_check``,
that it is a cockpit store, and every ``CopyCheck`` given: the audit chain), fsynced, and only
then renamed to ``cockpit-<UTC time>-<reason>.sqlite``, and the folder fsynced. A process
killed at any point leaves at most its temporary file, which the next backup deletes; nothing
here ever writes to the store or to an older backup.

Rotation (``to_prune``) keeps the ``keep_recent`` newest backups and the newest one of each of
the ``keep_daily`` most recent days (UTC) that have one. Pre-migration backups are never
rotated out: each is the only copy of the store in its old schema.

``restore`` goes the other way: the backup is checked, the current store archived (a
consistent copy, or its raw files when SQLite cannot read it), and the backup written into the
store through the same API, so SQLite itself replaces the pages and the WAL; only a store
SQLite cannot open is replaced as a file, its stale ``-wal`` and ``-shm`` removed first.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.persistence.disk_full import free_mb, is_disk_full

BACKUPS_DIR = "backups"  # inside the state dir
ARCHIVE_DIR = "archive"  # inside the state dir: stores a restore replaced (and `paper reset`'s)
MANUAL, SCHEDULED, SESSION_CLOSE, PRE_MIGRATION = "manual", "scheduled", "session-close", "pre-migration"

#: Problems with a copy (empty: it passed), given an open read-only connection to it.
CopyCheck = Callable[[sqlite3.Connection], list[str]]
#: ``Connection.backup``'s progress callback: (status, pages remaining, pages in all).
Progress = Callable[[int, int, int], object]

_STAMP = "%Y%m%dT%H%M%SZ"
_REASON = re.compile(r"[a-z](?:[a-z-]{0,30}[a-z])?")
_NAME = re.compile(r"cockpit-(\d{8}T\d{6}Z)-([a-z](?:[a-z-]{0,30}[a-z])?)(?:-(\d{1,4}))?\.sqlite")
_TEMP = re.compile(r"\.cockpit-.*\.tmp(-journal|-wal|-shm)?")
_LOCK_NAME = ".backup.lock"
_MAX_PROBLEMS = 3


class BackupError(Exception):
    """A backup or restore that did not happen; the message is one line naming the fix."""


class BackupDiskFull(BackupError):
    """No space for the copy: nothing was kept, the store and older backups are untouched."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One backup in the folder; its name says when (UTC, to the second) and why."""

    path: Path
    taken_at: datetime
    reason: str
    size: int
    n: int = 1  # the second backup with the same time and reason is "-2", and so on

    @property
    def name(self) -> str:
        return self.path.name

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "time": self.taken_at.isoformat(), "reason": self.reason, "size": self.size}


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore did: the backup now in place, and where the store it replaced went."""

    backup: BackupFile
    archived: Path | None  # None: there was no store to archive
    archived_as: str  # "copy" (one consistent file), "raw files" (SQLite could not read it) or "nothing"
    replaced_by: str  # "sqlite backup" (pages written through SQLite) or "file" (the store file swapped)


def backup_name(taken_at: datetime, reason: str, n: int = 1) -> str:
    check_reason(reason)
    suffix = f"-{n}" if n > 1 else ""
    return f"cockpit-{taken_at.astimezone(UTC).strftime(_STAMP)}-{reason}{suffix}.sqlite"


def check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        raise BackupError(f"a backup reason is lowercase letters and dashes (at most 32), not {str(reason)[:40]!r}")
    return reason


def parse_name(name: str) -> tuple[datetime, str, int] | None:
    """(time, reason, n) of a backup's file name; None for any other name."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    try:
        taken = datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return taken, m.group(2), int(m.group(3) or 1)


def list_backups(directory: Path) -> list[BackupFile]:
    """The backups in ``directory``, newest first (other files, temporaries and links ignored)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        parsed = parse_name(entry.name)
        if parsed is None or not entry.is_file(follow_symlinks=False):
            continue
        taken, reason, n = parsed
        found.append(BackupFile(Path(entry.path), taken, reason, entry.stat(follow_symlinks=False).st_size, n))
    return sorted(found, key=_order, reverse=True)


def find_backup(directory: Path, name: str) -> BackupFile:
    """The backup called ``name`` in ``directory``: a bare name from ``list_backups``, never a path."""
    shown = "".join(c if c.isprintable() else "?" for c in str(name))[:80]
    if not name or "/" in name or "\x00" in name or name in (".", "..") or parse_name(name) is None:
        raise BackupError(f"{shown!r} is not a backup name (like cockpit-20261202T153000Z-manual.sqlite): "
                          "pick one from `cockpit backup list`")
    for backup in list_backups(directory):
        if backup.name == name:
            return backup
    raise BackupError(f"no backup named {shown} in {directory}: pick one from `cockpit backup list`")


def _order(b: BackupFile) -> tuple[datetime, int, str]:
    return b.taken_at, b.n, b.name


# ---- checking a copy -----------------------------------------------------------------------


def check_connection(conn: sqlite3.Connection, checks: Sequence[CopyCheck] = ()) -> list[str]:
    """Every problem with the database behind ``conn``: SQLite's integrity check, that it is a
    cockpit store, then ``checks``; empty when it passes."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
        if rows != ["ok"]:
            return [f"integrity check: {r}" for r in rows[:_MAX_PROBLEMS]]
        core = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        if core.fetchone() is None or conn.execute(
                "SELECT 1 FROM schema_migrations WHERE component = 'core'").fetchone() is None:
            return ["not a cockpit store: it has no core schema"]
        problems: list[str] = []
        for check in checks:
            problems += check(conn)
        return problems
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database ({exc})"]


def check_file(path: Path, checks: Sequence[CopyCheck] = ()) -> list[str]:
    """``check_connection`` on the file at ``path``, opened read-only."""
    if not path.is_file():
        return [f"no such file: {path}"]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return [f"cannot open it ({exc})"]
    try:
        return check_connection(conn, checks)
    finally:
        conn.close()


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
    return "; ".join(problems[:2]) + more


# ---- writing one ---------------------------------------------------------------------------


def write_backup(db: Path, directory: Path, reason: str, now: datetime, checks: Sequence[CopyCheck] = (), *,
                 step_pages: int = -1, progress: Progress | None = None) -> BackupFile:
    """Copy the store at ``db`` into ``directory`` as a checked, durable backup taken ``now``.

    ``step_pages`` > 0 copies that many pages per step (``progress`` hears of each); a write to
    the store between steps restarts the copy, so the engine keeps the default, one step.
    Raises ``BackupError`` (``BackupDiskFull`` for a full disk) with nothing left behind.
    """
    check_reason(reason)
    if not db.is_file():
        raise BackupError(f"no store at {db}: nothing to back up (has the engine run on this state dir?)")
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise _failed(exc, directory) from exc
    with _exclusive(directory):
        remove_stale_temps(directory)
        _room_for_a_copy(db, directory)
        final = directory / _free_name(directory, now, reason)
        temp = directory / f".{final.name}.tmp"
        try:
            _copy(db, temp, step_pages, progress)
            problems = check_file(temp, checks)
            if problems:
                raise BackupError(f"the copy of {db} failed its check, so it was not kept: {_summary(problems)}")
            os.chmod(temp, 0o600)
            fsync_file(temp)
            os.rename(temp, final)  # nobody else names files here while we hold the folder's lock
            fsync_dir(directory)
        except BaseException as exc:
            _remove_temps(temp)
            if isinstance(exc, BackupError):
                raise
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise _failed(exc, directory) from exc
            raise
    taken, _reason, n = parse_name(final.name) or (now, reason, 1)
    return BackupFile(final, taken, reason, final.stat().st_size, n)


SPARE_BYTES = 256 * 1024  # left free after a copy, beside a tenth of the store: the engine's commits need room


def _room_for_a_copy(db: Path, directory: Path) -> None:
    """Refuse a copy that would fill the disk: the store's next commit would fail with it."""
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    need = size + size // 10 + SPARE_BYTES
    free = shutil.disk_usage(directory).free
    if free < need:
        raise BackupDiskFull(f"disk full: {free / 1e6:.1f} MB free in {directory}, {need / 1e6:.1f} MB needed for a "
                             f"copy of the store and room for the engine's commits: the backup was not written "
                             f"(the store and older backups are untouched); free some space and back up again")


def _failed(exc: BaseException, directory: Path) -> BackupError:
    if is_disk_full(exc):
        return BackupDiskFull(f"disk full: {free_mb(directory):.1f} MB free in {directory}: the backup was not "
                              "written (the store and older backups are untouched); free some space and back up "
                              "again")
    return BackupError(f"backup into {directory} failed: {type(exc).__name__}: {exc}")


def _free_name(directory: Path, now: datetime, reason: str) -> str:
    for n in range(1, 10_000):
        name = backup_name(now, reason, n)
        if not (directory / name).exists():
            return name
    raise BackupError(f"{directory} already holds 9999 backups named for {now:%Y-%m-%d %H:%M:%S} ({reason})")


def _copy(db: Path, target: Path, step_pages: int, progress: Progress | None) -> None:
    """A consistent copy of ``db`` at ``target`` (new), as one file with a rollback journal."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=step_pages, progress=progress)
            # The copy of a WAL store says WAL in its header: a backup is one file, read anywhere.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One writer in the backups folder at a time (a second one is refused, never waits)."""
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another backup is being written in {directory}: try again once it is done") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_stale_temps(directory: Path) -> list[str]:
    """Delete what a killed backup left (its temporary copy); called with the folder's lock held."""
    removed = []
    for entry in os.scandir(directory):
        if _TEMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(entry.name)
    return removed


def _remove_temps(temp: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(f"{temp}{suffix}")
        except FileNotFoundError:
            pass


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory; the rename itself is atomic
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


# ---- rotation ------------------------------------------------------------------------------


def to_prune(backups: Sequence[BackupFile], keep_recent: int, keep_daily: int) -> list[BackupFile]:
    """The backups rotation deletes: all but the ``keep_recent`` newest and the newest of each
    of the ``keep_daily`` most recent UTC days that have one; never a pre-migration backup."""
    rotating = sorted((b for b in backups if b.reason != PRE_MIGRATION), key=_order, reverse=True)
    keep = {b.name for b in rotating[:max(keep_recent, 0)]}
    days: set[object] = set()
    for b in rotating:
        day = b.taken_at.date()
        if day in days:
            continue
        if len(days) >= keep_daily:
            break
        days.add(day)
        keep.add(b.name)
    return [b for b in rotating if b.name not in keep]


def prune(directory: Path, keep_recent: int, keep_daily: int) -> list[BackupFile]:
    """Delete what ``to_prune`` names in ``directory``; return what was deleted."""
    with _exclusive(directory):
        doomed = to_prune(list_backups(directory), keep_recent, keep_daily)
        for b in doomed:
            try:
                os.unlink(b.path)
            except FileNotFoundError:
                pass
        if doomed:
            fsync_dir(directory)
    return doomed


# ---- restoring one -------------------------------------------------------------------------


def restore(backup: BackupFile, db: Path, archive: Path, checks: Sequence[CopyCheck] = ()) -> Restored:
    """Put ``backup`` in place of the store at ``db``; the current store goes to the folder
    ``archive`` (new) first. The caller holds the state dir (no engine runs on it)."""
    problems = check_file(backup.path, checks)
    if problems:
        raise BackupError(f"backup {backup.name} is damaged, nothing was changed: {_summary(problems)}")
    try:
        archived, how = archive_store(db, archive)
        replaced_by = _put_in_place(backup.path, db)
    except BackupError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise _failed(exc, db.parent) from exc
    after = check_file(db, checks)
    if after:
        raise BackupError(f"the restored store fails its check ({_summary(after)}); the store it replaced is in "
                          f"{archived}")
    return Restored(backup, archived, how, replaced_by)


def _parts(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def archive_store(db: Path, archive: Path) -> tuple[Path | None, str]:
    """Keep the store at ``db`` in the new folder ``archive``: one consistent copy made by
    SQLite, or (when SQLite cannot read it) its files as they are. Never deletes anything."""
    present = [p for p in _parts(db) if p.exists()]
    if not present:
        return None, "nothing"
    archive.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    archive.mkdir(mode=0o700)  # new: an archive is never written into twice
    if db.exists():
        target = archive / db.name
        temp = archive / f".{db.name}.tmp"
        try:
            _copy(db, temp, -1, None)
            if not check_file(temp):
                fsync_file(temp)
                os.rename(temp, target)
                fsync_dir(archive)
                return target, "copy"
        except sqlite3.DatabaseError:
            pass
        _remove_temps(temp)
    for part in present:  # SQLite cannot read it: keep every byte there is
        shutil.copyfile(part, archive / part.name)
        os.chmod(archive / part.name, 0o600)
        fsync_file(archive / part.name)
    fsync_dir(archive)
    return archive, "raw files"


def _put_in_place(backup: Path, db: Path) -> str:
    if db.exists():
        try:
            src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True, timeout=30)
            try:
                dst = sqlite3.connect(db, timeout=30)
                try:
                    dst.execute("PRAGMA journal_mode=WAL")  # the store's mode: the copy arrives in its WAL
                    src.backup(dst)
                    dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    dst.close()
            finally:
                src.close()
            return "sqlite backup"
        except sqlite3.DatabaseError:
            pass  # SQLite cannot write into it (damaged, another page size): swap the file
    staged = db.with_name(f".{db.name}.restore.tmp")
    try:
        shutil.copyfile(backup, staged)
        os.chmod(staged, 0o600)
        fsync_file(staged)
    except BaseException:
        _remove_temps(staged)
        raise
    for stale in _parts(db)[1:]:  # the replaced store's WAL and index (archived) must not meet the new file
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    os.replace(staged, db)
    fsync_dir(db.parent)
    return "file"
