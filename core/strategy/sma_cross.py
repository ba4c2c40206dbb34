"""Demo strategy: long while the fast SMA of closes is above the slow one, flat otherwise."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from pydantic import Field, model_validator

from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=1)
    slow: int = Field(30, ge=2)
    notional: Decimal = Field(Decimal("10000"), gt=0)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> "SmaCrossParams":
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class _Averages:
    __slots__ = ("fast", "slow", "fast_sum", "slow_sum", "long")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast: deque[float] = deque(maxlen=fast)
        self.slow: deque[float] = deque(maxlen=slow)
        self.fast_sum = 0.0
        self.slow_sum = 0.0
        self.long: bool | None = None


class SmaCross(Strategy):
    Params = SmaCrossParams
    params: SmaCrossParams

    def on_start(self) -> None:
        self._state = {s: _Averages(self.params.fast, self.params.slow) for s in self.symbols}

    def on_bar(self, bar: Bar) -> None:
        st = self._state.get(bar.symbol)
        if st is None:
            return
        close = float(bar.close)
        if len(st.fast) == st.fast.maxlen:
            st.fast_sum -= st.fast[0]
        st.fast.append(close)
        st.fast_sum += close
        if len(st.slow) == st.slow.maxlen:
            st.slow_sum -= st.slow[0]
        st.slow.append(close)
        st.slow_sum += close
        if len(st.slow) < st.slow.maxlen:
            return
        long = st.fast_sum / len(st.fast) > st.slow_sum / len(st.slow)
        if long == st.long:
            return
        st.long = long
        qty = int(self.params.notional / bar.close) if long else 0
        self.target_position(bar.symbol, qty)
