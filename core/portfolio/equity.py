"""Equity over time: day P&L, max drawdown and a bounded curve for charts.

Fed once per engine batch (not per tick), in engine time, so it costs nothing on the hot
path and a replay and a live session read the same. A point is kept for the store at most
once a minute of engine time (and at every new day), so the curve, the peak and the max
drawdown survive a restart (``restore``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

ZERO = Decimal(0)
SAVE_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """What the store keeps of the curve: the point and the running figures at it."""

    ts: datetime
    equity: Decimal
    peak: Decimal
    max_drawdown: Decimal
    day_open: Decimal


class EquityTracker:
    def __init__(self, tz: tzinfo, points: int = 2000) -> None:
        self.tz = tz
        self.curve: deque[tuple[datetime, Decimal]] = deque(maxlen=points)
        self.peak: Decimal | None = None
        self.max_drawdown = ZERO
        self.day: date | None = None
        self.day_open: Decimal | None = None
        self.last: Decimal | None = None
        self._saved_at: datetime | None = None

    def restore(self, points: Iterable[EquityPoint]) -> None:
        """Rebuild from the stored points (oldest first): the curve, the peak, the drawdown."""
        for point in points:
            if not self.curve or self.curve[-1][0] != point.ts:
                self.curve.append((point.ts, point.equity))
            self.peak, self.max_drawdown = point.peak, point.max_drawdown
            self.day, self.day_open, self.last = point.ts.astimezone(self.tz).date(), point.day_open, point.equity
            self._saved_at = point.ts

    def to_save(self, ts: datetime, new_day: bool, *, force: bool = False) -> EquityPoint | None:
        """The point to store after ``observe(ts, ...)``, at most once a minute (and each new day,
        and when ``force``: the engine stops)."""
        if self.last is None or self.peak is None or self.day_open is None:
            return None
        if not (new_day or force) and self._saved_at is not None and ts - self._saved_at < SAVE_EVERY:
            return None
        self._saved_at = ts
        return EquityPoint(ts, self.last, self.peak, self.max_drawdown, self.day_open)

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
