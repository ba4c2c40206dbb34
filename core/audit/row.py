"""One audit row and the one formula for its hash.

::

    hash = sha256(prev_hash + canonical)
    canonical = [seq,"ts","actor","kind","subject","detail"]               (engine_ts NULL)
              | [seq,"ts","actor","kind","subject","detail","engine_ts"]   (engine_ts set)

``canonical`` is the compact, ASCII-only JSON array of the row's fields, ``detail`` being
the stored canonical-JSON text of the details; the first row's ``prev_hash`` is 64 zeros.
``engine_ts`` entered with schema v2 of the audit component: rows written before it have
no engine time and keep the six-field form they were hashed with, so an old chain still
verifies; setting, clearing or changing a row's engine time changes its hash.

Times are fixed-width ISO UTC with microseconds (``2024-05-01T13:30:00.000000+00:00``),
so they sort as text. Since v2 ``ts`` is wall-clock time and ``engine_ts`` the engine's
(simulated) time where it differs; rows written before v2 carry the engine time in ``ts``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.audit.canonical import escape

GENESIS_HASH = "0" * 64
# The columns in table order (engine_ts was added last, by migration v2).
COLUMNS: tuple[str, ...] = ("seq", "ts", "actor", "kind", "subject", "detail", "prev_hash", "hash", "engine_ts")


def row_hash(prev_hash: str, seq: int, ts: str, actor: str, kind: str, subject: str, detail: str,
             engine_ts: str | None = None) -> str:
    """The hash a row must carry (the module doc's formula); the only place it is computed."""
    tail = "" if engine_ts is None else "," + escape(engine_ts)
    text = (f"{prev_hash}[{seq},{escape(ts)},{escape(actor)},{escape(kind)},{escape(subject)},"
            f"{escape(detail)}{tail}]")
    return hashlib.sha256(text.encode()).hexdigest()


def format_ts(value: datetime) -> str:
    """Fixed-width ISO UTC with microseconds (sorts as text); a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond:  # the default ("auto") already gives microseconds, and is quicker than asking
        return value.isoformat()
    return value.isoformat(timespec="microseconds")


def as_text(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)  # a non-text value can only come from tampering


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A row as stored. Read back from a file, any field may hold what tampering left there."""

    seq: int
    ts: str
    actor: str
    kind: str
    subject: str
    detail: str
    prev_hash: str
    hash: str
    engine_ts: str | None = None

    @classmethod
    def from_stored(cls, values: tuple[Any, ...] | Any) -> AuditRow:
        """From a result row in ``COLUMNS`` order (a database without engine_ts may give eight)."""
        return cls(*tuple(values))

    def as_tuple(self) -> tuple[Any, ...]:
        """The values in ``COLUMNS`` order."""
        return (self.seq, self.ts, self.actor, self.kind, self.subject, self.detail, self.prev_hash, self.hash,
                self.engine_ts)

    def expected_hash(self, seq: int | None = None) -> str:
        """The hash these contents must carry at ``seq`` (default: where the row is)."""
        engine_ts = None if self.engine_ts is None else as_text(self.engine_ts)
        return row_hash(as_text(self.prev_hash), self.seq if seq is None else seq, as_text(self.ts), as_text(self.actor),
                        as_text(self.kind), as_text(self.subject), as_text(self.detail), engine_ts)

    @property
    def intact(self) -> bool:
        """Its hash matches its contents (says nothing about its links to other rows)."""
        return self.expected_hash() == self.hash
