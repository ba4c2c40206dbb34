"""Which exchange session a moment belongs to, from the one calendar wrapper (core/data/calendar.py).

A moment belongs to the first session whose close is at or after it: what happens after a
close (an order a strategy sends on the closing bar's reaction is at the close itself, so it
still counts) up to the next close is the next session's. Half days close early in the
calendar, so their summary comes at their early close.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from core.data.calendar import ExchangeSession, SessionTimes

_SPAN_BEFORE = timedelta(days=40)
_SPAN_AFTER = timedelta(days=400)
_FULL_DAY = timedelta(hours=6, minutes=30)
_AHEAD = timedelta(days=15)  # more than session_of makes sure the table covers first


@dataclass(frozen=True, slots=True)
class Session:
    day: date
    open: datetime
    close: datetime

    @property
    def half_day(self) -> bool:
        return self.close - self.open < _FULL_DAY


class SessionClock:
    """Session look-ups over a span of the calendar, widened when asked outside it."""

    def __init__(self, session: ExchangeSession) -> None:
        self.exchange = session
        self._closes: list[int] = []  # UTC epoch seconds, sorted
        self._sessions: list[Session] = []
        self._span: tuple[date, date] | None = None
        self._next = 0  # the index after the session ``after`` gave last (a guess, checked)

    @property
    def name(self) -> str:
        return self.exchange.name

    def _cover(self, first: date, last: date) -> None:
        if self._span is not None and self._span[0] <= first and last <= self._span[1]:
            return
        lo, hi = first - _SPAN_BEFORE, last + _SPAN_AFTER
        if self._span is not None:
            lo, hi = min(lo, self._span[0]), max(hi, self._span[1])
        table, complete_from, complete_to = self.exchange.sessions_through(lo, hi)
        # Every session of the table (usually 1990 to a year ahead), made once per process.
        self._sessions, self._closes = _sorted_sessions(table)
        self._span = (complete_from, complete_to)

    def session_of(self, when: datetime) -> Session:
        """The first session whose close is at or after ``when``."""
        day = when.astimezone(UTC).date()
        seconds = int(when.timestamp()) + (1 if when.microsecond else 0)
        for ahead in (timedelta(days=14), _SPAN_AFTER):
            self._cover(day, day + ahead)
            i = bisect_left(self._closes, seconds)
            if i < len(self._sessions):
                return self._sessions[i]
        raise LookupError(f"calendar {self.name} has no session after {when.isoformat()}")

    def after(self, session: Session) -> Session:
        """The session after ``session``."""
        sessions, span = self._sessions, self._span
        day = session.close.date()  # a table's closes are UTC (and whole seconds)
        if span is not None and span[0] <= day and day + _AHEAD <= span[1]:
            # session_of(close + 1 us), without its look-up: the table covers the next two weeks.
            # The table's sessions follow each other: the one after the last one asked for (the
            # session a close arms next) is the next in the table, unless it closes at the same time.
            i, closes = self._next, self._closes
            if not (0 < i < len(sessions) and sessions[i - 1] is session and closes[i] > closes[i - 1]):
                i = bisect_left(closes, int(session.close.timestamp()) + 1)
            if i < len(sessions):
                self._next = i + 1
                return sessions[i]
        return self.session_of(session.close + timedelta(microseconds=1))

    def before(self, session: Session) -> Session | None:
        """The session before ``session`` (None at the calendar's first)."""
        self._cover(session.day - timedelta(days=14), session.day)
        i = bisect_left(self._closes, int(session.close.timestamp()))
        return self._sessions[i - 1] if i > 0 else None


# id(table) -> (table, its sessions in time order, their closes): the table is held so that its id
# is never reused while it is here. Sessions are immutable: every clock shares them.
_SORTED: dict[int, tuple[SessionTimes, list[Session], list[int]]] = {}


def _sorted_sessions(table: SessionTimes) -> tuple[list[Session], list[int]]:
    made = _SORTED.get(id(table))
    if made is None:
        rows = sorted((close, ordinal, opened) for ordinal, (opened, close) in table.items())
        sessions = [Session(date.fromordinal(ordinal), datetime.fromtimestamp(opened, UTC),
                            datetime.fromtimestamp(close, UTC)) for close, ordinal, opened in rows]
        if len(_SORTED) >= 8:  # a calendar or two per process; rebuilt wider now and then
            _SORTED.clear()
        made = _SORTED[id(table)] = (table, sessions, [close for close, _, _ in rows])
    return made[1], made[2]
