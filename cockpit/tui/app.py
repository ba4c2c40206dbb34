"""The cockpit app: the engine runs on this app's own asyncio loop, the screen shows snapshots.

The UI never changes engine state itself and never draws per tick: a 4 Hz timer takes one
engine snapshot and redraws the panes from it.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
from collections.abc import Awaitable, Callable
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker
from textual_plotext import PlotextPlot

from core.config import ConfigError
from core.control.handler import CommandRefused, CommandResult
from core.control.deadman import DeadmanPhase
from core.kernel.engine import Engine
from core.control.read_model import EngineSnapshot

from cockpit.control.server import ControlServer
from cockpit.gc_policy import freeze_startup_objects
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.alerts_pane import AlertsPane
from cockpit.tui import command_lines
from cockpit.tui.screens import ConfirmScreen, DeadmanScreen, HelpScreen, TextPromptScreen
from cockpit.tui.status_line import status_line
from cockpit.tui.fixed_table import Cell, Column, FixedTable

log = logging.getLogger("cockpit.tui")

REFRESH_SECONDS = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_CENT = Decimal("0.01")


def money(value: Decimal | None) -> Cell:
    if value is None:
        return "-"
    text = f"{value.quantize(_CENT, ROUND_HALF_UP):,}"
    return (text, "red") if value < 0 else text


def num(value: Decimal | None, places: str = "0.01") -> str:
    if value is None:
        return "-"
    return f"{value.quantize(Decimal(places), ROUND_HALF_UP)}"


def age(delta: timedelta) -> str:
    """Engine-time age, compact: 45s, 12m, 3h, 2d."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


POSITION_COLUMNS = (
    Column("symbol", 7), Column("qty", 7, True), Column("avg cost", 9, True), Column("last", 9, True),
    Column("mkt value", 11, True), Column("unrealized", 10, True), Column("unr %", 6, True),
    Column("real.today", 10, True), Column("realized", 10, True),
)
ORDER_COLUMNS = (
    Column("id", 10), Column("strategy", 13), Column("symbol", 6), Column("side", 4), Column("qty", 7, True),
    Column("filled", 7, True), Column("type", 6), Column("limit", 9, True), Column("status", 16),
    Column("created", 16), Column("age", 6, True), Column("reason", 40),
)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def binding_ids() -> set[str]:
    """Every binding id a keymap may name."""
    ids = set()
    for owner in (CockpitApp, ConfirmScreen, HelpScreen, TextPromptScreen, DeadmanScreen):
        ids.update(b.id for b in owner.BINDINGS if isinstance(b, Binding) and b.id)
    return ids


