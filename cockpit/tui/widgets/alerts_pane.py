"""The alerts pane: newest first, coloured by severity, filtered by level and text; its
subtitle says how many alerts could not be delivered (``cockpit alerts`` lists them)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from cockpit.tui.alerts import AlertBuffer, PaneLine
from core.alerts.model import Severity

LEVELS = (Severity.INFO, Severity.WARNING, Severity.ERROR)
_STYLE = {Severity.CRITICAL: "bold red", Severity.ERROR: "bold red", Severity.WARNING: "yellow"}


def visible(alerts: list[PaneLine], min_level: Severity, text: str, limit: int) -> list[PaneLine]:
    """The newest ``limit`` alerts at or above ``min_level`` whose message contains ``text``."""
    needle = text.lower()
    out = []
    for alert in reversed(alerts):
        if alert.severity >= min_level and (not needle or needle in alert.message.lower()):
            out.append(alert)
            if len(out) >= limit:
                break
    return out


class AlertsPane(Vertical):
    """Draws from the shared AlertBuffer; redraws only when it or the filter changed."""

    def __init__(self, buffer: AlertBuffer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buffer = buffer
        self.min_level = Severity.INFO
        self.text = ""
        self._drawn: tuple[int, Severity, str, int] | None = None
        self._undelivered = 0

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
        level = self.min_level.name
        shown = f" text '{self.text}'" if self.text else ""
        self.border_title = f"Alerts (newest first, {level}+{shown})"

    def redraw(self) -> None:
        height = max(1, self.size.height)  # the content area, inside the border
        key = (self.buffer.version, self.min_level, self.text, height)
        if key == self._drawn:
            self._subtitle()  # the count moves without a new line (a flood's digest comes later)
            return
        self._drawn = key
        lines = Text()
        for alert in visible(list(self.buffer.items), self.min_level, self.text, height):
            if lines:
                lines.append("\n")
            if alert.resolved:
                lines.append(f"{'OK':<7} {alert.message}", style="green")
            else:
                lines.append(f"{alert.severity.name:<7} {alert.message}", style=_STYLE.get(alert.severity, ""))
        self.query_one("#alerts-lines", Static).update(lines)
        self._subtitle()

    def _subtitle(self) -> None:
        if self.buffer.undelivered != self._undelivered:
            self._undelivered = self.buffer.undelivered
            self.border_subtitle = (f"{self._undelivered} undelivered: cockpit alerts" if self._undelivered
                                    else None)
