"""The audit log: every engine decision and operator action, one hash-chained row each.

Rows live in the append-only table ``audit`` (its own store component, "audit"). Each
row carries the hash of the row before it::

    hash = sha256(prev_hash + canonical(seq, ts, actor, kind, subject, detail))

where ``canonical`` is the compact JSON array ``[seq,"ts","actor","kind","subject","detail"]``
(ASCII-only, ``detail`` being the stored canonical-JSON text of the details) and the first
row's ``prev_hash`` is 64 zeros. ``AuditLog.record`` appends through ``Store.append``, so a
row commits in the same transaction as the state change it describes, and never awaits.

Protection, in layers:

* Triggers abort any UPDATE or DELETE on ``audit`` (and an ``INSERT OR REPLACE`` over an
  existing row), so tampering needs the triggers dropped first.
* The chain: ``verify`` names an edited row (its hash does not match its contents), an
  edited-and-re-hashed row (the next row still links to its old hash), deleted rows (a gap
  in ``seq``), reordered rows (a row whose contents hash correctly only under another seq).
* The head: ``audit_head`` holds the last seq and hash, updated in the same transaction as
  the rows (one upsert per flush, coalesced by ``Store.put``). A chain alone cannot tell
  that its last rows were deleted; ``verify`` cross-checks the head and names them.

Limits: someone who can write the file can also rewrite the chain from any row onward,
re-hash everything and set ``audit_head`` to match; nothing inside one file can detect
that. To catch it, keep the head hash somewhere else (``cockpit audit verify`` prints it;
an export carries every hash) and compare later.

Timestamps are the engine clock's (simulated time in replays), stored as fixed-width ISO
UTC with microseconds (``2024-05-01T13:30:00.000000+00:00``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

from core.domain.serialize import dec

if TYPE_CHECKING:
    from core.common.clock import Clock
    from core.persistence.store import Store

log = logging.getLogger("cockpit.audit")

UTC = timezone.utc
GENESIS_HASH = "0" * 64
COMPONENT = "audit"

# --- kinds -------------------------------------------------------------------------------
SIGNAL = "signal"
GATE_PASS = "gate.pass"
GATE_REFUSE = "gate.refuse"
ORDER_SENT = "order.sent"
ORDER_ACK = "order.ack"
ORDER_FILL = "order.fill"
ORDER_CANCELLED = "order.cancelled"
ORDER_REJECTED = "order.rejected"
LIMIT_CHANGE = "config.limit"
CONFIG_CHANGE = "config.change"
STATE_CHANGE = "trading.state"
DEADMAN_ARMED = "deadman.armed"
DEADMAN_CONFIRMED = "deadman.confirmed"
DEADMAN_WARNING = "deadman.warning"
DEADMAN_MISSED = "deadman.missed"
DEADMAN_DISARMED = "deadman.disarmed"
ENGINE_START = "engine.start"
ENGINE_STOP = "engine.stop"
OPERATOR = "operator."  # prefix: operator commands are "operator.<action>"

KINDS: tuple[str, ...] = (
    SIGNAL, GATE_PASS, GATE_REFUSE, ORDER_SENT, ORDER_ACK, ORDER_FILL, ORDER_CANCELLED,
    ORDER_REJECTED, LIMIT_CHANGE, CONFIG_CHANGE, STATE_CHANGE, DEADMAN_ARMED, DEADMAN_CONFIRMED,
    DEADMAN_WARNING, DEADMAN_MISSED, DEADMAN_DISARMED, ENGINE_START, ENGINE_STOP,
)

# --- schema ------------------------------------------------------------------------------
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
    # v1
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
]

_INSERT = "INSERT INTO audit (seq, ts, actor, kind, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_HEAD_UPSERT = (
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)"
    " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
)
_HEAD_KEY = ("audit_head",)
_COLUMNS = ("seq", "ts", "actor", "kind", "subject", "detail", "prev_hash", "hash")


# --- canonical form ----------------------------------------------------------------------
def _iso(o: datetime | date | time) -> str:
    return o.isoformat()


_BY_TYPE: dict[type, Any] = {Decimal: dec, datetime: _iso, date: _iso, time: _iso}


def _default(o: Any) -> Any:
    convert = _BY_TYPE.get(type(o))
    if convert is not None:
        return convert(o)
    if isinstance(o, Decimal):
        return dec(o)
    if isinstance(o, datetime | date | time):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, set | frozenset):
        return sorted(o, key=repr)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
    if hasattr(o, "model_dump"):  # pydantic models (config sections)
        return o.model_dump()
    return str(o)  # never take the engine down over an odd detail value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=True)
_esc = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
# The C encoder, made once (json.dumps builds one per call): same output as _ENCODER
# without its circular-reference check; a circular detail falls back to _ENCODER, which raises.
_fast_encode = (
    _c_make_encoder(None, _default, _esc, None, ":", ",", True, False, True) if _c_make_encoder is not None
    else None
)


def _encode(value: Any) -> str:
    if _fast_encode is not None:
        try:
            return "".join(_fast_encode(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    return canonical_json(value)


def _plain_keys(o: Any) -> Any:
    """Slow path for details whose dict keys JSON cannot sort or encode: keys become text."""
    if isinstance(o, dict):
        return {(k if isinstance(k, str) else _key_text(k)): _plain_keys(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain_keys(v) for v in o]
    return o


def _key_text(k: Any) -> str:
    if k is None or isinstance(k, bool | int | float):
        return json.dumps(k)
    d = _default(k)
    return d if isinstance(d, str) else json.dumps(d)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII; Decimal as plain text, datetime ISO, enums by value."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError):
        return _ENCODER.encode(_plain_keys(value))


def row_hash(prev_hash: str, seq: int, ts: str, actor: str, kind: str, subject: str, detail: str) -> str:
    """The hash a row must carry: sha256(prev_hash + canonical(seq, ts, actor, kind, subject, detail))."""
    text = f"{prev_hash}[{seq},{_esc(ts)},{_esc(actor)},{_esc(kind)},{_esc(subject)},{_esc(detail)}]"
    return hashlib.sha256(text.encode()).hexdigest()


def format_ts(value: datetime) -> str:
    """Fixed-width ISO UTC with microseconds (sorts as text); a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


