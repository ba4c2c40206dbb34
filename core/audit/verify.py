"""Checking the audit log (plain sqlite3; a read-only connection is enough).

``verify`` names an edited row (its hash does not match its contents), an edited-and-re-hashed
row (the next row still links to its old hash, or the head records another hash), deleted rows
(a gap in ``seq``, or a head ahead of the table), reordered rows (a row whose contents hash
correctly only under another seq), rows appended outside the engine (past the head), and
dropped triggers or tables. Works on files of every schema version (see core.audit.row).

A trail that was never started (no audit table, and the store never recorded creating one:
the engine was killed, or the disk was full, before it got that far) is not tampering: its
report says so in ``absent``. An audit table that was dropped after it was created is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from core.audit.row import GENESIS_HASH, AuditRow, as_text
from core.audit.schema import COMPONENT, TRIGGERS, select_rows, table_exists


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the audit log. ``seq`` names the row (None: the table as a whole).

    ``what``: "missing" (no table), "unprotected" (triggers dropped), "edited", "deleted",
    "reordered", "inserted" (rows not written by the engine), "head" (head record damaged).
    """

    seq: int | None
    what: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Report:
    rows: int
    last_seq: int
    last_hash: str
    problems: list[Problem]
    # Why there is no trail to check at all (never created), or None. Its "missing" problem
    # stays in ``problems`` so that ``verify() == []`` still means a trail that was checked.
    absent: str | None = None


def verify(conn: sqlite3.Connection) -> list[Problem]:
    """Every problem found in the audit log, in row order; empty when the chain is intact."""
    return check(conn).problems


def copy_problems(conn: sqlite3.Connection) -> list[str]:
    """The audit chain's problems in a copy of the store (a backup): one line each, none when
    intact, empty or never started (a store from before the audit trail is a good copy)."""
    report = check(conn)
    if report.absent is not None:
        return []
    return [f"audit chain: {p.message}" for p in report.problems]


