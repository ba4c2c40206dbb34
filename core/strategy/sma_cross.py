"""Demo strategy: long while the fast SMA of closes is above the slow one, flat otherwise.

The averages are re-summed from the window on every bar in exact decimal arithmetic and
compared without dividing (``fast_sum * slow > slow_sum * fast``), so a decision depends
only on the last ``slow`` closes: the same day gets the same decision whether the replay
started nine years earlier or a month earlier, and a tie is a tie. A tie is not long.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from itertools import islice

from pydantic import Field, model_validator

from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams
from core.strategy.exact import EXACT, exact_sum, shares_for


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=1)
    slow: int = Field(30, ge=2)
    notional: Decimal = Field(Decimal(10000), gt=0, le=Decimal("1e10"), allow_inf_nan=False)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class _Window:
    __slots__ = ("closes", "long")

    def __init__(self, slow: int) -> None:
        self.closes: deque[Decimal] = deque(maxlen=slow)
        self.long: bool | None = None  # the last decision handed to the context


def fast_above_slow(closes: deque[Decimal], fast: int) -> bool:
    """Whether the mean of the last ``fast`` closes is strictly above the mean of all of ``closes``."""
    slow = len(closes)
    fast_sum = exact_sum(islice(closes, slow - fast, slow))
    slow_sum = exact_sum(closes)
    return EXACT.multiply(fast_sum, Decimal(slow)) > EXACT.multiply(slow_sum, Decimal(fast))


class SmaCross(Strategy):
    Params = SmaCrossParams
    may_short = False
    params: SmaCrossParams

    def on_start(self) -> None:
        self._state = {s: _Window(self.params.slow) for s in self.symbols}

    def on_bar(self, bar: Bar) -> None:
        st = self._state.get(bar.symbol)
        if st is None or not bar.close.is_finite():
            return
        st.closes.append(bar.close)
        if len(st.closes) < self.params.slow:
            return
        long = fast_above_slow(st.closes, self.params.fast)
        if long == st.long:
            return
        st.long = long
        # A price that is not positive sizes to 0 shares: a no-op, since a turn to long starts flat.
        qty = shares_for(self.params.notional, bar.close) if long else 0
        self.target_position(bar.symbol, qty)
