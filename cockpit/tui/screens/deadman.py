"""The dead-man's grace window as a modal: confirm presence, or the configured action runs."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class DeadmanScreen(ModalScreen[bool]):
    """The dead-man's grace window: confirm presence now (d or Enter), or the action runs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d,enter", "confirm", "I am here", id="deadman.confirm"),
        Binding("escape", "later", "Not now", id="deadman.later"),
    ]

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action_name = action

    def compose(self) -> ComposeResult:
        with Vertical(id="deadman-dialog"):
            yield Label("DEAD-MAN SWITCH: confirm you are at the desk", id="deadman-title")
            yield Static("", id="deadman-countdown")
            yield Static(f"If nobody confirms, the engine runs {self.action_name}.\n"
                         "Press d or Enter to confirm.", id="deadman-help")

    def show_seconds(self, seconds: float | None) -> None:
        text = f"{seconds:.0f} s left" if seconds is not None else "missed"
        self.query_one("#deadman-countdown", Static).update(text)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_later(self) -> None:
        self.dismiss(False)
