"""The audit tables, their append-only triggers, the migrations and the statements on them.

The audit log is its own store component ("audit") with its own migrations; a change to the
tables is a new migration at the end of ``AUDIT_MIGRATIONS``, never an edit of an old one.
"""

from __future__ import annotations

import sqlite3

from core.audit.row import COLUMNS

COMPONENT = "audit"
APPEND_ONLY = "audit rows are append-only"
TRIGGERS: tuple[str, ...] = (
    "audit_no_update", "audit_no_delete", "audit_no_replace", "audit_head_no_delete", "audit_head_no_rewind",
)
TRIGGERS_SQL = f"""
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
CREATE TRIGGER audit_head_no_rewind BEFORE UPDATE ON audit_head
WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;
"""

AUDIT_MIGRATIONS: list[str] = [
    # v1: rows stamped with the engine clock
    """
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_ts ON audit(ts);
    CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
    """
    + TRIGGERS_SQL,
    # v2: ts is wall-clock time from here on; the engine's time, where it differs, in engine_ts
    # (NULL in the rows written before, which keep their hash: see core.audit.row)
    """
    ALTER TABLE audit ADD COLUMN engine_ts TEXT;
    """,
]

INSERT_ROW = f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
UPSERT_HEAD = (
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)"
    " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
)


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def select_rows(conn: sqlite3.Connection, where: str = "") -> str:
    """``SELECT`` of every column in ``COLUMNS`` order, also on a file not migrated yet.

    ``cockpit audit verify`` and ``export`` open the store read-only, so a file written before
    v2 (no engine ran on it since the upgrade) has no engine_ts column: it reads as NULL.
    """
    present = {r[1] for r in conn.execute("PRAGMA table_info(audit)")}
    cols = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    return f"SELECT {cols} FROM audit{' ' + where if where else ''}"
