"""`cockpit backup [--json]`, `cockpit backup list [--json]` and `cockpit restore BACKUP [--yes]`.

`backup` makes a checked backup of the store in ``STATE/backups/``: through the running engine's
control API when an engine holds the state dir (the engine flushes, copies on a worker thread
and audits it with who asked), else directly here under the state lock, audited in the store
as ``cockpit backup`` by the user. `backup list` shows every backup with its time, reason and
size, each checked again now (SQLite integrity and the audit chain); exit 1 when one fails.

`restore` needs the state dir to itself (no engine): it checks the backup, shows what it holds
and what will happen, asks (unless ``--yes``), keeps the current store in
``STATE/archive/restore-<time>/``, writes the backup into its place, records the restore in
the restored store's audit trail and prints what the account now holds. ``BACKUP`` is a name
from `backup list`, never a path. Failures are one line: exit 2 for bad usage, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.persistence.files import DB_FILENAME

if TYPE_CHECKING:  # the settings come from the caller; pydantic is not loaded for `cockpit --help`
    from core.config import Settings
    from core.persistence.backup import BackupFile

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _checks() -> tuple[Any, ...]:
    """What every backup must pass besides SQLite's integrity check (imported when a command runs:
    the backup modules are not loaded to build `cockpit --help`)."""
    from core.audit.verify import copy_problems

    return (copy_problems,)


API_TIMEOUT = 600.0  # seconds the engine may take to copy a large store


class BackupCliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def add_backup_parsers(sub: Any, configure: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("backup", help="back the store up now, checked (`backup list`: the backups there are)",
                       description="Back the store up now into STATE/backups/ (through the running engine, or "
                                   "directly when none runs); each backup is checked before it is kept.")
    configure(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    actions = p.add_subparsers(dest="backup_command", metavar="ACTION")
    listing = actions.add_parser("list", help="the backups: name, time, reason, size, and a check of each now")
    configure(listing)
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    r = sub.add_parser("restore", help="replace the store with a backup (no engine may run; the store is archived)",
                       description="Replace the store with BACKUP (a name from `cockpit backup list`); the current "
                                   "store is kept in STATE/archive/. No engine may run on the state dir.")
    configure(r)
    r.add_argument("backup", metavar="BACKUP", help="the backup's name, as `cockpit backup list` shows it")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "restore":
        return _restore(args, settings)
    if getattr(args, "backup_command", None) == "list":
        return _list(args, settings)
    return _take(args, settings)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _plain(value: Any) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(value))


# ---- cockpit backup ------------------------------------------------------------------------


def _take(args: argparse.Namespace, settings: Settings) -> int:
    from cockpit.state_lock import StateDirBusy, StateLock, is_locked

    if is_locked(settings.state_dir):
        answer = _through_engine(settings)
    else:
        try:
            with StateLock(settings.state_dir):
                answer = _directly(settings)
        except StateDirBusy:  # an engine started meanwhile: ask it
            answer = _through_engine(settings)
    if getattr(args, "json", False):
        print(json.dumps(answer, indent=2))
    else:
        print(answer["message"])
        for line in answer.get("notes", []):
            print(line)
    return EXIT_OK


def _through_engine(settings: Settings) -> dict[str, Any]:
    from cockpit.control.client import ApiRefused, ControlClient, NoEngine

    try:
        with ControlClient(settings.state_dir / settings.api.socket, timeout=API_TIMEOUT) as client:
            answer = client.post("/backup")
    except (ApiRefused, NoEngine) as exc:
        raise BackupCliError(str(exc)) from None
    backup = answer.get("backup") if isinstance(answer, dict) else None
    if not isinstance(backup, dict):
        raise BackupCliError("the engine's answer to /backup has no backup in it")
    pruned = [str(p) for p in answer.get("pruned", [])]
    notes = [f"rotation removed {len(pruned)} older backup(s): {', '.join(pruned)}"] if pruned else []
    return {"via": "engine", "message": str(answer.get("message", "")), "backup": backup, "pruned": pruned,
            "notes": notes}


def _directly(settings: Settings) -> dict[str, Any]:
    """No engine: copy here (the state lock is held), rotate, audit it in the store."""
    from cockpit.identity import operator_id
    from core.domain.events import BackupWritten
    from core.persistence.backup import BACKUPS_DIR, MANUAL, BackupError, prune, write_backup

    db = settings.state_dir / DB_FILENAME
    if not db.is_file():
        raise BackupCliError(f"no cockpit store at {db}: nothing to back up (run `cockpit` first, or pass "
                             "--state-dir DIR)")
    directory = settings.state_dir / BACKUPS_DIR
    try:
        made = write_backup(db, directory, MANUAL, datetime.now(UTC), _checks())
    except BackupError as exc:
        raise BackupCliError(str(exc)) from None
    notes = []
    try:
        pruned = prune(directory, settings.backup.keep_recent, settings.backup.keep_daily)
    except (BackupError, OSError) as exc:
        pruned = []
        notes.append(f"rotation did not run ({exc}); it runs again with the next backup")
    if pruned:
        notes.append(f"rotation removed {len(pruned)} older backup(s): {', '.join(p.name for p in pruned)}")
    actor = operator_id("cli")
    event = BackupWritten(made.name, MANUAL, made.size, actor, tuple(p.name for p in pruned))
    why_not = _audit_in(db, event)
    if why_not is not None:
        notes.append(f"not audited in the store: {why_not}")
    return {"via": "direct", "message": f"backup written: {made.path} ({_size(made.size)}; integrity and audit "
                                        "chain checked)",
            "backup": {**made.as_dict(), "path": str(made.path), "verified": True},
            "pruned": [p.name for p in pruned], "notes": notes}


def _schema_behind(db: Path) -> str | None:
    """Why opening ``db`` as the engine does would migrate it (None: it is current)."""
    from core.audit.schema import AUDIT_MIGRATIONS
    from core.audit.schema import COMPONENT as AUDIT
    from core.persistence.store import CORE_MIGRATIONS

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        versions = dict(conn.execute("SELECT component, version FROM schema_migrations").fetchall())
    except sqlite3.Error:
        versions = {}
    finally:
        conn.close()
    for component, known in (("core", len(CORE_MIGRATIONS)), (AUDIT, len(AUDIT_MIGRATIONS))):
        if versions.get(component, 0) < known:
            return (f"its {component} schema is v{versions.get(component, 0)}, older than this cockpit's v{known} "
                    "(the engine migrates it, after a pre-migration backup, when it next starts)")
    return None


def _audit_in(db: Path, event: object, *, migrate: bool = False) -> str | None:
    """Record ``event`` in the store's audit trail as the engine would (a bus and the audit
    recorder); without ``migrate`` a store whose schema is behind is left as it is (the reason)."""
    if not migrate:
        behind = _schema_behind(db)
        if behind is not None:
            return behind
    try:
        import asyncio

        asyncio.run(_record(db, event))
    except Exception as exc:  # the backup or restore is done; the operator hears why the row is missing
        return f"{type(exc).__name__}: {exc}"
    return None


async def _record(db: Path, event: object) -> None:
    from core.audit.subscriber import AuditRecorder
    from core.audit.writer import AuditLog
    from core.common.bus import Bus
    from core.persistence.store import Store

    store = Store(db, copy_checks=_checks())
    await store.open()
    try:
        audit = AuditLog(store)
        await audit.load()
        bus = Bus()
        AuditRecorder(audit, bus, lambda: store.is_open)
        bus.publish(event)
        await store.flush()
    finally:
        await store.close()


# ---- cockpit backup list -------------------------------------------------------------------


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from core.persistence.backup import BACKUPS_DIR, check_file, list_backups

    directory = settings.state_dir / BACKUPS_DIR
    rows = []
    for b in list_backups(directory):
        problems = check_file(b.path, _checks())
        if problems and not b.path.exists():  # rotated out while we looked
            continue
        rows.append({**b.as_dict(), "verified": not problems, "problem": problems[0] if problems else None})
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no backups in {directory} yet: `cockpit backup` makes one")
    else:
        print(f"{'NAME':<48} {'TIME (UTC)':<20} {'REASON':<14} {'SIZE':>9}  VERIFIED")
        for r in rows:
            when = datetime.fromisoformat(r["time"]).strftime("%Y-%m-%d %H:%M:%S")
            verdict = "ok" if r["verified"] else f"FAILED: {_plain(r['problem'])}"
            print(f"{r['name']:<48} {when:<20} {r['reason']:<14} {_size(r['size']):>9}  {verdict}")
    return EXIT_OK if all(r["verified"] for r in rows) else EXIT_FAIL


# ---- cockpit restore -----------------------------------------------------------------------


def holdings(db: Path) -> dict[str, Any]:
    """What the account in the store at ``db`` holds: cash, equity, positions, fills."""
    from cockpit import readers

    conn = readers.connect_readonly(db)
    try:
        pnl = readers.pnl(conn)
        positions = readers.positions(conn)
        last = readers.fills(conn, limit=1)
        fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
    finally:
        conn.close()
    return {"cash": pnl["cash"], "equity": pnl["equity"], "realized": pnl["realized"],
            "positions": [{"symbol": p["symbol"], "qty": p["qty"], "avg_cost": p["avg_cost"]} for p in positions],
            "fills": fills, "last_fill_at": last[0]["time"] if last else None}


def _holdings_line(h: dict[str, Any]) -> str:
    held = ", ".join(f"{_plain(p['symbol'])} {_plain(p['qty'])} @ {_plain(p['avg_cost'])}" for p in h["positions"])
    positions = f"{len(h['positions'])} position(s): {held}" if h["positions"] else "no positions"
    last = f", the last at {_plain(h['last_fill_at'])}" if h["last_fill_at"] else ""
    return (f"cash {_plain(h['cash'])}, equity {_plain(h['equity'])}, realized {_plain(h['realized'])}; {positions}; "
            f"{h['fills']} fill(s){last}")


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from cockpit.state_lock import StateDirBusy, StateLock, is_locked
    from core.persistence.backup import BACKUPS_DIR, BackupError, find_backup

    state = settings.state_dir
    if is_locked(state):
        raise _engine_running(state)
    try:
        backup = find_backup(state / BACKUPS_DIR, args.backup)
    except BackupError as exc:
        raise BackupCliError(str(exc), EXIT_USAGE if "is not a backup name" in str(exc) else EXIT_FAIL) from None
    try:
        with StateLock(state):
            return _restore_locked(args, settings, backup)
    except StateDirBusy:
        raise _engine_running(state) from None


def _new_archive(folder: Path, now: datetime) -> Path:
    """``restore-<UTC time>`` in ``folder``, numbered when one by that name exists already."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        path = folder / (f"restore-{stamp}" if n == 1 else f"restore-{stamp}-{n}")
        if not path.exists():
            return path
    raise BackupCliError(f"{folder} already holds 999 archives named restore-{stamp}: move some away")


