"""The one wrapper over exchange-calendars: when an exchange is in session.

Two jobs read it: the bar-file reader (each daily bar gets its session's open and close, so
early closes are right) and live trading (the dead-man is armed only while the market is
open, holidays and half days included). Both go through ``ExchangeSession`` so that they
cannot disagree, and both share one built calendar per exchange: building one costs
~0.1-0.3 s whatever its span, so a wide one (1990 to a year ahead) is built once and only
rebuilt, wider, for a question outside it.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["CalendarSpanError", "ExchangeSession", "SessionTimes"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WIDE_START = date(1990, 1, 1)
# Room around a live question: the previous session and the next change (a long closure
# such as a national holiday week) must be inside the built span.
_LIVE_BEFORE = timedelta(days=7)
_LIVE_AFTER = timedelta(days=30)

#: date ordinal -> (open, close) as UTC epoch seconds, one entry per session.
SessionTimes = dict[int, tuple[int, int]]


class CalendarSpanError(Exception):
    """The exchange's calendar cannot be built for the dates asked about (outside its bounds)."""


@dataclass(slots=True)
class _Built:
    first: date
    last: date
    calendar: Any  # exchange_calendars.ExchangeCalendar, or None when the span holds no session
    sessions: SessionTimes | None = None  # made on first use: live trading never needs it


# exchange name -> the widest calendar built so far for it (shared by every ExchangeSession).
_BUILT: dict[str, _Built] = {}


def _xc() -> Any:
    try:
        import exchange_calendars as xc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "exchange_calendars is needed for exchange session times; install it "
            "(bar files can be read without: calendar=None)"
        ) from exc
    return xc


def _covering(name: str, first: date, last: date) -> _Built:
    """A built calendar for ``name`` that covers [first, last]: the cached one or a wider rebuild."""
    cached = _BUILT.get(name)
    if cached is not None and cached.first <= first and last <= cached.last:
        return cached
    xc = _xc()
    lo, hi = first, last
    if cached is not None:
        lo, hi = min(lo, cached.first), max(hi, cached.last)
    wide = (min(lo, _WIDE_START), max(hi, date.today() + timedelta(days=366)))
    for start, end in (wide, (lo, hi)):
        try:
            cal = xc.get_calendar(name, start=start.isoformat(), end=end.isoformat())
        except xc.errors.InvalidCalendarName as exc:
            raise ValueError(f"unknown calendar {name!r}; see exchange_calendars.get_calendar_names()") from exc
        except xc.errors.NoSessionsError:
            cal = None
        except (xc.errors.CalendarError, ValueError) as exc:
            if (start, end) == (lo, hi):
                raise CalendarSpanError(f"calendar {name} cannot cover {lo}..{hi} ({exc})") from exc
            continue  # the wide span is outside this calendar's bounds: build just what is needed
        built = _Built(start, end, cal)
        _BUILT[name] = built
        return built
    raise AssertionError("unreachable: the narrow span either builds or raises")  # pragma: no cover


# name -> (first, last, table) read from a cache folder this process (the calendar never built).
_KEPT: dict[str, tuple[date, date, SessionTimes]] = {}
_TABLE_FORMAT = 1
_WRITTEN: set[tuple[str, Path, date]] = set()  # (name, folder, span end) kept by this process


def _table_key() -> str:
    """What a kept table was made with: exchange-calendars' version (read without importing it)."""
    try:
        from importlib.metadata import version

        lib = version("exchange-calendars")
    except Exception:  # not installed: building will say so
        lib = "none"
    return f"{_TABLE_FORMAT}:{lib}:{marshal.version}"


def _table_path(name: str, cache_dir: Path) -> Path:
    return cache_dir / f"calendar-{name}.sessions"


