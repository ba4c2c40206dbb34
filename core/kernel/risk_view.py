"""The read-only picture of the book the risk gate checks orders against (``RiskView``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from core.common.clock import Clock
from core.domain.model import ZERO, Side
from core.portfolio.book import Portfolio

if TYPE_CHECKING:
    from core.execution.oms import OrderManager


class BookView:
    """Reads the engine's live objects; nothing is copied, so a check costs a few lookups."""

    def __init__(self, *, clock: Clock, portfolio: Portfolio, oms: OrderManager, quote_ts: dict[str, datetime],
                 day_open_equity: Callable[[], Decimal | None]) -> None:
        self._clock = clock
        self._portfolio = portfolio
        self._oms = oms
        self._quote_ts = quote_ts
        self._day_open_equity = day_open_equity
        self._positions = portfolio.positions  # the same dict for the book's life
        self._prices = oms.last_prices  # the book's marks (the same dict for the book's life, as the driver's)
        self._working_symbols = oms.working_symbols()  # a live view of the OMS's symbols with open orders

    def now(self) -> datetime:
        return self._clock.now()

    def position(self, symbol: str) -> Decimal:
        return self._portfolio.qty(symbol)

    def working(self, symbol: str) -> tuple[Decimal, Decimal]:
        return self._oms.working_qty(symbol)

    def quote(self, symbol: str) -> tuple[Decimal, datetime] | None:
        price = self._prices.get(symbol)
        ts = self._quote_ts.get(symbol)
        if price is None or ts is None or price <= 0:
            return None
        return price, ts

    def mark(self, symbol: str) -> Decimal | None:
        price = self._prices.get(symbol)
        if price is None:
            pos = self._positions.get(symbol)
            price = pos.last_price if pos is not None else None
        return price

    def symbols(self) -> Iterable[str]:
        held = {s for s, p in self._positions.items() if p.qty != ZERO}
        held.update(self._working_symbols)
        return held

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        return self._portfolio.owner_qty(strategy, symbol)

    def strategy_working_sells(self, strategy: str, symbol: str) -> Decimal:
        total = ZERO  # the same sum as sum(..., ZERO), without a generator on a long-only strategy's sells
        for o in self._oms.open_orders_in(symbol):
            if o.strategy == strategy and o.side is Side.SELL:
                total += o.remaining
        return total

    def strategy_holdings(self, strategy: str) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """The strategy's own positions and open orders per symbol, in one pass over each."""
        held: dict[str, list[Decimal]] = {}
        for (owner, symbol), qty in self._portfolio.owner_positions.items():
            if owner == strategy and qty != ZERO:
                held[symbol] = [qty, ZERO, ZERO]
        for o in self._oms.open_orders.values():
            if o.strategy == strategy:
                h = held.setdefault(o.symbol, [ZERO, ZERO, ZERO])
                h[1 if o.side is Side.BUY else 2] += o.remaining
        return {s: (h[0], h[1], h[2]) for s, h in held.items()}

    def day_pnl(self) -> Decimal:
        opened = self._day_open_equity()
        return ZERO if opened is None else self._portfolio.equity() - opened
