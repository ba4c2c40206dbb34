"""When the exchange is in session (exchange-calendars), so that live trading arms the
dead-man only while the market is open: holidays and half days included."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


class ExchangeSession:
    """Is ``calendar`` (an exchange-calendars name, XNYS by default) open at a moment, and
    when does that next change. The calendar is built for about a year around the first
    question and rebuilt when a question falls outside it (building costs ~0.1 s)."""

    def __init__(self, calendar: str = "XNYS") -> None:
        self.name = calendar
        self._cal: Any = None
        self._span: tuple[datetime, datetime] | None = None

    def _calendar(self, when: datetime) -> Any:
        if self._span is None or not (self._span[0] <= when <= self._span[1]):
            import exchange_calendars as xc

            start, end = when - timedelta(days=30), when + timedelta(days=366)
            self._cal = xc.get_calendar(self.name, start=start.date().isoformat(), end=end.date().isoformat())
            self._span = (start + timedelta(days=1), end - timedelta(days=14))
        return self._cal

    def is_open(self, when: datetime) -> bool:
        import pandas as pd

        return bool(self._calendar(when).is_open_on_minute(pd.Timestamp(when)))

    def next_change(self, when: datetime) -> datetime:
        """The next open (when closed) or close (when open) after ``when``."""
        import pandas as pd

        cal = self._calendar(when)
        ts = pd.Timestamp(when)
        nxt = cal.next_close(ts) if cal.is_open_on_minute(ts) else cal.next_open(ts)
        return nxt.to_pydatetime()
