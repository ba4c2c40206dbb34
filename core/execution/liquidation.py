"""Emergency liquidation: close positions with reduce-only market orders until flat.

A job, not a one-shot: the engine steps it after every batch of market data and order
events. For each symbol it first waits for the symbol's other orders to be cancelled
(their quantities would otherwise count against the reduce-only check), then sends one
reduce-only market order at a time, at most ``max_order_qty`` each, through the risk
gate like any other order. A refused or unfilled attempt is retried when a newer quote
arrives, up to ``max_attempts`` per symbol. The job ends when every symbol is flat, when
it gives up on the last one, or when the operator stops it (resume).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.domain.model import LIQUIDATION, ZERO, OrderType, Side, TimeInForce
from core.risk.gate import LIQUIDATION_SOURCE, OrderRequest

if TYPE_CHECKING:
    from core.execution.oms import OrderManager
    from core.portfolio.book import Portfolio

__all__ = ["LIQUIDATION", "Liquidation", "SymbolProgress"]  # LIQUIDATION: the owner name its orders carry


@dataclass(slots=True)
class SymbolProgress:
    symbol: str
    start_qty: Decimal
    attempts: int = 0
    orders: list[str] = field(default_factory=list)
    last_quote_tried: datetime | None = None
    last_refusal: str | None = None
    outcome: str = "working"  # working | flat | gave up


@dataclass(slots=True)
class Liquidation:
    job_id: str
    started_at: datetime
    actor: str
    symbols: dict[str, SymbolProgress]
    cancelled: list[str]
    max_attempts: int = 10
    stopped: str | None = None

    @property
    def done(self) -> bool:
        return self.stopped is not None or all(p.outcome != "working" for p in self.symbols.values())

    def summary(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "started_at": self.started_at.isoformat(),
            "actor": self.actor,
            "done": self.done,
            "stopped": self.stopped,
            "cancelled_orders": list(self.cancelled),
            "symbols": {
                s: {"start_qty": str(p.start_qty), "outcome": p.outcome, "attempts": p.attempts,
                    "orders": list(p.orders), "last_refusal": p.last_refusal}
                for s, p in self.symbols.items()
            },
        }

    def step(self, oms: OrderManager, portfolio: Portfolio, quote_ts: dict[str, datetime]) -> bool:
        """Advance every symbol; True if an order was queued (the caller sends it)."""
        if self.done:
            return False
        queued = False
        for progress in self.symbols.values():
            if progress.outcome != "working":
                continue
            pos = portfolio.qty(progress.symbol)
            if pos == ZERO:
                progress.outcome = "flat"
                continue
            working = [o for o in oms.open_orders.values() if o.symbol == progress.symbol]
            if working:
                for order in working:  # anything else still live in the symbol: cancel, then wait
                    if order.strategy != LIQUIDATION:
                        oms.cancel(order.client_order_id)
                continue
            seen = quote_ts.get(progress.symbol)
            if progress.attempts and seen == progress.last_quote_tried:
                continue  # retry only on a newer quote
            if progress.attempts >= self.max_attempts:
                progress.outcome = "gave up"
                continue
            progress.attempts += 1
            progress.last_quote_tried = seen
            qty = min(abs(pos), oms.gate.limits.max_order_qty)
            side = Side.SELL if pos > 0 else Side.BUY
            req = OrderRequest(LIQUIDATION, progress.symbol, side, qty, OrderType.MARKET,
                               reduce_only=True, source=LIQUIDATION_SOURCE)
            sent = oms.submit(req, TimeInForce.DAY)
            if sent is None:
                progress.last_refusal = oms.last_refusal
            else:
                progress.orders.append(sent.client_order_id)
                queued = True
        return queued
