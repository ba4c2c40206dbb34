"""The one wrapper over exchange-calendars: when an exchange is in session.

Two jobs read it: the bar-file reader (each daily bar gets its session's open and close, so
early closes are right) and live trading (the dead-man is armed only while the market is
open, holidays and half days included). Both go through ``ExchangeSession`` so that they
cannot disagree, and both share one built calendar per exchange: building one costs
~0.1-0.3 s whatever its span, so a wide one (1990 to a year ahead) is built once and only
rebuilt, wider, for a question outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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

    def __init__(self, calendar: str = "XNYS") -> None:
        self.name = calendar

    def sessions(self, first: date, last: date) -> SessionTimes:
        """Open and close (UTC epoch seconds) by date ordinal, for every session in [first, last]
        at least. Raises ValueError for an unknown calendar, CalendarSpanError for dates outside
        its bounds."""
        built = _covering(self.name, first, last)
        if built.sessions is None:
            built.sessions = _session_table(built.calendar)
        return built.sessions

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
