"""The audit log: hash chain through the real Store, tamper detection, export and the CLI."""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.audit_cli import (
    AuditCliError,
    add_audit_parser,
    audit_export,
    audit_verify,
    parse_since,
    run_audit,
)
from core.audit import journal as audit
from core.audit.journal import GENESIS_HASH, TRIGGERS, TRIGGERS_SQL, AuditLog, export, row_hash, verify
from core.common.clock import LiveClock, SimClock
from core.domain.model import Side
from core.persistence.store import Store, StoreFailed

UTC = timezone.utc
T0 = datetime(2024, 1, 1, tzinfo=UTC)
N = 12  # rows in the standard chain
COLS = "seq, ts, actor, kind, subject, detail, prev_hash, hash"


class Colour(Enum):
    RED = "red"


async def _open(db: Path, clock: SimClock) -> tuple[Store, AuditLog]:
    store = Store(db)
    await store.open()
    log = AuditLog(store, clock)
    await log.load()
    return store, log


def _record_some(log: AuditLog, clock: SimClock, start: int, n: int) -> None:
    """n varied rows, one simulated hour apart."""
    for i in range(start, start + n):
        clock.advance(timedelta(hours=1))
        if i % 4 == 0:
            log.record(audit.SIGNAL, subject="AAPL", strategy="sma", strength=Decimal(i) / 8)
        elif i % 4 == 1:
            log.record(audit.GATE_REFUSE, subject="MSFT", reason=f"max position {i}", qty=Decimal(i), side=Side.SELL)
        elif i % 4 == 2:
            log.record(audit.ORDER_FILL, subject=f"c{i}", qty=Decimal("10"), price=Decimal("187.25"), at=clock.now(),
                       partial=False, extra=None, legs=[{"n": i, "p": Decimal("1.50")}])
        else:
            log.operator("set_limit", actor="alice", reason=f"desk asked {i}", before={"max_qty": Decimal(i)},
                         after={"max_qty": Decimal(i + 1)}, subject="max_qty")


async def _build(db: Path, n: int = N) -> None:
    clock = SimClock(T0)
    store, log = await _open(db, clock)
    try:
        _record_some(log, clock, 0, n)
    finally:
        await store.close()


@pytest.fixture
async def opened():
    """Open a store and its audit log; every store opened is closed at teardown, even after a failure
    (an open aiosqlite thread would keep the test process from exiting)."""
    made: list[Store] = []

    async def open_(db: Path, clock: SimClock) -> tuple[Store, AuditLog]:
        store = Store(db)
        made.append(store)
        await store.open()
        log = AuditLog(store, clock)
        await log.load()
        return store, log

    yield open_
    for store in made:
        try:
            await store.close()
        except Exception:
            pass  # a store whose commit failed still closes its connection


def build_chain(db: Path, n: int = N) -> Path:
    asyncio.run(_build(db, n))
    return db


@pytest.fixture
async def chain(tmp_path: Path) -> Path:
    db = tmp_path / "cockpit.sqlite"
    await _build(db)
    return db


def rows(db_or_conn: Path | sqlite3.Connection) -> list[tuple]:
    conn = sqlite3.connect(db_or_conn) if isinstance(db_or_conn, Path) else db_or_conn
    try:
        return conn.execute(f"SELECT {COLS} FROM audit ORDER BY seq").fetchall()
    finally:
        if isinstance(db_or_conn, Path):
            conn.close()


def found(problems: list[audit.Problem]) -> list[tuple[int | None, str]]:
    return [(p.seq, p.what) for p in problems]


def tamper(conn: sqlite3.Connection, *statements: tuple[str, tuple]) -> None:
    """What someone with the file would do: drop the triggers, change rows, put the triggers back."""
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    for sql, params in statements:
        conn.execute(sql, params)
    conn.executescript(TRIGGERS_SQL)
    conn.commit()


def rehash(conn: sqlite3.Connection, seq: int) -> str:
    r = conn.execute(f"SELECT {COLS} FROM audit WHERE seq = ?", (seq,)).fetchone()
    return row_hash(r[6], r[0], r[1], r[2], r[3], r[4], r[5])


