"""Every cockpit action once: its key (with an id a keymap can remap), its footer label, and
how the command palette lists it. Bindings, the palette and the key help all come from here,
so a key and its palette entry cannot drift apart or appear twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class CockpitAction:
    id: str  # the binding id a [keys] table in config.toml names
    key: str
    action: str  # the app's action_<action>
    label: str  # the footer's word for it
    title: str | None = None  # the command palette's entry; None: not in the palette
    help: str = ""
    key_display: str | None = None
    show: bool = True  # in the footer

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.label, show=self.show, key_display=self.key_display, id=self.id)


ACTIONS: tuple[CockpitAction, ...] = (
    CockpitAction("app.quit", "q", "quit_cockpit", "Quit", "Quit cockpit",
                  "Stop the engine (state flushed) and leave"),
    CockpitAction("app.help", "question_mark", "help", "Keys", "Keys", "List every key", key_display="?"),
    CockpitAction("alerts.level", "a", "alert_level", "Alert level"),
    CockpitAction("alerts.filter", "slash", "alert_filter", "Filter alerts", key_display="/"),
    CockpitAction("alerts.clear", "escape", "clear_alert_filter", "Clear filter", show=False),
    CockpitAction("ops.flatten", "f", "flatten", "Flatten", "Flatten", "Emergency liquidation (ALL) or one symbol"),
    CockpitAction("ops.cancel_all", "c", "cancel_all", "Cancel all", "Cancel all", "Cancel every working order"),
    CockpitAction("ops.halt", "h", "halt_resume", "Halt/resume", "Halt / resume", "Stop new orders, or trade again"),
    CockpitAction("ops.strategies", "s", "strategies", "Strategies", "Strategies", "Switch a strategy on or off"),
    CockpitAction("ops.risk", "r", "risk_limits", "Risk limits", "Risk limits", "Show and change risk limits"),
    CockpitAction("ops.order", "o", "manual_order", "Order", "Manual order", "An order through the risk gate"),
    CockpitAction("ops.position", "p", "position_override", "Position", "Position override",
                  "Correct the book for a symbol"),
    CockpitAction("ops.deadman", "d", "confirm_presence", "I'm here", "Confirm presence",
                  "Reset the dead-man switch"),
    CockpitAction("ops.breaks", "b", "breaks", "Breaks", "Reconciliation breaks",
                  "Where the book differs from the broker; settle one"),
    # A view, not an override: in the key help and the palette, not in the (full) footer.
    CockpitAction("view.metrics", "m", "metrics", "Metrics", "Performance metrics",
                  "Sharpe, drawdown, win rate per strategy; the daily P&L reports", show=False),
)

#: Textual's own palette entries that one of ours replaces: its "Quit" (ours asks first and
#: flushes the engine) and its "Keys" help panel (ours lists every key with its binding id).
REPLACED_SYSTEM_COMMANDS = frozenset({"Quit", "Keys"})


def bindings() -> list[Binding]:
    return [a.binding() for a in ACTIONS]
