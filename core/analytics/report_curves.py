"""``report_curves``: of each stored daily summary, only what the equity curves read, as integers.

`cockpit metrics` after a long replay spent most of its time taking the curves' figures out of
each ~1.3 KB JSON summary in ``daily_reports`` and parsing them into Decimals. The reports
recorder (core/analytics/recorder.py, the one writer of both tables) writes this narrow row in
the same transaction as the summary: the account's equity at the previous close and at this one,
and each owner's cumulative and session net P&L, each as an integer count of 1e-8 (the places
``money`` keeps, so each is exactly the number the summary's text says). A store from before the
table gets it filled from the summaries when the engine opens it (``backfill_params``).

A row holds only a summary that reads cleanly (its date, text money of at most 8 places within
64-bit integers, owner names without a tab or a newline); any other summary has no row here, and
a reader that finds a day without one reads the summaries the full way (core/analytics/stored.py),
which also names what is odd in them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

SCALE = 8  # places: a value v is stored as v * 10**SCALE
_INT64 = 2**63
_UNIT = Decimal(1).scaleb(-SCALE)

CURVES_TABLE = """
    CREATE TABLE report_curves (
        date TEXT PRIMARY KEY,
        session_close TEXT NOT NULL,
        equity_open INTEGER NOT NULL,
        equity_close INTEGER NOT NULL,
        owners TEXT NOT NULL
    ) WITHOUT ROWID;
"""
#: ``owners``: one line per row of the summary's ``strategies``, "name<TAB>cumulative<TAB>net"
#: (integers of 1e-8), lines joined by a newline; empty when there is none.
PUT_CURVE = (
    "INSERT INTO report_curves (date, session_close, equity_open, equity_close, owners) VALUES (?,?,?,?,?)"
    " ON CONFLICT(date) DO UPDATE SET session_close=excluded.session_close, equity_open=excluded.equity_open,"
    " equity_close=excluded.equity_close, owners=excluded.owners"
)
#: The days of ``daily_reports`` without their narrow row (``backfill_params``).
MISSING_SQL = ("SELECT d.date, d.session_close, d.summary FROM daily_reports d"
               " LEFT JOIN report_curves c ON c.date = d.date WHERE c.date IS NULL ORDER BY d.date")
#: What the reader reads: every stored day, NULLs where it has no narrow row.
COLUMNS_SQL = ("SELECT d.date, c.equity_open, c.equity_close, c.owners FROM daily_reports d"
               " LEFT JOIN report_curves c ON c.date = d.date ORDER BY d.date")


def scaled_text(text: Any) -> int | None:
    """Money text (as ``money`` writes it) as an integer of 1e-8; None when it is not finite
    decimal text with at most 8 places inside 64 bits."""
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return scaled(value)


def scaled(value: Decimal) -> int | None:
    """``value`` as an integer of 1e-8, when it is exactly one (and fits 64 bits)."""
    if not value.is_finite() or value.as_tuple().exponent < -SCALE:  # type: ignore[operator]
        return None
    out = int(value.scaleb(SCALE))
    return out if -_INT64 < out < _INT64 else None


def unscaled(value: int) -> Decimal:
    """An integer of 1e-8 back as the Decimal it stands for."""
    return Decimal(value) * _UNIT


def _owners(lines: Iterable[tuple[Any, Any, Any]]) -> str | None:
    out = []
    for name, cumulative, net in lines:
        c, n = scaled_text(cumulative), scaled_text(net)
        if not isinstance(name, str) or "\t" in name or "\n" in name or c is None or n is None:
            return None
        out.append(f"{name}\t{c}\t{n}")
    return "\n".join(out)


def curve_params(day: str, session_close: str, equity_open: str, equity_close: str,
                 owners: Iterable[tuple[Any, Any, Any]]) -> tuple[str, str, int, int, str] | None:
    """``PUT_CURVE``'s parameters from a summary's texts (its money as ``money`` writes it, each
    owner's (name, cumulative, net)); None when it cannot be held exactly (the reader then
    reads that day's summary)."""
    eo, ec, text = scaled_text(equity_open), scaled_text(equity_close), _owners(owners)
    if eo is None or ec is None or text is None:
        return None
    return (day, session_close, eo, ec, text)


def backfill_params(rows: Iterable[Sequence[Any]]) -> list[tuple[str, str, int, int, str]]:
    """``PUT_CURVE``'s parameters for ``MISSING_SQL``'s rows (date, session_close, summary), of
    each summary that reads as a summary of its date with a list of owner rows; the others are
    left to the reader's full path."""
    out = []
    for day, session_close, summary in rows:
        try:
            body = json.loads(summary)
        except (ValueError, TypeError):
            continue
        if not isinstance(body, dict) or body.get("date") != day or not isinstance(day, str):
            continue
        try:
            date.fromisoformat(day)
        except ValueError:
            continue
        strategies = body.get("strategies")
        if not isinstance(strategies, list) or not all(isinstance(s, dict) for s in strategies):
            continue
        owners = [(s.get("strategy"), s.get("cumulative"), s.get("net")) for s in strategies]
        params = curve_params(day, str(session_close), body.get("equity_open"), body.get("equity_close"), owners)
        if params is not None:
            out.append(params)
    return out


class Columns:
    """The stored curves as integer columns (1e-8), one entry per session, oldest first."""

    __slots__ = ("days", "opens", "closes", "owners")

    def __init__(self, days: list[date], opens: list[int], closes: list[int],
                 owners: list[dict[str, tuple[int, int]]]) -> None:
        self.days = days
        self.opens = opens
        self.closes = closes
        self.owners = owners  # per session: name -> (cumulative, net)

    def owner_curves(self, base: int) -> dict[str, tuple[list[int], list[int]]]:
        """Each owner's equity (open, close) at each close: ``base`` plus its cumulative net,
        a session without a row for it carrying its last value (``stored.owner_days``)."""
        names = sorted({name for day in self.owners for name in day})
        curves = {}
        for name in names:
            opens: list[int] = []
            closes: list[int] = []
            last = base
            for day in self.owners:
                row = day.get(name)
                if row is None:
                    opens.append(last)
                    closes.append(last)
                    continue
                last = base + row[0]
                opens.append(last - row[1])
                closes.append(last)
            curves[name] = (opens, closes)
        return curves


def read_columns(rows: Iterable[Sequence[Any]]) -> Columns | None:
    """``COLUMNS_SQL``'s rows as columns; None when some day has no narrow row or an odd one
    (the caller then reads the summaries the full way)."""
    days: list[date] = []
    opens: list[int] = []
    closes: list[int] = []
    owners: list[dict[str, tuple[int, int]]] = []
    fromiso = date.fromisoformat
    try:
        for day, eo, ec, text in rows:
            if type(eo) is not int or type(ec) is not int or type(text) is not str:
                return None
            days.append(fromiso(day))
            opens.append(eo)
            closes.append(ec)
            parts: dict[str, tuple[int, int]] = {}
            if text:
                for line in text.split("\n"):
                    name, cumulative, net = line.split("\t")
                    parts[name] = (int(cumulative), int(net))
            owners.append(parts)
    except (ValueError, TypeError):
        return None
    return Columns(days, opens, closes, owners) if days else None
