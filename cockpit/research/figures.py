"""The backtest's figures as a trader reads them, shared by the terminal table and the HTML
report: one label and one formatted value per metric and scope."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.analytics.backtest import ScopeResult

#: (label, key in ScopeResult.metrics(), how it is shown), top to bottom.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("return", "return", "pct"),
    ("annual return", "annual_return", "pct"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("max drawdown", "max_drawdown", "pct"),
    ("win rate", "win_rate", "pct"),
    ("profit factor", "profit_factor", "ratio"),
    ("trades", "trades", "int"),
    ("exposure (time)", "exposure", "pct"),
    ("gross exposure", "gross_exposure", "pct"),
    ("net P&L", "pnl", "money"),
)


def shown(value: Any, how: str) -> str:
    """``value`` for people: percentages with a sign for returns, money grouped to the cent."""
    if value is None:
        return "-"
    if how == "pct":
        return f"{value * 100:.2f}%"
    if how == "ratio":
        return f"{value:.2f}"
    if how == "money":
        return f"{Decimal(value).quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    return str(value)


def table(scopes: Sequence[ScopeResult]) -> list[tuple[str, list[str]]]:
    """Each metric's label and its value per scope."""
    metrics = [s.metrics() for s in scopes]
    return [(label, [shown(m.get(key), how) for m in metrics]) for label, key, how in ROWS]