class CockpitApp(App[int]):
    CSS_PATH = "cockpit.tcss"
    TITLE = "cockpit"
    BINDINGS = [
        Binding("q", "quit_cockpit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Keys", id="app.help", key_display="?"),
        Binding("a", "alert_level", "Alert level", id="alerts.level"),
        Binding("slash", "alert_filter", "Filter alerts", id="alerts.filter", key_display="/"),
        Binding("escape", "clear_alert_filter", "Clear filter", id="alerts.clear", show=False),
        Binding("f", "flatten", "Flatten", id="ops.flatten"),
        Binding("c", "cancel_all", "Cancel all", id="ops.cancel_all"),
        Binding("h", "halt_resume", "Halt/resume", id="ops.halt"),
        Binding("s", "strategies", "Strategies", id="ops.strategies"),
        Binding("r", "risk_limits", "Risk limits", id="ops.risk"),
        Binding("o", "manual_order", "Order", id="ops.order"),
        Binding("p", "position_override", "Position", id="ops.position"),
        Binding("d", "confirm_presence", "I'm here", id="ops.deadman"),
        Binding("b", "breaks", "Breaks", id="ops.breaks"),
    ]

    def __init__(self, engine: Engine, alerts: AlertBuffer, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.alerts = alerts
        if keymap:
            unknown = sorted(set(keymap) - binding_ids())
            if unknown:
                raise ConfigError(f"keys: unknown binding id(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(binding_ids()))})")
            self.set_keymap(keymap)
        self._engine_worker: Worker[None] | None = None
        self.engine_state = "starting"
        self.engine_done = asyncio.Event()  # set when the engine's run ends, however it ends
        self._deadman_screen: DeadmanScreen | None = None
        self.actor = f"tui:{_user()}"  # the audit trail's "who"
        self.control = ControlServer(engine, engine.settings)  # the CLI and scripts reach the engine here
        self.crash: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="top"):
            yield FixedTable(POSITION_COLUMNS, id="positions")
            with Vertical(id="pnl"):
                yield Static(id="pnl-figures")
                yield PlotextPlot(id="equity")
        yield FixedTable(ORDER_COLUMNS, id="orders")
        yield AlertsPane(self.alerts, id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#positions").border_title = "Positions"
        self.query_one("#orders").border_title = "Orders"
        self.query_one("#pnl").border_title = "P&L"
        self._curve_drawn: tuple[object, int] | None = None
        # The engine starts once the first frame is on screen: loading data and calendars
        # blocks the loop for a moment, and the trader should see the cockpit meanwhile.
        self.call_after_refresh(self._start_engine)
        self.set_interval(REFRESH_SECONDS, self.refresh_panes)
        self.refresh_panes()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_stop_signal, sig)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        """SIGTERM (systemd, kill) or SIGHUP (the ssh session went away): stop cleanly, no prompt."""
        log.warning("%s received: stopping the engine, state will be flushed", sig.name)
        self.run_worker(self._stop_engine_and_exit(), name="stop", group="stop", exclusive=True)

    def _start_engine(self) -> None:
        self._engine_worker = self.run_worker(self._run_engine(), name="engine", group="engine",
                                              exit_on_error=False)

    async def _run_engine(self) -> None:
        """The engine on the app's loop: an error becomes an alert, never a dead screen."""
        try:
            await self.engine.start()
            await self.control.start()
            freeze_startup_objects()
            self.engine_state = "running"
            finished = await self.engine.run()
            self.engine_state = "replay finished" if finished else "stopped"
            if finished:
                log.info("replay finished: the engine is idle; press q to quit")
        except Exception as exc:
            self.engine_state = "failed"
            log.exception("engine failed: %s", exc)
        finally:
            self.engine_done.set()

    # ---- drawing -------------------------------------------------------------------

    def refresh_panes(self) -> None:
        snap = self.engine.snapshot() if self.engine.oms is not None else None
        try:
            self._draw_status(snap)
            if snap is not None:
                self._watch_deadman(snap)
                self._draw_positions(snap)
                self._draw_orders(snap)
                self._draw_pnl(snap)
            self.query_one(AlertsPane).redraw()
        except NoMatches:
            pass  # the app is tearing down: the panes are gone

    def _watch_deadman(self, snap: EngineSnapshot) -> None:
        """The grace window opens a modal; it closes when presence is confirmed (any way)."""
        dm = snap.deadman
        warning = dm is not None and dm.phase is DeadmanPhase.WARNING
        if warning and self._deadman_screen is None:
            self._deadman_screen = DeadmanScreen(self.engine.settings.deadman.action)

            def answered(yes: bool | None) -> None:
                self._deadman_screen = None
                if yes:
                    self.action_confirm_presence()

            self.push_screen(self._deadman_screen, answered)
        if self._deadman_screen is not None:
            if warning and self._deadman_screen.is_mounted:
                self._deadman_screen.show_seconds(dm.seconds_left if dm else None)
            elif not warning:
                self._deadman_screen.dismiss(False)

    def _draw_status(self, snap: EngineSnapshot | None) -> None:
        self.query_one("#status", Static).update(status_line(snap, self.engine_state))

    def _draw_positions(self, snap: EngineSnapshot) -> None:
        rows = [
            (p.symbol, num(p.qty, "1"), num(p.avg_cost, "0.0001"), num(p.last, "0.01"), money(p.market_value),
             money(p.unrealized_pnl), num(p.unrealized_pct, "0.01"), money(p.realized_today), money(p.realized_pnl))
            for p in snap.positions
        ]
        self.query_one("#positions", FixedTable).set_rows(rows)

    def _draw_orders(self, snap: EngineSnapshot) -> None:
        tz = snap.market_tz
        rows: list[tuple[Cell, ...]] = []
        for r in reversed(snap.rejections[-5:]):  # a refused intent shows with its reason
            rows.append(("-", r.strategy, r.symbol, r.side.value, num(r.qty, "1"), "-", "", "-",
                         ("REFUSED", "bold red"), r.ts.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                         age(snap.taken_at - r.ts), (r.reason, "red")))
        for o in snap.orders:
            style = "red" if o.status.value == "REJECTED" else ("bold" if not o.status.is_terminal else "dim")
            rows.append((o.client_order_id, o.strategy, o.symbol, o.side, num(o.qty, "1"), num(o.filled_qty, "1"),
                         o.order_type, num(o.limit_price), (o.status.value, style),
                         o.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), age(snap.taken_at - o.created_at),
                         o.reason or ""))
        self.query_one("#orders", FixedTable).set_rows(rows)

    def _draw_pnl(self, snap: EngineSnapshot) -> None:
        rows = (("realized", snap.realized), ("unrealized", snap.unrealized), ("commissions", snap.commissions),
                ("net", snap.net), ("day", snap.day_pnl), ("max drawdown", -snap.max_drawdown),
                ("equity", snap.equity))
        figures = self.query_one("#pnl-figures", Static)
        width = min(figures.size.width, 28) or 28
        text = Text(no_wrap=True, overflow="ellipsis")
        for label, value in rows:
            cell = money(value)
            figure, style = (cell, "") if isinstance(cell, str) else cell
            text.append(f"{label:<13}")
            text.append(f"{figure:>{max(1, width - 13)}}\n", style=style)
        figures.update(text)
        self._draw_curve(snap)

    def _draw_curve(self, snap: EngineSnapshot) -> None:
        """Redraw the equity chart only when the curve changed (it is the costly widget)."""
        curve = snap.equity_curve
        key = (curve[-1][0] if curve else None, len(curve))
        if key == self._curve_drawn or len(curve) < 2:
            return
        self._curve_drawn = key
        plot = self.query_one("#equity", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plot([float(e) for _, e in curve], marker="braille")
        plt.xticks([])
        plt.title("equity")
        plot.refresh()

    # ---- crashes -------------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """A crash: traceback to the log file, one line for the terminal (see run_tui).

        ``_handle_exception``/``_exit_renderables`` are Textual's own (pinned 8.2.8) crash
        path; Textual still restores the terminal.
        """
        log.critical("cockpit crashed", exc_info=error)
        self.crash = f"{type(error).__name__}: {error}"
        super()._handle_exception(error)
        self._exit_renderables.clear()

    async def on_unmount(self) -> None:
        """However the app ends, the engine stops and its state is flushed."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if self.engine.store.is_open:
            self.engine.request_stop()
            if self._engine_worker is not None and not self._engine_worker.is_finished:
                self._engine_worker.cancel()
            try:
                await self.control.stop()
                await self.engine.shutdown()
            except Exception:
                log.exception("engine shutdown after a crash failed")

    # ---- actions -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette offers the same actions as the keys."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Quit cockpit", "Stop the engine (state flushed) and leave", self.action_quit_cockpit)
        yield SystemCommand("Keys", "List every key", self.action_help)
        yield SystemCommand("Flatten", "Emergency liquidation (ALL) or one symbol", self.action_flatten)
        yield SystemCommand("Cancel all", "Cancel every working order", self.action_cancel_all)
        yield SystemCommand("Halt / resume", "Stop new orders, or trade again", self.action_halt_resume)
        yield SystemCommand("Strategies", "Switch a strategy on or off", self.action_strategies)
        yield SystemCommand("Risk limits", "Show and change risk limits", self.action_risk_limits)
        yield SystemCommand("Reconciliation breaks", "Where the book differs from the broker; settle one",
                            self.action_breaks)
        yield SystemCommand("Manual order", "An order through the risk gate", self.action_manual_order)
        yield SystemCommand("Position override", "Correct the book for a symbol", self.action_position_override)
        yield SystemCommand("Confirm presence", "Reset the dead-man switch", self.action_confirm_presence)

    def action_alert_level(self) -> None:
        self.query_one(AlertsPane).cycle_level()

    def action_alert_filter(self) -> None:
        self.query_one(AlertsPane).open_filter()

    def action_clear_alert_filter(self) -> None:
        self.query_one(AlertsPane).clear_filter()

    # ---- operator commands: the same path as the CLI and the API (core.control.handler) ----

    def _run_command(self, make: Callable[[], Awaitable[CommandResult]]) -> None:
        async def run() -> None:
            try:
                result = await make()
            except CommandRefused as exc:
                self.notify(str(exc), title="Refused", severity="error", timeout=8)
                return
            self.notify(result.message, title="Done", timeout=6)

        self.run_worker(run(), group="ops")

    def _confirm(self, question: str, then: Callable[[], Awaitable[CommandResult]]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._run_command(then)

        self.push_screen(ConfirmScreen(question), answered)

    def _engine_ready(self) -> bool:
        if self.engine.oms is None:
            self.notify("the engine is still starting", severity="warning")
            return False
        return True

    def action_flatten(self) -> None:
        if not self._engine_ready():
            return

        def chosen(line: str | None) -> None:
            if not line:
                return
            symbol = None if line.upper() == "ALL" else line.upper()
            try:
                plan = self.engine.controls.flatten_preview(symbol)
            except CommandRefused as exc:
                self.notify(str(exc), severity="error")
                return
            lines = ["FLATTEN ALL: trading goes HALTED, then:" if symbol is None else
                     f"FLATTEN {symbol}: reduce-only until resume, then:"]
            lines += [f"  cancel {o['id']} {o['side']} {o['qty']} {o['symbol']} ({o['strategy']})" for o in plan.cancel]
            lines += [f"  {c['side']} {c['qty']} {c['symbol']} at market (about {c['notional']})" for c in plan.close]
            if not plan.cancel and not plan.close:
                lines.append("  nothing to cancel or close")
            lines.append(f"  notional {plan.notional:,}")
            self._confirm("\n".join(lines), lambda: self.engine.controls.flatten(symbol, actor=self.actor))

        self.push_screen(TextPromptScreen("Flatten", "Type ALL for the emergency liquidation, or one SYMBOL.",
                                          value="ALL"), chosen)

    def action_cancel_all(self) -> None:
        if not self._engine_ready():
            return
        orders = self.engine.controls.cancel_all_preview()
        lines = ["CANCEL ALL working orders:"]
        lines += [f"  {o['id']} {o['side']} {o['qty']} {o['symbol']} ({o['strategy']})" for o in orders] or ["  none"]
        self._confirm("\n".join(lines), lambda: self.engine.controls.cancel_all(actor=self.actor))

    def action_halt_resume(self) -> None:
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

    def action_strategies(self) -> None:
        if not self._engine_ready():
            return
        rows = self.engine.controls.strategies()
        listing = "\n".join(f"  {r['name']:<20} {'enabled' if r['enabled'] else 'DISABLED'}" for r in rows)

        def chosen(name: str | None) -> None:
            if not name:
                return
            current = next((r for r in rows if r["name"] == name), None)
            if current is None:
                self.notify(f"no strategy named {name!r}", severity="error")
                return
            enable = not current["enabled"]
            word = "ENABLE" if enable else "DISABLE (its working orders are cancelled)"
            self._confirm(f"{word} strategy {name}?",
                          lambda: self.engine.controls.set_strategy(name, enable, actor=self.actor))

        self.push_screen(TextPromptScreen("Strategies", f"{listing}\n\nType a name to switch it on or off."), chosen)

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

        self.push_screen(TextPromptScreen(title, help_text, value=value, error=error), chosen)

    def action_risk_limits(self) -> None:
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

    def action_manual_order(self) -> None:
        if not self._engine_ready():
            return

        def then(o: command_lines.OrderLine) -> None:
            price = f"limit {o.limit}" if o.limit else "at market"
            self._confirm(f"Send {o.side.upper()} {o.qty} {o.symbol} {price} through the risk gate?",
                          lambda: self.engine.controls.manual_order(o.side, o.symbol, o.qty, o.limit,
                                                                    actor=self.actor))

        self._parsed_prompt("Manual order", command_lines.ORDER_USAGE, command_lines.parse_order, then)

    def action_position_override(self) -> None:
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

    def action_breaks(self) -> None:
        """Reconciliation breaks: what differs from the broker, and settle one (accept, adopt, flatten)."""
        if not self._engine_ready():
            return
        breaks = self.engine.reconciler.views()
        if not breaks:
            last = self.engine.reconciler.last
            self.notify(f"no reconciliation breaks (last: {last})" if last else "no reconcile has run yet",
                        title="Breaks", timeout=6)
            return
        listing = []
        for b in breaks:
            listing.append(f"  {b['symbol']}: since {b['found_at'][:19]}"
                           + ("" if b["present"] else " (no longer differs)"))
            listing += [f"    {d['kind']} {d['key']}: engine {d['engine']}, broker {d['broker']}"
                        for d in b["differences"]]
        help_text = "\n".join([*listing, "", "accept: take the broker's view   adopt: take its unknown orders   "
                                            "flatten: accept, then close the symbol", command_lines.RESOLVE_USAGE])

        def then(parsed: tuple[str, str]) -> None:
            symbol, action = parsed
            self._confirm(f"RESOLVE the {symbol} break by {action.upper()}?",
                          lambda: self.engine.controls.resolve_break(symbol, action, actor=self.actor))

        self._parsed_prompt("Reconciliation breaks", help_text, command_lines.parse_resolve, then,
                            value=f"{breaks[0]['symbol']} accept")

    def action_confirm_presence(self) -> None:
        if not self._engine_ready():
            return
        self._run_command(lambda: self.engine.controls.confirm(actor=self.actor))

    def action_help(self) -> None:
        rows = []
        for binding in self.BINDINGS:
            if isinstance(binding, Binding):
                key = self.get_key_display(self._active_binding(binding))
                rows.append((key, f"{binding.description}  [{binding.id}]"))
        self.push_screen(HelpScreen(rows))

    def _active_binding(self, binding: Binding) -> Binding:
        """The binding as remapped by the keymap (what the user actually presses)."""
        for _key, active in self.active_bindings.items():
            if active.binding.id == binding.id:
                return active.binding
        return binding

    async def action_quit(self) -> None:
        """Textual's own quit (ctrl+q, the palette) asks too: leaving stops the engine."""
        self.action_quit_cockpit()

    def action_quit_cockpit(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._stop_engine_and_exit(), name="stop", group="stop", exclusive=True)

        self.push_screen(ConfirmScreen("Quit? The engine stops and its state is flushed."), answered)

    async def _stop_engine_and_exit(self) -> None:
        self.engine_state = "stopping"
        self.engine.request_stop()
        if self._engine_worker is not None:
            await self._engine_worker.wait()
        try:
            await self.control.stop()
            await self.engine.shutdown()
        except Exception:
            log.exception("engine shutdown failed")
            self.exit(1)
            return
        self.exit(0)
