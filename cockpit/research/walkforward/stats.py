"""The figures of a walk-forward: objectives, the stitched out-of-sample curve and its statistics.

- **Objective** of a run: ``sharpe`` or ``sortino`` of its daily returns (core/analytics/returns.py,
  the same figures as ``cockpit metrics``), or ``net``: its P&L in money. Undefined (no trade, no
  dispersion) ranks below every defined value.
- **Stitched out-of-sample equity**: the test windows' daily returns one after the other (they do
  not overlap), compounded from the starting cash. Every figure of the out-of-sample result is
  computed on that one curve and on all its trades, never averaged over windows.
- **t-statistic** of the mean daily out-of-sample return: mean / (sample std / sqrt(n)).
- **WFE** (walk-forward efficiency): the annualised stitched out-of-sample return over the mean
  annualised in-sample return of the chosen parameters; undefined when that is not above 0.
- **Parameter stability**: the share of consecutive windows whose choices are the same or
  neighbouring grid points (one step apart at most on each parameter).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.analytics.returns import (
    EquityDay,
    ReturnFigures,
    annual_return,
    daily_returns,
    return_figures,
    sharpe,
    sortino,
)
from core.analytics.trades import Trade, TradeStats, trade_stats

OBJECTIVES = ("sharpe", "sortino", "net")


def objective(name: str, days: Sequence[EquityDay]) -> float | None:
    """The run's score by ``name`` (None: undefined)."""
    if name == "net":
        if not days:
            return None
        return float(days[-1].close - days[0].open)
    returns = daily_returns(days)
    if name == "sharpe":
        return sharpe(returns)
    if name == "sortino":
        return sortino(returns)
    raise ValueError(f"unknown objective {name!r} (one of {', '.join(OBJECTIVES)})")


def rank_key(score: float | None) -> float:
    return -math.inf if score is None else score


def run_annual_return(days: Sequence[EquityDay]) -> float | None:
    return annual_return(daily_returns(days))


def stitch(segments: Sequence[Sequence[EquityDay]], start_equity: Decimal) -> list[EquityDay]:
    """The segments' daily returns chained from ``start_equity`` (each segment started from its own cash)."""
    out: list[EquityDay] = []
    equity = start_equity
    for days in segments:
        for d in days:
            if d.open <= 0:
                continue
            close = equity * (d.close / d.open)
            out.append(EquityDay(d.day, equity, close))
            equity = close
    return out


def t_statistic(returns: Sequence[float]) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    mean = math.fsum(returns) / n
    var = math.fsum((r - mean) ** 2 for r in returns) / (n - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var / n)


def efficiency(oos_annual: float | None, is_annuals: Sequence[float | None]) -> float | None:
    known = [a for a in is_annuals if a is not None]
    if oos_annual is None or not known:
        return None
    mean_is = math.fsum(known) / len(known)
    return oos_annual / mean_is if mean_is > 0 else None


@dataclass(frozen=True, slots=True)
class Stability:
    share: float | None  # consecutive windows with the same or a neighbouring choice; None for one window
    same: int  # consecutive pairs with the same choice
    neighbouring: int  # ... with a neighbouring (not the same) choice
    pairs: int
    mode_count: int  # how many windows chose the most chosen point
    mode: int | None  # that point's index


def stability(chosen: Sequence[tuple[int, ...]], points: Sequence[int]) -> Stability:
    """``chosen``: each window's choice as grid indexes; ``points``: the same as point numbers."""
    same = near = 0
    for a, b in zip(chosen, chosen[1:], strict=False):
        if a == b:
            same += 1
        elif all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True)):
            near += 1
    pairs = max(len(chosen) - 1, 0)
    counts = Counter(points)
    mode, mode_count = counts.most_common(1)[0] if counts else (None, 0)
    return Stability((same + near) / pairs if pairs else None, same, near, pairs, mode_count, mode)


@dataclass(frozen=True, slots=True)
class Stitched:
    days: list[EquityDay]
    returns: ReturnFigures
    trades: TradeStats
    t_stat: float | None


def stitched_figures(segments: Sequence[Sequence[EquityDay]], closed: Sequence[Trade], open_trades: int,
                     start_equity: Decimal) -> Stitched:
    days = stitch(segments, start_equity)
    figures = return_figures(days)
    return Stitched(days, figures, trade_stats(list(closed), open_trades), t_statistic(daily_returns(days)))
