"""Which data rows of a bar file are refused, and why: each refusal names its line and reason.

A row is dropped when it has the wrong number of fields, a date or time that does not
parse, a price or volume that is not a finite number, a price at or below zero, a negative
volume, or OHLC values that contradict each other (high below low, open or close; low above
open or close). Timing refusals (not a session, not after the previous bar, a wall time
that does not exist) come later, from ``core.data.bar_timing``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from core.data.bar_columns import Columns, split_fields
from core.data.bar_file_model import Row
from core.data.bar_stamps import Stamps

__all__ = ["valid_rows"]

_VALUE_ROLES = ("open", "high", "low", "close", "volume")
_PRICE_ROLES = _VALUE_ROLES[:4]
_ZERO = Decimal(0)


def _dec(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unparseable {name} {text.strip()!r}") from None
    if not value.is_finite():
        raise ValueError(f"{name} is not a finite number ({text.strip()})")
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
        problems.append(f"high {h} < low {lo}")
    if h < o:
        problems.append(f"high {h} < open {o}")
    if h < c:
        problems.append(f"high {h} < close {c}")
    if lo > o:
        problems.append(f"low {lo} > open {o}")
    if lo > c:
        problems.append(f"low {lo} > close {c}")
    return "; ".join(problems) if problems else None


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

    for idx in range(first, len(lines)):
        line = lines[idx].removesuffix("\r")
        if not line or line.isspace():
            continue
        line_no = idx + 1
        fields = line.split(delim) if '"' not in line else split_fields(line, delim)
        if len(fields) != n_fields:
            drop(line_no, f"{len(fields)} fields, expected {n_fields}")
            continue
        d_text = fields[i_date]
        t_text = fields[i_time] if i_time is not None else None
        try:
            if stamps is None:
                stamps = Stamps(d_text, t_text.strip() if t_text is not None else None)
            when = stamps.parse(d_text, t_text)
        except (ValueError, TypeError):
            shown = d_text.strip() if t_text is None else f"{d_text.strip()} {t_text.strip()}"
            drop(line_no, f"unparseable date {shown!r}")
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
            drop(line_no, f"non-positive {name} {value}")
            continue
        if v < zero:
            drop(line_no, f"negative volume {v}")
            continue
        if h < lo or h < o or h < c or lo > o or lo > c:
            drop(line_no, _ohlc_problems(o, h, lo, c) or "inconsistent OHLC")
            continue
        rows.append((line_no, when, o, h, lo, c, v))
    return stamps, rows
