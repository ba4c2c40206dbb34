"""The status bar: mode, trading state, broker, feed, clock, equity, dead-man (see status_line)."""

from __future__ import annotations

from textual.widgets import Static

from cockpit.tui.status_line import status_line
from core.control.read_model import EngineSnapshot


class StatusBar(Static):
    """One or two lines at the top; what a trader checks first."""

    def show(self, snap: EngineSnapshot | None, engine_state: str) -> None:
        self.update(status_line(snap, engine_state))
