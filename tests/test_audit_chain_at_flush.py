"""The audit chain is hashed at the store's flush: the rows, their hashes and the head are what
hashing each row as it was recorded gives, whatever the flushes and head reads in between."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from core.audit.journal import GENESIS_HASH, AuditLog, row_hash, verify
from core.common.clock import SimClock
from core.persistence.store import Store

T0 = datetime(2026, 3, 2, 15, tzinfo=UTC)


async def test_rows_hashed_at_flush_chain_as_if_hashed_one_by_one(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"
    store = Store(db)
    await store.open()
    wall, engine = SimClock(T0), SimClock(T0 - timedelta(days=3000))
    log = AuditLog(store, wall, engine_clock=engine)
    await log.load()
    heads = []
    for n in range(1, 301):
        wall.advance(timedelta(milliseconds=7))
        engine.advance(timedelta(minutes=1))
        assert log.record("order.fill", subject=f"c-{n}", qty=Decimal(n), price=Decimal("10.25")) == n
        if n % 37 == 0:
            heads.append((n, log.head_hash))  # read mid-batch: hashes what is pending
        if n % 50 == 0:
            await store.flush()
    await store.close()
    with sqlite3.connect(db) as conn:
        assert verify(conn) == []
        rows = conn.execute("SELECT seq, ts, actor, kind, subject, detail, prev_hash, hash, engine_ts FROM audit"
                            " ORDER BY seq").fetchall()
        head = conn.execute("SELECT seq, hash FROM audit_head").fetchone()
    prev = GENESIS_HASH
    for seq, ts, actor, kind, subject, detail, prev_hash, hsh, engine_ts in rows:
        assert prev_hash == prev and hsh == row_hash(prev, seq, ts, actor, kind, subject, detail, engine_ts)
        prev = hsh
    assert [r[0] for r in rows] == list(range(1, 301)) and head == (300, prev)
    by_seq = {r[0]: r[7] for r in rows}
    assert all(by_seq[n] == h for n, h in heads)
