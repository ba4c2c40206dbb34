"""The alerts pane: newest first, coloured by severity, filtered by level and text."""

from __future__ import annotations

import logging
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from cockpit.tui.alerts import Alert, AlertBuffer

LEVELS = (logging.INFO, logging.WARNING, logging.ERROR)
_STYLE = {logging.CRITICAL: "bold red", logging.ERROR: "bold red", logging.WARNING: "yellow"}


def visible(alerts: list[Alert], min_level: int, text: str, limit: int) -> list[Alert]:
    """The newest ``limit`` alerts at or above ``min_level`` whose message contains ``text``."""
    needle = text.lower()
    out = []
    for alert in reversed(alerts):
        if alert.level >= min_level and (not needle or needle in alert.message.lower()):
            out.append(alert)
            if len(out) >= limit:
                break
    return out


class AlertsPane(Vertical):
    """Draws from the shared AlertBuffer; redraws only when it or the filter changed."""

    def __init__(self, buffer: AlertBuffer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buffer = buffer
        self.min_level = logging.INFO
        self.text = ""
        self._drawn: tuple[int, int, str, int] | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter alerts (Enter keeps it, Escape clears)", id="alerts-filter")
        yield Static(id="alerts-lines")

    def on_mount(self) -> None:
        self.query_one(Input).display = False
        self._title()

    def cycle_level(self) -> None:
        self.min_level = LEVELS[(LEVELS.index(self.min_level) + 1) % len(LEVELS)]
        self._title()
        self.redraw()

    def open_filter(self) -> None:
        box = self.query_one(Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.text = event.value
        self._title()
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = bool(event.value)
        self.screen.set_focus(None)

    def clear_filter(self) -> None:
        box = self.query_one(Input)
        box.value = ""
        box.display = False
        self.screen.set_focus(None)

    def _title(self) -> None:
        level = logging.getLevelName(self.min_level)
        shown = f" text '{self.text}'" if self.text else ""
        self.border_title = f"Alerts (newest first, {level}+{shown})"

    def redraw(self) -> None:
        height = max(1, self.size.height)  # the content area, inside the border
        key = (self.buffer.version, self.min_level, self.text, height)
        if key == self._drawn:
            return
        self._drawn = key
        lines = Text()
        for alert in visible(list(self.buffer.items), self.min_level, self.text, height):
            if lines:
                lines.append("\n")
            lines.append(f"{logging.getLevelName(alert.level):<7} {alert.message}", style=_STYLE.get(alert.level, ""))
        self.query_one("#alerts-lines", Static).update(lines)
