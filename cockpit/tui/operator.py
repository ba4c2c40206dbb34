"""The operator's commands as the cockpit asks for them: a prompt where one is needed, the
command's plan (validated by the engine before anything is offered), a confirm that shows that
plan, then the command in a worker, sent with the plan it showed.

The commands run through core.control.handler (``engine.controls``), the same path as the CLI
and the API; a plan that no longer holds when Yes is pressed comes back as the new plan, asked
again. The cockpit reads the engine only through its read model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App

from cockpit.tui import command_lines, rows
from cockpit.tui.screens import ConfirmScreen, TextPromptScreen
from core.domain.commands import (
    CancelAll,
    Command,
    CommandRefused,
    ConfirmPresence,
    Flatten,
    Halt,
    ManualOrder,
    OverridePosition,
    Plan,
    PlanChanged,
    ResolveBreak,
    Resume,
    SetAllocation,
    SetLimit,
    SetStrategy,
)
from core.kernel.engine import Engine


class OperatorCommands:
    """Each method is one operator key; ``actor`` is the audit trail's "who"."""

    def __init__(self, app: App[Any], engine: Engine, actor: str) -> None:
        self.app = app
        self.engine = engine
        self.actor = actor

    # ---- the steps every command shares ----------------------------------------------

    def _ask(self, command: Command, *, retry: Callable[[str], None] | None = None) -> None:
        """Plan ``command`` (a refusal goes back to the prompt through ``retry``, or is shown),
        confirm its plan, run it with that plan."""

        async def plan() -> None:
            try:
                shown = await self.engine.controls.plan(command)
            except CommandRefused as exc:
                if retry is not None:
                    retry(str(exc))
                else:
                    self.app.notify(str(exc), title="Refused", severity="error", timeout=8)
                return
            self._confirm(command, shown)

        self.app.run_worker(plan(), group="ops")

    def _confirm(self, command: Command, plan: Plan) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._execute(command, plan)

        self.app.push_screen(ConfirmScreen(plan.text), answered)

    def _execute(self, command: Command, plan: Plan | None) -> None:
        async def run() -> None:
            try:
                result = await self.engine.controls.execute(command, plan)
            except PlanChanged as changed:
                self.app.notify("the state moved while you decided: nothing was done; confirm the new plan",
                                title="Plan changed", severity="warning", timeout=8)
                self._confirm(command, changed.plan)
                return
            except CommandRefused as exc:
                self.app.notify(str(exc), title="Refused", severity="error", timeout=8)
                return
            self.app.notify(result.message, title="Done", timeout=6)

        self.app.run_worker(run(), group="ops")

    def _engine_ready(self) -> bool:
        if not self.engine.read_model.ready:
            self.app.notify("the engine is still starting", severity="warning")
            return False
        return True

    def _prompt(self, title: str, help_text: str, make: Callable[[str], Command], value: str = "",
                error: str | None = None) -> None:
        """Ask for one line; a line that does not parse, or whose command the engine refuses,
        comes back with the reason, kept for editing: Yes is offered only for a valid command."""

        def chosen(line: str | None) -> None:
            if not line:
                return
            try:
                command = make(line)
            except ValueError as exc:
                self._prompt(title, help_text, make, line, str(exc))
                return
            self._ask(command, retry=lambda why: self._prompt(title, help_text, make, line, why))

        self.app.push_screen(TextPromptScreen(title, help_text, value=value, error=error), chosen)

    # ---- the commands ----------------------------------------------------------------

    def flatten(self) -> None:
        if not self._engine_ready():
            return
        self._prompt("Flatten", "Type ALL for the emergency liquidation, or one SYMBOL.",
                     lambda line: Flatten(self.actor, symbol=None if line.strip().upper() == "ALL" else line.strip()),
                     value="ALL")

    def cancel_all(self) -> None:
        if self._engine_ready():
            self._ask(CancelAll(self.actor))

    def halt_resume(self) -> None:
        if not self._engine_ready():
            return
        state = self.engine.read_model.snapshot(max_orders=0).trading_state
        self._ask(Halt(self.actor) if state == "ACTIVE" else Resume(self.actor))

    def strategies(self) -> None:
        if not self._engine_ready():
            return
        known = self.engine.read_model.strategies()
        used = {c.strategy: rows.capital_text(c) for c in self.engine.read_model.capital()}
        listing = "\n".join(f"  {r['name']:<20} {'enabled' if r['enabled'] else 'DISABLED':<9} "
                            f"allocation {used.get(r['name'], '?')}" for r in known)

        def make(name: str) -> Command:
            current = next((r for r in known if r["name"] == name.strip()), None)
            if current is None:
                raise ValueError(f"no strategy named {name.strip()!r} (known: {', '.join(r['name'] for r in known)})")
            return SetStrategy(self.actor, strategy=current["name"], enabled=not current["enabled"])

        self._prompt("Strategies", f"{listing}\n\nType a name to switch it on or off (allocations: key r).", make)

    def risk_limits(self) -> None:
        if not self._engine_ready():
            return
        model = self.engine.read_model
        listing = "\n".join(f"  {k:<36} {v}" for k, v in model.limits().items())
        capital = "\n".join(f"  allocation {c.strategy:<25} {rows.capital_text(c)}" for c in model.capital())
        base = model.snapshot(max_orders=0).equity_at_start
        head = f"Capital per strategy (% of the equity at start {base:,.2f}):" if base is not None else "Capital:"

        def make(line: str) -> Command:
            allocation = command_lines.parse_allocation(line)
            if allocation is not None:
                return SetAllocation(self.actor, strategy=allocation[0], value=allocation[1])
            key, value = command_lines.parse_limit(line)
            return SetLimit(self.actor, key=key, value=value)

        self._prompt("Risk limits", f"{listing}\n\n{head}\n{capital}\n\n{command_lines.LIMIT_USAGE}\n"
                     f"{command_lines.ALLOCATION_USAGE}", make)

    def manual_order(self) -> None:
        if not self._engine_ready():
            return

        def make(line: str) -> Command:
            o = command_lines.parse_order(line)
            return ManualOrder(self.actor, side=o.side, symbol=o.symbol, qty=o.qty, limit=o.limit)

        self._prompt("Manual order", command_lines.ORDER_USAGE, make)

    def position_override(self) -> None:
        if not self._engine_ready():
            return

        def make(line: str) -> Command:
            p = command_lines.parse_position(line)
            return OverridePosition(self.actor, p.reason, symbol=p.symbol, qty=p.qty, avg_cost=p.avg_cost)

        self._prompt("Position override (when the book is known to be wrong)", command_lines.POSITION_USAGE, make)

    def breaks(self) -> None:
        """Reconciliation breaks: what differs from the broker, and settle one (accept, adopt, flatten)."""
        if not self._engine_ready():
            return
        model = self.engine.read_model
        breaks = model.breaks()
        if not breaks:
            last = model.last_reconcile()
            self.app.notify(f"no reconciliation breaks (last: {last['at'][:19]}, {last['reason']})" if last
                            else "no reconcile has run yet", title="Breaks", timeout=6)
            return
        listing = []
        for b in breaks:
            listing.append(f"  {b['symbol']}: since {b['found_at'][:19]}"
                           + ("" if b["present"] else " (no longer differs)"))
            listing += [f"    {d['kind']} {d['key']}: engine {d['engine']}, broker {d['broker']}"
                        for d in b["differences"]]
        help_text = "\n".join([*listing, "", ("accept: take the broker's view   adopt: take its unknown orders   "
                                             "flatten: accept, then close the symbol"), command_lines.RESOLVE_USAGE])

        def make(line: str) -> Command:
            symbol, action = command_lines.parse_resolve(line)
            return ResolveBreak(self.actor, symbol=symbol, action=action)

        self._prompt("Reconciliation breaks", help_text, make, value=f"{breaks[0]['symbol']} accept")

    def confirm_presence(self) -> None:
        if self._engine_ready():
            self._execute(ConfirmPresence(self.actor), None)
