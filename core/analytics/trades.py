"""Each owner's own book from the fills and their allocations, and the round trips it makes.

**What a trade is.** A trade is one round trip of one owner (a strategy, or operator /
external) in one symbol: it opens with the fill that takes that owner's position in the
symbol away from zero and closes with the fill that brings it back to zero. Fills in between
(scaling in or out, partial fills) belong to it. A fill that flips the position (long 100,
sell 150) closes the trade at that fill and opens a new one, short 50, at the fill's price.
A fill is split between owners by its allocation (``fill_allocations``: a liquidation or an
operator's fill that closes a strategy's position closes that strategy's trade); fills
written before allocations were recorded belong to the fill's strategy.

**Its P&L.** Realized P&L on the owner's own average cost (as the book computes it for the
account), minus the commissions of every fill of the trade, opening ones included. A fill's
commission is shared between its owners by quantity, and a flipping fill's share between the
trade it closes and the one it opens the same way. A flat-to-flat trade's P&L is therefore
exactly its cash flow: what it sold for minus what it paid, minus commissions.

Adjustment fills (an operator's override, an accepted break) move positions like any fill,
so they open, grow or close trades too: the trade's P&L then says what the book says.
Only closed trades count in the statistics; the ones still open are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal(0)

PriceOf = Callable[[str], Decimal | None]


class FillRecord(NamedTuple):
    """A fill as the analytics need it; ``signed_qty`` is + for a buy, - for a sell."""

    exec_id: str
    ts: datetime
    owner: str  # the fill's owner (its order's strategy, operator, external ...)
    symbol: str
    signed_qty: Decimal
    price: Decimal
    commission: Decimal
    realized: Decimal  # what the book (account-wide average cost) realized on it
    allocation: tuple[tuple[str, Decimal], ...] = ()  # (owner, signed qty), summing to signed_qty
    kind: str = "trade"

    def shares(self) -> tuple[tuple[str, Decimal], ...]:
        return self.allocation or ((self.owner, self.signed_qty),)


class Trade(NamedTuple):
    owner: str
    symbol: str
    direction: int  # +1 long, -1 short
    opened_at: datetime
    closed_at: datetime | None  # None: still open
    max_qty: Decimal
    realized: Decimal
    commissions: Decimal
    fills: int

    @property
    def pnl(self) -> Decimal:
        return self.realized - self.commissions

    @property
    def side(self) -> str:
        return "long" if self.direction > 0 else "short"


class _Holding:
    __slots__ = ("qty", "avg_cost", "opened_at", "realized", "commissions", "fills", "max_qty")

    def __init__(self, qty: Decimal, avg_cost: Decimal, opened_at: datetime, realized: Decimal = ZERO,
                 commissions: Decimal = ZERO, fills: int = 1, max_qty: Decimal = ZERO) -> None:
        self.qty = qty
        self.avg_cost = avg_cost
        self.opened_at = opened_at
        self.realized = realized
        self.commissions = commissions
        self.fills = fills
        self.max_qty = max_qty

    def trade(self, owner: str, symbol: str, closed_at: datetime | None) -> Trade:
        return Trade(owner, symbol, 1 if self.qty > 0 else -1, self.opened_at, closed_at, self.max_qty,
                     self.realized, self.commissions, self.fills)


def _split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` shared by ``weights`` (non-negative); the parts sum to ``total`` exactly."""
    whole = sum(weights, ZERO)
    if whole == 0:
        return [ZERO for _ in weights]
    parts = [total * w / whole for w in weights[:-1]]
    return [*parts, total - sum(parts, ZERO)]


