"""The main screen: status bar, positions, P&L, orders, alerts, and the keys in the footer.

A view only. The app calls ``show`` with each engine snapshot (method calls down); the
screen hands each pane its part. Keys, commands and the engine live in the app.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.rows import ORDER_COLUMNS, POSITION_COLUMNS, order_rows, position_rows
from cockpit.tui.widgets.alerts_pane import AlertsPane
from cockpit.tui.widgets.fixed_table import FixedTable
from cockpit.tui.widgets.pnl_pane import PnlPane
from cockpit.tui.widgets.status_bar import StatusBar
from core.control.read_model import EngineSnapshot


class MainScreen(Screen[None]):
    """The cockpit's one full screen; modals open over it."""

    def __init__(self, alerts: AlertBuffer) -> None:
        super().__init__(id="main")
        self.alerts = alerts

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            yield FixedTable(POSITION_COLUMNS, id="positions", count_hidden=True)
            yield PnlPane(id="pnl")
        yield FixedTable(ORDER_COLUMNS, id="orders")
        yield AlertsPane(self.alerts, id="alerts")
        yield Footer(compact=True)  # compact: every key fits at 160 columns

    def on_mount(self) -> None:
        self.query_one("#positions").border_title = "Positions"
        self.query_one("#orders").border_title = "Orders"
        self.query_one("#pnl").border_title = "P&L"

    @property
    def alerts_pane(self) -> AlertsPane:
        return self.query_one(AlertsPane)

    def show(self, snap: EngineSnapshot | None, engine_state: str) -> None:
        """Redraw every pane from one snapshot (None: the engine has not started yet)."""
        self.query_one(StatusBar).show(snap, engine_state)
        if snap is not None:
            self.query_one("#positions", FixedTable).set_rows(position_rows(snap))
            self.query_one("#orders", FixedTable).set_rows(order_rows(snap))
            self.query_one(PnlPane).show(snap)
        self.alerts_pane.redraw()