def independent_hash(prev: str, seq: int, ts: str, actor: str, kind: str, subject: str, detail: str) -> str:
    """The documented formula, written out without core.audit.journal's helpers."""
    canonical = json.dumps([seq, ts, actor, kind, subject, detail], separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


# --- writing ---------------------------------------------------------------------------------


async def test_chain_continues_across_close_and_reopen(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    clock = SimClock(T0)
    store, log = await opened(db, clock)
    _record_some(log, clock, 0, 3)
    assert log.seq == 3
    await log.load()  # a second load must not rewind to what is on disk (nothing flushed yet)
    assert log.seq == 3
    await store.close()

    store, log = await opened(db, clock)
    assert log.seq == 3
    assert log.head_hash == rows(db)[-1][7]
    _record_some(log, clock, 3, 2)
    await store.close()

    got = rows(db)
    assert [r[0] for r in got] == [1, 2, 3, 4, 5]
    assert got[0][6] == GENESIS_HASH
    for before, after in zip(got, got[1:], strict=False):
        assert after[6] == before[7]
    for r in got:  # every row carries the documented hash, including those after the restart
        assert r[7] == independent_hash(r[6], r[0], r[1], r[2], r[3], r[4], r[5])
    with sqlite3.connect(db) as conn:
        assert verify(conn) == []
        assert conn.execute("SELECT seq, hash FROM audit_head").fetchone() == (5, got[-1][7])
        assert conn.execute("SELECT version FROM schema_migrations WHERE component='audit'").fetchone() == (2,)


async def test_row_commits_in_the_same_transaction_as_the_state_change(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    clock = SimClock(T0)
    store, log = await opened(db, clock)
    fill_sql = ("INSERT INTO fills (exec_id, client_order_id, strategy, symbol, side, qty, price, commission,"
                " realized_pnl, ts) VALUES (?, 'c1', 's', 'AAPL', 'BUY', '1', '10', '0', '0', ?)")
    commits = store.commits
    store.append(fill_sql, ("e1", "t"))
    assert log.record(audit.ORDER_FILL, subject="c1", exec_id="e1") == 1
    await store.flush()
    assert store.commits == commits + 1  # one transaction for both
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM fills").fetchone()[0] == 1
        assert [r[0] for r in rows(conn)] == [1]

    # A batch that fails takes its audit rows with it: no row describes a change that never landed.
    log.record(audit.ORDER_FILL, subject="c1", exec_id="e1 again")
    store.append(fill_sql, ("e1", "t"))  # duplicate exec_id: the commit fails
    with pytest.raises(sqlite3.IntegrityError):
        await store.flush()
    with pytest.raises(StoreFailed):
        await store.flush()
    await store.close()
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in rows(conn)] == [1]
        assert conn.execute("SELECT seq FROM audit_head").fetchone() == (1,)

    store, log = await opened(db, clock)  # the restart continues from what is on disk
    assert log.record(audit.ORDER_FILL, subject="c1", exec_id="e2") == 2
    await store.close()
    with sqlite3.connect(db) as conn:
        assert verify(conn) == []


async def test_record_before_load_is_refused(tmp_path: Path, opened) -> None:
    store, _ = await opened(tmp_path / "cockpit.sqlite", SimClock(T0))
    with pytest.raises(RuntimeError, match="before load"):
        AuditLog(store, SimClock(T0)).record(audit.SIGNAL)


async def test_detail_is_canonical_json_and_the_hash_is_the_documented_one(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    clock = SimClock(datetime(2024, 5, 1, 13, 30, tzinfo=UTC))
    store, log = await opened(db, clock)
    log.record(
        audit.GATE_REFUSE, subject="AAPL", z=1, a=[Decimal("1.50"), Decimal("1E+2"), None, True],
        when=datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=-4))), side=Side.BUY, colour=Colour.RED,
        nested={"b": {"y": 2, "x": "é"}}, reason=None,
    )
    log.operator("halt", actor="bob", reason="news", before="trading", after="halted")
    log.record("custom", kind="a detail may be called kind", actor="carol")
    with pytest.raises(ValueError, match="actor"):
        log.operator("halt", actor="", reason=None, before=None, after=None)
    await store.close()
    assert audit.canonical_json({1: "x", "b": {2, 1}, "o": object}) == '{"1":"x","b":[1,2],"o":"<class \'object\'>"}'
    (r1, r2, r3) = rows(db)
    assert r3[2:6] == ("carol", "custom", "", '{"kind":"a detail may be called kind"}')
    assert r1[1:6] == (
        "2024-05-01T13:30:00.000000+00:00", "engine", "gate.refuse", "AAPL",
        '{"a":["1.5","100",null,true],"colour":"red","nested":{"b":{"x":"\\u00e9","y":2}},"reason":null,'
        '"side":"BUY","when":"2024-05-01T09:30:00-04:00","z":1}',
    )
    assert r1[6] == GENESIS_HASH
    assert r1[7] == independent_hash(*r1[6:7], *r1[:6])
    assert r2[2:6] == ("bob", "operator.halt", "",
                       '{"after":"halted","before":"trading","reason":"news"}')
    assert r2[7] == independent_hash(r1[7], *r2[:6])


