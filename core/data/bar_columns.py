"""Which field of a bar file's rows holds what: found by header *name*, not position.

Vendors differ in column order, case, quoting, ``<DATE>``-style names, the delimiter and
extra columns (``Adj Close``); one backtrader file even leaves ``Time`` out of its header.
The header is read once here, with the one repair that can be proved from the data.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.data.bar_file_model import BarFileError

__all__ = ["Columns", "find_columns", "split_fields"]

# Header names (lower-cased, stripped of quotes, spaces and <>) -> our column role.
_ROLES: dict[str, str] = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "time": "time",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "vol": "volume",
}
_REQUIRED = ("date", "open", "high", "low", "close", "volume")
_SAMPLE_ROWS = 50  # data rows looked at to prove the missing-Time repair
_MAX_HEADER = 4096  # characters: a real header is under 200
_SHOWN = 80  # characters of a refused header shown in the message


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each role sits in a row, and how many fields a row must have."""

    delim: str
    n_fields: int
    date: int
    time: int | None
    open: int
    high: int
    low: int
    close: int
    volume: int
    inserted_time: bool = False  # the header had no Time name and the rows one field more: repaired


def split_fields(line: str, delim: str) -> list[str]:
    """Split one CSV line; the csv module only when quotes make plain splitting wrong."""
    if '"' in line:
        return next(csv.reader([line], delimiter=delim))
    return line.split(delim)


def _field_counts(sample: list[str], delim: str) -> Counter[int]:
    """How many fields the first data rows have (rows the csv module cannot split do not count)."""
    counts: Counter[int] = Counter()
    for ln in sample[:_SAMPLE_ROWS]:
        if ln.strip():
            try:
                counts[len(split_fields(ln.rstrip("\r"), delim))] += 1
            except csv.Error:
                continue
    return counts


def _shown(header_line: str) -> str:
    """The header for a one-line message: repr'd (no raw control characters), cut when long."""
    if len(header_line) <= _SHOWN:
        return repr(header_line)
    return f"{header_line[:_SHOWN]!r}... ({len(header_line)} characters)"


def _norm_name(name: str) -> str:
    return name.strip().strip('"').strip().strip("<>").strip().lower()


def find_columns(path: Path | str, header_line: str, sample: list[str]) -> Columns:
    """Read the header (``sample``: the lines after it) into ``Columns``; raises ``BarFileError``
    for a header that is too long or unreadable, names a role twice or misses a required one.
    ``path`` only names the file in messages."""
    if len(header_line) > _MAX_HEADER:
        raise BarFileError(f"{path}: the first line is {len(header_line)} characters long: not a bar file "
                           "header such as Date,Open,High,Low,Close,Volume")
    delim = next((d for d in (",", ";", "\t") if d in header_line), ",")
    try:
        names = [_norm_name(n) for n in split_fields(header_line, delim)]
    except csv.Error as exc:
        raise BarFileError(f"{path}: header {_shown(header_line)} is not readable CSV ({exc})") from None

    # The one header repair we can prove: a Date but no Time column, and data rows with
    # exactly one field more than the header -> the missing name is Time, after Date.
    data_counts = _field_counts(sample, delim)
    inserted_time = False
    if data_counts:
        typical = data_counts.most_common(1)[0][0]
        date_names = [i for i, n in enumerate(names) if _ROLES.get(n) == "date"]
        if (
            len(date_names) == 1
            and not any(_ROLES.get(n) == "time" for n in names)
            and typical == len(names) + 1
        ):
            names.insert(date_names[0] + 1, "time")
            inserted_time = True

    cols: dict[str, int] = {}
    for i, n in enumerate(names):
        role = _ROLES.get(n)
        if role is None:
            continue
        if role in cols:
            raise BarFileError(
                f"{path}: header {_shown(header_line)} has more than one {role} column; "
                "rename or remove the extra one"
            )
        cols[role] = i
    missing = [r for r in _REQUIRED if r not in cols]
    if missing:
        raise BarFileError(
            f"{path}: header {_shown(header_line)} has no usable {', '.join(missing)} column(s); "
            "the header must name Date, Open, High, Low, Close and Volume (any case, any order; "
            "Time optional)"
        )
    return Columns(
        delim, len(names), cols["date"], cols.get("time"),
        cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], inserted_time,
    )