def _engine_running(state: Path) -> BackupCliError:
    return BackupCliError(f"an engine is running on {state}: stop it first (`cockpit restore` replaces the store it "
                          "writes)")


def _restore_locked(args: argparse.Namespace, settings: Settings, backup: BackupFile) -> int:
    from cockpit.identity import operator_id
    from core.domain.events import BackupRestored
    from core.persistence.backup import ARCHIVE_DIR, BackupError, check_file, restore

    state = settings.state_dir
    db = state / DB_FILENAME
    problems = check_file(backup.path, _checks())
    if problems:
        raise BackupCliError(f"backup {backup.name} is damaged, nothing was changed: {problems[0]}"
                             + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    archive = _new_archive(state / ARCHIVE_DIR, datetime.now(UTC))
    when = backup.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    plan = [f"Restore {backup.name} (taken {when}, {backup.reason}, {_size(backup.size)}; checked: integrity and "
            "audit chain ok).",
            f"It holds: {_holdings_line(holdings(backup.path))}.",
            f"The current store {db} is kept in {archive}/ (never deleted) and the backup takes its place."
            if db.exists() else f"There is no store at {db} now: the backup becomes it."]
    if not args.yes:
        print("\n".join(plan))
        if not sys.stdin.isatty():
            raise BackupCliError("restore needs confirmation: run it in a terminal or pass --yes", EXIT_USAGE)
        if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
            print("restore cancelled: nothing was changed")
            return EXIT_FAIL
    try:
        done = restore(backup, db, archive, _checks())
    except BackupError as exc:
        raise BackupCliError(str(exc)) from None
    event = BackupRestored(backup.name, backup.taken_at, str(done.archived) if done.archived else None,
                           operator_id("cli"))
    why_not = _audit_in(db, event, migrate=True)
    kept = f"the store it replaced is kept in {done.archived}" if done.archived else "there was no store before"
    print(f"restored {backup.name} into {db}; {kept}")
    if why_not is not None:
        print(f"cockpit: warning: the restore is not audited in the store: {why_not}", file=sys.stderr)
    print(f"the account now holds: {_holdings_line(holdings(db))}")
    return EXIT_OK
