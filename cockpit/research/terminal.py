"""`cockpit backtest`'s terminal output: the figures per strategy and for the account, and an
equity chart (plotext) that stays readable in 80 columns."""

from __future__ import annotations

from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cockpit.research import figures
from cockpit.research.svg import ticks
from core.analytics.backtest import EXPOSURE_DEFINITION, BacktestResult
from core.domain.text import money

CHART_WIDTH, CHART_HEIGHT = 78, 16
# Without colour the lines are told apart by their marks: the account's is the solid one.
PLAIN_MARKS = ("+", "o", "x", "*", "#", "%", "@")


def equity_chart(result: BacktestResult, width: int = CHART_WIDTH, height: int = CHART_HEIGHT,
                 colour: bool = False) -> str:
    """Each scope's equity at the session closes, one line each, on one chart."""
    import plotext as plt

    scopes = [s for s in result.scopes() if len(s.curve) >= 2]
    if not scopes:
        return "(no chart: the run holds fewer than two session closes)"
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.date_form("Y-m-d")
    plt.theme("clear")
    values: list[float] = []
    for i, scope in enumerate(scopes):
        ys = [float(p.equity) for p in scope.curve]
        values += ys
        mark = "braille" if colour or scope is scopes[-1] else PLAIN_MARKS[i % len(PLAIN_MARKS)]
        plt.plot([p.ts.strftime("%Y-%m-%d") for p in scope.curve], ys, label=scope.name, marker=mark)
    marks = ticks(min(values), max(values), 4)
    plt.yticks(marks, [f"{t:,.0f}" for t in marks])
    plt.title("Equity at each session close")
    chart = str(plt.build())
    plt.clear_figure()
    return chart if colour else str(plt.uncolorize(chart))


def render(result: BacktestResult, *, source: str, elapsed: float, store: str | None, out: TextIO,
           chart: bool = True) -> None:
    console = Console(file=out, width=CHART_WIDTH + 2, highlight=False)
    days = result.account.days
    period = f"{days[0].day} .. {days[-1].day} ({len(days)} sessions)" if days else "no session"
    console.print(Text(f"Backtest {period}"))
    console.print(Text(f"config: {source}"))
    console.print(Text(f"{', '.join(result.config.get('symbols', []))}: {result.events:,} events in {elapsed:.1f} s"))
    for name, spec in sorted(result.config.get("strategies", {}).items()):
        params = ", ".join(f"{k}={v}" for k, v in spec["params"].items() if v is not None)
        console.print(Text(f"  {name} ({spec['kind']}): {params}"))
    scopes = result.scopes()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("")
    for scope in scopes:
        table.add_column(scope.name, justify="right")
    for label, cells in figures.table(scopes):
        table.add_row(label, *cells)
    console.print(table)
    if chart:
        console.print(Text(equity_chart(result, colour=console.is_terminal and out.isatty())), soft_wrap=True)
    console.print(Text(EXPOSURE_DEFINITION + "."))
    console.print(Text(f"Each strategy trades on the account's starting cash "
                       f"({money(result.account.days[0].open) if days else '-'}) as its capital."))
    if store is not None:
        # a path is never wrapped (it is copied into the next command); the hint goes on its own line
        out.write(f"store: {store}\n")  # past Rich: it crops or wraps a long line whatever the options
        console.print(Text("(`cockpit metrics --state-dir STORE` and the other readers work on it)"))
