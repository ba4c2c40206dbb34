"""Average-cost position accounting: positions, cash, realized and unrealized P&L.

Realized P&L on a closing fill = (fill price - average cost) x closed qty x direction
(+1 closing a long, -1 closing a short). A fill that flips the position opens the
remainder at the fill price. Commissions are tracked apart; net = realized + unrealized
- commissions. All arithmetic is Decimal, never rounded inside, so an independent
recomputation from the fills agrees to the cent.

The book is the only writer of positions, cash and the owners' positions, and it changes
only by applying a fill (a trade, or an adjustment fill for an operator override or an
accepted break). Each fill is allocated to owners: a strategy's own order goes to that
strategy; a fill of any other owner (the liquidation, a manual order, an adjustment, a fill
the engine never ordered) first closes what that owner holds, then the positions of the
strategies that hold the symbol, and opens only the rest in its own bucket (the operator's
or the external one); one that takes the account flat takes every owner flat. So for every
symbol, book position == sum of the owners' positions, and a flatten takes every strategy's
book to zero with the account's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain.model import ADOPTED, EXTERNAL, LIQUIDATION, NON_STRATEGY_OWNERS, OPERATOR, ZERO, Execution
from core.portfolio.marks import Marks

Allocation = tuple[tuple[str, Decimal], ...]  # (owner, signed qty) per owner, summing to the fill's


def bucket_of(owner: str) -> str:
    """The book owner a fill of ``owner`` opens a position under (strategies: themselves)."""
    if owner == LIQUIDATION:
        return OPERATOR
    if owner == ADOPTED:
        return EXTERNAL
    return owner


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
        # Portfolio.equity inlines this formula (the gate asks for equity on every order): change both.
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
        self.marks = Marks()  # the last price of every symbol seen, held or not
        # (owner, symbol) -> signed qty; owners are strategies and NON_STRATEGY_OWNERS.
        self.owner_positions: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)

    def owner_qty(self, owner: str, symbol: str) -> Decimal:
        return self.owner_positions.get((owner, symbol), ZERO)

    def holders(self, symbol: str) -> dict[str, Decimal]:
        """Every owner with a nonzero position in ``symbol``."""
        return {o: q for (o, s), q in self.owner_positions.items() if s == symbol and q != ZERO}

    def allocate(self, owner: str, symbol: str, signed_qty: Decimal) -> Allocation:
        """Who a fill of ``signed_qty`` by ``owner`` belongs to (see the module docstring)."""
        if owner not in NON_STRATEGY_OWNERS:
            return ((owner, signed_qty),)
        bucket = bucket_of(owner)
        held = self.holders(symbol)
        if self.qty(symbol) + signed_qty == ZERO:
            # The fill flattens the account: every owner's book goes to zero with it, offsetting
            # positions (one strategy long, another short) included.
            flat = [(o, -q) for o, q in sorted(held.items())]
            rest = signed_qty - sum((q for _, q in flat), ZERO)
            if rest != ZERO:  # only if the owners ever disagreed with the book: the bucket takes the gap
                flat.append((bucket, rest))
            return tuple(flat)
        out: list[tuple[str, Decimal]] = []
        left = signed_qty
        # Its own bucket first, then the strategies, largest first (name breaks ties), then
        # the other non-strategy bucket: a closing fill closes what is there.
        order = [bucket] + sorted((o for o in held if o not in NON_STRATEGY_OWNERS), key=lambda o: (-abs(held[o]), o))
        order += sorted(o for o in held if o in NON_STRATEGY_OWNERS and o != bucket)
        for name in order:
            qty = held.get(name, ZERO)
            if left == ZERO:
                break
            if qty == ZERO or (qty > 0) == (left > 0):
                continue
            take = min(abs(qty), abs(left)) * (1 if left > 0 else -1)
            out.append((name, take))
            left -= take
        if left != ZERO:
            out.append((bucket, left))
        merged: dict[str, Decimal] = {}
        for name, qty in out:
            merged[name] = merged.get(name, ZERO) + qty
        return tuple(merged.items())

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def qty(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def apply_fill(self, fill: Execution, allocation: Allocation | None = None) -> Decimal:
        """Book ``fill``; return the realized P&L it produced. ``allocation`` (from
        ``allocate``) says whose it is; None books it whole under ``EXTERNAL``."""
        signed = fill.qty * fill.side.sign
        pos = self.position(fill.symbol)
        realized = pos.apply(signed, fill.price, fill.commission)
        self.cash -= signed * fill.price + fill.commission
        if pos.last_price is None:
            pos.last_price = fill.price
        for owner, qty in allocation if allocation is not None else ((EXTERNAL, signed),):
            key = (owner, fill.symbol)
            self.owner_positions[key] += qty
            if self.owner_positions[key] == ZERO:
                del self.owner_positions[key]
        return realized

    def mark(self, symbol: str, price: Decimal, ts: datetime) -> None:
        """The one writer of marks (the engine's hot loop inlines the same three stores)."""
        self.marks.price[symbol] = price
        self.marks.ts[symbol] = ts
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.last_price = price  # the position's valuation price: its copy of the mark

    def pnl(self) -> PnL:
        realized = unrealized = commissions = ZERO
        for pos in self.positions.values():
            realized += pos.realized_pnl
            unrealized += pos.unrealized_pnl
            commissions += pos.commissions
        return PnL(realized, unrealized, commissions)

    def equity(self) -> Decimal:
        # The gate asks on every order (its day P&L): a plain loop, the same sums in the same order.
        total = ZERO
        for p in self.positions.values():
            last = p.last_price
            total += p.avg_cost * p.qty if last is None else last * p.qty
        return self.cash + total

    def gross_exposure(self) -> Decimal:
        return sum((abs(p.market_value) for p in self.positions.values()), ZERO)
