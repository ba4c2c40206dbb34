"""The domain model: instruments' market data, orders, fills, broker reports.

Money and quantities are ``Decimal`` everywhere outside strategy math, so that P&L
reconciles to the cent with an independent recomputation from the fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)

# Owners of book entries that are not strategies. Every fill belongs to one owner; the book
# position of a symbol is the sum of its owners' positions (strategies and these).
OPERATOR = "operator"  # manual orders and position overrides: the operator's own position
EXTERNAL = "external"  # fills the engine never ordered (placed at the broker by hand), accepted breaks
ADOPTED = "adopted"  # broker orders the operator adopted: their fills are external
LIQUIDATION = "operator:flatten"  # the emergency liquidation's orders: they close the holders' positions
NON_STRATEGY_OWNERS = frozenset({OPERATOR, EXTERNAL, ADOPTED, LIQUIDATION})


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the direction a fill moves the position."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"


class OrderStatus(StrEnum):
    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    PENDING_CANCEL = "PENDING_CANCEL"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_working(self) -> bool:
        """May still fill at the broker (or might: UNKNOWN counts as working)."""
        return self not in _TERMINAL and self is not OrderStatus.NEW


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


@dataclass(slots=True)
class Bar:
    """One OHLCV bar. ``ts`` is the bar's end (when it became known), ``start`` its start."""

    symbol: str
    start: datetime
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(slots=True)
class Quote:
    """A top-of-book quote. ``volume`` is the traded volume since the previous quote, if known."""

    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal
    last: Decimal
    volume: Decimal | None = None


@dataclass(slots=True)
class Order:
    """An order as the engine knows it; ``client_order_id`` is ours and survives restarts."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    tif: TimeInForce
    limit_price: Decimal | None
    created_at: datetime
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    broker_order_id: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def signed_remaining(self) -> Decimal:
        return self.remaining * self.side.sign


@dataclass(slots=True, frozen=True)
class Execution:
    """One fill reported by a broker. ``exec_id`` makes a repeated report recognisable."""

    exec_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    commission: Decimal
    ts: datetime
    broker_order_id: str | None = None


@dataclass(slots=True, frozen=True)
class OrderUpdate:
    """A broker's word on an order's status (ack, cancel, reject); fills come as Executions."""

    client_order_id: str
    status: OrderStatus
    ts: datetime
    broker_order_id: str | None = None
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class BrokerPosition:
    symbol: str
    qty: Decimal
    avg_cost: Decimal


@dataclass(slots=True, frozen=True)
class AccountSnapshot:
    cash: Decimal
    equity: Decimal | None = None
    currency: str = "USD"
    extra: dict[str, str] = field(default_factory=dict)
