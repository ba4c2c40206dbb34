"""Demo strategy: buy a short-term oversold dip with a DAY limit order, sell on recovery.

Wilder's RSI over ``period`` closes. Flat and RSI below ``entry``: a limit buy
``limit_offset_bps`` under the close, good for the day. Long and RSI above ``exit``: flat
at market. Exercises limit orders, DAY expiry and partial exits.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from pydantic import Field

from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams


class RsiReversionParams(StrategyParams):
    period: int = Field(3, ge=2)
    entry: float = Field(15.0, gt=0, lt=100)
    exit: float = Field(60.0, gt=0, lt=100)
    notional: Decimal = Field(Decimal("10000"), gt=0)
    limit_offset_bps: Decimal = Field(Decimal("50"), ge=0, lt=10000)


class _Rsi:
    __slots__ = ("prev", "avg_gain", "avg_loss", "count")

    def __init__(self) -> None:
        self.prev: float | None = None
        self.avg_gain = 0.0
        self.avg_loss = 0.0
        self.count = 0


class RsiReversion(Strategy):
    Params = RsiReversionParams
    params: RsiReversionParams

    def on_start(self) -> None:
        self._state = {s: _Rsi() for s in self.symbols}

    def _rsi(self, st: _Rsi, close: float) -> float | None:
        n = self.params.period
        if st.prev is None:
            st.prev = close
            return None
        change = close - st.prev
        st.prev = close
        gain, loss = (change, 0.0) if change > 0 else (0.0, -change)
        st.count += 1
        if st.count <= n:
            st.avg_gain += gain / n
            st.avg_loss += loss / n
            if st.count < n:
                return None
        else:
            st.avg_gain = (st.avg_gain * (n - 1) + gain) / n
            st.avg_loss = (st.avg_loss * (n - 1) + loss) / n
        if st.avg_loss == 0:
            return 100.0
        return 100.0 - 100.0 / (1.0 + st.avg_gain / st.avg_loss)

    def on_bar(self, bar: Bar) -> None:
        st = self._state.get(bar.symbol)
        if st is None:
            return
        rsi = self._rsi(st, float(bar.close))
        if rsi is None:
            return
        pos = self.position(bar.symbol)
        if pos == 0 and rsi < self.params.entry:
            self.cancel_orders(bar.symbol)
            limit = (bar.close * (1 - self.params.limit_offset_bps / 10000)).quantize(
                Decimal("0.01"), rounding=ROUND_DOWN
            )
            qty = int(self.params.notional / limit)
            if qty > 0:
                self.buy(bar.symbol, qty, limit=limit)
        elif pos > 0 and rsi > self.params.exit:
            self.target_position(bar.symbol, 0)