def _kept_table(name: str, cache_dir: Path | None, first: date, last: date
                ) -> tuple[SessionTimes, date, date] | None:
    """A table kept earlier that covers [first, last] (memory first, then the folder), or None."""
    held = _KEPT.get(name)
    if held is None and cache_dir is not None:
        try:
            key, lo, hi, table = marshal.loads(_table_path(name, cache_dir).read_bytes())
            if key == _table_key() and isinstance(table, dict):
                held = _KEPT[name] = (date.fromordinal(lo), date.fromordinal(hi), table)
        except (OSError, ValueError, EOFError, TypeError):  # none kept, or unreadable: build it
            return None
    if held is not None and held[0] <= first and last <= held[1]:
        return held[2], held[0], held[1]
    return None


def _keep_table(name: str, cache_dir: Path | None, built: _Built) -> None:
    """Write ``built``'s table for the next runs (a table that cannot be written is only slower)."""
    if cache_dir is None or built.sessions is None:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=cache_dir)
        with os.fdopen(fd, "wb") as out:
            out.write(marshal.dumps((_table_key(), built.first.toordinal(), built.last.toordinal(), built.sessions)))
        os.replace(tmp, _table_path(name, cache_dir))
    except OSError:
        pass


def _session_table(cal: Any) -> SessionTimes:
    """Every session of ``cal`` as plain ints: numpy arrays, no pandas Timestamp per session."""
    if cal is None:
        return {}
    days = cal.sessions.to_numpy().astype("datetime64[D]").astype("int64").tolist()
    opens = cal.opens.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist()
    closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist()
    return {d + _EPOCH_ORDINAL: (o, c) for d, o, c in zip(days, opens, closes, strict=False)}


class ExchangeSession:
    """One exchange's sessions (``calendar`` is an exchange-calendars name, XNYS by default):
    the open and close of every session in a date range, whether it is open at a moment,
    and when that next changes."""

    def __init__(self, calendar: str = "XNYS", cache_dir: Path | None = None) -> None:
        self.name = calendar
        self.cache_dir = cache_dir  # where the session table is kept between runs (None: not kept)

    def sessions(self, first: date, last: date) -> SessionTimes:
        """Open and close (UTC epoch seconds) by date ordinal, for every session in [first, last]
        at least. Raises ValueError for an unknown calendar, CalendarSpanError for dates outside
        its bounds."""
        return self.sessions_through(first, last)[0]

    def sessions_through(self, first: date, last: date) -> tuple[SessionTimes, date, date]:
        """``sessions(first, last)`` and the dates the table is complete from and to (a span
        holding [first, last]).

        With a ``cache_dir``, a table kept by an earlier run that covers the dates is read
        instead of building the calendar (which imports pandas and exchange-calendars: most
        of a short replay's start)."""
        built = _BUILT.get(self.name)
        if built is None or not (built.first <= first and last <= built.last):
            kept = _kept_table(self.name, self.cache_dir, first, last)
            if kept is not None:
                return kept
            built = _covering(self.name, first, last)
        if built.sessions is None:
            built.sessions = _session_table(built.calendar)
        if self.cache_dir is not None and (self.name, self.cache_dir, built.last) not in _WRITTEN:
            _keep_table(self.name, self.cache_dir, built)
            _WRITTEN.add((self.name, self.cache_dir, built.last))
        return built.sessions, built.first, built.last

    def _live(self, when: datetime) -> tuple[Any, Any]:
        import pandas as pd

        ts = pd.Timestamp(when)
        ts = ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)  # naive means UTC
        day = ts.date()
        cal = _covering(self.name, day - _LIVE_BEFORE, day + _LIVE_AFTER).calendar
        if cal is None:
            raise CalendarSpanError(f"calendar {self.name} has no session near {day}")
        return cal, ts

    def is_open(self, when: datetime) -> bool:
        cal, ts = self._live(when)
        return bool(cal.is_open_on_minute(ts))

    def next_change(self, when: datetime) -> datetime:
        """The next open (when closed) or close (when open) after ``when``."""
        cal, ts = self._live(when)
        nxt = cal.next_close(ts) if cal.is_open_on_minute(ts) else cal.next_open(ts)
        when_next: datetime = nxt.to_pydatetime()  # pandas is untyped here: a Timestamp's datetime
        return when_next
