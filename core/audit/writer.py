"""Writing the audit log: ``AuditLog`` appends hash-chained rows through the store.

``record`` appends through ``Store.append``, so a row commits in the same transaction as the
state change it describes, and never awaits. Each row is stamped with the wall clock (``ts``)
and, when the engine runs on another clock (a replay in simulated time), with the engine's
time too (``engine_ts``). Protection, in layers:

* Triggers abort any UPDATE or DELETE on ``audit`` (and an ``INSERT OR REPLACE`` over an
  existing row), so tampering needs the triggers dropped first.
* The chain (core.audit.row): each row carries the hash of the row before it.
* The head: ``audit_head`` holds the last seq and hash, updated in the same transaction as
  the rows (one upsert per flush), so cut-off last rows show.

The chain is built at flush: ``record`` fixes a row's seq and takes its times (the clocks'
datetimes) and its details at once, and keeps them; the store's flush (a ``before_flush`` hook
that runs after every other) words each row (the times as text, the details as canonical JSON),
hashes the rows in seq order and hands them to the transaction. Details that could change
before then are worded at ``record`` instead: only values that cannot change (text, numbers,
Decimal, enums, dates, None) wait, or a dict the caller hands over (``record_detail``). The
rows and their hashes are exactly what wording and hashing each at ``record`` gave, for some
microseconds less per event on the engine's path. ``head_hash`` chains what is pending first.

Limits: someone who can write the file can also rewrite the chain from any row onward,
re-hash everything and set ``audit_head`` to match; nothing inside one file can detect
that. To catch it, keep the head hash somewhere else (``cockpit audit verify`` prints it;
an export carries every hash) and compare later.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from core.audit.canonical import canonical_json
from core.audit.kinds import OPERATOR
from core.audit.row import GENESIS_HASH, format_ts, row_hash
from core.audit.schema import AUDIT_MIGRATIONS, COMPONENT, INSERT_ROW, UPSERT_HEAD
from core.audit.verify import copy_problems
from core.common.clock import LiveClock

if TYPE_CHECKING:
    from core.common.clock import Clock
    from core.persistence.store import Store

log = logging.getLogger("cockpit.audit")

DEFAULT_ACTOR = "engine"  # who a row is by when the caller names no one
# A simulated clock nothing has set yet (SimClock starts at the epoch): no engine time to record.
CLOCK_NOT_SET = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_SET_TEXT = format_ts(CLOCK_NOT_SET)
_HEAD_KEY = ("audit_head",)
# Values that cannot change between ``record`` and the flush: their wording may wait for it.
_FIXED: frozenset[type] = frozenset({str, int, float, bool, type(None), Decimal, datetime, date, time})
# Recorded, not yet worded and hashed: (seq, wall time, engine time or None, actor, kind, subject,
# details as canonical JSON text, or as a dict to word at the flush).
_Pending = tuple[int, datetime, datetime | None, str, str, str, "str | dict[str, Any]"]


class AuditLog:
    """Appends hash-chained rows through the store; one instance per store.

    ``wall_clock`` stamps ``ts`` (a LiveClock unless given; tests pass a SimClock).
    ``engine_clock`` is the engine's clock: its time goes into ``engine_ts`` when it differs
    from the wall time, i.e. when it is a simulated clock that has been set.
    """

    def __init__(self, store: Store, wall_clock: Clock | None = None, *, engine_clock: Clock | None = None) -> None:
        self.store = store
        self.wall_clock: Clock = wall_clock if wall_clock is not None else LiveClock()
        # A live engine clock reads the same wall time a few microseconds later: not a second time.
        same = engine_clock is None or engine_clock is self.wall_clock or isinstance(engine_clock, LiveClock)
        self.engine_clock: Clock | None = None if same else engine_clock
        self._engine_now: datetime | None = None
        self._engine_text = ""
        self._seq = 0
        self._hash = GENESIS_HASH
        self._loaded = False
        self._pending: list[_Pending] = []
        store.check_copies_with(copy_problems)  # a backup of this store is good only with its chain intact
        store.before_flush(self._chain, last=True)

    @property
    def seq(self) -> int:
        """The seq of the last row recorded (0 before the first)."""
        return self._seq

    @property
    def head_hash(self) -> str:
        self._chain()
        return self._hash

    async def load(self) -> None:
        """Create or migrate the tables and continue the chain from the last row on disk.

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

    def record(self, kind: str, /, *, actor: str = DEFAULT_ACTOR, subject: str = "", **detail: Any) -> int:
        """Append one row (committed by the store's next flush); return its seq.

        A blank ``actor`` is recorded as "engine": every row says who. ``detail`` may hold
        Decimal, datetime/date, enums, None, str, int, float, bool and lists/tuples/dicts of
        those (stored as canonical JSON); any other value is stored as its ``str()`` rather
        than raising. Not async and O(1): safe on every order event.
        """
        fixed = _FIXED
        for value in detail.values():
            if type(value) not in fixed and not isinstance(value, Enum):
                return self._append(kind, actor, subject, canonical_json(detail))  # words it now: it may change
        return self._append(kind, actor, subject, detail)

    def record_detail(self, kind: str, detail: dict[str, Any], /, *, actor: str = DEFAULT_ACTOR,
                      subject: str = "") -> int:
        """``record`` with the details as a dict the caller hands over: it and what it holds are
        not changed afterwards (they are worded at the flush)."""
        return self._append(kind, actor, subject, detail)

    def _append(self, kind: str, actor: str, subject: str, detail: str | dict[str, Any]) -> int:
        if not self._loaded:
            raise RuntimeError("AuditLog.record before load(): the chain would restart at row 1")
        actor = actor.strip() if actor else ""
        if not actor:
            actor = DEFAULT_ACTOR
        seq = self._seq + 1
        clock = self.engine_clock
        self._pending.append((seq, self.wall_clock.now(), None if clock is None else clock.now(), actor, kind,
                              subject, detail))
        self._seq = seq
        return seq

    def _chain(self) -> None:
        """Word and hash the pending rows onto the chain and hand them to the store (at its flush)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        append = self.store.append
        prev = self._hash
        engine_ts = self._engine_ts
        for seq, wall, engine_now, actor, kind, subject, detail in pending:
            ts = format_ts(wall)
            text = detail if type(detail) is str else canonical_json(detail)
            engine = None if engine_now is None else engine_ts(ts, engine_now)
            hsh = row_hash(prev, seq, ts, actor, kind, subject, text, engine)
            append(INSERT_ROW, (seq, ts, actor, kind, subject, text, prev, hsh, engine))
            prev = hsh
        self._hash = prev
        self.store.put(_HEAD_KEY, UPSERT_HEAD, (pending[-1][0], prev))

    def operator(
        self, action: str, /, *, actor: str, reason: str | None, before: Any, after: Any, subject: str = "",
        **detail: Any,
    ) -> int:
        """An operator command: who (``actor``), when, before, after and why; kind "operator.<action>"."""
        if not actor or not actor.strip():
            raise ValueError("an operator command needs an actor (who did it)")
        return self.record(
            OPERATOR + action, actor=actor, subject=subject, reason=reason, before=before, after=after, **detail
        )

    def _engine_ts(self, ts: str, now: datetime) -> str | None:
        """The engine's time ``now`` where it differs from the wall time ``ts``; None where it does not or is unset."""
        if now is not self._engine_now:  # a simulated clock hands out one datetime per step: format it once
            self._engine_now, self._engine_text = now, format_ts(now)
        text = self._engine_text
        return None if text == ts or text <= _NOT_SET_TEXT else text  # fixed-width ISO: text order is time order
