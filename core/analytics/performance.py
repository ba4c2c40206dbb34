"""Performance of one scope (the account, or one owner) as the CLI, the API and the TUI show it.

Returns come from one equity value per session close (core/analytics/returns.py); trades from
the fills (core/analytics/trades.py). **Each strategy's equity** is the account's starting
cash plus that strategy's own cumulative net P&L at each close (realized on its own average
cost, minus its commissions, plus its open positions marked at the close), as if it had the
whole account's capital: its returns are that curve's daily changes. **Exposure** is the share
of session closes at which the scope held a position (a trade open over the close, dates in
the market's time zone); a trade opened and closed within one session adds none.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import date, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

from core.analytics.returns import (
    PERIODS_PER_YEAR,
    EquityDay,
    ReturnFigures,
    return_figures,
    scaled_return_figures,
)
from core.analytics.trades import Trade, TradeStats, trade_stats
from core.domain.serialize import money


def exposure(days: Sequence[date], trades: Sequence[Trade], tz: tzinfo) -> float | None:
    """The share of ``days`` (session dates) at whose close one of ``trades`` was open."""
    if not days:
        return None
    ordered = sorted(days)
    held: set[int] = set()
    for t in trades:
        first = t.opened_at.astimezone(tz).date()
        end = t.closed_at.astimezone(tz).date() if t.closed_at is not None else None
        lo = bisect_left(ordered, first)
        hi = bisect_left(ordered, end) if end is not None else len(ordered)  # the closing day's close is flat
        held.update(range(lo, hi))
    return len(held) / len(ordered)


class Performance(NamedTuple):
    returns: ReturnFigures
    trades: TradeStats
    exposure: float | None

    def to_json(self) -> dict[str, Any]:
        r, t = self.returns, self.trades

        def opt_money(value: Decimal | None) -> str | None:
            return None if value is None else money(value)

        def day(value: date | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "sessions": r.sessions, "first_day": day(r.first_day), "last_day": day(r.last_day),
            "start_equity": opt_money(r.start_equity), "end_equity": opt_money(r.end_equity), "pnl": money(r.pnl),
            "total_return": r.total_return, "annual_return": r.annual_return,
            "annual_volatility": r.annual_volatility, "sharpe": r.sharpe, "sortino": r.sortino, "calmar": r.calmar,
            "max_drawdown": r.max_drawdown, "max_drawdown_money": money(r.max_drawdown_money),
            "max_drawdown_duration": r.max_drawdown_duration, "max_drawdown_peak": day(r.max_drawdown_peak),
            "max_drawdown_trough": day(r.max_drawdown_trough),
            "max_drawdown_recovered": day(r.max_drawdown_recovered),
            "longest_drawdown_duration": r.longest_drawdown_duration,
            "best_day": r.best_day, "worst_day": r.worst_day,
            "positive_days": r.positive_days, "negative_days": r.negative_days,
            "trades": t.trades, "wins": t.wins, "losses": t.losses, "win_rate": t.win_rate, "loss_rate": t.loss_rate,
            "profit_factor": t.profit_factor, "expectancy": opt_money(t.expectancy),
            "expectancy_ratio": t.expectancy_ratio, "average_win": opt_money(t.average_win),
            "average_loss": opt_money(t.average_loss), "largest_win": opt_money(t.largest_win),
            "largest_loss": opt_money(t.largest_loss), "gross_profit": money(t.gross_profit),
            "gross_loss": money(t.gross_loss), "trades_net": money(t.net_profit), "open_trades": t.open_trades,
            "exposure": self.exposure,
        }


def performance(days: Sequence[EquityDay], closed: Sequence[Trade], open_trades: Sequence[Trade], tz: tzinfo,
                risk_free_rate: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Performance:
    return Performance(
        returns=return_figures(days, risk_free_rate, periods),
        trades=trade_stats(list(closed), len(open_trades)),
        exposure=exposure([d.day for d in days], [*closed, *open_trades], tz),
    )


def scaled_performance(days: Sequence[date], opens: Sequence[int], closes: Sequence[int],
                       unscale: Callable[[int], Decimal], closed: Sequence[Trade], open_trades: Sequence[Trade],
                       tz: tzinfo, risk_free_rate: float = 0.0, periods: int = PERIODS_PER_YEAR) -> Performance:
    """``performance`` of a curve given as integer columns (``scaled_return_figures``)."""
    return Performance(
        returns=scaled_return_figures(days, opens, closes, unscale, risk_free_rate, periods),
        trades=trade_stats(list(closed), len(open_trades)),
        exposure=exposure(days, [*closed, *open_trades], tz),
    )
