"""The strategy base class: market data in, intents (target positions or orders) out.

A strategy never knows whether it runs in a backtest, on paper or live, and never talks
to a broker: it asks its context, and the engine routes the ask through the risk gate.
Quantities handed back are whole shares. A decision should depend only on a bounded window
of recent data, computed exactly (see ``core.strategy.exact``), so that a restart that warms
up from a different start gives the same decisions on the same days.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from core.domain.model import Bar, Execution, OrderType, Quote, Side, TimeInForce


class StrategyContext(Protocol):
    """What the engine offers a strategy."""

    warming_up: bool

    def position(self, strategy: str, symbol: str) -> Decimal: ...

    def target_position(self, strategy: str, symbol: str, qty: Decimal) -> None: ...

    def submit_order(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> None: ...

    def cancel_orders(self, strategy: str, symbol: str) -> None: ...


class StrategyParams(BaseModel):
    """Parameters from config; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class Strategy:
    """Override the ``on_*`` hooks you need; call the helpers to trade."""

    Params: ClassVar[type[StrategyParams]] = StrategyParams
    # Whether this strategy may hold a negative position. Only a declaration: enforcing it
    # (refusing an intent that would take a long-only strategy below zero) belongs to the
    # OMS, which does not trust the strategy to keep it. A subclass that shorts sets True.
    may_short: ClassVar[bool] = False

    def __init__(self, name: str, symbols: list[str], params: dict[str, Any]) -> None:
        self.name = name
        self.symbols = list(symbols)
        self.params = self.Params(**params)
        self.ctx: StrategyContext | None = None
        self.enabled = True

    @classmethod
    def warmup_bars(cls, params: StrategyParams) -> int:
        """Bars of history per symbol a decision needs with ``params`` (0: none). A backtest or a
        walk-forward window replays that many bars before its first trading day, with trading
        off, so the strategy decides from its first day as it would after a restart."""
        return 0

    # ---- hooks ---------------------------------------------------------------------
    def on_start(self) -> None: ...

    def on_bar(self, bar: Bar) -> None: ...

    def on_quote(self, quote: Quote) -> None: ...

    def on_fill(self, fill: Execution) -> None: ...

    def on_stop(self) -> None: ...

    # ---- helpers -------------------------------------------------------------------
    def position(self, symbol: str) -> Decimal:
        assert self.ctx is not None
        return self.ctx.position(self.name, symbol)

    def target_position(self, symbol: str, qty: Decimal | int) -> None:
        assert self.ctx is not None
        self.ctx.target_position(self.name, symbol, Decimal(qty))

    def buy(self, symbol: str, qty: Decimal | int, limit: Decimal | None = None,
            tif: TimeInForce = TimeInForce.DAY) -> None:
        self._order(symbol, Side.BUY, qty, limit, tif)

    def sell(self, symbol: str, qty: Decimal | int, limit: Decimal | None = None,
             tif: TimeInForce = TimeInForce.DAY) -> None:
        self._order(symbol, Side.SELL, qty, limit, tif)

    def cancel_orders(self, symbol: str) -> None:
        assert self.ctx is not None
        self.ctx.cancel_orders(self.name, symbol)

    def _order(self, symbol: str, side: Side, qty: Decimal | int, limit: Decimal | None,
               tif: TimeInForce) -> None:
        assert self.ctx is not None
        order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
        self.ctx.submit_order(self.name, symbol, side, Decimal(qty), order_type, limit, tif)

    def overrides(self, method: str) -> bool:
        """Whether this strategy defines ``method`` itself (lets the engine skip no-op hooks)."""
        return getattr(type(self), method) is not getattr(Strategy, method)
