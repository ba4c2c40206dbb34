"""`cockpit metrics` reads of each stored summary only what its curves need (the equity columns
and the strategies, cockpit/readers.py ``_stored_curves``): the same days, values and warnings
as parsing every summary in full (``_stored_reports``), odd rows included."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cockpit import readers
from core.analytics.recorder import REPORTS_MIGRATIONS

KEYS = ("date", "equity_open", "equity_close", "strategies")


def _store(path: Path, rows: list[tuple[str, str, str, str]]) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.executescript(REPORTS_MIGRATIONS[0])
    con.executemany("INSERT INTO daily_reports VALUES (?, 'x', ?, ?, '0', ?, 'x')", rows)
    con.commit()
    con.close()
    return readers.connect_readonly(path)


def _summary(day: str, eo: object = "100.00", ec: object = "101.00", **extra: object) -> str:
    body = {"date": day, "equity_open": eo, "equity_close": ec, "net": "1.00", "fills": 0,
            "strategies": [{"strategy": "a", "cumulative": "1.00", "net": "1.00", "fills": 0}], **extra}
    return json.dumps(body, sort_keys=True)


def _both(con: sqlite3.Connection) -> tuple[tuple[list[dict[str, object]], list[str]], ...]:
    out = []
    for reader in (readers._stored_reports, readers._stored_curves):
        said: list[str] = []
        got = reader(con, said.append)
        out.append(([{k: r[k] for k in KEYS if k in r} for r in got], said))
    return tuple(out)


def test_the_curves_read_the_same_as_the_full_summaries(tmp_path: Path) -> None:
    rows = [("2024-01-02", "100.00", "101.00", _summary("2024-01-02")),
            ("2024-01-03", "101.00", "99.50", _summary("2024-01-03", "101.00", "99.50", strategies=[])),
            ("2024-01-04", "99.50", "x", _summary("2024-01-04", "99.50", "nope")),  # skipped, named
            ("2024-01-05", "1", "2", json.dumps({"date": "2024-01-05", "equity_open": "1", "equity_close": "2"})),
            ("2024-01-08", "1", "2", json.dumps(["not", "a", "summary"])),
            ("2024-01-09", "1", "2", _summary("2024-01-10"))]  # a summary of another day: skipped
    full, curves = _both(_store(tmp_path / "s.sqlite", rows))
    assert curves == full
    assert [r["date"] for r in full[0]] == ["2024-01-02", "2024-01-03", "2024-01-05"] and len(full[1]) == 3


def test_a_summary_that_is_not_json_reads_every_row_in_full(tmp_path: Path) -> None:
    rows = [("2024-01-02", "100.00", "101.00", _summary("2024-01-02")), ("2024-01-03", "1", "2", "{not json")]
    full, curves = _both(_store(tmp_path / "s.sqlite", rows))
    assert curves == full and len(full[0]) == 1 and "2024-01-03" in full[1][0]