class OwnerLedger:
    """Positions, realized P&L and commissions per owner; ``apply`` returns the trades a fill closed."""

    def __init__(self) -> None:
        self.holdings: dict[tuple[str, str], _Holding] = {}
        self.realized: dict[str, Decimal] = {}
        self.commissions: dict[str, Decimal] = {}

    @property
    def owners(self) -> set[str]:
        return set(self.realized) | set(self.commissions)

    def apply(self, fill: FillRecord) -> list[Trade]:
        shares = fill.shares()
        if len(shares) == 1:  # one owner (the usual fill): its commission whole, as _split gives it
            (owner, signed), = shares
            if signed == 0:
                return []
            commission = fill.commission - ZERO  # what _split([w]) gives: total - sum([]), the same Decimal
            self.commissions[owner] = self.commissions.get(owner, ZERO) + commission
            self.realized.setdefault(owner, ZERO)
            return self._move(owner, fill, signed, commission)
        commissions = _split(fill.commission, [abs(q) for _, q in shares])
        closed: list[Trade] = []
        for (owner, signed), commission in zip(shares, commissions, strict=True):
            if signed == 0:
                continue
            self.commissions[owner] = self.commissions.get(owner, ZERO) + commission
            self.realized.setdefault(owner, ZERO)
            closed += self._move(owner, fill, signed, commission)
        return closed

    def _move(self, owner: str, fill: FillRecord, signed: Decimal, commission: Decimal) -> list[Trade]:
        key = (owner, fill.symbol)
        held = self.holdings.get(key)
        if held is None:
            self.holdings[key] = _Holding(signed, fill.price, fill.ts, commissions=commission, max_qty=abs(signed))
            return []
        if (held.qty > 0) == (signed > 0):
            new_qty = held.qty + signed
            held.avg_cost = (held.avg_cost * held.qty + fill.price * signed) / new_qty
            held.qty = new_qty
            held.commissions += commission
            held.fills += 1
            held.max_qty = max(held.max_qty, abs(new_qty))
            return []
        closing = min(abs(signed), abs(held.qty))
        direction = 1 if held.qty > 0 else -1
        realized = (fill.price - held.avg_cost) * closing * direction
        closing_commission, opening_commission = _split(commission, [closing, abs(signed) - closing])
        self.realized[owner] += realized
        held.realized += realized
        held.commissions += closing_commission
        held.fills += 1
        new_qty = held.qty + signed
        if new_qty != 0 and (new_qty > 0) == (held.qty > 0):
            held.qty = new_qty  # scaled out: the trade goes on at the same average cost
            return []
        done = held.trade(owner, fill.symbol, fill.ts)
        del self.holdings[key]
        if new_qty != 0:  # flipped: the remainder opens a new trade at the fill's price
            self.holdings[key] = _Holding(new_qty, fill.price, fill.ts, commissions=opening_commission,
                                          max_qty=abs(new_qty))
        return [done]

    def qty(self, owner: str, symbol: str) -> Decimal:
        held = self.holdings.get((owner, symbol))
        return held.qty if held is not None else ZERO

    def unrealized(self, owner: str, price_of: PriceOf) -> Decimal:
        total = ZERO
        for (o, symbol), held in self.holdings.items():
            if o == owner:
                mark = price_of(symbol)
                if mark is not None:
                    total += (mark - held.avg_cost) * held.qty
        return total

    def market_value(self, owner: str, price_of: PriceOf) -> Decimal:
        total = ZERO
        for (o, symbol), held in self.holdings.items():
            if o == owner:
                mark = price_of(symbol)
                total += (mark if mark is not None else held.avg_cost) * held.qty
        return total

    def open_positions(self, owner: str) -> int:
        return sum(1 for (o, _), held in self.holdings.items() if o == owner and held.qty != 0)

    def figures(self, owner: str, price_of: PriceOf) -> tuple[Decimal, Decimal, int]:
        """``(cumulative(owner), market_value(owner), open_positions(owner))`` in one pass over
        the holdings (the same sums, added in the same order)."""
        unrealized = value = ZERO
        held_open = 0
        for (o, symbol), held in self.holdings.items():
            if o == owner:
                mark = price_of(symbol)
                qty = held.qty
                if mark is not None:
                    unrealized += (mark - held.avg_cost) * qty
                    value += mark * qty
                else:
                    value += held.avg_cost * qty
                if qty != 0:
                    held_open += 1
        cumulative = self.realized.get(owner, ZERO) - self.commissions.get(owner, ZERO) + unrealized
        return cumulative, value, held_open

    def cumulative(self, owner: str, price_of: PriceOf) -> Decimal:
        """The owner's net P&L since its first fill: realized - commissions + unrealized at the marks."""
        return (self.realized.get(owner, ZERO) - self.commissions.get(owner, ZERO)
                + self.unrealized(owner, price_of))

    def open_trades(self) -> list[Trade]:
        return [held.trade(owner, symbol, None) for (owner, symbol), held in sorted(self.holdings.items())]


def round_trips(fills: Iterable[FillRecord]) -> tuple[list[Trade], list[Trade]]:
    """(closed trades in the order they closed, trades still open) from fills oldest first."""
    ledger = OwnerLedger()
    closed: list[Trade] = []
    for fill in fills:
        closed += ledger.apply(fill)
    return closed, ledger.open_trades()


class TradeStats(NamedTuple):
    """Statistics of closed trades. A win has P&L > 0, a loss < 0; a trade at exactly zero is
    neither but counts in ``trades``. ``expectancy`` is the mean P&L per trade (money; equal to
    win rate x average win - loss rate x |average loss|); ``expectancy_ratio`` is Lean's
    (win rate x average win / |average loss| - loss rate). None where undefined (no trades, no
    loss for the profit factor, no win or no loss for the ratio)."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    loss_rate: float | None
    gross_profit: Decimal
    gross_loss: Decimal  # negative or zero
    net_profit: Decimal
    profit_factor: float | None
    expectancy: Decimal | None
    expectancy_ratio: float | None
    average_win: Decimal | None
    average_loss: Decimal | None  # negative
    largest_win: Decimal | None
    largest_loss: Decimal | None
    open_trades: int


def trade_stats(closed: list[Trade], open_trades: int = 0) -> TradeStats:
    pnls = [t.pnl for t in closed]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    n = len(pnls)
    gross_profit = sum(wins, ZERO)
    gross_loss = sum(losses, ZERO)
    average_win = gross_profit / len(wins) if wins else None
    average_loss = gross_loss / len(losses) if losses else None
    win_rate = len(wins) / n if n else None
    loss_rate = len(losses) / n if n else None
    ratio = None
    if win_rate is not None and loss_rate is not None and average_win is not None and average_loss is not None:
        ratio = win_rate * float(average_win / -average_loss) - loss_rate
    return TradeStats(
        trades=n, wins=len(wins), losses=len(losses), win_rate=win_rate, loss_rate=loss_rate,
        gross_profit=gross_profit, gross_loss=gross_loss, net_profit=gross_profit + gross_loss,
        profit_factor=float(gross_profit / -gross_loss) if losses else None,
        expectancy=(gross_profit + gross_loss) / n if n else None, expectancy_ratio=ratio,
        average_win=average_win, average_loss=average_loss,
        largest_win=max(wins) if wins else None, largest_loss=min(losses) if losses else None,
        open_trades=open_trades,
    )
