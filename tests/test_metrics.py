from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from core.portfolio.equity import EquityTracker

NY = ZoneInfo("America/New_York")


def at(day: int, hour: int) -> datetime:
    return datetime(2020, 1, day, hour, tzinfo=timezone.utc)


def test_day_pnl_resets_at_the_exchange_date_and_drawdown_is_peak_to_trough() -> None:
    t = EquityTracker(NY, points=3)
    t.observe(at(2, 15), D(100))
    t.observe(at(2, 20), D(110))
    assert t.day_pnl == D(10)
    t.observe(at(3, 2), D(105))  # 21:00 New York on Jan 2: still that exchange day
    assert t.day_pnl == D(5)
    t.observe(at(3, 15), D(90))  # Jan 3 in New York: the day opens at the last value, 105
    assert t.day_pnl == D(-15)
    assert t.max_drawdown == D(20)
    t.observe(at(3, 16), D(130))
    assert t.max_drawdown == D(20) and len(t.curve) == 3  # bounded
