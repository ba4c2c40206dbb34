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
    """A fill reached the book; ``realized_pnl`` is what it realized (before commission)."""

    fill: Execution
    strategy: str
    realized_pnl: Decimal


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
