"""Demo strategy: long while the fast SMA of closes is above the slow one, flat otherwise.

The window's two sums are kept in exact decimal arithmetic (a close is added as it comes
and subtracted as it leaves, in ``EXACT``, which never rounds) and compared without
dividing (``fast_sum * slow > slow_sum * fast``), so a decision depends only on the last
``slow`` closes: the same day gets the same decision whether the replay started nine years
earlier or a month earlier, and a tie is a tie. A tie is not long. Running sums make a bar
cost the same whatever the window's length; ``fast_above_slow`` re-sums the window from
scratch and is the reference they are tested against.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from itertools import islice

from pydantic import Field, model_validator

from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams
from core.strategy.exact import EXACT, exact_sum, shares_for

_ZERO = Decimal(0)


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=1, le=100_000)
    slow: int = Field(30, ge=2, le=100_000)  # bounded: the window is a deque of this many closes
    notional: Decimal = Field(Decimal(10000), gt=0, le=Decimal("1e10"), allow_inf_nan=False)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class _Window:
    __slots__ = ("closes", "fast_sum", "long", "slow_sum")

    def __init__(self, slow: int) -> None:
        self.closes: deque[Decimal] = deque(maxlen=slow)
        self.fast_sum = self.slow_sum = _ZERO  # exact sums of the last ``fast`` and of all closes
        self.long: bool | None = None  # the last decision handed to the context

    def full_push(self, close: Decimal, fast: int) -> None:
        """``push`` on a window that holds ``slow`` closes already (the common case, inlined)."""
        closes = self.closes
        self.slow_sum = EXACT.add(EXACT.subtract(self.slow_sum, closes[0]), close)
        self.fast_sum = EXACT.add(EXACT.subtract(self.fast_sum, closes[-fast]), close)
        closes.append(close)

    def push(self, close: Decimal, fast: int) -> None:
        """Add ``close``; the sums drop the closes that leave their windows (exactly)."""
        closes = self.closes
        if len(closes) == closes.maxlen:
            self.slow_sum = EXACT.subtract(self.slow_sum, closes[0])
        if len(closes) >= fast:
            self.fast_sum = EXACT.subtract(self.fast_sum, closes[-fast])
        closes.append(close)
        self.fast_sum = EXACT.add(self.fast_sum, close)
        self.slow_sum = EXACT.add(self.slow_sum, close)

    def fast_above_slow(self, fast: int) -> bool:
        """``fast_above_slow(self.closes, fast)``, from the running sums."""
        return EXACT.multiply(self.fast_sum, Decimal(len(self.closes))) > EXACT.multiply(self.slow_sum, Decimal(fast))


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

    @classmethod
    def warmup_bars(cls, params: StrategyParams) -> int:
        assert isinstance(params, SmaCrossParams)
        return params.slow

    def on_start(self) -> None:
        self._state = {s: _Window(self.params.slow) for s in self.symbols}
        self._fast, self._slow = self.params.fast, self.params.slow
        # fast_above_slow on a full window: fast_sum * slow > slow_sum * fast, the factors made once
        self._fast_d, self._slow_d = Decimal(self._fast), Decimal(self._slow)

    def on_bar(self, bar: Bar) -> None:
        st = self._state.get(bar.symbol)
        close = bar.close
        if st is None or not close.is_finite():
            return
        fast = self._fast
        if len(st.closes) == self._slow:  # full: the sums drop a close each (exactly as push does)
            st.full_push(close, fast)
        else:
            st.push(close, fast)
            if len(st.closes) < self._slow:
                return
        long = EXACT.multiply(st.fast_sum, self._slow_d) > EXACT.multiply(st.slow_sum, self._fast_d)
        if long == st.long:
            return
        st.long = long
        # A price that is not positive sizes to 0 shares: a no-op, since a turn to long starts flat.
        qty = shares_for(self.params.notional, bar.close) if long else 0
        self.target_position(bar.symbol, qty)
