"""Read OHLCV bar files as they really are into ``Bar`` objects.

Real data files are messy: headers that miss a column, odd column orders, CRLF, a BOM,
no final newline, bad ticks. The reader finds the columns by *name*, repairs the one
header mistake it can prove (a missing ``Time``), and drops, with a line number and a
reason, every row it cannot trust, instead of raising. A caller gets the good bars and
the evidence for the rest (``BarFile.dropped``), and every drop is logged to
``cockpit.data``.

Times: daily bars get the exchange session's open and close (``exchange_calendars``,
so early closes are right); intraday stamps are local wall time in ``tz`` and are
converted to UTC. ``Bar.start`` is the bar's start and ``Bar.ts`` its end.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.domain.model import Bar

__all__ = ["BarFile", "BarFileError", "DroppedRow", "bundled_path", "read_bar_file"]

log = logging.getLogger("cockpit.data")

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_BUNDLED = Path(__file__).parent / "bundled"

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
_PRICE_ROLES = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class DroppedRow:
    """A data row the reader refused, so that a caller can see what was left out and why."""

    line_no: int  # 1-based line number in the file
    reason: str  # e.g. "low 209.85 > open 209.42", "7 fields, expected 8"


@dataclass(frozen=True, slots=True)
class BarFile:
    """The bars read from one file, in file order, plus the rows that were dropped."""

    symbol: str
    path: Path
    bars: list[Bar]
    dropped: list[DroppedRow]


class BarFileError(Exception):
    """The file as a whole cannot be read (missing, no header, no usable column)."""


# --------------------------------------------------------------------------- paths


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


# --------------------------------------------------------------------------- parsing helpers


def _split_simple(line: str, delim: str) -> list[str]:
    """Split one CSV line; the csv module only when quotes make plain splitting wrong."""
    if '"' in line:
        return next(csv.reader([line], delimiter=delim))
    return line.split(delim)


def _norm_name(name: str) -> str:
    return name.strip().strip('"').strip().strip("<>").strip().lower()


def _parse_date_dash(s: str) -> date:
    """``YYYY-MM-DD`` (exactly that shape; ``date.fromisoformat`` alone accepts more)."""
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        raise ValueError(s)
    return date.fromisoformat(s)


def _parse_date_compact(s: str) -> date:
    """``YYYYMMDD``."""
    if len(s) != 8 or not s.isdigit():
        raise ValueError(s)
    return date(int(s[:4]), int(s[4:6]), int(s[6:]))


def _parse_date_mdy(s: str) -> date:
    """``M/D/YYYY`` with or without zero-padding (US order)."""
    m, d, y = s.split("/")
    if len(y) != 4 or not (m.isdigit() and d.isdigit() and y.isdigit()):
        raise ValueError(s)
    return date(int(y), int(m), int(d))


_DATE_PARSERS: tuple[Callable[[str], date], ...] = (
    _parse_date_dash,
    _parse_date_compact,
    _parse_date_mdy,
)


def _parse_time(s: str) -> timedelta:
    """``H:MM``, ``HH:MM:SS`` or ``HH:MM:SS.ffffff`` as the offset from local midnight."""
    parts = s.split(":")
    if len(parts) == 2:
        hh, mm = parts
        ss = "0"
    elif len(parts) == 3:
        hh, mm, ss = parts
    else:
        raise ValueError(s)
    if not (hh.isdigit() and len(mm) == 2 and mm.isdigit()):
        raise ValueError(s)
    h, m = int(hh), int(mm)
    if "." in ss:
        whole, frac = ss.split(".")
        if not (len(whole) == 2 and whole.isdigit() and frac.isdigit() and len(frac) <= 6):
            raise ValueError(s)
        sec, us = int(whole), int(frac.ljust(6, "0"))
    else:
        if not (ss.isdigit() and len(ss) <= 2):
            raise ValueError(s)
        sec, us = int(ss), 0
    if h > 23 or m > 59 or sec > 59:
        raise ValueError(s)
    return timedelta(hours=h, minutes=m, seconds=sec, microseconds=us)


class _Stamps:
    """Turns the date (and time) fields of a row into a ``date`` or a local ``datetime``.

    The layout is detected once from a sample row and then used for every row, with the
    parsed pieces cached by their text (an intraday file repeats each date and each time
    of day many times).
    """

    def __init__(self, date_text: str, time_text: str | None) -> None:
        self.daily = False
        self._date_cache: dict[str, datetime] = {}
        self._day_cache: dict[str, date] = {}
        self._time_cache: dict[str, timedelta] = {}
        self._date_parser: Callable[[str], date] = _parse_date_dash
        self.parse: Callable[[str, str | None], date | datetime]
        date_text = date_text.strip()
        if time_text is not None:
            self._date_parser = self._detect_date(date_text)
            self.parse = self._parse_date_and_time
        elif " " not in date_text and "T" not in date_text:
            self._date_parser = self._detect_date(date_text)
            self.daily = True
            self.parse = self._parse_day
        elif len(date_text) > 10 and date_text[4] == "-" and date_text[10] in " T":
            self.parse = self._parse_iso
        else:
            self._date_parser = self._detect_date(date_text.split(" ", 1)[0])
            self.parse = self._parse_combined

    @staticmethod
    def _detect_date(text: str) -> Callable[[str], date]:
        for parser in _DATE_PARSERS:
            try:
                parser(text)
            except ValueError:
                continue
            return parser
        raise ValueError(text)

    def _day(self, text: str) -> date:
        d = self._day_cache.get(text)
        if d is None:
            d = self._date_parser(text.strip())
            self._day_cache[text] = d
        return d

    def _midnight(self, text: str) -> datetime:
        m = self._date_cache.get(text)
        if m is None:
            d = self._date_parser(text.strip())
            m = datetime(d.year, d.month, d.day)
            self._date_cache[text] = m
        return m

    def _tod(self, text: str) -> timedelta:
        t = self._time_cache.get(text)
        if t is None:
            t = _parse_time(text.strip())
            self._time_cache[text] = t
        return t

    def _parse_day(self, d: str, _t: str | None) -> date:
        return self._day(d)

    def _parse_date_and_time(self, d: str, t: str | None) -> datetime:
        assert t is not None
        return self._midnight(d) + self._tod(t)

    def _parse_combined(self, d: str, _t: str | None) -> datetime:
        day, sep, tod = d.strip().partition(" ")
        if not sep:
            raise ValueError(d)
        return self._midnight(day) + self._tod(tod.strip())

    @staticmethod
    def _parse_iso(d: str, _t: str | None) -> datetime:
        d = d.strip()
        if len(d) <= 10:
            raise ValueError(d)
        return datetime.fromisoformat(d)


class _LocalToUtc:
    """Local wall time in one zone -> UTC, with the UTC offset computed once per local date.

    Days with a DST transition take the slow path, which drops times that do not exist
    (spring-forward gap) and resolves a repeated hour so that stamps keep increasing.
    """

    def __init__(self, zone: ZoneInfo, tz_name: str) -> None:
        self.zone = zone
        self.tz_name = tz_name
        self._offsets: dict[date, timedelta | None] = {}

    def _offset(self, d: date) -> timedelta | None:
        off = self._offsets.get(d, False)
        if off is False:
            z = self.zone
            m0 = datetime(d.year, d.month, d.day, tzinfo=z)
            nxt = m0 + timedelta(days=1)
            a = m0.utcoffset()
            off = a if a == m0.replace(fold=1).utcoffset() == nxt.utcoffset() else None
            self._offsets[d] = off
        return off  # type: ignore[return-value]

    def convert(self, local: datetime, prev: datetime | None) -> datetime:
        """UTC for ``local``; raises ValueError for a wall time that does not exist."""
        if local.tzinfo is not None:
            return local.astimezone(UTC)
        off = self._offset(local.date())
        if off is not None:
            return (local - off).replace(tzinfo=UTC)
        a = local.replace(tzinfo=self.zone)
        ua = a.astimezone(UTC)
        ub = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if ua == ub:
            return ua
        if ua.astimezone(self.zone).replace(tzinfo=None) != local:
            raise ValueError(f"local time {local} does not exist in {self.tz_name} (DST gap)")
        # Repeated hour: take the first occurrence unless that would go backwards.
        if prev is not None and ua <= prev < ub:
            return ub
        return ua


# --------------------------------------------------------------------------- calendar


# calendar name -> (first, last, {date ordinal: (open, close) UTC epoch seconds}).
# Building an exchange_calendars calendar costs ~0.1 s whatever its span, so one wide
# table per calendar is kept and only rebuilt (wider) for a file outside it.
_SESSIONS: dict[str, tuple[date, date, dict[int, tuple[int, int]]]] = {}
_WIDE_START = date(1990, 1, 1)


def _session_times(calendar: str, first: date, last: date) -> dict[int, tuple[int, int]]:
    """date ordinal -> (open, close) as UTC epoch seconds, for every session in [first, last] at least."""
    cached = _SESSIONS.get(calendar)
    if cached is not None and cached[0] <= first and last <= cached[1]:
        return cached[2]
    try:
        import exchange_calendars as xc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "exchange_calendars is needed for daily bars with a calendar; "
            "install it or pass calendar=None"
        ) from exc
    lo, hi = first, last
    if cached is not None:
        lo, hi = min(lo, cached[0]), max(hi, cached[1])
    wide_lo = min(lo, _WIDE_START)
    wide_hi = max(hi, date.today() + timedelta(days=366))
    cal = None
    for start, end in ((wide_lo, wide_hi), (lo, hi)):
        try:
            cal = xc.get_calendar(calendar, start=start.isoformat(), end=end.isoformat())
        except xc.errors.InvalidCalendarName as exc:
            raise ValueError(
                f"unknown calendar {calendar!r}; see exchange_calendars.get_calendar_names()"
            ) from exc
        except xc.errors.NoSessionsError:
            return {}
        except (xc.errors.CalendarError, ValueError) as exc:
            if (start, end) == (lo, hi):
                raise BarFileError(
                    f"calendar {calendar} cannot cover {lo}..{hi} ({exc}); pass calendar=None"
                ) from exc
            continue  # the wide span is outside this calendar's bounds: build just what is needed
        lo, hi = start, end
        break
    assert cal is not None
    # Plain numpy datetime64 arrays (UTC) -> ints; no per-session pandas Timestamp objects.
    days = cal.sessions.to_numpy().astype("datetime64[D]").astype("int64").tolist()
    opens = cal.opens.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist()
    closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist()
    table = {d + _EPOCH_ORDINAL: (o, c) for d, o, c in zip(days, opens, closes)}
    _SESSIONS[calendar] = (lo, hi, table)
    return table


# --------------------------------------------------------------------------- reader


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
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _dec(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unparseable {name} {text.strip()!r}") from None
    if not value.is_finite():
        raise ValueError(f"{name} is not a finite number ({text.strip()})")
    return value


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

    # Header: the first non-blank line.
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_idx is None:
        raise BarFileError(f"{path}: file is empty; expected a header line such as Date,Open,High,Low,Close,Volume")
    header_line = lines[header_idx].rstrip("\r")
    delim = next((d for d in (",", ";", "\t") if d in header_line), ",")
    names = [_norm_name(n) for n in _split_simple(header_line, delim)]

    # The one header repair we can prove: a Date but no Time column, and data rows with
    # exactly one field more than the header -> the missing name is Time, after Date.
    data_counts = Counter(
        len(_split_simple(ln.rstrip("\r"), delim))
        for ln in lines[header_idx + 1 : header_idx + 51]
        if ln.strip()
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

    n_fields = len(names)
    i_date, i_time = cols["date"], cols.get("time")
    i_o, i_h, i_l, i_c, i_v = (cols[r] for r in ("open", "high", "low", "close", "volume"))

    stamps: _Stamps | None = None
    rows: list[tuple[int, date | datetime, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    dec = Decimal
    zero = Decimal(0)

    for idx in range(header_idx + 1, len(lines)):
        line = lines[idx]
        if line.endswith("\r"):
            line = line[:-1]
        if not line or line.isspace():
            continue
        line_no = idx + 1
        fields = line.split(delim) if '"' not in line else _split_simple(line, delim)
        if len(fields) != n_fields:
            drop(line_no, f"{len(fields)} fields, expected {n_fields}")
            continue
        d_text = fields[i_date]
        t_text = fields[i_time] if i_time is not None else None
        try:
            if stamps is None:
                stamps = _Stamps(d_text, t_text.strip() if t_text is not None else None)
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
            if not (
                o.is_finite() and h.is_finite() and lo.is_finite() and c.is_finite() and v.is_finite()
            ):
                raise InvalidOperation
        except InvalidOperation:
            # Slow path only for bad rows: name the offending field.
            try:
                for role, i in zip(("open", "high", "low", "close", "volume"), (i_o, i_h, i_l, i_c, i_v)):
                    _dec(fields[i], role)
            except ValueError as exc:
                drop(line_no, str(exc))
            else:  # pragma: no cover - _dec rejects whatever Decimal rejected
                drop(line_no, "unparseable number")
            continue
        if o <= zero or h <= zero or lo <= zero or c <= zero:
            bad = next(
                (n, x) for n, x in zip(_PRICE_ROLES, (o, h, lo, c)) if x <= zero
            )
            drop(line_no, f"non-positive {bad[0]} {bad[1]}")
            continue
        if v < zero:
            drop(line_no, f"negative volume {v}")
            continue
        if h < lo or h < o or h < c or lo > o or lo > c:
            drop(line_no, _ohlc_problems(o, h, lo, c) or "inconsistent OHLC")
            continue
        rows.append((line_no, when, o, h, lo, c, v))

    if stamps is None or not rows:
        dropped.sort(key=lambda r: r.line_no)
        return BarFile(symbol, path, [], dropped)

    if stamps.daily:
        try:
            bars = _daily_bars(rows, symbol, zone, calendar, drop)
        except BarFileError as exc:
            raise BarFileError(f"{path}: {exc}") from exc
    else:
        bars = _intraday_bars(rows, symbol, zone, tz, bar_time, bar_seconds, drop, path)
    dropped.sort(key=lambda r: r.line_no)
    return BarFile(symbol, path, bars, dropped)


_Row = tuple[int, "date | datetime", Decimal, Decimal, Decimal, Decimal, Decimal]


def _daily_bars(
    rows: list[_Row],
    symbol: str,
    zone: ZoneInfo,
    calendar: str | None,
    drop: Callable[[int, str], None],
) -> list[Bar]:
    """Give each daily row its session's open/close (calendar) or 09:30-16:00 local."""
    bars: list[Bar] = []
    prev: date | None = None
    if calendar is not None:
        days = [r[1] for r in rows]
        sessions = _session_times(calendar, min(days), max(days))  # type: ignore[type-var]

        def utc(epoch: int) -> datetime:
            return _EPOCH + timedelta(seconds=epoch)

        for line_no, d, o, h, lo, c, v in rows:
            times = sessions.get(d.toordinal())
            if times is None:
                drop(line_no, f"{d.isoformat()} is not a {calendar} session")
                continue
            if prev is not None and d <= prev:  # type: ignore[operator]
                drop(line_no, f"timestamp not after previous bar ({d.isoformat()} <= {prev.isoformat()})")
                continue
            prev = d  # type: ignore[assignment]
            bars.append(Bar(symbol, utc(times[0]), utc(times[1]), o, h, lo, c, v))
    else:
        for line_no, d, o, h, lo, c, v in rows:
            if prev is not None and d <= prev:  # type: ignore[operator]
                drop(line_no, f"timestamp not after previous bar ({d.isoformat()} <= {prev.isoformat()})")
                continue
            prev = d  # type: ignore[assignment]
            start = datetime(d.year, d.month, d.day, 9, 30, tzinfo=zone).astimezone(UTC)
            end = datetime(d.year, d.month, d.day, 16, 0, tzinfo=zone).astimezone(UTC)
            bars.append(Bar(symbol, start, end, o, h, lo, c, v))
    return bars