async def test_triggers_refuse_update_delete_and_replace(chain: Path) -> None:
    with sqlite3.connect(chain) as conn:
        for sql in (
            "UPDATE audit SET detail = '{}' WHERE seq = 3",
            "DELETE FROM audit WHERE seq = 3",
            "DELETE FROM audit WHERE seq = 12",
            f"INSERT OR REPLACE INTO audit ({COLS}) SELECT {COLS} FROM audit WHERE seq = 4",
            "DELETE FROM audit_head",
            "UPDATE audit_head SET seq = 10",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="audit rows are append-only"):
                conn.execute(sql)
    assert len(rows(chain)) == N
    with sqlite3.connect(chain) as conn:
        assert verify(conn) == []


# --- verify ----------------------------------------------------------------------------------


def _edit_detail(seq: int) -> tuple[str, tuple]:
    return "UPDATE audit SET detail = ? WHERE seq = ?", ('{"qty":"1000000"}', seq)


def _swap(conn: sqlite3.Connection, a: int, b: int) -> list[tuple[str, tuple]]:
    ra = conn.execute(f"SELECT {COLS} FROM audit WHERE seq = ?", (a,)).fetchone()
    rb = conn.execute(f"SELECT {COLS} FROM audit WHERE seq = ?", (b,)).fetchone()
    sql = "UPDATE audit SET ts=?, actor=?, kind=?, subject=?, detail=?, prev_hash=?, hash=? WHERE seq=?"
    return [(sql, (*rb[1:], a)), (sql, (*ra[1:], b))]


def test_a_clean_chain_verifies(chain: Path) -> None:
    with sqlite3.connect(chain) as conn:
        assert verify(conn) == []
        report = audit.check(conn)
    assert (report.rows, report.last_seq, report.last_hash) == (N, N, rows(chain)[-1][7])


def test_edited_row_is_named(chain: Path) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, _edit_detail(5))
        problems = verify(conn)
    assert found(problems) == [(5, "edited")]
    assert problems[0].message == "row 5 was edited: its hash does not match its contents"


def test_edited_and_rehashed_row_is_caught_by_the_next_link(chain: Path) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, _edit_detail(5))
        tamper(conn, ("UPDATE audit SET hash = ? WHERE seq = 5", (rehash(conn, 5),)))
        problems = verify(conn)
    assert found(problems) == [(5, "edited")]
    assert problems[0].message == "row 5 was edited and re-hashed: row 6 still links to its old hash"


def test_edited_and_rehashed_last_row_is_caught_by_the_head(chain: Path) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, _edit_detail(N))
        tamper(conn, ("UPDATE audit SET hash = ? WHERE seq = ?", (rehash(conn, N), N)))
        problems = verify(conn)
    assert found(problems) == [(N, "edited")]
    assert "head" in problems[0].message


@pytest.mark.parametrize(("deleted", "named", "message"), [
    ([5], 5, "row 5 was deleted: the sequence jumps from 4 to 6"),
    ([5, 6], 5, "rows 5..6 were deleted: the sequence jumps from 4 to 7"),
    ([1], 1, "row 1 was deleted: the log starts at row 2"),
    ([N - 1, N], N - 1, f"rows {N - 1}..{N} were deleted from the end: the recorded head is row {N}"),
])
def test_deleted_rows_are_named(chain: Path, deleted: list[int], named: int, message: str) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, *[("DELETE FROM audit WHERE seq = ?", (s,)) for s in deleted])
        problems = verify(conn)
    assert found(problems) == [(named, "deleted")]
    assert problems[0].message == message


@pytest.mark.parametrize(("a", "b"), [(4, 8), (6, 7), (1, N)])
def test_reordered_rows_are_named(chain: Path, a: int, b: int) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, *_swap(conn, a, b))
        problems = verify(conn)
    assert found(problems) == [(a, "reordered"), (b, "reordered")]
    assert problems[0].message == f"row {a} holds the contents of row {b}: rows were reordered"


def test_row_appended_outside_the_engine_is_named(chain: Path) -> None:
    last = rows(chain)[-1]
    seq, ts, detail = N + 1, "2030-01-01T00:00:00.000000+00:00", '{"forged":true}'
    forged = (seq, ts, "mallory", "operator.halt", "", detail, last[7],
              row_hash(last[7], seq, ts, "mallory", "operator.halt", "", detail))
    with sqlite3.connect(chain) as conn:
        conn.execute(f"INSERT INTO audit ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", forged)  # triggers allow appends
        conn.commit()
        problems = verify(conn)
    assert found(problems) == [(N + 1, "inserted")]


def test_limit_tail_deleted_with_the_head_rewritten_is_not_detectable(chain: Path) -> None:
    """The documented limit: the chain cannot catch a tail cut if the head is forged to match."""
    with sqlite3.connect(chain) as conn:
        new_last = conn.execute("SELECT hash FROM audit WHERE seq = ?", (N - 2,)).fetchone()[0]
        tamper(conn, ("DELETE FROM audit WHERE seq > ?", (N - 2,)),
               ("DELETE FROM audit_head", ()),
               ("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", (N - 2, new_last)))
        assert verify(conn) == []


