"""The metrics screen (key m): performance of the account and each strategy, and the last
daily P&L reports.

It reads what ``cockpit metrics`` and ``cockpit report daily`` read (cockpit/readers.py, the
store opened read-only) in a thread worker, so a long history never holds the engine's loop,
and it shows the rows already formatted (cockpit/tables.py): no figure is computed here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit import readers
from cockpit.tables import daily_cells, metric_rows
from cockpit.tui.widgets.fixed_table import Column, FixedTable

DAYS_SHOWN = 10
DAILY_COLUMNS = (Column("date", 12), Column("net", 11, True), Column("net %", 7, True), Column("realized", 11, True),
                 Column("unrealized", 11, True), Column("comm", 8, True), Column("fills", 5, True),
                 Column("trades", 6, True), Column("max dd", 10, True), Column("loss %", 7, True))


@dataclass(frozen=True, slots=True)
class MetricsView:
    """What the screen shows, read and formatted off the loop."""

    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    days: list[list[str]] = field(default_factory=list)
    note: str = ""


def load_view(db: Path, risk_free_rate: float, market_tz: str, allocation: dict[str, Any] | None = None) -> MetricsView:
    """The store's figures as rows of text (runs in a worker thread: it opens its own connection);
    ``allocation``: ``cockpit.capital_reader.allocation_args`` for the allocation rows."""
    def ignore(_: str) -> None:
        return None

    try:
        conn = readers.connect_readonly(db)
    except readers.NoState as exc:
        return MetricsView("Performance", note=str(exc))
    try:
        with conn:
            perf: dict[str, Any] = readers.performance(conn, warn=ignore, risk_free_rate=risk_free_rate,
                                                       market_tz=market_tz, **(allocation or {}))
            days = readers.daily_reports(conn, warn=ignore)
    except sqlite3.Error as exc:
        return MetricsView("Performance", note=f"cannot read the store: {exc}")
    finally:
        conn.close()
    if not perf.get("sessions") and not perf.get("trades"):
        return MetricsView("Performance", note="no performance yet: the first figures come at the first session "
                                               "close the engine runs through")
    title = f"Performance, {perf.get('first_day') or '?'} .. {perf.get('last_day') or '?'} ({perf.get('sessions')} "\
            f"sessions, risk-free {perf.get('risk_free_rate')})"
    columns = ["account", *perf.get("strategies", {})]
    rows = [[label, *(c.plain for c in cells)] for label, cells in metric_rows(perf)]
    return MetricsView(title, columns, rows, [daily_cells(d) for d in reversed(days[-DAYS_SHOWN:])])


class MetricsScreen(ModalScreen[None]):
    """Performance and the recent daily reports; r reloads, Escape closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,m,q", "close", "Close", id="metrics.close"),
        Binding("r", "reload", "Reload", id="metrics.reload"),
    ]

    def __init__(self, load: Callable[[], MetricsView]) -> None:
        super().__init__()
        self.load = load
        self.view: MetricsView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="metrics-dialog"):
            yield Label("Performance", id="metrics-title")
            yield Static("reading the store ...", id="metrics-note")
            yield Vertical(id="metrics-table")
            yield Label(f"Daily P&L, last {DAYS_SHOWN} sessions (newest first)", id="metrics-daily-title")
            yield FixedTable(DAILY_COLUMNS, id="metrics-daily")
            yield Label("r reloads; Escape closes. `cockpit metrics` and `cockpit report daily` print the same.",
                        id="metrics-hint")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.run_worker(self._read, thread=True, exclusive=True, group="metrics", exit_on_error=False)

    def _read(self) -> None:
        view = self.load()
        self.app.call_from_thread(self.show, view)

    def show(self, view: MetricsView) -> None:
        self.view = view
        self.query_one("#metrics-title", Label).update(view.title)
        self.query_one("#metrics-note", Static).update(view.note)
        self.query_one("#metrics-note", Static).display = bool(view.note)
        box = self.query_one("#metrics-table", Vertical)
        box.remove_children()
        if view.rows:  # the columns are the scopes the store knows: a new table for them
            table = FixedTable([Column("metric", 26), *(Column(c[:14], 14, True) for c in view.columns)])
            box.mount(table)
            table.set_rows(view.rows)
        self.query_one("#metrics-daily", FixedTable).set_rows(view.days)

    def action_close(self) -> None:
        self.dismiss(None)
