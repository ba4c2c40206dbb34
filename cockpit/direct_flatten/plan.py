"""What a direct flatten will do: the orders to cancel and the positions to close (pure).

Built from plain values read off IB Gateway (see ``run``), so it can be computed and
checked without a connection: the plan the operator confirms is exactly what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from core.domain.model import Side

NOT_US_STOCK = "not a US stock in USD: this command only trades stocks on SMART"
AMBIGUOUS = "two stock positions under one symbol: ambiguous"


class NotConfirmed(Exception):
    """``confirm`` refused: nothing was cancelled or sent. The message says why."""


def qty_text(q: Decimal) -> str:
    """A quantity as an operator reads it: 100, not 1E+2 or 100.0000."""
    return format(q.normalize(), "f") if q == q.to_integral_value() else format(q, "f")


@dataclass(frozen=True, slots=True)
class CancelItem:
    """An order open at IB, of any API client."""

    client_id: int
    order_id: int
    perm_id: int
    order_ref: str
    symbol: str
    action: str
    qty: Decimal
    order_type: str
    limit_price: Decimal | None

    @property
    def name(self) -> str:
        return self.order_ref or f"ib-perm-{self.perm_id}"

    def line(self) -> str:
        price = f" {qty_text(self.limit_price)}" if self.limit_price is not None else ""
        return (f"{self.action} {qty_text(self.qty)} {self.symbol} {self.order_type}{price} "
                f"(client {self.client_id}, permId {self.perm_id}, ref {self.order_ref or '-'})")


@dataclass(frozen=True, slots=True)
class Holding:
    """One position as IB reports it, in plain values."""

    symbol: str
    sec_type: str
    currency: str
    qty: Decimal
    con_id: int = 0
    avg_cost: Decimal | None = None

    @property
    def us_stock(self) -> bool:
        return self.sec_type == "STK" and (self.currency or "USD") == "USD"


@dataclass(frozen=True, slots=True)
class CloseItem:
    """A US stock position and the market orders that close it."""

    symbol: str
    position: Decimal
    chunks: tuple[Decimal, ...]
    notional: Decimal | None
    price_source: str

    @property
    def side(self) -> Side:
        return Side.SELL if self.position > 0 else Side.BUY

    def line(self) -> str:
        kind = "long" if self.position > 0 else "short"
        about = f", about {self.notional:,.2f} USD at {self.price_source}" if self.notional is not None else ""
        split = (f", in {len(self.chunks)} orders of at most {qty_text(max(self.chunks))}" if len(self.chunks) > 1
                 else "")
        return (f"{self.side} {qty_text(abs(self.position))} {self.symbol} at market "
                f"({kind} {qty_text(self.position)}{about}{split})")


@dataclass(frozen=True, slots=True)
class Untradable:
    """A position this command does not close (not a US stock on SMART): left for the operator."""

    symbol: str
    sec_type: str
    position: Decimal
    reason: str

    def line(self) -> str:
        return f"{self.symbol} {self.sec_type} {qty_text(self.position)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Plan:
    where: str
    cancels: tuple[CancelItem, ...]
    closes: tuple[CloseItem, ...]
    untradable: tuple[Untradable, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.cancels or self.closes or self.untradable)

    def lines(self) -> list[str]:
        out = [f"DIRECT FLATTEN ALL at {self.where}:"]
        if self.cancels:
            out.append(f"  cancel {len(self.cancels)} open order(s) (IB global cancel: every client's orders):")
            out += [f"    {c.line()}" for c in self.cancels]
        else:
            out.append("  no open orders (a global cancel is sent anyway)")
        if self.closes:
            out.append(f"  close {len(self.closes)} position(s) with market orders:")
            out += [f"    {c.line()}" for c in self.closes]
            total = sum((c.notional for c in self.closes if c.notional is not None), Decimal(0))
            out.append(f"  notional about {total:,.2f} USD")
        else:
            out.append("  no stock positions to close")
        if self.untradable:
            out.append("  NOT closed by this command (close them in TWS):")
            out += [f"    {u.line()}" for u in self.untradable]
        return out


def chunks_of(qty: Decimal, max_qty: Decimal) -> tuple[Decimal, ...]:
    """``qty`` (> 0) as orders of at most ``max_qty`` that add up to exactly ``qty``."""
    out: list[Decimal] = []
    left = qty
    while left > 0:
        part = min(left, max_qty)
        out.append(part)
        left -= part
    return tuple(out)


def split_positions(holdings: Iterable[Holding]) -> tuple[dict[str, Holding], list[Untradable]]:
    """The US stock positions this command closes, by symbol, and those it leaves alone.

    Two stock positions under one symbol are both left alone: an order by symbol could hit either.
    """
    stocks: dict[str, Holding] = {}
    ambiguous: set[str] = set()
    other: list[Untradable] = []
    for h in holdings:
        if not h.qty:
            continue
        if not h.us_stock:
            other.append(Untradable(h.symbol, h.sec_type or "?", h.qty, NOT_US_STOCK))
        elif h.symbol in stocks or h.symbol in ambiguous:
            other.append(Untradable(h.symbol, h.sec_type, h.qty, AMBIGUOUS))
            twin = stocks.pop(h.symbol, None)
            if twin is not None:
                other.append(Untradable(twin.symbol, twin.sec_type, twin.qty, AMBIGUOUS))
            ambiguous.add(h.symbol)
        else:
            stocks[h.symbol] = h
    return stocks, other


def quantities(stocks: dict[str, Holding]) -> dict[str, Decimal]:
    return {s: h.qty for s, h in stocks.items()}


def close_items(stocks: dict[str, Holding], marks: dict[int, Decimal], max_qty: Decimal) -> tuple[CloseItem, ...]:
    """One market close per stock position, in chunks of at most ``max_qty``, priced for the plan.

    ``marks``: IB's last mark by contract id; without one, the position's average cost.
    """
    items = []
    for symbol in sorted(stocks):
        h = stocks[symbol]
        mark = marks.get(h.con_id)
        price, source = (mark, "the last mark") if mark is not None else (h.avg_cost, "average cost")
        notional = (abs(h.qty) * price).quantize(Decimal("0.01")) if price is not None else None
        items.append(CloseItem(symbol, h.qty, chunks_of(abs(h.qty), max_qty), notional, source))
    return tuple(items)


def build_plan(where: str, cancels: Iterable[CancelItem], holdings: Iterable[Holding], marks: dict[int, Decimal],
               max_qty: Decimal) -> Plan:
    stocks, other = split_positions(holdings)
    return Plan(where, tuple(cancels), close_items(stocks, marks, max_qty), tuple(other))
