"""When each bar of a file starts and ends, in UTC, and which rows timing refuses.

Daily bars take their exchange session's open and close from ``core.data.calendar`` (so
early closes are right and a date that is no session is dropped); without a calendar they
span 09:30-16:00 local. Intraday stamps are local wall time in the file's zone: converted to
UTC (a time in a DST gap is dropped, a repeated hour resolved forwards), kept only while
they increase, and spanned by the bar length (given, or the most common step).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from core.data.bar_file_model import BarFileError, Row
from core.data.calendar import CalendarSpanError, ExchangeSession
from core.domain.model import Bar

__all__ = ["LocalToUtc", "daily_bars", "intraday_bars"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCAL_OPEN, _LOCAL_CLOSE = time(9, 30), time(16, 0)  # a daily bar's span without a calendar


class LocalToUtc:
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


def _session_spans(
    days: list[date], zone: ZoneInfo, calendar: str | None
) -> Callable[[date], tuple[datetime, datetime] | None]:
    """date -> (open, close) in UTC, or None when it is no session of ``calendar``."""
    if calendar is None:

        def local_span(d: date) -> tuple[datetime, datetime]:
            return (
                datetime.combine(d, _LOCAL_OPEN, zone).astimezone(UTC),
                datetime.combine(d, _LOCAL_CLOSE, zone).astimezone(UTC),
            )

        return local_span
    try:
        sessions = ExchangeSession(calendar).sessions(min(days), max(days))
    except CalendarSpanError as exc:
        raise BarFileError(f"{exc}; pass calendar=None") from exc

    def session_span(d: date) -> tuple[datetime, datetime] | None:
        times = sessions.get(d.toordinal())
        if times is None:
            return None
        return _EPOCH + timedelta(seconds=times[0]), _EPOCH + timedelta(seconds=times[1])

    return session_span


def daily_bars(
    rows: list[Row],
    symbol: str,
    zone: ZoneInfo,
    calendar: str | None,
    drop: Callable[[int, str], None],
) -> list[Bar]:
    """Give each daily row its session's open/close (calendar) or 09:30-16:00 local."""
    span_of = _session_spans([r[1] for r in rows], zone, calendar)
    bars: list[Bar] = []
    prev: date | None = None
    for line_no, d, o, h, lo, c, v in rows:
        assert isinstance(d, date)
        span = span_of(d)
        if span is None:
            drop(line_no, f"{d.isoformat()} is not a {calendar} session")
            continue
        if prev is not None and d <= prev:
            drop(line_no, f"timestamp not after previous bar ({d.isoformat()} <= {prev.isoformat()})")
            continue
        prev = d
        bars.append(Bar(symbol, span[0], span[1], o, h, lo, c, v))
    return bars


def intraday_bars(
    rows: list[Row],
    symbol: str,
    zone: ZoneInfo,
    tz: str,
    bar_time: str,
    bar_seconds: int | None,
    drop: Callable[[int, str], None],
    path: Path | str,
) -> list[Bar]:
    """Convert local stamps to UTC, enforce increasing time, and span each bar (``path`` names
    the file in messages)."""
    conv = LocalToUtc(zone, tz)
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
        steps = Counter(b[0] - a[0] for a, b in pairwise(kept))
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