def test_dropped_triggers_and_tables_are_reported(chain: Path, tmp_path: Path) -> None:
    with sqlite3.connect(chain) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        assert found(verify(conn)) == [(None, "unprotected")]
        conn.execute("DROP TABLE audit_head")
        assert found(verify(conn)) == [(None, "unprotected"), (None, "head")]
        conn.execute("DROP TABLE audit")
        assert [(p.what, p.message) for p in verify(conn)] == [("missing", "the audit table was dropped")]
    with sqlite3.connect(tmp_path / "other.sqlite") as conn:
        assert found(verify(conn)) == [(None, "missing")]


async def test_restart_after_a_tail_cut_keeps_the_hole_visible(chain: Path, opened) -> None:
    with sqlite3.connect(chain) as conn:
        tamper(conn, ("DELETE FROM audit WHERE seq >= ?", (N - 1,)))
    clock = SimClock(T0 + timedelta(days=10))
    store, log = await opened(chain, clock)  # the engine still starts...
    assert log.record(audit.ENGINE_START) == N + 1  # ...and continues after the recorded head
    await store.close()
    with sqlite3.connect(chain) as conn:
        assert found(verify(conn)) == [(N - 1, "deleted")]


def test_verify_reads_one_snapshot_while_the_engine_writes(chain: Path) -> None:
    """Rows and head are read in one transaction: a commit in between must not look like tampering."""

    class Racing(sqlite3.Connection):
        raced = False

        def execute(self, sql, *args):  # type: ignore[no-untyped-def]  # a stand-in with sqlite3's signature
            cur = super().execute(sql, *args)
            if not self.raced and "FROM audit ORDER BY seq" in sql:
                self.raced = True
                last = rows(chain)[-1]
                seq, ts = last[0] + 1, "2031-01-01T00:00:00.000000+00:00"
                h = row_hash(last[7], seq, ts, "engine", "signal", "", "{}")
                with sqlite3.connect(chain) as writer:  # the engine commits a row and the head
                    writer.execute(f"INSERT INTO audit ({COLS}) VALUES (?, ?, 'engine', 'signal', '', '{{}}', ?, ?)",
                                   (seq, ts, last[7], h))
                    writer.execute("UPDATE audit_head SET seq = ?, hash = ?", (seq, h))
            return cur

    conn = sqlite3.connect(f"file:{chain}?mode=ro", uri=True, factory=Racing)
    try:
        report = audit.check(conn)
        assert conn.raced
        assert (report.rows, report.problems) == (N, [])
        assert verify(conn) == []  # the next check sees the new row, consistently
        assert audit.check(conn).rows == N + 1
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chain(tmp_path_factory.mktemp("audit") / "cockpit.sqlite", n=20)


def _copy(db: Path) -> sqlite3.Connection:
    mem = sqlite3.connect(":memory:")
    with sqlite3.connect(db) as src:
        src.backup(mem)
    return mem


FIELDS = ("ts", "actor", "kind", "subject", "detail", "prev_hash", "hash")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_edit_delete_or_swap_is_named(pristine: Path, data: st.DataObject) -> None:
    n = 20
    conn = _copy(pristine)
    try:
        assert verify(conn) == []
        op = data.draw(st.sampled_from(["edit", "edit+rehash", "delete", "swap"]))
        k = data.draw(st.integers(1, n), label="seq")
        if op == "edit":
            field = data.draw(st.sampled_from(FIELDS))
            old = conn.execute(f"SELECT {field} FROM audit WHERE seq = ?", (k,)).fetchone()[0]
            new = data.draw(st.text(min_size=1, max_size=70).filter(lambda s: s != old), label="new value")
            tamper(conn, (f"UPDATE audit SET {field} = ? WHERE seq = ?", (new, k)))
            expected = [(k, "edited")]
        elif op == "edit+rehash":
            field = data.draw(st.sampled_from(FIELDS[:5]))
            old = conn.execute(f"SELECT {field} FROM audit WHERE seq = ?", (k,)).fetchone()[0]
            new = data.draw(st.text(min_size=1, max_size=70).filter(lambda s: s != old), label="new value")
            tamper(conn, (f"UPDATE audit SET {field} = ? WHERE seq = ?", (new, k)))
            tamper(conn, ("UPDATE audit SET hash = ? WHERE seq = ?", (rehash(conn, k), k)))
            expected = [(k, "edited")]
        elif op == "delete":
            tamper(conn, ("DELETE FROM audit WHERE seq = ?", (k,)))
            expected = [(k, "deleted")]
        else:
            j = data.draw(st.integers(1, n).filter(lambda j: j != k), label="other seq")
            a, b = sorted((k, j))
            tamper(conn, *_swap(conn, a, b))
            expected = [(a, "reordered"), (b, "reordered")]
        assert found(verify(conn)) == expected
    finally:
        conn.close()


