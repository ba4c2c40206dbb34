"""The backtest report: one self-contained HTML page (inline CSS and SVG, no script, nothing
fetched) with the figures, the equity curves, the drawdowns, the monthly returns per scope and
the trade list."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cockpit.research import figures
from cockpit.research.svg import Series, line_chart
from core.analytics.backtest import EXPOSURE_DEFINITION, BacktestResult, ScopeResult
from core.domain.serialize import dec
from core.domain.text import money

TEMPLATES = Path(__file__).parent / "templates"
MAX_TRADES = 5000  # rows in the trade list; the CSV (--trades) has them all
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    style: str


@dataclass(frozen=True, slots=True)
class MonthlyTable:
    scope: str
    years: list[tuple[int, list[Cell], Cell]]  # year, its 12 months, the year's compounded return


def _cell(ret: float | None) -> Cell:
    if ret is None:
        return Cell("", "")
    strength = min(abs(ret) / 0.10, 1.0)  # a 10 % month is full colour
    rgb = "46,160,67" if ret >= 0 else "207,34,46"
    return Cell(f"{ret * 100:+.1f}%", f"background: rgba({rgb},{0.1 + 0.5 * strength:.2f})")


def monthly_table(scope: ScopeResult) -> MonthlyTable:
    by_year: dict[int, dict[int, float]] = {}
    for m in scope.monthly_returns():
        year, month = (int(part) for part in m.month.split("-"))
        by_year.setdefault(year, {})[month] = m.ret
    years = []
    for year, months in sorted(by_year.items()):
        total = math.prod(1 + r for r in months.values()) - 1
        years.append((year, [_cell(months.get(i)) for i in range(1, 13)], _cell(total)))
    return MonthlyTable(scope.name, years)


def _trade_rows(result: BacktestResult) -> list[dict[str, str]]:
    rows = []
    for t in (*result.trades, *result.open_trades)[:MAX_TRADES]:
        rows.append({"strategy": t.owner, "symbol": t.symbol, "side": t.side,
                     "opened": t.opened_at.strftime("%Y-%m-%d %H:%M"),
                     "closed": t.closed_at.strftime("%Y-%m-%d %H:%M") if t.closed_at is not None else "open",
                     "qty": dec(t.max_qty), "fills": str(t.fills), "pnl": f"{float(t.pnl):,.2f}",
                     "sign": "pos" if t.pnl > 0 else "neg" if t.pnl < 0 else ""})
    return rows


def render_report(result: BacktestResult, *, source: str) -> str:
    """The report's HTML for ``result`` (``source``: the config it ran, for the title)."""
    scopes = result.scopes()
    equity = line_chart([Series(s.name, [(p.ts, float(p.equity)) for p in s.curve]) for s in scopes],
                        lambda v: f"{v:,.0f}", "Equity at each session close",
                        baseline=float(result.account.days[0].open) if result.account.days else None)
    drawdown = line_chart([Series(s.name, [(ts, dd * 100) for ts, dd in s.drawdown()]) for s in scopes],
                          lambda v: f"{v:.0f}%", "Drawdown from the running peak", baseline=0.0,
                          legend_below=True)
    days = result.account.days
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)))
    context: dict[str, Any] = {
        "source": source, "first": days[0].day if days else None, "last": days[-1].day if days else None,
        "sessions": len(days), "events": f"{result.events:,}", "config": result.config,
        "starting_cash": money(days[0].open) if days else "-",
        "scopes": [s.name for s in scopes], "rows": figures.table(scopes),
        "equity_svg": equity, "drawdown_svg": drawdown, "monthly": [monthly_table(s) for s in scopes],
        "months": MONTHS, "trades": _trade_rows(result), "trades_total": len(result.trades) + len(result.open_trades),
        "max_trades": MAX_TRADES, "exposure_definition": EXPOSURE_DEFINITION, "warnings": result.warnings,
    }
    return env.get_template("backtest_report.html").render(context)
