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


async def test_rows_worded_at_flush_say_what_they_said_when_recorded(tmp_path: Path) -> None:
    """Times and details are worded at the flush: each row holds the times of its record and the
    details as they were then, even a list or a dict changed afterwards (those are worded at once)."""
    from enum import StrEnum

    from core.audit.canonical import canonical_json
    from core.audit.row import format_ts
    from core.domain.model import Side

    class Colour(StrEnum):
        RED = "red"

    db = tmp_path / "cockpit.sqlite"
    store = Store(db)
    await store.open()
    wall, engine = SimClock(T0), SimClock(T0 - timedelta(days=30))
    log = AuditLog(store, wall, engine_clock=engine)
    await log.load()
    expected = []
    live_list: list[object] = [1]
    live_dict: dict[str, object] = {"a": Decimal("1.50")}
    for n in range(1, 121):
        wall.advance(timedelta(microseconds=1234))
        if n % 3:
            engine.advance(timedelta(seconds=n))
        if n % 40 == 0:
            engine.advance_to(wall.now())  # the same time: no engine_ts
        details = [
            {"qty": Decimal(n) / 7, "side": Side.BUY, "colour": Colour.RED, "at": engine.now(), "flag": n % 2 == 0,
             "none": None, "ratio": n / 3, "day": engine.now().date(), "name": f"é-{n}"},
            {"items": live_list, "more": live_dict, "n": n},
            {},
        ][n % 3]
        ts, engine_now = format_ts(wall.now()), format_ts(engine.now())
        text = canonical_json(details)
        if n % 5 == 0:
            log.record_detail("x.detail", {"owners": {"s": str(n)}, "n": n}, subject=f"s{n}", actor=" ")
            text = canonical_json({"owners": {"s": str(n)}, "n": n})
            actor = "engine"
        else:
            log.record("x.kind", subject=f"s{n}", actor="alice", **details)
            actor = "alice"
        expected.append((n, ts, actor, "x.detail" if n % 5 == 0 else "x.kind", f"s{n}", text,
                         None if engine_now == ts else engine_now))
        live_list.append(n)  # changed after the record: the row keeps what it was
        live_dict[f"k{n}"] = n
        if n % 50 == 0:
            await store.flush()
    await store.close()
    with sqlite3.connect(db) as conn:
        assert verify(conn) == []
        rows = conn.execute("SELECT seq, ts, actor, kind, subject, detail, engine_ts FROM audit ORDER BY seq").fetchall()
    assert rows == expected
    assert any(r[6] is None for r in rows) and any(r[6] is not None for r in rows)
