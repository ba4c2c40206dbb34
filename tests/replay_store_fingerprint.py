"""Fingerprint everything a replay leaves in its store, not only what it traded.

``tests/replay_fingerprint.py`` hashes the fills and the orders. A replay also writes the
daily reports (one JSON summary per session), the equity points, the book, the paper venue's
account, the alerts it raised (their wording) and the audit trail. This module hashes each
table's rows as the store holds them (exact text), after taking out what differs between two
runs of the same replay by design:

- wall-clock stamps (``written_at``, the audit's ``ts``, an alert of the engine's start): any
  ISO timestamp from the year 2020 on is replaced by ``<wall>`` (the bundled data ends in 2014);
- the random ids: the engine's instance id and the paper account id (read from the store) are
  replaced by ``<instance>`` and ``<account>``; an alert's random id and the audit chain's
  hashes (they cover the wall-clock stamps) are left out;
- the order of rows that wall-clock events interleave with: each table is a sorted multiset;
- the session-close backup's rows (audit and alerts of kind ``backup.*``): it is made on a
  thread while the replay goes on, so the engine time it is recorded at depends on the machine.

``tests/test_replay_same_store.py`` compares these with figures taken on the commit before
the replay was made faster (wt-perfreplay), so a speed-up that changes one byte of one daily
summary, one alert text or one audit payload fails.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

#: table -> columns left out (besides nothing: every other column is hashed as stored)
DROPPED: dict[str, frozenset[str]] = {
    "alerts": frozenset({"id"}),
    "alert_deliveries": frozenset({"alert_id"}),
    "audit": frozenset({"seq", "ts", "prev_hash", "hash"}),
    "audit_head": frozenset({"hash", "seq"}),
}
SKIPPED = frozenset({"sqlite_sequence"})
#: table -> a WHERE clause for the rows hashed
WHERE: dict[str, str] = {
    "audit": "kind NOT LIKE 'backup.%'",
    "alerts": "kind NOT LIKE 'backup.%'",
}
_WALL = re.compile(r"20[2-9]\d-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def _ids(con: sqlite3.Connection) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()
        if row:
            found[str(row[0])] = "<instance>"
        row = con.execute("SELECT value FROM paper_account WHERE key = 'account_id'").fetchone()
        if row:
            found[str(row[0])] = "<account>"
    except sqlite3.Error:
        pass
    return found


def _norm(value: object, ids: dict[str, str]) -> str:
    if value is None:
        return "\x00"
    text = str(value)
    for raw, name in ids.items():
        text = text.replace(raw, name)
    return _WALL.sub("<wall>", text)


def table_digests(db: Path) -> dict[str, tuple[int, str]]:
    """Each table of the store at ``db``: (rows, sha256 of its normalised rows, sorted)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids = _ids(con)
        out: dict[str, tuple[int, str]] = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            if table in SKIPPED:
                continue
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in cols if c not in DROPPED.get(table, frozenset())]
            where = f" WHERE {WHERE[table]}" if table in WHERE else ""
            rows = con.execute(f"SELECT {', '.join(keep)} FROM {table}{where}").fetchall()
            lines = sorted("|".join(_norm(v, ids) for v in row) for row in rows)
            digest = hashlib.sha256(("\n".join([",".join(keep), *lines])).encode()).hexdigest()
            out[table] = (len(rows), digest)
        return out
    finally:
        con.close()


if __name__ == "__main__":  # print the figures (to take them on a base commit)
    import asyncio
    import logging
    import sys
    import tempfile

    from cockpit.wiring import db_path
    from tests.replay_fingerprint import BENCH_FILES, _run, bench_settings, default_settings

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"default": default_settings(Path(tmp) / "default")}
        for which in BENCH_FILES:
            for q in (1, 2, 4):
                cases[f"{which}-q{q}"] = bench_settings(which, q, Path(tmp) / f"{which}-{q}")
        for name, settings in cases.items():
            if len(sys.argv) > 1 and name not in sys.argv[1:]:
                continue
            asyncio.run(_run(settings))
            print(f"    {name!r}: {{", flush=True)
            for table, (n, sha) in table_digests(db_path(settings)).items():
                print(f"        {table!r}: ({n}, {sha[:16]!r}),")
            print("    },", flush=True)
