"""The day at the exchange's close, as one frozen value: what the summary alert says, what
``cockpit report daily`` shows and what the store keeps per session.

Money is exact (Decimal); percentages are of the equity at the previous close
(``equity_open``). ``to_json`` is the stored and printed form: money and quantities as
decimal strings, counts as integers, times as ISO text.

The account's figures come from the book: ``net`` is the change of equity since the previous
close, ``realized`` and ``commissions`` sum the day's fills as the book booked them, and
``unrealized`` is the change of the open positions' unrealized P&L (``net - realized +
commissions``). Each owner's row (``strategies``) comes from that owner's own average cost
(its fills and their allocations), so the rows' ``net`` sum to the account's ``net``, while
their ``realized`` can split differently from the book's when owners share a symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.domain.frozen import quick_init
from core.domain.serialize import dec, money

SEVERITIES = ("info", "warning", "error", "critical")


def _opt_money(value: Decimal | None) -> str | None:
    return None if value is None else money(value)


@quick_init
@dataclass(frozen=True, slots=True)
class TradeLine:
    """One round trip closed today (see core/analytics/trades.py for what a trade is)."""

    strategy: str
    symbol: str
    direction: str  # "long" or "short"
    qty: Decimal  # the largest position the trade held
    pnl: Decimal  # realized minus the commissions of all its fills
    opened_at: datetime
    closed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "symbol": self.symbol, "direction": self.direction,
                "qty": dec(self.qty), "pnl": money(self.pnl), "opened_at": self.opened_at.isoformat(),
                "closed_at": self.closed_at.isoformat()}


@quick_init
@dataclass(frozen=True, slots=True)
class PositionLine:
    """A position held at the close, valued at the close's mark, with who holds it."""

    symbol: str
    qty: Decimal
    avg_cost: Decimal
    last: Decimal | None
    market_value: Decimal
    unrealized: Decimal
    owners: tuple[tuple[str, Decimal], ...]

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "qty": dec(self.qty), "avg_cost": money(self.avg_cost),
                "last": None if self.last is None else dec(self.last), "market_value": money(self.market_value),
                "unrealized": money(self.unrealized), "owners": {o: dec(q) for o, q in self.owners}}


@quick_init
@dataclass(frozen=True, slots=True)
class StrategyLine:
    """One owner's day (a strategy, or operator / external): its own P&L and activity.

    ``cumulative`` is its net P&L since its first fill, marked at this close: the metrics
    build its equity curve from it."""

    strategy: str
    realized: Decimal
    unrealized: Decimal
    commissions: Decimal
    net: Decimal
    net_pct: Decimal | None
    cumulative: Decimal
    orders: int
    fills: int
    refusals: int
    trades_closed: int
    market_value: Decimal  # signed value of its positions at the close
    open_positions: int

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "realized": money(self.realized), "unrealized": money(self.unrealized),
                "commissions": money(self.commissions), "net": money(self.net),
                "net_pct": _opt_money(self.net_pct), "cumulative": money(self.cumulative),
                "orders": self.orders, "fills": self.fills, "refusals": self.refusals,
                "trades_closed": self.trades_closed, "market_value": money(self.market_value),
                "open_positions": self.open_positions}


@quick_init
@dataclass(frozen=True, slots=True)
class DailySummary:
    date: date
    calendar: str
    session_open: datetime
    session_close: datetime
    half_day: bool
    equity_open: Decimal
    equity_close: Decimal
    realized: Decimal
    unrealized: Decimal
    commissions: Decimal
    total: Decimal  # realized + unrealized, before commissions
    net: Decimal  # total - commissions == equity_close - equity_open
    realized_pct: Decimal | None
    unrealized_pct: Decimal | None
    total_pct: Decimal | None
    net_pct: Decimal | None
    orders: int
    fills: int
    adjustments: int
    refusals: int  # the risk gate's (IntentRejected)
    rejected: int  # orders the broker or the OMS rejected
    trades_closed: int
    best_trade: TradeLine | None
    worst_trade: TradeLine | None
    max_intraday_drawdown: Decimal
    max_intraday_drawdown_pct: Decimal | None
    drawdown_samples: int  # equity values the drawdown was measured on (open and close included)
    daily_loss_limit: Decimal
    worst_day_pnl: Decimal  # the lowest equity - equity_open among those samples
    loss_limit_used_pct: Decimal
    loss_limit_hit: bool
    trading_state: str
    breaks_found: int
    breaks_resolved: int
    disconnects: int
    reconnects: int
    data_incidents: int
    alerts: tuple[tuple[str, int], ...]  # (severity, count) for info, warning, error, critical
    engine_starts: int  # starts during this session (a restart mid-day: see core/analytics/daily.py)
    positions: tuple[PositionLine, ...]
    strategies: tuple[StrategyLine, ...]

    def strategy(self, name: str) -> StrategyLine | None:
        return next((s for s in self.strategies if s.strategy == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(), "calendar": self.calendar,
            "session_open": self.session_open.isoformat(), "session_close": self.session_close.isoformat(),
            "half_day": self.half_day,
            "equity_open": money(self.equity_open), "equity_close": money(self.equity_close),
            "realized": money(self.realized), "unrealized": money(self.unrealized),
            "commissions": money(self.commissions), "total": money(self.total), "net": money(self.net),
            "realized_pct": _opt_money(self.realized_pct), "unrealized_pct": _opt_money(self.unrealized_pct),
            "total_pct": _opt_money(self.total_pct), "net_pct": _opt_money(self.net_pct),
            "orders": self.orders, "fills": self.fills, "adjustments": self.adjustments,
            "refusals": self.refusals, "rejected": self.rejected, "trades_closed": self.trades_closed,
            "best_trade": None if self.best_trade is None else self.best_trade.to_json(),
            "worst_trade": None if self.worst_trade is None else self.worst_trade.to_json(),
            "max_intraday_drawdown": money(self.max_intraday_drawdown),
            "max_intraday_drawdown_pct": _opt_money(self.max_intraday_drawdown_pct),
            "drawdown_samples": self.drawdown_samples,
            "daily_loss_limit": money(self.daily_loss_limit), "worst_day_pnl": money(self.worst_day_pnl),
            "loss_limit_used_pct": money(self.loss_limit_used_pct), "loss_limit_hit": self.loss_limit_hit,
            "trading_state": self.trading_state,
            "breaks_found": self.breaks_found, "breaks_resolved": self.breaks_resolved,
            "disconnects": self.disconnects, "reconnects": self.reconnects, "data_incidents": self.data_incidents,
            "alerts": dict(self.alerts), "engine_starts": self.engine_starts,
            "positions": [p.to_json() for p in self.positions],
            "strategies": [s.to_json() for s in self.strategies],
        }