def _intraday_bars(
    rows: list[_Row],
    symbol: str,
    zone: ZoneInfo,
    tz: str,
    bar_time: str,
    bar_seconds: int | None,
    drop: Callable[[int, str], None],
    path: Path,
) -> list[Bar]:
    """Convert local stamps to UTC, enforce increasing time, and span each bar."""
    conv = _LocalToUtc(zone, tz)
    kept: list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    prev: datetime | None = None
    prev_line = 0
    for line_no, local, o, h, lo, c, v in rows:
        try:
            stamp = conv.convert(local, prev)  # type: ignore[arg-type]
        except ValueError as exc:
            drop(line_no, str(exc))
            continue
        if prev is not None and stamp <= prev:
            drop(
                line_no,
                f"timestamp not after previous bar ({local}; previous kept bar on line {prev_line})",
            )
            continue
        prev, prev_line = stamp, line_no
        kept.append((stamp, o, h, lo, c, v))

    if bar_seconds is None:
        steps = Counter(
            b[0] - a[0] for a, b in zip(kept, kept[1:])
        )
        if not steps:
            raise BarFileError(
                f"{path}: cannot infer the bar length from {len(kept)} bar(s); pass bar_seconds="
            )
        top = max(steps.values())
        length = min(s for s, n in steps.items() if n == top)
    else:
        length = timedelta(seconds=bar_seconds)

    if bar_time == "end":
        return [Bar(symbol, s - length, s, o, h, lo, c, v) for s, o, h, lo, c, v in kept]
    return [Bar(symbol, s, s + length, o, h, lo, c, v) for s, o, h, lo, c, v in kept]
