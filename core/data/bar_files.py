"""Read OHLCV bar files as they really are into ``Bar`` objects: the reader's public face.

Real data files are messy: headers that miss a column, odd column orders, CRLF, a BOM,
no final newline, bad ticks. The reader finds the columns by *name*, repairs the one
header mistake it can prove (a missing ``Time``), and drops, with a line number and a
reason, every row it cannot trust, instead of raising. A caller gets the good bars and
the evidence for the rest (``BarFile.dropped``), and every drop is logged to
``cockpit.data``.

The work is split by job: ``bar_columns`` (the header), ``bar_stamps`` (date and time
formats), ``bar_rows`` (what is refused and why), ``bar_timing`` (session times, through
``core.data.calendar``). ``Bar.start`` is the bar's start and ``Bar.ts`` its end, in UTC.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.data.bar_columns import find_columns
from core.data.bar_file_model import BarFile, BarFileError, DroppedRow
from core.data.bar_rows import valid_rows
from core.data.bar_timing import daily_bars, intraday_bars

__all__ = ["BarFile", "BarFileError", "DroppedRow", "bundled_path", "read_bar_file"]

log = logging.getLogger("cockpit.data")

_BUNDLED = Path(__file__).parent / "bundled"


def bundled_path(relative: str) -> Path:
    """Path of a data file shipped in ``core/data/bundled`` (e.g. ``"daily/SPY_2007-2017_yahoo.csv"``).

    Raises ``BarFileError`` listing the bundled files when ``relative`` is not one of them,
    so a typo is fixed from the message alone.
    """
    root = _BUNDLED.resolve()
    candidate = (root / relative).resolve()
    if candidate.is_file() and candidate.is_relative_to(root):
        return candidate
    available = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in (".csv", ".txt")
    )
    raise BarFileError(
        f"no bundled data file {relative!r} under {root}; available: "
        + (", ".join(available) if available else "(none)")
    )


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BarFileError(
            f"{path}: file not found; check the path (bundled files: core.data.bar_files.bundled_path)"
        ) from None
    except OSError as exc:
        raise BarFileError(f"{path}: cannot read file ({exc}); check that it is a readable file") from exc
    text = raw.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")


def read_bar_file(
    path: Path,
    symbol: str,
    *,
    tz: str = "America/New_York",
    bar_time: Literal["start", "end"] = "end",
    bar_seconds: int | None = None,
    calendar: str | None = "XNYS",
) -> BarFile:
    """Read one OHLCV file into UTC ``Bar``s, dropping (and logging) every untrustworthy row.

    Columns are found by header name (Date, Time, Open, High, Low, Close, Volume; case
    does not matter, other columns are ignored). Daily rows (a date, no time) take the
    ``calendar`` session's open and close; with ``calendar=None`` they span 09:30-16:00 in
    ``tz``. Intraday stamps are wall time in ``tz`` and mark the bar's ``bar_time``; the
    bar length is ``bar_seconds`` or, if None, the most common step between stamps.
    Raises ``BarFileError`` only for the file as a whole; bad rows end up in ``dropped``.
    """
    path = Path(path)
    if bar_time not in ("start", "end"):
        raise ValueError(f"bar_time must be 'start' or 'end', not {bar_time!r}")
    if bar_seconds is not None and bar_seconds <= 0:
        raise ValueError(f"bar_seconds must be positive, not {bar_seconds}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc

    dropped: list[DroppedRow] = []

    def drop(line_no: int, reason: str) -> None:
        dropped.append(DroppedRow(line_no, reason))
        log.warning("%s: line %d dropped: %s", path, line_no, reason)

    lines = _read_text(path).split("\n")
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)  # the first non-blank line
    if header_idx is None:
        raise BarFileError(f"{path}: file is empty; expected a header line such as Date,Open,High,Low,Close,Volume")
    cols = find_columns(path, lines[header_idx].rstrip("\r"), lines[header_idx + 1 :])
    stamps, rows = valid_rows(lines, header_idx + 1, cols, drop)

    if stamps is None or not rows:
        bars = []
    elif stamps.daily:
        try:
            bars = daily_bars(rows, symbol, zone, calendar, drop)
        except BarFileError as exc:
            raise BarFileError(f"{path}: {exc}") from exc
    else:
        bars = intraday_bars(rows, symbol, zone, tz, bar_time, bar_seconds, drop, path)
    dropped.sort(key=lambda r: r.line_no)
    return BarFile(symbol, path, bars, dropped)
