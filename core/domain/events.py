"""Events the engine publishes on the bus after its state changed (for store, UI, API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain.model import Execution, Order, Side


@dataclass(slots=True, frozen=True)
class OrderChanged:
    """An order was created or changed status; ``order`` is the live object."""

    order: Order


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


@dataclass(slots=True, frozen=True)
class FeedExhausted:
    feed: str
