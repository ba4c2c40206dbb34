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

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

SCALE = 8  # places: a value v is stored as v * 10**SCALE
_INT64 = 2**63
_UNIT = Decimal(1).scaleb(-SCALE)
_READ: dict[str, int] = {}  # plain texts read lately, and their integers

CURVES_TABLE = """
    CREATE TABLE report_curves (
        date TEXT PRIMARY KEY,
        session_close TEXT NOT NULL,
        equity_open INTEGER NOT NULL,
        equity_close INTEGER NOT NULL,
        owner_names TEXT NOT NULL,
        owner_values TEXT NOT NULL
    ) WITHOUT ROWID;
"""
#: ``owner_names``: the names of the summary's ``strategies`` rows, in order, joined by a tab
#: (empty when there is none); ``owner_values`` each one's cumulative and net (integers of 1e-8)
#: in that order, each as its 64 bits in 16 hex digits (big-endian, two's complement): the reader
#: turns a run of sessions with the same names into integers with one ``bytes.fromhex``.
PUT_CURVE = (
    "INSERT INTO report_curves (date, session_close, equity_open, equity_close, owner_names, owner_values)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT(date) DO UPDATE SET session_close=excluded.session_close,"
    " equity_open=excluded.equity_open, equity_close=excluded.equity_close, owner_names=excluded.owner_names,"
    " owner_values=excluded.owner_values"
)
#: The days of ``daily_reports`` without their narrow row (``backfill_params``).
MISSING_SQL = ("SELECT d.date, d.session_close, d.summary FROM daily_reports d"
               " LEFT JOIN report_curves c ON c.date = d.date WHERE c.date IS NULL ORDER BY d.date")
#: What the reader reads: the dates of the stored summaries, and each column of their narrow rows,
#: each as one text, in the tables' order, which is the dates' (SQLite does not promise that of
#: ``group_concat``, nor does a subquery's ORDER BY, which costs a sort: ``read_columns`` checks
#: the dates rise). The two lists of dates being the same says that every stored summary has its
#: narrow row and every narrow row its summary (a scan of the summaries' key, where counting the
#: rows in both tables looked each date up in the other).
COLUMNS_SQL = (
    "SELECT (SELECT group_concat(date, ',') FROM daily_reports), count(*),"
    " group_concat(date, ','), group_concat(equity_open, ','), group_concat(equity_close, ','),"
    " group_concat(owner_names, char(10)), group_concat(owner_values, char(10)) FROM report_curves")


def scaled_text(text: Any) -> int | None:
    """Money text (as ``money`` writes it) as an integer of 1e-8; None when it is not finite
    decimal text with at most 8 places inside 64 bits."""
    if not isinstance(text, str):
        return None
    known = _READ.get(text)  # a session's opening equity is the last one's close; a flat owner's figures stay
    if known is not None:
        return known
    # Plain text (what ``money`` writes): its digits are the integer, without a Decimal's parse.
    whole, dot, part = text.partition(".")
    digits = whole[1:] if whole[:1] == "-" else whole
    if 0 < len(digits) <= 10 and digits.isdigit() and digits.isascii() and (
            not dot or (0 < len(part) <= 8 and part.isdigit() and part.isascii())):
        out = int(whole + part + "0" * (SCALE - len(part)))  # at most 18 digits: inside 64 bits
        if len(_READ) >= 64:
            _READ.clear()
        _READ[text] = out
        return out
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return scaled(value)


def scaled(value: Decimal) -> int | None:
    """``value`` as an integer of 1e-8, when it is exactly one (and fits 64 bits)."""
    if not value.is_finite() or value.as_tuple().exponent < -SCALE:  # type: ignore[operator]
        return None
    if value and value.adjusted() > 18:  # beyond 64 bits anyway; scaleb of 1E+999999 overflows the context
        return None
    out = int(value.scaleb(SCALE))
    return out if -_INT64 < out < _INT64 else None


def unscaled(value: int) -> Decimal:
    """An integer of 1e-8 back as the Decimal it stands for."""
    return Decimal(value) * _UNIT


def _owners(lines: Iterable[tuple[Any, Any, Any]]) -> tuple[str, str] | None:
    names: list[str] = []
    values: list[int] = []
    for name, cumulative, net in lines:
        c, n = scaled_text(cumulative), scaled_text(net)
        if not isinstance(name, str) or "\t" in name or "\n" in name or c is None or n is None:
            return None
        names.append(name)
        values += (c, n)
    return "\t".join(names), hex64(values)


def hex64(values: Iterable[int]) -> str:
    """Integers as their 64 bits, big-endian, 16 hex digits each (``int64s`` reads them)."""
    ints = values if isinstance(values, list) else list(values)
    try:
        return struct.pack(f">{len(ints)}q", *ints).hex()  # a row per session: one pack, not a bytes per value
    except struct.error:  # past 64 bits: OverflowError, as to_bytes says it
        return b"".join(v.to_bytes(8, "big", signed=True) for v in ints).hex()


