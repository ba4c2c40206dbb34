"""The operator's commands as the cockpit asks for them: a prompt where one is needed, a
confirm that says exactly what will happen, then the command in a worker.

The commands themselves run through core.control.handler (``engine.controls``), the same
path as the CLI and the API; nothing here changes engine state directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.app import App

from cockpit.tui import command_lines
from cockpit.tui.screens import ConfirmScreen, TextPromptScreen
from core.control.handler import CommandRefused, CommandResult
from core.kernel.engine import Engine


class OperatorCommands:
    """Each method is one operator key; ``actor`` is the audit trail's "who"."""

    def __init__(self, app: App[Any], engine: Engine, actor: str) -> None:
        self.app = app
        self.engine = engine
        self.actor = actor

    # ---- the steps every command shares ----------------------------------------------

    def _run_command(self, make: Callable[[], Awaitable[CommandResult]]) -> None:
        async def run() -> None:
            try:
                result = await make()
            except CommandRefused as exc:
                self.app.notify(str(exc), title="Refused", severity="error", timeout=8)
                return
            self.app.notify(result.message, title="Done", timeout=6)

        self.app.run_worker(run(), group="ops")

    def _confirm(self, question: str, then: Callable[[], Awaitable[CommandResult]]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._run_command(then)

        self.app.push_screen(ConfirmScreen(question), answered)

    def _engine_ready(self) -> bool:
        if self.engine.oms is None:
            self.app.notify("the engine is still starting", severity="warning")
            return False
        return True

    def _parsed_prompt(self, title: str, help_text: str, parse: Callable[[str], Any],
                       then: Callable[[Any], None], value: str = "", error: str | None = None) -> None:
        """Ask for one line; a line that does not parse comes back with its usage, kept for editing."""

        def chosen(line: str | None) -> None:
            if not line:
                return
            try:
                parsed = parse(line)
            except ValueError as exc:
                self._parsed_prompt(title, help_text, parse, then, line, str(exc))
                return
            then(parsed)

        self.app.push_screen(TextPromptScreen(title, help_text, value=value, error=error), chosen)

    # ---- the commands ----------------------------------------------------------------

    def flatten(self) -> None:
        if not self._engine_ready():
            return

        def chosen(line: str | None) -> None:
            if not line:
                return
            symbol = None if line.upper() == "ALL" else line.upper()
            try:
                plan = self.engine.controls.flatten_preview(symbol)
            except CommandRefused as exc:
                self.app.notify(str(exc), severity="error")
                return
            lines = ["FLATTEN ALL: trading goes HALTED, then:" if symbol is None else
                     f"FLATTEN {symbol}: reduce-only until resume, then:"]
            lines += [f"  cancel {o['id']} {o['side']} {o['qty']} {o['symbol']} ({o['strategy']})" for o in plan.cancel]
            lines += [f"  {c['side']} {c['qty']} {c['symbol']} at market (about {c['notional']})" for c in plan.close]
            if not plan.cancel and not plan.close:
                lines.append("  nothing to cancel or close")
            lines.append(f"  notional {plan.notional:,}")
            self._confirm("\n".join(lines), lambda: self.engine.controls.flatten(symbol, actor=self.actor))

        self.app.push_screen(TextPromptScreen("Flatten", "Type ALL for the emergency liquidation, or one SYMBOL.",
                                              value="ALL"), chosen)

    def cancel_all(self) -> None:
        if not self._engine_ready():
            return
        orders = self.engine.controls.cancel_all_preview()
        lines = ["CANCEL ALL working orders:"]
        lines += [f"  {o['id']} {o['side']} {o['qty']} {o['symbol']} ({o['strategy']})" for o in orders] or ["  none"]
        self._confirm("\n".join(lines), lambda: self.engine.controls.cancel_all(actor=self.actor))

    def halt_resume(self) -> None:
        if not self._engine_ready():
            return
        state = self.engine.gate.state
        working = len(self.engine.oms.open_orders) if self.engine.oms else 0
        if str(state) == "ACTIVE":
            self._confirm(f"HALT trading: no new orders pass; {working} working order(s) stay (c cancels them).",
                          lambda: self.engine.controls.halt(actor=self.actor))
        else:
            self._confirm(f"RESUME trading: {state} -> ACTIVE ({self.engine.gate.state_reason}).",
                          lambda: self.engine.controls.resume(actor=self.actor))

    def strategies(self) -> None:
        if not self._engine_ready():
            return
        rows = self.engine.controls.strategies()
        listing = "\n".join(f"  {r['name']:<20} {'enabled' if r['enabled'] else 'DISABLED'}" for r in rows)

        def chosen(name: str | None) -> None:
            if not name:
                return
            current = next((r for r in rows if r["name"] == name), None)
            if current is None:
                self.app.notify(f"no strategy named {name!r}", severity="error")
                return
            enable = not current["enabled"]
            word = "ENABLE" if enable else "DISABLE (its working orders are cancelled)"
            self._confirm(f"{word} strategy {name}?",
                          lambda: self.engine.controls.set_strategy(name, enable, actor=self.actor))

        self.app.push_screen(TextPromptScreen("Strategies", f"{listing}\n\nType a name to switch it on or off."),
                             chosen)

    def risk_limits(self) -> None:
        if not self._engine_ready():
            return
        limits = self.engine.controls.risk_limits()
        listing = "\n".join(f"  {k:<36} {v}" for k, v in limits.items())

        def then(parsed: tuple[str, str]) -> None:
            key, new = parsed
            self._confirm(f"Set risk limit {key}: {limits.get(key, '?')} -> {new} (persisted)?",
                          lambda: self.engine.controls.set_limit(key, new, actor=self.actor))

        self._parsed_prompt("Risk limits", f"{listing}\n\n{command_lines.LIMIT_USAGE}", command_lines.parse_limit,
                            then)

    def manual_order(self) -> None:
        if not self._engine_ready():
            return

        def then(o: command_lines.OrderLine) -> None:
            price = f"limit {o.limit}" if o.limit else "at market"
            self._confirm(f"Send {o.side.upper()} {o.qty} {o.symbol} {price} through the risk gate?",
                          lambda: self.engine.controls.manual_order(o.side, o.symbol, o.qty, o.limit,
                                                                    actor=self.actor))

        self._parsed_prompt("Manual order", command_lines.ORDER_USAGE, command_lines.parse_order, then)

    def position_override(self) -> None:
        if not self._engine_ready():
            return

        def then(p: command_lines.PositionLine) -> None:
            now = self.engine.portfolio.positions.get(p.symbol)
            before = f"{now.qty} @ {now.avg_cost}" if now is not None else "none"
            self._confirm(f"OVERRIDE the book: {p.symbol} {before} -> {p.qty} @ {p.avg_cost}\nreason: {p.reason}",
                          lambda: self.engine.controls.set_position(p.symbol, p.qty, p.avg_cost, actor=self.actor,
                                                                    reason=p.reason))

        self._parsed_prompt("Position override (when the book is known to be wrong)", command_lines.POSITION_USAGE,
                            command_lines.parse_position, then)

    def breaks(self) -> None:
        """Reconciliation breaks: what differs from the broker, and settle one (accept, adopt, flatten)."""
        if not self._engine_ready():
            return
        breaks = self.engine.reconciler.views()
        if not breaks:
            last = self.engine.reconciler.last
            self.app.notify(f"no reconciliation breaks (last: {last})" if last else "no reconcile has run yet",
                            title="Breaks", timeout=6)
            return
        listing = []
        for b in breaks:
            listing.append(f"  {b['symbol']}: since {b['found_at'][:19]}"
                           + ("" if b["present"] else " (no longer differs)"))
            listing += [f"    {d['kind']} {d['key']}: engine {d['engine']}, broker {d['broker']}"
                        for d in b["differences"]]
        help_text = "\n".join([*listing, "", ("accept: take the broker's view   adopt: take its unknown orders   "
                                             "flatten: accept, then close the symbol"), command_lines.RESOLVE_USAGE])

        def then(parsed: tuple[str, str]) -> None:
            symbol, action = parsed
            self._confirm(f"RESOLVE the {symbol} break by {action.upper()}?",
                          lambda: self.engine.controls.resolve_break(symbol, action, actor=self.actor))

        self._parsed_prompt("Reconciliation breaks", help_text, command_lines.parse_resolve, then,
                            value=f"{breaks[0]['symbol']} accept")

    def confirm_presence(self) -> None:
        if not self._engine_ready():
            return
        self._run_command(lambda: self.engine.controls.confirm(actor=self.actor))
