"""Exporting the audit log as JSON lines or CSV (plain sqlite3; read-only is enough).

Both forms carry ``prev_hash`` and ``hash`` and every hashed field, so an export can be
checked against the chain later with ``core.audit.row.row_hash``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, TextIO

from core.audit.row import COLUMNS, AuditRow
from core.audit.schema import select_rows

FORMATS = ("jsonl", "csv")


def export(conn: sqlite3.Connection, since: datetime | None, fmt: str, out: TextIO) -> int:
    """Write the rows whose ``ts`` is at or after ``since`` (all if None; naive = UTC) in seq order.

    ``jsonl``: one object per line with ``detail`` parsed back into JSON; ``engine_ts`` is
    present only on rows that carry one. ``csv``: a header, then one line per row with
    ``detail`` as its canonical JSON text and an empty ``engine_ts`` where there is none.
    Returns the number of rows written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
    n = 0
    for values in conn.execute(select_rows(conn, "ORDER BY seq")):
        row = AuditRow.from_stored(values)
        if since is not None and not _at_or_after(row.ts, since):
            continue
        if writer is not None:
            writer.writerow(row.as_tuple())
        else:
            out.write(json.dumps(_json_object(row), separators=(",", ":")) + "\n")
        n += 1
    return n


def _json_object(row: AuditRow) -> dict[str, Any]:
    obj = dict(zip(COLUMNS, row.as_tuple(), strict=True))
    try:
        obj["detail"] = json.loads(row.detail)
    except (TypeError, ValueError):
        pass  # a detail that is not JSON (tampering) is exported as the text it is
    if obj["engine_ts"] is None:
        del obj["engine_ts"]
    return obj


def _at_or_after(ts: Any, since: datetime) -> bool:
    try:
        when = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return True  # a row with a broken time is exported rather than hidden
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when >= since
