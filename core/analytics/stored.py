"""Rows of the store back into the analytics' inputs: fills with their owners, daily reports.

Shared by the engine's summary builder (at start) and the read-only CLI, so both read the
history the same way. A row that cannot be read is skipped and named through ``warn``: one
odd row never hides the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from core.analytics.returns import EquityDay
from core.analytics.trades import FillRecord

FILLS_SQL = "SELECT exec_id, strategy, symbol, side, qty, price, commission, realized_pnl, ts, kind FROM fills ORDER BY seq"
ALLOCATIONS_SQL = "SELECT exec_id, owner, qty FROM fill_allocations"
REPORTS_SQL = "SELECT date, summary FROM daily_reports ORDER BY date"
#: Of each stored summary, what the equity curves read (``account_days``, ``owner_days``), taken
#: out by SQLite as one small JSON array instead of parsing each ~1.3 KB text in Python (most of
#: ``cockpit metrics`` after a long replay). A summary that is not JSON makes the query fail: the
#: caller then reads every row the full way (``report_rows``).
CURVES_SQL = ("SELECT date, json_extract(summary, '$.date', '$.equity_open', '$.equity_close', '$.strategies')"
              " AS parts FROM daily_reports ORDER BY date")


class Row(Protocol):
    """A row by column name: sqlite3.Row, or a dict."""

    def __getitem__(self, key: str, /) -> Any: ...

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


def _number(value: Any) -> Decimal:
    if type(value) is not str and (isinstance(value, bool) or not isinstance(value, int | float)):  # text: the usual
        raise ValueError(f"not a number: {value!r}"[:80])
    parsed = Decimal(value)
    if not parsed.is_finite():
        raise ValueError(f"not a finite number: {value!r}"[:80])
    return parsed


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}"[:80])
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"a time without a zone: {value!r}"[:80])
    return parsed


def fill_records(fills: Iterable[Sequence[Any]], allocations: Iterable[Sequence[Any]],
                 warn: Warn = _ignore) -> list[FillRecord]:
    """Fills oldest first with their allocations (a fill without any belongs to its strategy), from
    ``FILLS_SQL``'s and ``ALLOCATIONS_SQL``'s rows, read by position (their columns' order)."""
    shares: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for alloc_id, alloc_owner, alloc_qty in allocations:
        try:
            shares[str(alloc_id)].append((str(alloc_owner), _number(alloc_qty)))
        except (ValueError, InvalidOperation) as exc:
            warn(f"fill_allocations row of {alloc_id!r} skipped: {exc}")
    out = []
    for raw_id, strategy, symbol, side, qty, price, commission, realized, ts, kind in fills:
        exec_id = str(raw_id)
        try:
            if side not in ("BUY", "SELL"):
                raise ValueError(f"side {side!r}"[:80])
            signed = _number(qty) * (1 if side == "BUY" else -1)
            allocation = tuple(shares.get(exec_id, ()))
            if allocation and sum((q for _, q in allocation), Decimal(0)) != signed:
                raise ValueError("its allocations do not sum to its quantity")
            out.append(FillRecord(exec_id, _time(ts), str(strategy), str(symbol), signed, _number(price),
                                  _number(commission), _number(realized), allocation, str(kind or "trade")))
        except (ValueError, InvalidOperation) as exc:
            warn(f"fill {exec_id} left out of the analytics: {exc}")
    return out


def report_rows(rows: Iterable[Row], warn: Warn = _ignore) -> list[dict[str, Any]]:
    """The stored daily summaries (their JSON form), oldest first; unreadable ones skipped."""
    import json  # here, not at the top: `cockpit metrics` reads the stored curves without it

    out = []
    for r in rows:
        try:
            body = json.loads(r["summary"])
            if not isinstance(body, dict) or body.get("date") != r["date"]:
                raise ValueError("not a summary of that date")
            date.fromisoformat(body["date"])
            _number(body["equity_open"])
            _number(body["equity_close"])
            out.append(body)
        except (ValueError, InvalidOperation, KeyError, TypeError) as exc:
            warn(f"daily_reports row {str(r['date'])[:20]!r} skipped: {exc}"[:200])
    return out


def curve_rows(rows: Iterable[Row], full: Callable[[str], Iterable[Row]], warn: Warn = _ignore) -> list[dict[str, Any]]:
    """``report_rows`` cut to ``date``, ``equity_open``, ``equity_close`` and ``strategies`` (what
    the equity curves read), from ``CURVES_SQL``'s rows. A row that is not a summary of its day
    with a list of strategies and numbers for equity is read the full way: ``full`` gives its
    ``date, summary`` row (so it is kept or skipped, and named, as ``report_rows`` does). (Of a
    key written twice in one summary, which the recorder never does, SQLite reads the first,
    Python's parser the last.)"""
    import json

    out: list[dict[str, Any]] = []
    loads = json.loads
    for r in rows:
        day = r["date"]
        try:
            said, equity_open, equity_close, strategies = loads(r["parts"])
            if said == day and isinstance(strategies, list):
                date.fromisoformat(said)
                _number(equity_open)
                _number(equity_close)
                out.append({"date": said, "equity_open": equity_open, "equity_close": equity_close,
                            "strategies": strategies})
                continue
        except (ValueError, InvalidOperation, TypeError):
            pass
        out += report_rows(full(day), warn)
    return out


def account_days(reports: Iterable[dict[str, Any]]) -> list[EquityDay]:
    """The account's equity at each stored close (and at the previous one)."""
    return [EquityDay(date.fromisoformat(r["date"]), _number(r["equity_open"]), _number(r["equity_close"]))
            for r in reports]


def owner_days(reports: list[dict[str, Any]], base: Decimal) -> dict[str, list[EquityDay]]:
    """Each owner's equity curve: ``base`` plus its cumulative net P&L at each close (a session
    without a row for it carries its last value: no P&L, no return)."""
    names = sorted({s["strategy"] for r in reports for s in r.get("strategies", ()) if isinstance(s, dict)})
    curves: dict[str, list[EquityDay]] = {n: [] for n in names}
    last = dict.fromkeys(names, Decimal(0))
    for r in reports:
        day = date.fromisoformat(r["date"])
        rows = {s.get("strategy"): s for s in r.get("strategies", ()) if isinstance(s, dict)}
        for name in names:
            row = rows.get(name)
            if row is None:
                curves[name].append(EquityDay(day, base + last[name], base + last[name]))
                continue
            try:
                cumulative, net = _number(row["cumulative"]), _number(row["net"])
            except (ValueError, InvalidOperation, KeyError):
                cumulative, net = last[name], Decimal(0)
            curves[name].append(EquityDay(day, base + cumulative - net, base + cumulative))
            last[name] = cumulative
    return curves