# --- export ----------------------------------------------------------------------------------


def _db_rows_since(db: Path, since: datetime) -> list[tuple]:
    return [r for r in rows(db) if datetime.fromisoformat(r[1]) >= since]


def test_export_jsonl_and_csv_since_a_time(chain: Path) -> None:
    since = datetime(2024, 1, 1, 5, 0)  # naive: UTC; rows are one hour apart from 01:00
    expected = _db_rows_since(chain, since.replace(tzinfo=UTC))
    assert [r[0] for r in expected] == list(range(5, N + 1))

    out = io.StringIO()
    with sqlite3.connect(chain) as conn:
        assert export(conn, since, "jsonl", out) == len(expected)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [list(o) for o in lines] == [["seq", "ts", "actor", "kind", "subject", "detail", "prev_hash", "hash"]] * len(
        expected)
    assert [(o["seq"], o["ts"], o["actor"], o["kind"], o["subject"], audit.canonical_json(o["detail"]),
             o["prev_hash"], o["hash"]) for o in lines] == expected
    assert isinstance(lines[0]["detail"], dict)
    for o in lines:  # an export can be checked on its own
        assert o["hash"] == row_hash(o["prev_hash"], o["seq"], o["ts"], o["actor"], o["kind"], o["subject"],
                                     audit.canonical_json(o["detail"]))

    out = io.StringIO()
    with sqlite3.connect(chain) as conn:
        assert export(conn, since.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2))), "csv", out) == len(
            expected)
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == ["seq", "ts", "actor", "kind", "subject", "detail", "prev_hash", "hash", "engine_ts"]
    assert [tuple([int(r[0]), *r[1:8]]) for r in parsed[1:]] == expected
    assert {r[8] for r in parsed[1:]} == {""}  # no engine clock given: no engine time

    out = io.StringIO()
    with sqlite3.connect(chain) as conn:
        assert export(conn, None, "csv", out) == N
        assert export(conn, datetime(2030, 1, 1), "jsonl", io.StringIO()) == 0
        with pytest.raises(ValueError, match="jsonl or csv"):
            export(conn, None, "xml", io.StringIO())


# --- CLI -------------------------------------------------------------------------------------