# --- writing -----------------------------------------------------------------------------
class AuditLog:
    """Appends hash-chained rows through the store; one instance per store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._seq = 0
        self._hash = GENESIS_HASH
        self._loaded = False

    @property
    def seq(self) -> int:
        """The seq of the last row recorded (0 before the first)."""
        return self._seq

    @property
    def head_hash(self) -> str:
        return self._hash

    async def load(self) -> None:
        """Create the table if needed and continue the chain from the last row on disk.

        If the recorded head is ahead of the table (its last rows were deleted while the
        engine was stopped), the chain continues from the head, so the hole stays visible
        to ``verify`` instead of being papered over. Loading again is a no-op (re-reading
        the disk would forget rows recorded but not yet flushed).
        """
        if self._loaded:
            return
        await self.store.migrate(COMPONENT, AUDIT_MIGRATIONS)
        last = await self.store.fetchone("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        head = await self.store.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1")
        seq, hsh = (last[0], last[1]) if last is not None else (0, GENESIS_HASH)
        if head is not None and head[0] != seq:
            log.warning(
                "audit log: the recorded head is row %d but the last row is %d: run `cockpit audit verify`",
                head[0], seq,
            )
            if head[0] > seq:
                seq, hsh = head[0], head[1]
        self._seq, self._hash = seq, hsh
        self._loaded = True

    def record(self, kind: str, /, *, actor: str = "engine", subject: str = "", **detail: Any) -> int:
        """Append one row (committed by the store's next flush); return its seq.

        ``detail`` may hold Decimal, datetime/date, enums, None, str, int, float, bool and
        lists/tuples/dicts of those (stored as canonical JSON); any other value is stored as
        its ``str()`` rather than raising. Not async and O(1): safe on every order event.
        """
        if not self._loaded:
            raise RuntimeError("AuditLog.record before load(): the chain would restart at row 1")
        seq = self._seq + 1
        now = self.clock.now()
        if now.tzinfo is not UTC:
            ts = format_ts(now)
        else:
            ts = now.isoformat(timespec="microseconds")
        text = _encode(detail)
        prev = self._hash
        hsh = hashlib.sha256(
            f"{prev}[{seq},{_esc(ts)},{_esc(actor)},{_esc(kind)},{_esc(subject)},{_esc(text)}]".encode()
        ).hexdigest()
        self.store.append(_INSERT, (seq, ts, actor, kind, subject, text, prev, hsh))
        self.store.put(_HEAD_KEY, _HEAD_UPSERT, (seq, hsh))
        self._seq, self._hash = seq, hsh
        return seq

    def operator(
        self, action: str, /, *, actor: str, reason: str | None, before: Any, after: Any, subject: str = "",
        **detail: Any,
    ) -> int:
        """An operator command: who (``actor``), when, before, after and why; kind "operator.<action>"."""
        if not actor:
            raise ValueError("an operator command needs an actor (who did it)")
        return self.record(
            OPERATOR + action, actor=actor, subject=subject, reason=reason, before=before, after=after, **detail
        )


# --- checking and exporting (plain sqlite3, read-only is enough) --------------------------
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


def _rows_between(a: int, b: int) -> str:
    return f"row {a} was" if a == b else f"rows {a}..{b} were"


def _text(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)  # a non-text value can only come from tampering


def _hash_of(row: Any, seq: int | None = None) -> str:
    s, ts, actor, kind, subject, detail, prev, _ = row
    return row_hash(_text(prev), s if seq is None else seq, _text(ts), _text(actor), _text(kind),
                    _text(subject), _text(detail))


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def verify(conn: sqlite3.Connection) -> list[Problem]:
    """Every problem found in the audit log, in row order; empty when the chain is intact."""
    return check(conn).problems


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


def _check(conn: sqlite3.Connection) -> Report:
    problems: list[Problem] = []
    if not _table_exists(conn, "audit"):
        recorded = _table_exists(conn, "schema_migrations") and conn.execute(
            "SELECT 1 FROM schema_migrations WHERE component = ?", (COMPONENT,)).fetchone()
        why = ("the audit table was dropped" if recorded
               else "there is no audit table: no engine with the audit log has run on this state yet")
        return Report(0, 0, GENESIS_HASH, [Problem(None, "missing", why)])
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    dropped = [t for t in TRIGGERS if t not in present]
    if dropped:
        problems.append(Problem(None, "unprotected", f"the append-only triggers were dropped ({', '.join(dropped)}):"
                                " rows could have been changed in place"))

    count = 0
    prev_seq, prev_hash, prev_ok = 0, GENESIS_HASH, True
    suspects: dict[int, int] = {}  # seq of a row whose hash is wrong -> index of its problem
    for row in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY seq"):
        seq, stored_prev, stored = row[0], row[6], row[7]
        if seq < 1:
            problems.append(Problem(seq, "inserted", f"row {seq} is not part of the chain (rows start at 1)"))
            continue
        count += 1
        ok = _hash_of(row) == stored
        gap = seq != prev_seq + 1
        if gap:
            problems.append(Problem(prev_seq + 1, "deleted",
                                    f"{_rows_between(prev_seq + 1, seq - 1)} deleted: the sequence jumps from "
                                    f"{prev_seq} to {seq}" if prev_seq else
                                    f"{_rows_between(1, seq - 1)} deleted: the log starts at row {seq}"))
        if not ok:
            suspects[seq] = len(problems)
            problems.append(Problem(seq, "edited", f"row {seq} was edited: its hash does not match its contents"))
        elif stored_prev != prev_hash and not gap and prev_ok:
            # Both rows hash correctly where they are, yet do not link: one was re-hashed.
            if prev_seq == 0:
                problems.append(Problem(seq, "edited", f"row {seq} was edited and re-hashed: it does not start "
                                        "from the genesis hash"))
            else:
                problems.append(Problem(prev_seq, "edited", f"row {prev_seq} was edited and re-hashed: row {seq} "
                                        "still links to its old hash"))
        prev_seq, prev_hash, prev_ok = seq, stored, ok

    problems.extend(_check_head(conn, count, prev_seq, prev_hash, prev_ok))
    if suspects:
        for seq, origin in _origins(conn, set(suspects)).items():
            if origin is not None and origin != seq:
                problems[suspects[seq]] = Problem(
                    seq, "reordered", f"row {seq} holds the contents of row {origin}: rows were reordered")
    return Report(count, prev_seq, prev_hash, problems)


def _check_head(conn: sqlite3.Connection, count: int, last_seq: int, last_hash: str, last_ok: bool) -> list[Problem]:
    if not _table_exists(conn, "audit_head"):
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
        by_hash.setdefault(_text(hsh), seq)
    rows = {r[0]: r for r in _fetch(conn, suspects)}
    origin: dict[int, int | None] = {}
    for start in sorted(suspects):
        stack, visiting = [start], {start}
        while stack:
            seq = stack[-1]
            row = rows[seq]
            prev = _text(row[6])
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
            origin[seq] = cand if cand is not None and _hash_of(row, cand) == _text(row[7]) else None
            stack.pop()
            visiting.discard(seq)
    return origin


def _fetch(conn: sqlite3.Connection, seqs: Iterable[int]) -> list[Any]:
    out: list[Any] = []
    wanted = sorted(seqs)
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE seq IN ({marks})", chunk))
    return out


def export(conn: sqlite3.Connection, since: datetime | None, fmt: str, out: TextIO) -> int:
    """Write the rows at or after ``since`` (all if None; naive = UTC) in seq order; return the count.

    ``jsonl``: one object per line with ``detail`` parsed back into JSON. ``csv``: a header,
    then one line per row with ``detail`` as its canonical JSON text. Both carry
    ``prev_hash`` and ``hash``, so an export can be checked against the chain later.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_COLUMNS)
    n = 0
    for row in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY seq"):
        if since is not None and not _at_or_after(row[1], since):
            continue
        if fmt == "csv":
            writer.writerow(tuple(row))
        else:
            try:
                detail = json.loads(row[5])
            except (TypeError, ValueError):
                detail = row[5]
            obj = dict(zip(_COLUMNS, tuple(row), strict=True))
            obj["detail"] = detail
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        n += 1
    return n


def _at_or_after(ts: Any, since: datetime) -> bool:
    try:
        when = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return True  # a row with a broken time is exported rather than hidden
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when >= since
