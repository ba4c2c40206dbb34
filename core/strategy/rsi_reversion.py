"""Demo strategy: buy a short-term oversold dip with a DAY limit order, sell on recovery.

Wilder's RSI over ``period`` changes. Flat and RSI below ``entry``: a limit buy
``limit_offset_bps`` under the close, good for the day. Long and RSI above ``exit``: flat
at market. Exercises limit orders, DAY expiry and partial exits.

Wilder's smoothing never forgets, so an RSI carried from bar to bar depends on where the
replay started. Here it is recomputed on every bar from the last ``window`` closes only
(default ``10 * period``): the average gain and loss are seeded with the plain mean of the
window's first ``period`` changes, then smoothed over the rest, in exact rational
arithmetic. A decision is therefore a function of those ``window`` closes (and of the
position), never of the history before them; the weight the window drops is
((period-1)/period)^(window-period), about 2e-5 for the defaults. No decision is made
until the window is full. A window without a loss is RSI 100.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from math import lcm

from pydantic import Field, model_validator

from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams
from core.strategy.exact import limit_below, shares_for


class RsiReversionParams(StrategyParams):
    # Upper bounds keep the window a deque that fits in memory (and 10 * period a valid maxlen).
    period: int = Field(3, ge=2, le=10_000)
    window: int | None = Field(None, ge=3, le=100_000, description="closes the RSI is computed from; default 10 * period")
    entry: float = Field(15.0, gt=0, lt=100, allow_inf_nan=False)
    exit: float = Field(60.0, gt=0, lt=100, allow_inf_nan=False)
    notional: Decimal = Field(Decimal(10000), gt=0, le=Decimal("1e10"), allow_inf_nan=False)
    limit_offset_bps: Decimal = Field(Decimal(50), ge=0, lt=10000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _window_holds_the_seed(self) -> RsiReversionParams:
        if self.window is None:
            self.window = 10 * self.period
        if self.window < self.period + 1:
            raise ValueError(f"window ({self.window}) must hold at least period + 1 ({self.period + 1}) closes")
        return self


def wilder_rsi(closes: Sequence[Decimal], period: int) -> Fraction:
    """Wilder's RSI of ``closes`` (at least ``period + 1`` of them), exactly."""
    return rsi_of_ratios([c.as_integer_ratio() for c in closes], period)


def rsi_of_ratios(closes: Sequence[tuple[int, int]], period: int) -> Fraction:
    """Wilder's RSI of closes given as exact ``(numerator, denominator)`` pairs.

    The closes are put on one integer scale (their common denominator) and the averages
    kept scaled by ``period ** k`` so that no step divides: ``S_n`` is the sum of the first
    ``n`` moves, ``S_k = (n - 1) * S_(k-1) + n ** (k - n) * move_k``. Gain and loss share both
    scales, which cancel in ``RSI = 100 * G / (G + L)``.
    """
    if len(closes) < period + 1:
        raise ValueError(f"need at least {period + 1} closes, got {len(closes)}")
    scale = lcm(*(d for _, d in closes))
    ticks = [n * (scale // d) for n, d in closes]
    gain = loss = 0
    keep, weight = period - 1, 1
    for k in range(1, len(ticks)):
        move = ticks[k] - ticks[k - 1]
        up, down = (move, 0) if move > 0 else (0, -move)
        if k <= period:
            gain += up
            loss += down
        else:
            weight *= period
            gain = keep * gain + weight * up
            loss = keep * loss + weight * down
    if loss == 0:
        return Fraction(100)
    return Fraction(100 * gain, gain + loss)


class RsiReversion(Strategy):
    Params = RsiReversionParams
    may_short = False
    params: RsiReversionParams

    @classmethod
    def warmup_bars(cls, params: StrategyParams) -> int:
        assert isinstance(params, RsiReversionParams) and params.window is not None
        return params.window

    def on_start(self) -> None:
        assert self.params.window is not None  # filled in by the params validator
        self._window: int = self.params.window
        # Each close as its exact (numerator, denominator), converted once when it arrives.
        self._closes: dict[str, deque[tuple[int, int]]] = {s: deque(maxlen=self._window) for s in self.symbols}
        # The levels as written in config (15, 60.5), not as the nearest binary float.
        self._entry = Fraction(str(self.params.entry))
        self._exit = Fraction(str(self.params.exit))

    def on_bar(self, bar: Bar) -> None:
        closes = self._closes.get(bar.symbol)
        if closes is None or not bar.close.is_finite():
            return
        closes.append(bar.close.as_integer_ratio())
        if len(closes) < self._window:
            return
        rsi = rsi_of_ratios(closes, self.params.period)
        pos = self.position(bar.symbol)
        if pos == 0 and rsi < self._entry:
            self.cancel_orders(bar.symbol)
            limit = limit_below(bar.close, self.params.limit_offset_bps)
            if limit is None:
                return  # a price too small to put a limit under
            qty = shares_for(self.params.notional, limit)
            if qty > 0:
                self.buy(bar.symbol, qty, limit=limit)
        elif pos > 0 and rsi > self._exit:
            self.target_position(bar.symbol, 0)
