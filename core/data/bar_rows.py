"""Which data rows of a bar file are refused, and why: each refusal names its line and reason.

A row is dropped when it is longer than ``MAX_LINE`` characters, has quoting the csv module
cannot read, the wrong number of fields, a date or time that does not parse or lies outside
``FIRST_YEAR``..``LAST_YEAR``, a price or volume that is not a finite number, a price at or
below zero, a negative volume, OHLC values that contradict each other (high below low, open
or close; low above open or close), or a value outside the sane range below. Timing
refusals (not a session, not after the previous bar, a wall time that does not exist) come
later, from ``core.data.bar_timing``.

Why the ranges: every price and volume flows into exact decimal arithmetic downstream
(quotes synthesised from the bar and rounded to the feed's increment, fills, the book, the
strategies' sizing). A price of 1e30 cannot be quantized to a cent in a 28-digit context, a
volume of 1e999999999 overflows the first division, and a price of 1e-999999 sizes an order
of 10**999999 shares. Inside [``MIN_PRICE``, ``MAX_PRICE``] and up to ``MAX_VOLUME`` every one
of those steps is exact or rounds harmlessly, whatever the config's increments.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from core.data.bar_columns import Columns, split_fields
from core.data.bar_file_model import Row
from core.data.bar_stamps import Stamps

__all__ = ["FIRST_YEAR", "LAST_YEAR", "MAX_LINE", "MAX_PRICE", "MAX_VOLUME", "MIN_PRICE", "MIN_VOLUME", "valid_rows"]

MIN_PRICE = Decimal("1e-8")  # the finest increment the config allows
MAX_PRICE = Decimal("1e9")  # above any listed share price (BRK.A is ~1e6)
MIN_VOLUME = Decimal("1e-8")  # a volume is 0 or at least this (fractional coins)
MAX_VOLUME = Decimal("1e15")  # a thousand times the busiest day of any stock
FIRST_YEAR, LAST_YEAR = 1900, 2199  # inside what the exchange calendars (and pandas) can build
MAX_LINE = 4096  # characters: real rows are under 200; this bounds every number's digits

_VALUE_ROLES = ("open", "high", "low", "close", "volume")
_PRICE_ROLES = _VALUE_ROLES[:4]
_ZERO = Decimal(0)
_SHOWN = 40  # characters of a refused field shown in a reason


def shown(value: object) -> str:
    """A value for a one-line reason: short numbers as written, long ones cut (or in e-notation)."""
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= _SHOWN else f"{value:.6e}"
    text = str(value).strip()
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def _dec(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unparseable {name} {shown(text)!r}") from None
    if not value.is_finite():
        raise ValueError(f"{name} is not a finite number ({shown(text)})")
    return value


def _number_problem(fields: list[str], cols: Columns) -> str:
    """The first value field that is not a finite number (slow path, for bad rows only)."""
    try:
        for role in _VALUE_ROLES:
            _dec(fields[getattr(cols, role)], role)
    except ValueError as exc:
        return str(exc)
    return "unparseable number"  # pragma: no cover - _dec rejects whatever Decimal rejected


def _ohlc_problems(o: Decimal, h: Decimal, lo: Decimal, c: Decimal) -> str | None:
    problems = []
    if h < lo:
        problems.append(f"high {shown(h)} < low {shown(lo)}")
    if h < o:
        problems.append(f"high {shown(h)} < open {shown(o)}")
    if h < c:
        problems.append(f"high {shown(h)} < close {shown(c)}")
    if lo > o:
        problems.append(f"low {shown(lo)} > open {shown(o)}")
    if lo > c:
        problems.append(f"low {shown(lo)} > close {shown(c)}")
    return "; ".join(problems) if problems else None


def _range_problem(h: Decimal, lo: Decimal, v: Decimal) -> str:
    """Why a consistent row is out of range (high is the largest price, low the smallest)."""
    if h > MAX_PRICE:
        return f"high {shown(h)} is above the largest price a bar may have ({MAX_PRICE:f})"
    if lo < MIN_PRICE:
        return f"low {shown(lo)} is below the smallest price a bar may have ({MIN_PRICE:f})"
    if v > MAX_VOLUME:
        return f"volume {shown(v)} is above the largest volume a bar may have ({MAX_VOLUME:f})"
    return f"volume {shown(v)} is above 0 but below the smallest volume a bar may have ({MIN_VOLUME:f})"


def valid_rows(
    lines: list[str], first: int, cols: Columns, drop: Callable[[int, str], None]
) -> tuple[Stamps | None, list[Row]]:
    """Parse ``lines[first:]`` into rows that passed every check; ``drop`` gets the others.

    Returns the detected stamp layout too (None when no row had a usable date), which says
    whether the file is daily. Blank lines are skipped, not dropped. This loop is the hot
    path of a replay's start-up: checks are inlined and the slow naming of a bad field
    happens only for bad rows.
    """
    delim, n_fields = cols.delim, cols.n_fields
    i_date, i_time = cols.date, cols.time
    i_o, i_h, i_l, i_c, i_v = cols.open, cols.high, cols.low, cols.close, cols.volume
    stamps: Stamps | None = None
    rows: list[Row] = []
    dec = Decimal
    zero = _ZERO
    min_price, max_price, min_volume, max_volume = MIN_PRICE, MAX_PRICE, MIN_VOLUME, MAX_VOLUME
    first_year, last_year, max_line = FIRST_YEAR, LAST_YEAR, MAX_LINE

    for idx in range(first, len(lines)):
        line = lines[idx].removesuffix("\r")
        if not line or line.isspace():
            continue
        line_no = idx + 1
        if len(line) > max_line:
            drop(line_no, f"line of {len(line)} characters, longer than a bar row may be ({max_line})")
            continue
        if '"' not in line:
            fields = line.split(delim)
        else:
            try:
                fields = split_fields(line, delim)
            except csv.Error as exc:
                drop(line_no, f"unreadable quoting ({exc})")
                continue
        if len(fields) != n_fields:
            drop(line_no, f"{len(fields)} fields, expected {n_fields}")
            continue
        d_text = fields[i_date]
        t_text = fields[i_time] if i_time is not None else None
        try:
            if stamps is None:
                stamps = Stamps(d_text, t_text.strip() if t_text is not None else None)
            when = stamps.parse(d_text, t_text)
        except (ValueError, TypeError, OverflowError):
            text = d_text if t_text is None else f"{d_text.strip()} {t_text.strip()}"
            drop(line_no, f"unparseable date {shown(text)!r}")
            continue
        if not first_year <= when.year <= last_year:
            drop(line_no, f"date {when.isoformat()} is outside {first_year}..{last_year}")
            continue
        try:
            o = dec(fields[i_o])
            h = dec(fields[i_h])
            lo = dec(fields[i_l])
            c = dec(fields[i_c])
            v = dec(fields[i_v])
            if not (o.is_finite() and h.is_finite() and lo.is_finite() and c.is_finite() and v.is_finite()):
                raise InvalidOperation
        except InvalidOperation:
            drop(line_no, _number_problem(fields, cols))
            continue
        if o <= zero or h <= zero or lo <= zero or c <= zero:
            name, value = next((n, x) for n, x in zip(_PRICE_ROLES, (o, h, lo, c), strict=False) if x <= zero)
            drop(line_no, f"non-positive {name} {shown(value)}")
            continue
        if v < zero:
            drop(line_no, f"negative volume {shown(v)}")
            continue
        if h < lo or h < o or h < c or lo > o or lo > c:
            drop(line_no, _ohlc_problems(o, h, lo, c) or "inconsistent OHLC")
            continue
        if h > max_price or lo < min_price or v > max_volume or (v < min_volume and v != zero):
            drop(line_no, _range_problem(h, lo, v))
            continue
        rows.append((line_no, when, o, h, lo, c, v))
    return stamps, rows
