"""Walk-forward reports in the state dir's store: ``walkforward_reports``, its own migration
component ("walkforward"), written only by `cockpit walkforward`.

The go-live check (cockpit/preflight/checks.py) reads ``strategy`` and ``created_at``; the row
also has the parameters to trade next, the stitched out-of-sample Sharpe and t-statistic, the
WFE, the verdict, and the whole report as JSON.

One writer: the write takes the state dir's lock, so it never happens while an engine runs on
that state dir (the engine is the store's writer then). `cockpit walkforward` checks that before
its first backtest and refuses to start (``--no-store`` runs it anyway, without storing); an
engine that started meanwhile makes the write fail with one line, the report still printed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

COMPONENT = "walkforward"
TABLE = "walkforward_reports"
MIGRATIONS: list[str] = [
    # v1
    f"""
    CREATE TABLE {TABLE} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        strategy TEXT NOT NULL,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        first_day TEXT,
        last_day TEXT,
        oos_sharpe REAL,
        oos_t_stat REAL,
        wfe REAL,
        holds INTEGER NOT NULL,
        verdict TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE INDEX {TABLE}_strategy ON {TABLE}(strategy, created_at);
    """,
]
_INSERT = (f"INSERT INTO {TABLE} (strategy, created_at, kind, params, first_day, last_day, oos_sharpe, oos_t_stat, "
           "wfe, holds, verdict, report) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")


class StoreBusy(Exception):
    """An engine runs on the state dir: the report is not stored (one line)."""


def _row(report: dict[str, Any]) -> tuple[Any, ...]:
    st = report["stitched"]
    return (report["strategy"], report["created_at"], report["kind"], json.dumps(report["params"], sort_keys=True),
            st["first_day"], st["last_day"], st["sharpe"], st["t_stat"], report["wfe"],
            1 if report["verdict"]["holds"] else 0, report["verdict"]["line"], json.dumps(report, sort_keys=True))


def engine_running(state_dir: Path) -> bool:
    from cockpit.state_lock import is_locked

    return is_locked(state_dir)


def busy_message(state_dir: Path) -> str:
    return (f"an engine is running on {state_dir}: a walk-forward report cannot be stored while it writes the store; "
            "stop it and run again, or pass --no-store to run without storing")


def store_report(state_dir: Path, db: Path, report: dict[str, Any]) -> int:
    """Write the report under the state lock; returns its id. ``StoreBusy`` if an engine runs."""
    from cockpit.state_lock import StateDirBusy, StateLock

    try:
        with StateLock(state_dir):
            return asyncio.run(_write(db, report))
    except StateDirBusy:
        raise StoreBusy(busy_message(state_dir)) from None


async def _write(db: Path, report: dict[str, Any]) -> int:
    from core.audit.verify import copy_problems
    from core.persistence.store import Store

    store = Store(db, copy_checks=(copy_problems,))  # a pre-migration backup checks the audit chain too
    await store.open()
    try:
        await store.migrate(COMPONENT, MIGRATIONS)
        store.append(_INSERT, _row(report))
        await store.flush()
        row = await store.fetchone(f"SELECT max(id) AS id FROM {TABLE}")
    finally:
        await store.close()
    return int(row["id"]) if row is not None else 0


def stored_reports(db: Path, strategy: str | None = None) -> list[dict[str, Any]]:
    """The stored reports' rows (newest first), read-only; [] without a store or a table."""
    if not db.exists():
        return []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone() is None:
            return []
        sql = (f"SELECT id, strategy, created_at, kind, params, first_day, last_day, oos_sharpe, oos_t_stat, wfe, holds, "
               f"verdict FROM {TABLE}" + (" WHERE strategy = ?" if strategy else "") + " ORDER BY id DESC")
        return [dict(r) for r in conn.execute(sql, (strategy,) if strategy else ())]
