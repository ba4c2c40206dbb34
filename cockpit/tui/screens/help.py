"""The key help: every key the cockpit knows."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    """Every key the app knows, from its bindings (so a remapped key shows as remapped)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        text = "\n".join(f"  {key:<12} {description}" for key, description in self.rows)
        with Vertical(id="help-dialog"):
            yield Label("Keys", id="help-title")
            yield Static(text, id="help-keys")
            yield Label("Escape closes this help.", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