def check(conn: sqlite3.Connection) -> Report:
    """Like ``verify``, with the row count and the last row (for printing the head hash)."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")  # one snapshot for rows and head, even while the engine writes
    try:
        return _check(conn)
    finally:
        if began:
            conn.execute("ROLLBACK")


def _rows_between(a: int, b: int) -> str:
    return f"row {a} was" if a == b else f"rows {a}..{b} were"


def _check(conn: sqlite3.Connection) -> Report:
    problems: list[Problem] = []
    if not table_exists(conn, "audit"):
        recorded = table_exists(conn, "schema_migrations") and conn.execute(
            "SELECT 1 FROM schema_migrations WHERE component = ?", (COMPONENT,)).fetchone()
        if recorded:
            return Report(0, 0, GENESIS_HASH, [Problem(None, "missing", "the audit table was dropped")])
        why = "there is no audit table: no engine with the audit log has run on this state yet"
        return Report(0, 0, GENESIS_HASH, [Problem(None, "missing", why)], absent=why)
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    dropped = [t for t in TRIGGERS if t not in present]
    if dropped:
        problems.append(Problem(None, "unprotected", f"the append-only triggers were dropped ({', '.join(dropped)}):"
                                " rows could have been changed in place"))

    count = 0
    prev_seq, prev_hash, prev_ok = 0, GENESIS_HASH, True
    suspects: dict[int, int] = {}  # seq of a row whose hash is wrong -> index of its problem
    for values in conn.execute(select_rows(conn, "ORDER BY seq")):
        row = AuditRow.from_stored(values)
        seq = row.seq
        if seq < 1:
            problems.append(Problem(seq, "inserted", f"row {seq} is not part of the chain (rows start at 1)"))
            continue
        count += 1
        ok = row.intact
        gap = seq != prev_seq + 1
        if gap:
            problems.append(Problem(prev_seq + 1, "deleted",
                                    f"{_rows_between(prev_seq + 1, seq - 1)} deleted: the sequence jumps from "
                                    f"{prev_seq} to {seq}" if prev_seq else
                                    f"{_rows_between(1, seq - 1)} deleted: the log starts at row {seq}"))
        if not ok:
            suspects[seq] = len(problems)
            problems.append(Problem(seq, "edited", f"row {seq} was edited: its hash does not match its contents"))
        elif row.prev_hash != prev_hash and not gap and prev_ok:
            # Both rows hash correctly where they are, yet do not link: one was re-hashed.
            if prev_seq == 0:
                problems.append(Problem(seq, "edited", f"row {seq} was edited and re-hashed: it does not start "
                                        "from the genesis hash"))
            else:
                problems.append(Problem(prev_seq, "edited", f"row {prev_seq} was edited and re-hashed: row {seq} "
                                        "still links to its old hash"))
        prev_seq, prev_hash, prev_ok = seq, row.hash, ok

    problems.extend(_check_head(conn, count, prev_seq, prev_hash, prev_ok))
    if suspects:
        for seq, origin in _origins(conn, set(suspects)).items():
            if origin is not None and origin != seq:
                problems[suspects[seq]] = Problem(
                    seq, "reordered", f"row {seq} holds the contents of row {origin}: rows were reordered")
    return Report(count, prev_seq, prev_hash, problems)


def _check_head(conn: sqlite3.Connection, count: int, last_seq: int, last_hash: str, last_ok: bool) -> list[Problem]:
    if not table_exists(conn, "audit_head"):
        return [Problem(None, "head", "the audit_head table was dropped: deleted last rows would go unnoticed")]
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    if head is None:
        if count:
            return [Problem(None, "head", "the recorded head of the audit log was deleted")]
        return []
    head_seq, head_hash = head[0], head[1]
    if head_seq > last_seq:
        return [Problem(last_seq + 1, "deleted", f"{_rows_between(last_seq + 1, head_seq)} deleted from the end: "
                        f"the recorded head is row {head_seq}")]
    if head_seq < last_seq:
        return [Problem(head_seq + 1, "inserted", f"{_rows_between(head_seq + 1, last_seq)} added outside the "
                        f"engine: the recorded head is row {head_seq}")]
    if head_hash != last_hash and last_ok:
        return [Problem(last_seq, "edited", f"row {last_seq} was edited and re-hashed: the recorded head hash "
                        "differs")]
    return []


def _origins(conn: sqlite3.Connection, suspects: set[int]) -> dict[int, int | None]:
    """For each row whose hash is wrong where it is: the seq under which its contents do hash.

    A row's contents belong after the row whose hash is its prev_hash; that row is either
    where it belongs (its hash is right) or itself moved (resolved first). Only runs when
    the chain is broken, so the hash index it builds costs nothing on a clean log.
    """
    by_hash: dict[str, int] = {}
    for seq, hsh in conn.execute("SELECT seq, hash FROM audit"):
        by_hash.setdefault(as_text(hsh), seq)
    rows = {r.seq: r for r in _fetch(conn, suspects)}
    origin: dict[int, int | None] = {}
    for start in sorted(suspects):
        stack, visiting = [start], {start}
        while stack:
            seq = stack[-1]
            row = rows[seq]
            prev = as_text(row.prev_hash)
            pred = None if prev == GENESIS_HASH else by_hash.get(prev)
            if prev != GENESIS_HASH and pred in suspects and pred not in origin:
                if pred in visiting:  # a cycle of links: no origin for anyone in it
                    origin[seq] = None
                    stack.pop()
                    visiting.discard(seq)
                    continue
                stack.append(pred)
                visiting.add(pred)
                continue
            if prev == GENESIS_HASH:
                base: int | None = 0
            elif pred is None:
                base = None
            elif pred in suspects:
                base = origin[pred]
            else:
                base = pred
            cand = None if base is None else base + 1
            origin[seq] = cand if cand is not None and row.expected_hash(cand) == as_text(row.hash) else None
            stack.pop()
            visiting.discard(seq)
    return origin


def _fetch(conn: sqlite3.Connection, seqs: Iterable[int]) -> list[AuditRow]:
    out: list[AuditRow] = []
    wanted = sorted(seqs)
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(AuditRow.from_stored(r) for r in conn.execute(select_rows(conn, f"WHERE seq IN ({marks})"), chunk))
    return out
