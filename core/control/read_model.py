"""Read-only pictures of the engine for the UI and the API.

The UI never reads engine objects while it draws: it asks for a snapshot (plain frozen
values) at a bounded rate, so a tick storm costs one snapshot per frame, not per tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from core.control.deadman import DeadmanView
from core.domain.events import IntentRejected
from core.domain.model import Order, OrderStatus
from core.portfolio.book import Portfolio


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_cost: Decimal
    last: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    unrealized_pct: Decimal | None
    realized_pnl: Decimal
    realized_today: Decimal


@dataclass(frozen=True, slots=True)
class OrderView:
    client_order_id: str
    strategy: str
    symbol: str
    side: str
    qty: Decimal
    filled_qty: Decimal
    order_type: str
    limit_price: Decimal | None
    status: OrderStatus
    created_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    taken_at: datetime  # engine clock (data time in a replay)
    mode: str  # PAPER or LIVE
    broker_kind: str
    broker_connected: bool
    feed: str
    last_event_at: datetime | None
    events_processed: int
    feed_age: float | None  # wall seconds since the feed last delivered
    cash: Decimal
    equity: Decimal
    realized: Decimal
    unrealized: Decimal
    commissions: Decimal
    positions: tuple[PositionView, ...]
    orders: tuple[OrderView, ...]
    rejections: tuple[IntentRejected, ...]
    day_pnl: Decimal
    max_drawdown: Decimal
    equity_curve: tuple[tuple[datetime, Decimal], ...]
    market_tz: tzinfo
    trading_state: str = "ACTIVE"
    trading_reason: str = ""
    deadman: DeadmanView | None = None
    strategies: tuple[tuple[str, bool], ...] = ()
    reduce_only_symbols: tuple[str, ...] = ()
    liquidation: dict[str, Any] | None = None
    broker_status: str = ""
    breaks: tuple[str, ...] = ()  # symbols with an unresolved reconciliation break
    hold: str | None = None  # why no new order passes right now (broker down, reconciling)

    @property
    def net(self) -> Decimal:
        return self.realized + self.unrealized - self.commissions


def position_views(portfolio: Portfolio, realized_at_day_open: dict[str, Decimal]) -> tuple[PositionView, ...]:
    views = []
    for p in sorted(portfolio.positions.values(), key=lambda p: p.symbol):
        if p.qty == 0 and p.realized_pnl == 0:
            continue
        cost = p.avg_cost * p.qty
        pct = (p.unrealized_pnl / abs(cost) * 100) if cost else None
        views.append(PositionView(p.symbol, p.qty, p.avg_cost, p.last_price, p.market_value,
                                  p.unrealized_pnl, pct, p.realized_pnl,
                                  p.realized_pnl - realized_at_day_open.get(p.symbol, Decimal(0))))
    return tuple(views)


def order_views(orders: list[Order], limit: int) -> tuple[OrderView, ...]:
    """Working orders first, then the most recent finished ones, at most ``limit``."""
    working = [o for o in orders if not o.status.is_terminal]
    done = [o for o in orders if o.status.is_terminal]
    picked = sorted(working, key=lambda o: o.created_at, reverse=True)
    picked += sorted(done, key=lambda o: o.updated_at or o.created_at, reverse=True)[: max(0, limit - len(picked))]
    return tuple(
        OrderView(o.client_order_id, o.strategy, o.symbol, o.side.value, o.qty, o.filled_qty, o.order_type.value,
                  o.limit_price, o.status, o.created_at, o.reason)
        for o in picked[:limit]
    )
