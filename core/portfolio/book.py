"""Average-cost position accounting: positions, cash, realized and unrealized P&L.

Realized P&L on a closing fill = (fill price - average cost) x closed qty x direction
(+1 closing a long, -1 closing a short). A fill that flips the position opens the
remainder at the fill price. Commissions are tracked apart; net = realized + unrealized
- commissions. All arithmetic is Decimal, never rounded inside, so an independent
recomputation from the fills agrees to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.domain.model import ZERO, Execution


@dataclass(slots=True)
class Position:
    symbol: str
    qty: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    commissions: Decimal = ZERO
    last_price: Decimal | None = None

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.qty == 0 or self.last_price is None:
            return ZERO
        return (self.last_price - self.avg_cost) * self.qty

    @property
    def market_value(self) -> Decimal:
        if self.last_price is None:
            return self.avg_cost * self.qty
        return self.last_price * self.qty

    def apply(self, signed_qty: Decimal, price: Decimal, commission: Decimal) -> Decimal:
        """Apply one fill; return the realized P&L it produced (before commission)."""
        self.commissions += commission
        qty = self.qty
        realized = ZERO
        if qty == 0 or (qty > 0) == (signed_qty > 0):
            new_qty = qty + signed_qty
            self.avg_cost = (self.avg_cost * qty + price * signed_qty) / new_qty
            self.qty = new_qty
            return realized
        closing = min(abs(signed_qty), abs(qty))
        direction = 1 if qty > 0 else -1
        realized = (price - self.avg_cost) * closing * direction
        self.realized_pnl += realized
        new_qty = qty + signed_qty
        if new_qty == 0:
            self.avg_cost = ZERO
        elif (new_qty > 0) != (qty > 0):
            self.avg_cost = price  # flipped: the remainder opens at the fill price
        self.qty = new_qty
        return realized


@dataclass(slots=True, frozen=True)
class PnL:
    realized: Decimal
    unrealized: Decimal
    commissions: Decimal

    @property
    def net(self) -> Decimal:
        return self.realized + self.unrealized - self.commissions


class Portfolio:
    """The engine's book: one Position per symbol plus cash."""

    def __init__(self, cash: Decimal = ZERO) -> None:
        self.cash = cash
        self.positions: dict[str, Position] = {}

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def qty(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def apply_fill(self, fill: Execution) -> Position:
        signed = fill.qty * fill.side.sign
        pos = self.position(fill.symbol)
        pos.apply(signed, fill.price, fill.commission)
        self.cash -= signed * fill.price + fill.commission
        if pos.last_price is None:
            pos.last_price = fill.price
        return pos

    def mark(self, symbol: str, price: Decimal) -> None:
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.last_price = price

    def pnl(self) -> PnL:
        realized = unrealized = commissions = ZERO
        for pos in self.positions.values():
            realized += pos.realized_pnl
            unrealized += pos.unrealized_pnl
            commissions += pos.commissions
        return PnL(realized, unrealized, commissions)

    def equity(self) -> Decimal:
        return self.cash + sum((p.market_value for p in self.positions.values()), ZERO)

    def gross_exposure(self) -> Decimal:
        return sum((abs(p.market_value) for p in self.positions.values()), ZERO)
