"""Modal screens: confirmations and the key help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks yes/no; `y`/Enter confirm, `n`/Escape cancel. The question says exactly what
    will happen (which orders, which positions, the notional)."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid(id="confirm-dialog"):
            yield Label(self.question, id="confirm-question")
            yield Button("Yes (y)", variant="error", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """Every key the app knows, from its bindings (so a remapped key shows as remapped)."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

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


class TextPromptScreen(ModalScreen[str | None]):
    """One line of input for an operator command; the app parses it and runs the command.

    Enter submits, Escape cancels. ``error`` shows why the last attempt was refused, so
    the operator can fix the line instead of starting over.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, help_text: str, *, value: str = "", error: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.value = value
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Label(self.title_text, id="prompt-title")
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


class DeadmanScreen(ModalScreen[bool]):
    """The dead-man's grace window: confirm presence now (d or Enter), or the action runs."""

    BINDINGS = [
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
