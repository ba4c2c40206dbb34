"""The cockpit app: the engine runs on this app's own asyncio loop, the screen shows snapshots.

The UI never changes engine state itself and never draws per tick: a 4 Hz timer takes one
engine snapshot and redraws the panes from it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

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
from core.engine import Engine
from core.snapshot import EngineSnapshot

from cockpit.control.server import ControlServer
from cockpit.gc_policy import freeze_startup_objects
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.alerts_pane import AlertsPane
from cockpit.tui.screens import ConfirmScreen, HelpScreen
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


def binding_ids() -> set[str]:
    """Every binding id a keymap may name."""
    ids = set()
    for owner in (CockpitApp, ConfirmScreen, HelpScreen):
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
                self._draw_positions(snap)
                self._draw_orders(snap)
                self._draw_pnl(snap)
            self.query_one(AlertsPane).redraw()
        except NoMatches:
            pass  # the app is tearing down: the panes are gone

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

    def action_alert_level(self) -> None:
        self.query_one(AlertsPane).cycle_level()

    def action_alert_filter(self) -> None:
        self.query_one(AlertsPane).open_filter()

    def action_clear_alert_filter(self) -> None:
        self.query_one(AlertsPane).clear_filter()

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
