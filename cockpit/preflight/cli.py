"""`cockpit preflight [--json] [--drill]`: the go-live checklist, PASS or FAIL with the fix.

Exit 0 when every check passes, 1 when one fails (3 when the store cannot be read). With
``--drill`` each risk check is first run against the gate and recorded in the audit trail
(the state lock is taken: not while an engine runs on this state dir).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cockpit.preflight.checks import CHECKS, CheckResult, Context
from cockpit.preflight.drill import DrillResult, run_drill
from core.config import Settings

DRILL_KIND = "preflight.drill"


class PreflightError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def evaluate(settings: Settings, db: Path, now: datetime | None = None,
             env: dict[str, str] | None = None) -> list[CheckResult]:
    """Every check, read-only (a missing store is a FAIL per check, not an error)."""
    now = now or datetime.now(UTC)
    conn: sqlite3.Connection | None = None
    if db.is_file():
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            conn.row_factory = sqlite3.Row
        except sqlite3.Error as exc:
            raise PreflightError(f"cannot read the store {db}: {exc}", 3) from None
    try:
        ctx = Context(settings, conn, now, env=env)
        return [check(ctx) for check in CHECKS] + _backup_checks(settings, db, now)
    except sqlite3.DatabaseError as exc:
        raise PreflightError(f"cannot read the store {db}: {exc}", 3) from None
    finally:
        if conn is not None:
            conn.close()


def _backup_checks(settings: Settings, db: Path, now: datetime) -> list[CheckResult]:
    from cockpit.preflight.backup_check import backup_restores

    return [backup_restores(settings, db, now)]


async def record_drill(settings: Settings, db: Path, results: list[DrillResult]) -> str:
    """The drill's outcomes as audit rows in the state's store (taking the state lock)."""
    from cockpit.identity import operator_id
    from cockpit.state_lock import StateDirBusy, StateLock
    from core.audit.writer import AuditLog
    from core.common.clock import LiveClock
    from core.persistence.disk_full import DiskFull
    from core.persistence.store import MigrationRefused, Store

    actor = operator_id("preflight")
    try:
        with StateLock(settings.state_dir):
            store = Store(db)
            await store.open()
            try:
                audit = AuditLog(store, LiveClock())
                await audit.load()
                for r in results:
                    audit.record(DRILL_KIND, actor=actor, subject=r.check, check=r.check, refused=r.refused,
                                 reason=r.reason)
                await store.flush()
            finally:
                await store.close()
    except StateDirBusy:
        raise PreflightError(f"an engine runs on {settings.state_dir}: stop it to record a drill "
                             f"(`cockpit preflight` alone reads while it runs)", 2) from None
    except (sqlite3.DatabaseError, DiskFull, MigrationRefused) as exc:  # the runbook's "store will not open"
        raise PreflightError(f"cannot record the drill in the store {db}: {exc} (the runbook: restore "
                             f"from a backup, `cockpit backup list`)", 3) from None
    return actor


def run_preflight(args: Any, settings: Settings, db: Path) -> int:
    drilled: list[DrillResult] = []
    if getattr(args, "drill", False):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        drilled = run_drill(settings, datetime.now(UTC))
        asyncio.run(record_drill(settings, db, drilled))
    results = evaluate(settings, db)
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.as_dict() for r in results],
                          "drill": [{"check": d.check, "refused": d.refused, "reason": d.reason} for d in drilled]},
                         indent=2))
        return 1 if failed else 0
    if drilled:
        holes = [d for d in drilled if not d.refused]
        print(f"drill: {len(drilled) - len(holes)} of {len(drilled)} risk checks refused their order"
              + "".join(f"\n  NOT REFUSED {d.check}: {d.reason}" for d in holes))
    _table(results)
    print(f"\npreflight: {'PASS' if not failed else f'FAIL ({len(failed)} of {len(results)} checks)'}")
    return 1 if failed else 0


def _table(results: list[CheckResult]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found")
    table.add_column("fix")
    for r in results:
        table.add_row(Text("PASS", style="green") if r.ok else Text("FAIL", style="bold red"), Text(r.name),
                      Text(r.detail), Text(r.fix))
    Console(file=sys.stdout, width=160, soft_wrap=False).print(table)
