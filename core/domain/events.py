"""Events the engine publishes on the bus after its state changed.

Every change of state is one of these. The store, the audit trail, the alerts, the read model
(TUI, API) and anything added later (Discord, email, Prometheus) subscribe to them; none of
them is called by hand from the engine, so adding a subscriber never means touching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain.model import Execution, Order, OrderStatus, OrderType, Side


@dataclass(slots=True, frozen=True)
class OrderChanged:
    """An order was created or changed status; ``order`` is the live object.

    ``previous`` is the status before (None: the order was just created, after passing the
    gate); ``reason`` why it moved; ``source`` who asked for a new order (strategy, operator,
    liquidation); ``broker`` the venue it was sent to (status SUBMITTED)."""

    order: Order
    previous: OrderStatus | None = None
    reason: str | None = None
    source: str | None = None
    reduce_only: bool = False
    broker: str | None = None
    adopted: bool = False


@dataclass(slots=True, frozen=True)
class FillApplied:
    """A fill reached the book; ``realized_pnl`` is what it realized (before commission).

    ``strategy`` is the fill's owner (the order's strategy, or operator/external);
    ``allocation`` says whose positions it moved ((owner, signed qty), summing to the
    fill); ``kind`` is "trade" or "adjustment" (an override or an accepted break)."""

    fill: Execution
    strategy: str
    realized_pnl: Decimal
    allocation: tuple[tuple[str, Decimal], ...] = ()
    kind: str = "trade"
    actor: str = "broker"
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class IntentRejected:
    """The risk gate (or the OMS) refused an intent; ``reason`` says why."""

    ts: datetime
    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    reason: str
    source: str = "strategy"
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None


@dataclass(slots=True, frozen=True)
class SignalRaised:
    """A strategy asked for a trade (a target position or an order), before the gate."""

    strategy: str
    symbol: str
    detail: dict[str, object]


@dataclass(slots=True, frozen=True)
class TradingStateChanged:
    old: str
    new: str
    reason: str


@dataclass(slots=True, frozen=True)
class SettingChanged:
    """A run-time setting the operator changed (a limit, a strategy on/off, reduce-only
    symbols); persisted so it survives a restart. ``key`` as in the settings table."""

    key: str
    value: str


@dataclass(slots=True, frozen=True)
class BrokerConnectionChanged:
    broker: str
    up: bool
    reason: str


@dataclass(slots=True, frozen=True)
class HoldChanged:
    """Why no new order may go right now (None: they may again)."""

    hold: str | None


@dataclass(slots=True, frozen=True)
class ReconcilePassed:
    reason: str
    differences: int
    missed_fills: int
    new_breaks: tuple[str, ...]
    at: datetime


@dataclass(slots=True, frozen=True)
class MissedFillFound:
    """Reconciliation found a broker execution the engine never booked (it is then applied)."""

    fill: Execution


@dataclass(slots=True, frozen=True)
class BreakFound:
    symbol: str
    summary: str
    reason: str
    differences: tuple[dict[str, str], ...]


@dataclass(slots=True, frozen=True)
class BreakResolved:
    symbol: str
    action: str
    actor: str


@dataclass(slots=True, frozen=True)
class DeadmanChanged:
    """The dead-man switch moved: armed, confirmed, warning, missed, disarmed."""

    kind: str  # "deadman.<phase>"
    actor: str
    detail: dict[str, object]


@dataclass(slots=True, frozen=True)
class LiquidationFinished:
    job_id: str
    actor: str
    summary: dict[str, object]


@dataclass(slots=True, frozen=True)
class CommandHandled:
    """An operator command ran (``refused`` None) or was refused (the reason)."""

    command: str
    actor: str
    reason: str | None
    message: str
    before: object = None
    after: object = None
    detail: dict[str, object] | None = None
    refused: str | None = None


@dataclass(slots=True, frozen=True)
class FeedHealthChanged:
    """The feed went stale (``healthy`` False, with why) or delivers again."""

    feed: str
    healthy: bool
    reason: str


@dataclass(slots=True, frozen=True)
class EngineError:
    """Something failed inside the engine that the operator must hear about."""

    where: str
    message: str


@dataclass(slots=True, frozen=True)
class StrategyQuarantined:
    strategy: str
    symbol: str | None
    error: str


@dataclass(slots=True, frozen=True)
class FeedExhausted:
    feed: str


@dataclass(slots=True, frozen=True)
class EquityRecorded:
    """A point of the equity curve worth keeping (at most one a minute): the store saves it."""

    ts: datetime
    equity: Decimal
    peak: Decimal
    max_drawdown: Decimal
    day_open: Decimal
