"""The P&L pane: labelled figures over the equity curve."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.tui.rows import capital_lines, pnl_figures
from core.control.read_model import EngineSnapshot

_LABEL = 13


class PnlPane(Vertical):
    """Figures redrawn each frame; the chart (the costly widget) only when the curve changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._curve_drawn: tuple[object, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="pnl-figures")
        yield Static(id="pnl-capital")  # each strategy's allocation used (only once one has an allocation)
        yield PlotextPlot(id="equity")

    def show(self, snap: EngineSnapshot) -> None:
        figures = self.query_one("#pnl-figures", Static)
        width = min(figures.size.width, 28) or 28
        text = Text(no_wrap=True, overflow="ellipsis")
        for label, cell in pnl_figures(snap):
            figure, style = (cell, "") if isinstance(cell, str) else cell
            text.append(f"{label:<{_LABEL}}")
            text.append(f"{figure:>{max(1, width - _LABEL)}}\n", style=style)
        figures.update(text)
        self._show_capital(snap, width)
        self._show_curve(snap)

    def _show_capital(self, snap: EngineSnapshot, width: int) -> None:
        block = self.query_one("#pnl-capital", Static)
        lines = capital_lines(snap)
        block.display = bool(lines)
        if not lines:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        for n, (label, cell) in enumerate(lines):
            figure, style = (cell, "") if isinstance(cell, str) else cell
            head = "bold" if n == 0 else ""
            text.append(f"{label[:_LABEL]:<{_LABEL}}", style=head)
            text.append(f"{figure:>{max(1, width - _LABEL)}}" + ("\n" if n < len(lines) - 1 else ""),
                        style=style or head)
        block.update(text)

    def _show_curve(self, snap: EngineSnapshot) -> None:
        curve = snap.equity_curve
        key = (curve[-1][0] if curve else None, len(curve))
        if key == self._curve_drawn or len(curve) < 2:
            return
        self._curve_drawn = key
        plot = self.query_one("#equity", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plot([float(e) for _, e in curve], marker="braille")
        plt.xticks([])
        plt.title("equity")
        plot.refresh()
