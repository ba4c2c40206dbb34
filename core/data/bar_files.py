"""Read OHLCV bar files as they really are into ``Bar`` objects: the reader's public face.

Real data files are messy: headers that miss a column, odd column orders, CRLF, a BOM,
no final newline, bad ticks. The reader finds the columns by *name*, repairs the one
header mistake it can prove (a missing ``Time``), and drops, with a line number and a
reason, every row it cannot trust (``core.data.bar_rows`` says which, sane ranges
included), instead of raising. A caller gets the good bars and the evidence for the rest
(``BarFile.dropped``), and drops are logged to ``cockpit.data`` (the first
``MAX_LOGGED_DROPS`` one by one, then a count).

A file that is not bar text at all (NUL bytes: binary; UTF-16/32; a header that is not
UTF-8, not CSV, or names no usable columns) raises ``BarFileError`` with one line naming
the file and the problem: that is the only data error, and nothing else escapes.

``parse_bar_bytes`` is the same reader on bytes in memory, with no I/O and no logging:
cheap to call a million times from a fuzzing campaign (``bench/chaos_inputs.py``).

``read_bar_file`` keeps the last ``PARSED_CACHE`` parses in the process, keyed by a digest of
the file's bytes and the reading's arguments: a backtest run many times in one worker (a
walk-forward grid) reads its files each time but parses them once. The bytes are always read,
so an edited file is parsed again; the drops are logged on every read, as without the cache.
The bars are shared between readers: a ``Bar`` is never changed after it is made.

The work is split by job: ``bar_columns`` (the header), ``bar_stamps`` (date and time
formats), ``bar_rows`` (what is refused and why), ``bar_timing`` (session times, through
``core.data.calendar``). ``Bar.start`` is the bar's start and ``Bar.ts`` its end, in UTC.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.data.bar_columns import Columns, find_columns
from core.data.bar_file_model import BarFile, BarFileError, DroppedRow
from core.data.bar_rows import valid_rows
from core.data.bar_timing import daily_bars, intraday_bars
from core.domain.model import Bar

__all__ = ["MAX_LOGGED_DROPS", "BarFile", "BarFileError", "DroppedRow", "bundled_path", "log_read",
           "parse_bar_bytes", "read_bar_bytes", "read_bar_file"]

log = logging.getLogger("cockpit.data")

_BUNDLED = Path(__file__).parent / "bundled"
MAX_LOGGED_DROPS = 100  # per file: a garbage file must not write a million log lines
PARSED_CACHE = 32  # files' parses kept (a few MB for the bundled ones)
_ParseKey = tuple[bytes, str, str, str, str, int | None, str | None]
_parsed: OrderedDict[_ParseKey, tuple[list[Bar], list[DroppedRow], Columns]] = OrderedDict()
_TZ_NAME_MAX = 255


def bundled_path(relative: str) -> Path:
    """Path of a data file shipped in ``core/data/bundled`` (e.g. ``"daily/SPY_2007-2017_yahoo.csv"``).

    Raises ``BarFileError`` listing the bundled files when ``relative`` is not one of them,
    so a typo is fixed from the message alone.
    """
    root = _BUNDLED.resolve()
    try:
        candidate = (root / relative).resolve()
        found = candidate.is_file() and candidate.is_relative_to(root)
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        found = False
    if found:
        return candidate
    available = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in (".csv", ".txt")
    )
    raise BarFileError(
        f"no bundled data file {relative[:200]!r} under {root}; available: "
        + (", ".join(available) if available else "(none)")
    )


def read_bar_bytes(path: Path) -> bytes:
    """The bytes of a bar file; ``BarFileError`` (one line) when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BarFileError(
            f"{path}: file not found; check the path (bundled files: core.data.bar_files.bundled_path)"
        ) from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BarFileError(f"{path}: cannot read file ({why}); check that it is a readable file") from None


def _decode(raw: bytes, source: object) -> tuple[str, bool]:
    """The text of a bar file, and whether some bytes were not UTF-8 (replaced by U+FFFD).

    Binary content refuses here: bar files are UTF-8 (or ASCII) CSV text.
    """
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise BarFileError(f"{source}: UTF-32 text, not UTF-8: save the file as UTF-8 CSV")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BarFileError(f"{source}: UTF-16 text, not UTF-8: save the file as UTF-8 CSV")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise BarFileError(f"{source}: byte {nul} is NUL: a binary file, not CSV text (a bar file is UTF-8 "
                           "CSV with a header such as Date,Open,High,Low,Close,Volume)")
    try:
        text, replaced = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = raw.decode("utf-8", errors="replace"), True
    return text.removeprefix("\ufeff"), replaced


def _zone(tz: str) -> ZoneInfo:
    if not isinstance(tz, str) or not tz or len(tz) > _TZ_NAME_MAX or "\x00" in tz:
        raise ValueError(f"unknown time zone {str(tz)[:80]!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {tz[:80]!r}") from exc


def parse_bar_bytes(
    raw: bytes,
    symbol: str,
    *,
    source: str = "<bytes>",
    tz: str = "America/New_York",
    bar_time: Literal["start", "end"] = "end",
    bar_seconds: int | None = None,
    calendar: str | None = "XNYS",
) -> tuple[list[Bar], list[DroppedRow]]:
    """The bars of one bar file's bytes and the rows dropped (sorted by line), without I/O.

    ``source`` names the file in messages. Raises ``BarFileError`` (one line) when the bytes
    are not a bar file at all, ``ValueError`` for a bad argument (zone, bar_time,
    bar_seconds, an unknown calendar); nothing else. No logging, no files: the only state
    it touches is the process-wide cache of built exchange calendars (``calendar=None``
    avoids even that).
    """
    bars, dropped, _cols = _parse(raw, symbol, source, tz, bar_time, bar_seconds, calendar)
    return bars, dropped