def int64s(hex_text: str) -> list[int]:
    """Integers from their 64 bits, big-endian, as hex digits (16 each; ``ValueError`` if not)."""
    values = array("q", bytes.fromhex(hex_text))
    if sys.byteorder == "little":
        values.byteswap()
    return values.tolist()


def curve_params(day: str, session_close: str, equity_open: Any, equity_close: Any,
                 owners: Iterable[tuple[Any, Any, Any]]) -> tuple[str, str, int, int, str, str] | None:
    """``PUT_CURVE``'s parameters from a summary's texts (its money as ``money`` writes it, each
    owner's (name, cumulative, net)); None when it cannot be held exactly (the reader then
    reads that day's summary)."""
    eo, ec, texts = scaled_text(equity_open), scaled_text(equity_close), _owners(owners)
    if eo is None or ec is None or texts is None:
        return None
    return (day, session_close, eo, ec, *texts)


def backfill_params(rows: Iterable[Sequence[Any]]) -> list[tuple[str, str, int, int, str, str]]:
    """``PUT_CURVE``'s parameters for ``MISSING_SQL``'s rows (date, session_close, summary), of
    each summary that reads as a summary of its date with a list of owner rows; the others are
    left to the reader's full path."""
    import json  # here: the readers of the curves never parse a summary on this path

    out = []
    for day, session_close, summary in rows:
        try:
            body = json.loads(summary)
        except (ValueError, TypeError, RecursionError):  # not JSON, or nested past the parser's depth
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


#: one owner's run of sessions: (first session's index, cumulative of each, net of each)
Run = tuple[int, list[int], list[int]]


class Columns:
    """The stored curves as integer columns (1e-8), one entry per session, oldest first."""

    __slots__ = ("days", "opens", "closes", "owners")

    def __init__(self, days: list[date], opens: list[int], closes: list[int], owners: dict[str, list[Run]]) -> None:
        self.days = days
        self.opens = opens
        self.closes = closes
        self.owners = owners  # name -> its runs of sessions with a row for it, in order

    def owner_curves(self, base: int) -> dict[str, tuple[list[int], list[int]]]:
        """Each owner's equity (open, close) at each close: ``base`` plus its cumulative net,
        a session without a row for it carrying its last value (``stored.owner_days``)."""
        curves = {}
        n = len(self.days)
        for name in sorted(self.owners):
            opens: list[int] = []
            closes: list[int] = []
            last = base
            for start, cumulative, net in self.owners[name]:
                if start > len(closes):
                    gap = [last] * (start - len(closes))
                    opens += gap
                    closes += gap
                run = [base + c for c in cumulative]
                closes += run
                opens += [c - x for c, x in zip(run, net, strict=True)]
                last = run[-1]
            if len(closes) < n:
                gap = [last] * (n - len(closes))
                opens += gap
                closes += gap
            curves[name] = (opens, closes)
        return curves


def _runs(names: list[str], values: list[str]) -> dict[str, list[Run]] | None:
    """Each owner's runs from the sessions' ``owner_names`` and ``owner_values``: the sessions
    whose names are the same are parsed at once; an owner named twice in a session keeps its
    last row (as a summary read in full does)."""
    owners: dict[str, list[Run]] = {}
    n, start = len(names), 0
    while start < n:
        key, end = names[start], start + 1
        while end < n and names[end] == key:
            end += 1
        if key:
            row = key.split("\t")
            k = len(row)
            numbers = int64s("".join(values[start:end]))
            if len(numbers) != 2 * k * (end - start):
                return None
            runs: dict[str, Run] = {}
            for j, name in enumerate(row):
                runs[name] = (start, numbers[2 * j::2 * k], numbers[2 * j + 1::2 * k])
            for name, run in runs.items():
                owners.setdefault(name, []).append(run)
        elif values[start:end] != [""] * (end - start):
            return None
        start = end
    return owners


def read_columns(row: Sequence[Any]) -> Columns | None:
    """``COLUMNS_SQL``'s row as columns; None when some stored day has no narrow row, or one
    is odd (the caller then reads the summaries the full way)."""
    try:
        reports, count, dates, opens, closes, names, values = row
        if not count or reports != dates:
            return None  # a summary without its narrow row, or the other way round
        texts = dates.split(",")
        if texts != sorted(texts):  # (the dates are the tables' key: no two alike)
            return None  # not in date order (SQLite does not promise group_concat's order)
        days = list(map(date.fromisoformat, texts))
        o, c = list(map(int, opens.split(","))), list(map(int, closes.split(",")))
        name_rows, value_rows = names.split("\n"), values.split("\n")
        if not count == len(days) == len(o) == len(c) == len(name_rows) == len(value_rows):
            return None
        owners = _runs(name_rows, value_rows)
    except (ValueError, TypeError, AttributeError):
        return None
    return None if owners is None else Columns(days, o, c, owners)
