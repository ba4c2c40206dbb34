"""Equity over time: day P&L, max drawdown and a bounded curve for charts.

Fed once per engine batch (not per tick), in engine time, so it costs nothing on the hot
path and a replay and a live session read the same.
"""

from __future__ import annotations

from collections import deque
from datetime import date, datetime, tzinfo
from decimal import Decimal

ZERO = Decimal(0)


class EquityTracker:
    def __init__(self, tz: tzinfo, points: int = 2000) -> None:
        self.tz = tz
        self.curve: deque[tuple[datetime, Decimal]] = deque(maxlen=points)
        self.peak: Decimal | None = None
        self.max_drawdown = ZERO
        self.day: date | None = None
        self.day_open: Decimal | None = None
        self.last: Decimal | None = None

    def observe(self, ts: datetime, equity: Decimal) -> bool:
        """Record ``equity`` at ``ts``; True when ``ts`` starts a new exchange day."""
        day = ts.astimezone(self.tz).date()
        new_day = day != self.day
        if new_day:
            self.day = day
            self.day_open = self.last if self.last is not None else equity
        if self.peak is None or equity > self.peak:
            self.peak = equity
        drawdown = self.peak - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
        if not self.curve or self.curve[-1][0] != ts:
            self.curve.append((ts, equity))
        self.last = equity
        return new_day

    @property
    def day_pnl(self) -> Decimal:
        if self.last is None or self.day_open is None:
            return ZERO
        return self.last - self.day_open