def _parse(
    raw: bytes, symbol: str, source: str, tz: str, bar_time: Literal["start", "end"], bar_seconds: int | None,
    calendar: str | None,
) -> tuple[list[Bar], list[DroppedRow], Columns]:
    if bar_time not in ("start", "end"):
        raise ValueError(f"bar_time must be 'start' or 'end', not {bar_time!r}")
    if bar_seconds is not None and bar_seconds <= 0:
        raise ValueError(f"bar_seconds must be positive, not {bar_seconds}")
    zone = _zone(tz)

    dropped: list[DroppedRow] = []

    def drop(line_no: int, reason: str) -> None:
        dropped.append(DroppedRow(line_no, reason))

    text, replaced = _decode(raw, source)
    lines = text.split("\n")
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)  # the first non-blank line
    if header_idx is None:
        raise BarFileError(f"{source}: file is empty; expected a header line such as Date,Open,High,Low,Close,Volume")
    header = lines[header_idx].rstrip("\r")
    if replaced and "\ufffd" in header:
        raise BarFileError(f"{source}: line {header_idx + 1} (the header) is not UTF-8 text: a binary file or "
                           "another encoding; save the file as UTF-8 CSV")
    cols = find_columns(source, header, lines[header_idx + 1 :])
    stamps, rows = valid_rows(lines, header_idx + 1, cols, drop)

    bars: list[Bar]
    if stamps is None or not rows:
        bars = []
    elif stamps.daily:
        try:
            bars = daily_bars(rows, symbol, zone, calendar, drop)
        except BarFileError as exc:
            raise BarFileError(f"{source}: {exc}") from None
    else:
        bars = intraday_bars(rows, symbol, zone, tz, bar_time, bar_seconds, drop, source)
    dropped.sort(key=lambda r: r.line_no)
    return bars, dropped, cols


def read_bar_file(
    path: Path,
    symbol: str,
    *,
    tz: str = "America/New_York",
    bar_time: Literal["start", "end"] = "end",
    bar_seconds: int | None = None,
    calendar: str | None = "XNYS",
    raw: bytes | None = None,
) -> BarFile:
    """Read one OHLCV file into UTC ``Bar``s, dropping (and logging) every untrustworthy row.

    Columns are found by header name (Date, Time, Open, High, Low, Close, Volume; case
    does not matter, other columns are ignored). Daily rows (a date, no time) take the
    ``calendar`` session's open and close; with ``calendar=None`` they span 09:30-16:00 in
    ``tz``. Intraday stamps are wall time in ``tz`` and mark the bar's ``bar_time``; the
    bar length is ``bar_seconds`` or, if None, the most common step between stamps.
    Raises ``BarFileError`` only for the file as a whole; bad rows end up in ``dropped``.
    ``raw``: the file's bytes when the caller has read them already (``read_bar_bytes``).
    """
    path = Path(path)
    if bar_time not in ("start", "end"):
        raise ValueError(f"bar_time must be 'start' or 'end', not {bar_time!r}")
    if bar_seconds is not None and bar_seconds <= 0:
        raise ValueError(f"bar_seconds must be positive, not {bar_seconds}")
    _zone(tz)
    if raw is None:
        raw = read_bar_bytes(path)
    bars, dropped, cols = _parse_cached(raw, symbol, str(path), tz, bar_time, bar_seconds, calendar)
    note = (f"header has {cols.n_fields - 1} names but rows have {cols.n_fields} fields; inserting Time after Date"
            if cols.inserted_time else None)
    found = BarFile(symbol, path, bars, dropped, note)
    log_read(found)
    return found


def _parse_cached(
    raw: bytes, symbol: str, source: str, tz: str, bar_time: Literal["start", "end"], bar_seconds: int | None,
    calendar: str | None,
) -> tuple[list[Bar], list[DroppedRow], Columns]:
    """``_parse`` through the process's cache of recent parses (fresh lists, shared bars)."""
    key = (hashlib.blake2b(raw, digest_size=20).digest(), symbol, source, tz, bar_time, bar_seconds, calendar)
    found = _parsed.get(key)
    if found is None:
        found = _parse(raw, symbol, source, tz, bar_time, bar_seconds, calendar)  # raises: nothing kept
        _parsed[key] = found
        while len(_parsed) > PARSED_CACHE:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(key)
    bars, dropped, cols = found
    return list(bars), list(dropped), cols


def log_read(found: BarFile) -> None:
    """Log what reading ``found`` repaired and dropped (its rows one by one, up to ``MAX_LOGGED_DROPS``)."""
    path, dropped = found.path, found.dropped
    if found.header_note:
        log.warning("%s: %s", path, found.header_note)
    for row in dropped[:MAX_LOGGED_DROPS]:
        log.warning("%s: line %d dropped: %s", path, row.line_no, row.reason)
    if len(dropped) > MAX_LOGGED_DROPS:
        log.warning("%s: %d more rows dropped (%d in all; BarFile.dropped lists each with its reason)",
                    path, len(dropped) - MAX_LOGGED_DROPS, len(dropped))
