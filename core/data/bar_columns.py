"""Which field of a bar file's rows holds what: found by header *name*, not position.

Vendors differ in column order, case, quoting, ``<DATE>``-style names, the delimiter and
extra columns (``Adj Close``); one backtrader file even leaves ``Time`` out of its header.
The header is read once here, with the one repair that can be proved from the data.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.data.bar_file_model import BarFileError

__all__ = ["Columns", "find_columns", "split_fields"]

log = logging.getLogger("cockpit.data")

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


def split_fields(line: str, delim: str) -> list[str]:
    """Split one CSV line; the csv module only when quotes make plain splitting wrong."""
    if '"' in line:
        return next(csv.reader([line], delimiter=delim))
    return line.split(delim)


def _norm_name(name: str) -> str:
    return name.strip().strip('"').strip().strip("<>").strip().lower()


def find_columns(path: Path, header_line: str, sample: list[str]) -> Columns:
    """Read the header (``sample``: the lines after it) into ``Columns``; raises ``BarFileError``
    for a header that names a role twice or misses a required one."""
    delim = next((d for d in (",", ";", "\t") if d in header_line), ",")
    names = [_norm_name(n) for n in split_fields(header_line, delim)]

    # The one header repair we can prove: a Date but no Time column, and data rows with
    # exactly one field more than the header -> the missing name is Time, after Date.
    data_counts = Counter(
        len(split_fields(ln.rstrip("\r"), delim)) for ln in sample[:_SAMPLE_ROWS] if ln.strip()
    )
    if data_counts:
        typical = data_counts.most_common(1)[0][0]
        date_names = [i for i, n in enumerate(names) if _ROLES.get(n) == "date"]
        if (
            len(date_names) == 1
            and not any(_ROLES.get(n) == "time" for n in names)
            and typical == len(names) + 1
        ):
            names.insert(date_names[0] + 1, "time")
            log.warning(
                "%s: header has %d names but rows have %d fields; inserting Time after Date",
                path, len(names) - 1, typical,
            )

    cols: dict[str, int] = {}
    for i, n in enumerate(names):
        role = _ROLES.get(n)
        if role is None:
            continue
        if role in cols:
            raise BarFileError(
                f"{path}: header {header_line!r} has more than one {role} column; "
                "rename or remove the extra one"
            )
        cols[role] = i
    missing = [r for r in _REQUIRED if r not in cols]
    if missing:
        raise BarFileError(
            f"{path}: header {header_line!r} has no usable {', '.join(missing)} column(s); "
            "the header must name Date, Open, High, Low, Close and Volume (any case, any order; "
            "Time optional)"
        )
    return Columns(
        delim, len(names), cols["date"], cols.get("time"),
        cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"],
    )
