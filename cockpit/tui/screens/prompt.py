"""One line of input for an operator command."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class TextPromptScreen(ModalScreen[str | None]):
    """One line of input for an operator command; the app parses it and runs the command.

    Enter submits, Escape cancels. ``error`` shows why the last attempt was refused, so
    the operator can fix the line instead of starting over.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, help_text: str, *, value: str = "", error: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.value = value
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Label(self.title_text, id="prompt-title")
            with VerticalScroll(id="prompt-help-box"):  # a long listing scrolls; the input stays in view
                yield Static(self.help_text, id="prompt-help")
            if self.error:
                yield Static(self.error, id="prompt-error")
            yield Input(value=self.value, id="prompt-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