def test_cli_verify_clean_and_tampered(chain: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert audit_verify(chain, out, err) == 0
    assert out.getvalue() == f"audit: {N} rows, chain intact; head row {N} hash {rows(chain)[-1][7]}\n"
    assert err.getvalue() == ""

    with sqlite3.connect(chain) as conn:
        tamper(conn, _edit_detail(3), ("DELETE FROM audit WHERE seq = ?", (7,)))
    out, err = io.StringIO(), io.StringIO()
    assert audit_verify(chain, out, err) == 1
    assert out.getvalue().splitlines() == [
        "audit: row 3 was edited: its hash does not match its contents",
        "audit: row 7 was deleted: the sequence jumps from 6 to 8",
    ]
    assert err.getvalue() == f"audit: {N - 1} rows, 2 problems: the audit log was tampered with\n"


def test_cli_verify_and_export_without_state(tmp_path: Path) -> None:
    out = io.StringIO()
    assert audit_verify(tmp_path / "cockpit.sqlite", out, io.StringIO()) == 3  # no trail: not tampering
    assert out.getvalue().startswith("audit: no audit trail: no cockpit store")
    with pytest.raises(AuditCliError, match="no cockpit state") as exc:
        audit_export(tmp_path / "cockpit.sqlite", None, "jsonl", io.StringIO())
    assert exc.value.code == 1
    db = tmp_path / "bare.sqlite"
    sqlite3.connect(db).close()
    with pytest.raises(AuditCliError, match="no audit log") as exc:
        audit_export(db, None, "csv", io.StringIO())
    assert exc.value.code == 1
    out = io.StringIO()
    assert audit_verify(db, out, io.StringIO()) == 3
    assert out.getvalue().startswith("audit: no audit trail in") and "there is no audit table" in out.getvalue()


def test_cli_export_since_forms(chain: Path) -> None:
    now = T0 + timedelta(hours=N)  # the last row's time
    for since, first in (("2024-01-01T05:00", 5), ("2024-01-01 05:00:00", 5), ("2024-01-01T07:00+02:00", 5),
                         ("2024-01-01T05:00:00Z", 5), ("2024-01-01", 1), ("3h", N - 3), ("90m", N - 1),
                         ("1d", 1), ("1w", 1), ("30s", N), ("2024-02-01", N + 1)):
        out, err = io.StringIO(), io.StringIO()
        assert audit_export(chain, since, "jsonl", out, err, now=now) == 0
        seqs = [json.loads(line)["seq"] for line in out.getvalue().splitlines()]
        assert seqs == list(range(first, N + 1)), since
        assert err.getvalue() == f"audit: exported {len(seqs)} row{'s' if len(seqs) != 1 else ''}\n"
    out = io.StringIO()
    assert audit_export(chain, None, "csv", out) == 0
    assert len(out.getvalue().splitlines()) == N + 1

    for bad in ("yesterday", "2024-13-01", "2h ago", ""):
        with pytest.raises(AuditCliError) as exc:
            audit_export(chain, bad, "jsonl", io.StringIO())
        assert exc.value.code == 2
        assert "\n" not in str(exc.value)
        assert "ISO date" in str(exc.value) and "2h" in str(exc.value)
    with pytest.raises(AuditCliError, match="jsonl or csv") as exc:
        audit_export(chain, None, "xml", io.StringIO())
    assert exc.value.code == 2
    assert parse_since("2024-05-01T13:30") == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def test_parser_hooks_into_a_cli_with_common_options(chain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="cockpit")
    sub = parser.add_subparsers(dest="command")
    configured: list[str] = []
    add_audit_parser(sub, parents=[common], configure=lambda p: configured.append(p.prog))
    assert configured == ["cockpit audit verify", "cockpit audit export"]

    args = parser.parse_args(["audit", "export", "--since", "2024-01-01T10:00", "--format", "csv", "--state-dir", "x"])
    assert (args.command, args.audit_command, args.since, args.format, args.state_dir) == (
        "audit", "export", "2024-01-01T10:00", "csv", "x")
    out = io.StringIO()
    assert run_audit(args, chain, out, io.StringIO()) == 0
    assert [r[0] for r in csv.reader(io.StringIO(out.getvalue()))][1:] == [str(s) for s in range(10, N + 1)]

    args = parser.parse_args(["audit", "export"])
    assert (args.since, args.format) == (None, "jsonl")
    args = parser.parse_args(["audit", "verify", "--state-dir", "y"])
    out = io.StringIO()
    assert run_audit(args, chain, out, io.StringIO()) == 0
    assert "chain intact" in out.getvalue()

    capsys.readouterr()
    for argv, says in ((["audit", "export", "--since", "last tuesday"], "'last tuesday' is not a time: use an ISO"),
                       (["audit", "export", "--format", "xml"], "invalid choice: 'xml'"),
                       (["audit"], "required: ACTION")):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2
        assert says in capsys.readouterr().err


# --- time stamps, actors and schema v2 -------------------------------------------------------

WALL = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # "today"
ENGINE_2009 = datetime(2009, 3, 9, 14, 30, tzinfo=UTC)  # a replay's simulated time


def independent_hash_v2(prev: str, seq: int, ts: str, actor: str, kind: str, subject: str, detail: str,
                        engine_ts: str) -> str:
    """The documented formula for a row with an engine time, written out without core.audit's helpers."""
    canonical = json.dumps([seq, ts, actor, kind, subject, detail, engine_ts], separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def rows_v2(db: Path | sqlite3.Connection) -> list[tuple]:
    conn = sqlite3.connect(db) if isinstance(db, Path) else db
    try:
        return conn.execute(f"SELECT {COLS}, engine_ts FROM audit ORDER BY seq").fetchall()
    finally:
        if isinstance(db, Path):
            conn.close()


async def test_rows_carry_wall_time_and_the_engine_time_where_it_differs(tmp_path: Path) -> None:
    """An operator action today during a replay of 2009: ts is today, engine_ts is 2009."""
    db = tmp_path / "cockpit.sqlite"
    wall, engine = SimClock(WALL), SimClock(ENGINE_2009)
    store = Store(db)
    await store.open()
    try:
        log = AuditLog(store, wall, engine_clock=engine)
        await log.load()
        log.operator("halt", actor="alice", reason="news", before="trading", after="halted")
        wall.advance(timedelta(seconds=2))
        engine.advance(timedelta(days=1))
        log.record(audit.SIGNAL, subject="AAPL", target=Decimal(5))
        same = AuditLog(store, wall, engine_clock=wall)  # one clock for both: no second time
        assert same.engine_clock is None
    finally:
        await store.close()
    r1, r2 = rows_v2(db)
    assert (r1[1], r1[8]) == ("2026-12-01T21:30:00.000000+00:00", "2009-03-09T14:30:00.000000+00:00")
    assert (r2[1], r2[8]) == ("2026-12-01T21:30:02.000000+00:00", "2009-03-10T14:30:00.000000+00:00")
    assert r1[7] == independent_hash_v2(GENESIS_HASH, *r1[:6], r1[8])
    assert r2[7] == independent_hash_v2(r1[7], *r2[:6], r2[8])
    with sqlite3.connect(db) as conn:
        assert verify(conn) == []


async def test_engine_time_is_left_out_when_unset_or_the_same(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    store, _ = await opened(db, SimClock(WALL))
    unset = AuditLog(store, SimClock(WALL), engine_clock=SimClock())  # a replay clock before its first event
    await unset.load()
    unset.record(audit.ENGINE_START)
    same_time = AuditLog(store, SimClock(WALL), engine_clock=SimClock(WALL))
    same_time._seq, same_time._hash, same_time._loaded = unset.seq, unset.head_hash, True
    same_time.record(audit.SIGNAL)
    live = AuditLog(store, engine_clock=LiveClock())  # live: wall time twice would be noise
    assert live.engine_clock is None and isinstance(live.wall_clock, LiveClock)
    await store.close()
    assert [(r[1], r[8]) for r in rows_v2(db)] == [("2026-12-01T21:30:00.000000+00:00", None)] * 2
    for r in rows_v2(db):  # without an engine time, a row hashes exactly as before v2
        assert r[7] == independent_hash(r[6], *r[:6])


async def test_every_row_says_who(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    store, log = await opened(db, SimClock(WALL))
    log.record(audit.SIGNAL)
    log.record(audit.SIGNAL, actor="")
    log.record(audit.SIGNAL, actor="   ")
    log.record(audit.SIGNAL, actor="sma")
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="actor"):
            log.operator("halt", actor=blank, reason=None, before=None, after=None)
    await store.close()
    assert [r[2] for r in rows_v2(db)] == ["engine", "engine", "engine", "sma"]


async def test_a_fresh_state_dir_has_no_1970_rows(tmp_path: Path, clean_env) -> None:
    """The real engine replaying 2008 on a fresh state dir, with an operator action: every ts is
    wall time, engine times are the replay's, nothing says 1970, every row has an actor."""
    from cockpit.wiring import build_engine
    from core.config import load_config
    from tests.conftest import CONFIG

    settings = load_config(CONFIG, state_dir=tmp_path, overrides={"feed": {"speed": "max", "end": "2008-01-15"}})
    began = datetime.now(UTC)
    engine = build_engine(settings)
    await engine.start()
    try:
        await engine.run()
        await engine.controls.halt(actor="alice", reason="lunch")
    finally:
        await engine.shutdown()
    ended = datetime.now(UTC)
    got = rows_v2(tmp_path / "cockpit.sqlite")
    assert len(got) > 3
    assert not [r for r in got if "1970" in r[1] or "1970" in (r[8] or "")]
    assert all(began <= datetime.fromisoformat(r[1]) <= ended for r in got)
    engine_years = {r[8][:4] for r in got if r[8] is not None}
    assert engine_years == {"2008"}
    assert all(r[2] and r[2].strip() for r in got)
    [halt] = [r for r in got if r[3] == "operator.halt"]
    assert halt[2] == "alice" and halt[8] is not None and halt[8].startswith("2008-01")
    with sqlite3.connect(tmp_path / "cockpit.sqlite") as conn:
        assert verify(conn) == []


def write_v1_log(db: Path, n: int) -> list[tuple]:
    """A state file as cockpit wrote it before audit schema v2: the v1 tables, rows stamped with
    the engine clock (2009), hashed with the six-field formula, the head, schema version 1."""
    conn = sqlite3.connect(db)
    try:
        conn.executescript(
            "CREATE TABLE schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL);"
            + audit.AUDIT_MIGRATIONS[0]
            + ";INSERT INTO schema_migrations VALUES ('audit', 1);")
        prev = GENESIS_HASH
        for seq in range(1, n + 1):
            ts = (ENGINE_2009 + timedelta(hours=seq)).isoformat(timespec="microseconds")
            detail = json.dumps({"qty": str(seq), "symbol": "SPY"}, sort_keys=True, separators=(",", ":"))
            h = independent_hash(prev, seq, ts, "engine", "order.fill", f"c{seq}", detail)
            conn.execute(f"INSERT INTO audit ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (seq, ts, "engine", "order.fill", f"c{seq}", detail, prev, h))
            prev = h
        conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", (n, prev))
        conn.commit()
        return conn.execute(f"SELECT {COLS} FROM audit ORDER BY seq").fetchall()
    finally:
        conn.close()


async def test_verify_across_the_v2_migration(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    old = write_v1_log(db, 5)
    # Read-only, before any engine migrated it: verify and export read the old file as it is.
    out, err = io.StringIO(), io.StringIO()
    assert audit_verify(db, out, err) == 0, out.getvalue()
    assert "5 rows, chain intact" in out.getvalue()
    out = io.StringIO()
    assert audit_export(db, None, "csv", out) == 0
    assert [r[8] for r in csv.reader(io.StringIO(out.getvalue()))] == ["engine_ts"] + [""] * 5

    store, log = await opened(db, SimClock(WALL))  # the upgraded engine opens it: migrates to v2
    log.engine_clock = SimClock(ENGINE_2009 + timedelta(days=1))
    assert log.seq == 5
    log.record(audit.ENGINE_START)
    log.operator("halt", actor="alice", reason="news", before="trading", after="halted")
    await store.close()

    got = rows_v2(db)
    assert [r[:8] for r in got[:5]] == old  # old rows untouched, their hash kept
    assert [r[8] for r in got] == [None] * 5 + ["2009-03-10T14:30:00.000000+00:00"] * 2
    assert got[5][6] == old[-1][7]  # the chain runs on across the migration
    assert got[6][7] == independent_hash_v2(got[5][7], *got[6][:6], got[6][8])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_migrations WHERE component='audit'").fetchone() == (2,)
        assert verify(conn) == []
    out, err = io.StringIO(), io.StringIO()
    assert audit_verify(db, out, err) == 0 and "7 rows, chain intact" in out.getvalue()

    with sqlite3.connect(db) as conn:  # tamper with an old row and a new one
        tamper(conn, _edit_detail(3), ("UPDATE audit SET engine_ts = ? WHERE seq = 6",
                                       ("2009-03-10T15:00:00.000000+00:00",)))
        assert found(verify(conn)) == [(3, "edited"), (6, "edited")]
    out, err = io.StringIO(), io.StringIO()
    assert audit_verify(db, out, err) == 1
    assert out.getvalue().splitlines() == [
        "audit: row 3 was edited: its hash does not match its contents",
        "audit: row 6 was edited: its hash does not match its contents",
    ]


@pytest.mark.parametrize("engine_ts", [None, "", "2011-01-01T00:00:00.000000+00:00"])
async def test_engine_time_is_part_of_the_hash(tmp_path: Path, opened, engine_ts: str | None) -> None:
    """Clearing, blanking or changing a row's engine time names the row; so does giving an old-style row one."""
    db = tmp_path / "cockpit.sqlite"
    store, log = await opened(db, SimClock(WALL))
    log.engine_clock = SimClock(ENGINE_2009)
    for _ in range(3):
        log.record(audit.SIGNAL)
    log.engine_clock = None
    log.record(audit.SIGNAL)  # no engine time
    await store.close()
    with sqlite3.connect(db) as conn:
        tamper(conn, ("UPDATE audit SET engine_ts = ? WHERE seq = 2", (engine_ts,)),
               ("UPDATE audit SET engine_ts = ? WHERE seq = 4", (engine_ts or "2009-01-01",)))
        assert found(verify(conn)) == [(2, "edited"), (4, "edited")]


async def test_reordered_v2_rows_are_named(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    engine = SimClock(ENGINE_2009)
    store, log = await opened(db, SimClock(WALL))
    log.engine_clock = engine
    for i in range(6):
        engine.advance(timedelta(minutes=1))
        log.record(audit.SIGNAL, n=i)
    await store.close()
    with sqlite3.connect(db) as conn:
        ra, rb = (conn.execute(f"SELECT {COLS}, engine_ts FROM audit WHERE seq = ?", (s,)).fetchone() for s in (2, 5))
        sql = "UPDATE audit SET ts=?, actor=?, kind=?, subject=?, detail=?, prev_hash=?, hash=?, engine_ts=? WHERE seq=?"
        tamper(conn, (sql, (*rb[1:], 2)), (sql, (*ra[1:], 5)))
        assert found(verify(conn)) == [(2, "reordered"), (5, "reordered")]


async def test_export_carries_the_engine_time_so_rows_can_be_checked(tmp_path: Path, opened) -> None:
    db = tmp_path / "cockpit.sqlite"
    store, log = await opened(db, SimClock(WALL))
    log.record(audit.ENGINE_START)  # no engine clock yet
    log.engine_clock = SimClock(ENGINE_2009)
    log.record(audit.SIGNAL, subject="AAPL", qty=Decimal("1.5"))
    await store.close()
    out = io.StringIO()
    with sqlite3.connect(db) as conn:
        assert export(conn, None, "jsonl", out) == 2
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert "engine_ts" not in first and second["engine_ts"] == "2009-03-09T14:30:00.000000+00:00"
    for o in (first, second):
        assert o["hash"] == row_hash(o["prev_hash"], o["seq"], o["ts"], o["actor"], o["kind"], o["subject"],
                                     audit.canonical_json(o["detail"]), o.get("engine_ts"))
    out = io.StringIO()
    with sqlite3.connect(db) as conn:
        export(conn, datetime(2026, 1, 1), "csv", out)  # --since picks by wall time: both rows are today's
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert [r[8] for r in parsed] == ["engine_ts", "", "2009-03-09T14:30:00.000000+00:00"]
