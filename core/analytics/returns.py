"""Return-based performance figures from one equity value per session close.

Lean's convention: daily mark-to-market returns (the equity at each close against the equity
at the previous close), 252 sessions a year, a risk-free rate of 0 unless configured. The
formulas are empyrical's (empyrical-reloaded 0.7.1, which tests/test_analytics.py checks them
against to 1e-9):

- ``total_return`` = prod(1 + r) - 1;
- ``annual_return`` = (1 + total_return) ** (252 / n) - 1 (CAGR over n sessions);
- ``annual_volatility`` = sample std (ddof 1) of r x sqrt(252);
- ``sharpe`` = mean(r - rf) / std(r - rf, ddof 1) x sqrt(252), rf the daily rate that
  compounds to the annual ``risk_free_rate``: (1 + rate) ** (1/252) - 1;
- ``sortino`` = mean(r - rf) x 252 / downside risk, where downside risk is
  sqrt(mean(min(r - rf, 0) ** 2)) x sqrt(252) over every session (not only the losing ones);
- ``max_drawdown`` = the largest fall of the compounded return index from a running peak, as a
  positive fraction, the start (1.0 before the first session) counting as a peak, so a
  first-day loss is a drawdown; ``max_drawdown_money`` the same fall of the equity in money;
- ``calmar`` = annual_return / max_drawdown.

A figure that is undefined is None (JSON null): fewer than two sessions for the ratios and the
volatility, no dispersion (every return equal) for Sharpe, no downside for Sortino, no drawdown
for Calmar, a curve that went to zero or below for the annual return. A session whose opening
equity is zero or negative has no return and is left out.

Durations are in sessions: ``max_drawdown_duration`` runs from the peak before the largest
drawdown to the session that regains it (or to the last session if none has yet);
``longest_drawdown_duration`` is the longest such underwater stretch of any depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from operator import sub, truediv
from typing import NamedTuple

PERIODS_PER_YEAR = 252
ZERO = Decimal(0)


class EquityDay(NamedTuple):
    """One session: the equity at the previous close (``open``) and at this close."""

    day: date
    open: Decimal
    close: Decimal


class ReturnFigures(NamedTuple):
    sessions: int
    first_day: date | None
    last_day: date | None
    start_equity: Decimal | None
    end_equity: Decimal | None
    pnl: Decimal
    total_return: float | None
    annual_return: float | None
    annual_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float | None
    max_drawdown_money: Decimal
    max_drawdown_duration: int
    max_drawdown_peak: date | None
    max_drawdown_trough: date | None
    max_drawdown_recovered: date | None
    longest_drawdown_duration: int
    best_day: float | None
    worst_day: float | None
    positive_days: int
    negative_days: int


def daily_rate(annual: float, periods: int = PERIODS_PER_YEAR) -> float:
    """The per-session rate that compounds to ``annual`` over a year of ``periods`` sessions."""
    return float((1.0 + annual) ** (1.0 / periods) - 1.0)


def daily_returns(days: Sequence[EquityDay]) -> list[float]:
    """close / open - 1 per session (sessions opening at zero or below are left out)."""
    return [float(d.close / d.open - 1) for d in days if d.open > 0]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof 1); 0.0 when every value is the same."""
    if len(values) < 2:
        return None
    if max(values) == min(values):
        return 0.0
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def sharpe(returns: Sequence[float], rf: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float | None:
    excess = [r - rf for r in returns]
    sd = _std(excess)
    if sd is None or sd == 0:
        return None
    return _mean(excess) / sd * math.sqrt(periods)


def downside_risk(returns: Sequence[float], required: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float | None:
    if not returns:
        return None
    below = [min(r - required, 0.0) ** 2 for r in returns]
    return math.sqrt(_mean(below)) * math.sqrt(periods)


def sortino(returns: Sequence[float], required: float = 0.0, periods: int = PERIODS_PER_YEAR) -> float | None:
    if len(returns) < 2:
        return None
    risk = downside_risk(returns, required, periods)
    if not risk:
        return None
    return _mean([r - required for r in returns]) * periods / risk


def total_return(returns: Sequence[float]) -> float | None:
    if not returns:
        return None
    return math.prod(1.0 + r for r in returns) - 1.0


def annual_return(returns: Sequence[float], periods: int = PERIODS_PER_YEAR) -> float | None:
    if not returns:
        return None
    return _annualised(math.prod(1.0 + r for r in returns), periods, len(returns))


def _annualised(ending: float, periods: int, n: int) -> float | None:
    """The CAGR of a wealth index ending at ``ending`` after ``n`` sessions; None where it is not a
    number (an index below zero, or a growth too large for a float: 17x in one session)."""
    if ending <= 0:
        return None if ending < 0 else -1.0
    try:
        return float(ending ** (periods / n) - 1.0)
    except OverflowError:
        return None


def annual_volatility(returns: Sequence[float], periods: int = PERIODS_PER_YEAR) -> float | None:
    sd = _std(returns)
    return None if sd is None else sd * math.sqrt(periods)


class Drawdown(NamedTuple):
    depth: float  # positive fraction of the peak
    peak: int  # index into the index series (0 = before the first session)
    trough: int
    recovered: int | None
    longest: int  # longest underwater stretch, in sessions


def drawdown(index: Sequence[float]) -> Drawdown:
    """The largest peak-to-trough fall of ``index`` (a wealth series, its first value the start);
    a value equal to the peak regains it."""
    peak_value, peak_at = index[0], 0
    depth, peak, trough = 0.0, 0, 0
    longest = 0
    for i, value in enumerate(index):
        if value >= peak_value:
            if i - peak_at > 1:  # sessions below the peak between the two
                longest = max(longest, i - peak_at)
            peak_value, peak_at = value, i
            continue
        fall = (peak_value - value) / peak_value if peak_value > 0 else 0.0
        if fall > depth:
            depth, peak, trough = fall, peak_at, i
    longest = max(longest, len(index) - 1 - peak_at)  # still under water at the end
    recovered = next((i for i in range(trough + 1, len(index)) if index[i] >= index[peak]), None) if depth else None
    return Drawdown(depth, peak, trough, recovered, longest)


def _money_drawdown(days: Sequence[EquityDay]) -> Decimal:
    if not days:
        return ZERO
    peak = days[0].open
    worst = ZERO
    for d in days:
        peak = max(peak, d.close)
        worst = max(worst, peak - d.close)
    return worst


def return_figures(days: Sequence[EquityDay], risk_free_rate: float = 0.0,
                   periods: int = PERIODS_PER_YEAR) -> ReturnFigures:
    """Every return-based figure of ``days`` (oldest first)."""
    used = [d for d in days if d.open > 0]
    return _figures([d.day for d in used], daily_returns(used), used[0].open if used else None,
                    used[-1].close if used else None, sum((d.close - d.open for d in used), ZERO),
                    _money_drawdown(used), risk_free_rate, periods)


def scaled_return_figures(days: Sequence[date], opens: Sequence[int], closes: Sequence[int],
                          unscale: Callable[[int], Decimal], risk_free_rate: float = 0.0,
                          periods: int = PERIODS_PER_YEAR) -> ReturnFigures:
    """``return_figures`` of equity given as integers (``unscale`` gives the money each stands
    for: core/analytics/report_curves.py keeps 1e-8), the same figures without a Decimal per
    session. Each return is ``(close - open) / open`` of the integers, which Python rounds to the
    nearest float: the same float as ``float(close / open - 1)`` of the Decimals whenever that
    Decimal division has 80 digits (the readers' context, cockpit/readers.py), the integers stay
    below 10**31 and open is positive. (A float's rounding boundary that is not the exact
    quotient lies at least 2**-54 / open from it, relatively, far beyond the 10**-79 the 80-digit
    quotient can be off: both round to the same float.)"""
    if min(opens, default=1) > 0:
        used_days, o, c = list(days), list(opens), list(closes)
    else:
        keep = [i for i, v in enumerate(opens) if v > 0]
        used_days, o, c = [days[i] for i in keep], [opens[i] for i in keep], [closes[i] for i in keep]
    returns = list(map(truediv, map(sub, c, o), o))  # (close - open) / open, each
    worst = 0
    if o:
        peak = o[0]
        for v in c:
            if v > peak:
                peak = v
            elif peak - v > worst:
                worst = peak - v
    return _figures(used_days, returns, unscale(o[0]) if o else None, unscale(c[-1]) if c else None,
                    unscale(sum(c) - sum(o)), unscale(worst), risk_free_rate, periods)


def _ratios(returns: list[float], rf: float, periods: int, ending: float | None = None) -> tuple[float | None, ...]:
    """``total_return``, ``annual_return``, ``annual_volatility``, ``sharpe`` and ``sortino`` of
    ``returns`` at once: the same operations on the same values, each done once (the excess
    returns are the returns themselves at a zero rate, ``r - 0.0`` being ``r``), so the same
    floats, without the second standard deviation, product and excess list. ``ending`` is the
    product of ``1.0 + r`` when the caller has it: the last value of the wealth index, built by
    the same multiplications in the same order as ``math.prod`` makes them (from 1, one float
    multiplication per return)."""
    if not returns:
        return None, None, None, None, None
    n = len(returns)
    root = math.sqrt(periods)
    excess = returns if rf == 0.0 else [r - rf for r in returns]
    sd = _std(returns)
    sd_excess = sd if excess is returns else _std(excess)
    mean_excess = _mean(excess)
    if ending is None:
        ending = math.prod(1.0 + r for r in returns)
    annual = _annualised(ending, periods, n)
    sortino_ratio = None
    if n >= 2:
        risk = math.sqrt(_mean([e ** 2 if e < 0.0 else 0.0 for e in excess])) * root  # min(e, 0.0) ** 2
        sortino_ratio = mean_excess * periods / risk if risk else None
    return (ending - 1.0, annual, None if sd is None else sd * root,
            None if sd_excess is None or sd_excess == 0 else mean_excess / sd_excess * root, sortino_ratio)


def _figures(used: list[date], returns: list[float], start: Decimal | None, end: Decimal | None, pnl: Decimal,
             money_drawdown: Decimal, risk_free_rate: float, periods: int) -> ReturnFigures:
    """The figures of ``returns`` (one per session of ``used``, its dates)."""
    rf = daily_rate(risk_free_rate, periods)
    index = [1.0]
    for r in returns:
        index.append(index[-1] * (1.0 + r))
    dd = drawdown(index)
    total, ann, volatility, sharpe_ratio, sortino_ratio = _ratios(returns, rf, periods, index[-1])
    depth = dd.depth if returns else None

    def day_at(i: int | None) -> date | None:
        # index i is after session i-1; index 0 is before the first session (its open)
        if i is None or not used:
            return None
        return used[max(i - 1, 0)]

    return ReturnFigures(
        sessions=len(returns),
        first_day=used[0] if used else None, last_day=used[-1] if used else None,
        start_equity=start, end_equity=end, pnl=pnl,
        total_return=total, annual_return=ann, annual_volatility=volatility,
        sharpe=sharpe_ratio, sortino=sortino_ratio,
        calmar=ann / dd.depth if ann is not None and dd.depth > 0 else None,
        max_drawdown=depth, max_drawdown_money=money_drawdown,
        max_drawdown_duration=((dd.recovered if dd.recovered is not None else len(index) - 1) - dd.peak)
        if dd.depth > 0 else 0,
        max_drawdown_peak=day_at(dd.peak) if dd.depth > 0 else None,
        max_drawdown_trough=day_at(dd.trough) if dd.depth > 0 else None,
        max_drawdown_recovered=day_at(dd.recovered) if dd.depth > 0 else None,
        longest_drawdown_duration=dd.longest,
        best_day=max(returns) if returns else None, worst_day=min(returns) if returns else None,
        positive_days=sum(map((0.0).__lt__, returns)), negative_days=sum(map((0.0).__gt__, returns)),
    )
