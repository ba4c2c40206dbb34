"""The pre-trade risk gate: nothing reaches a broker without passing it.

Basic checks for now: max order quantity, max order notional, max position per symbol
(counting working orders on the same side, so a burst of orders cannot step over it).
A refusal returns its reason; the caller turns it into an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.config import RiskConfig
from core.model import OrderType, Side


@dataclass(slots=True, frozen=True)
class OrderRequest:
    """What a strategy or operator asks for, before it becomes an Order."""

    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None


class RiskGate:
    def __init__(self, limits: RiskConfig) -> None:
        self.limits = limits

    def check(
        self,
        req: OrderRequest,
        *,
        position: Decimal,
        working_buy: Decimal,
        working_sell: Decimal,
        last_price: Decimal | None,
    ) -> str | None:
        """Return None when ``req`` may go, else the reason it may not."""
        lim = self.limits
        if req.qty <= 0:
            return f"quantity must be positive, got {req.qty}"
        if req.qty != req.qty.to_integral_value():
            return f"quantity must be whole shares, got {req.qty}"
        if req.order_type is OrderType.LIMIT:
            if req.limit_price is None or req.limit_price <= 0:
                return f"limit order needs a positive limit price, got {req.limit_price}"
        if req.qty > lim.max_order_qty:
            return f"qty {req.qty} exceeds max_order_qty {lim.max_order_qty}"
        price = req.limit_price if req.order_type is OrderType.LIMIT else last_price
        if price is None:
            return f"no price for {req.symbol} to value a market order"
        notional = req.qty * price
        if notional > lim.max_order_notional:
            return f"notional {notional:.2f} exceeds max_order_notional {lim.max_order_notional}"
        if req.side is Side.BUY:
            worst = position + working_buy + req.qty
        else:
            worst = position - working_sell - req.qty
        if abs(worst) > lim.max_position_qty and abs(worst) > abs(position):
            return (
                f"position {req.symbol} would reach {worst} (now {position}, working"
                f" +{working_buy}/-{working_sell}), beyond max_position_qty {lim.max_position_qty}"
            )
        return None
