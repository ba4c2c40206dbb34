"""The cockpit app: the engine runs on this app's own asyncio loop, the screen shows snapshots.

The UI never changes engine state itself and never draws per tick: a 4 Hz timer takes one
engine snapshot and redraws the panes from it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker
from textual_plotext import PlotextPlot

from core.config import ConfigError
from core.engine import Engine
from core.snapshot import EngineSnapshot

from cockpit.gc_policy import freeze_startup_objects
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.alerts_pane import AlertsPane
from cockpit.tui.screens import ConfirmScreen, HelpScreen
from cockpit.tui.tables import sync_rows

log = logging.getLogger("cockpit.tui")

REFRESH_SECONDS = 0.25
_CENT = Decimal("0.01")


def money(value: Decimal | None) -> Text:
    if value is None:
        return Text("-", justify="right")
    style = "red" if value < 0 else ""
    return Text(f"{value.quantize(_CENT, ROUND_HALF_UP):,}", style=style, justify="right")


def num(value: Decimal | None, places: str = "0.01") -> Text:
    if value is None:
        return Text("-", justify="right")
    return Text(f"{value.quantize(Decimal(places), ROUND_HALF_UP)}", justify="right")


def age(delta: timedelta) -> Text:
    """Engine-time age, compact: 45s, 12m, 3h, 2d."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return Text(f"{seconds // size}{unit}", justify="right")
    return Text(f"{seconds}s", justify="right")


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
        self.crash: str | None = None
        self._positions_shown: dict[str, object] = {}
        self._orders_shown: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="top"):
            yield DataTable(id="positions", cursor_type="none", show_cursor=False)
            with Vertical(id="pnl"):
                yield Static(id="pnl-figures")
                yield PlotextPlot(id="equity")
        yield DataTable(id="orders", cursor_type="none", show_cursor=False)
        yield AlertsPane(self.alerts, id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        positions = self.query_one("#positions", DataTable)
        positions.border_title = "Positions"
        for label, width in (("symbol", 7), ("qty", 7), ("avg cost", 9), ("last", 9), ("mkt value", 11),
                             ("unrealized", 10), ("unr %", 6), ("real.today", 10), ("realized", 10)):
            positions.add_column(label, width=width, key=label)
        orders = self.query_one("#orders", DataTable)
        orders.border_title = "Orders"
        for label, width in (("id", 10), ("strategy", 13), ("symbol", 6), ("side", 4), ("qty", 7), ("filled", 7),
                             ("type", 6), ("limit", 9), ("status", 16), ("created", 16), ("age", 8),
                             ("reason", 40)):
            orders.add_column(label, width=width, key=label)
        self.query_one("#pnl").border_title = "P&L"
        self._curve_drawn: tuple[object, int] | None = None
        self._engine_worker = self.run_worker(self._run_engine(), name="engine", group="engine",
                                              exit_on_error=False)
        self.set_interval(REFRESH_SECONDS, self.refresh_panes)
        self.refresh_panes()

    async def _run_engine(self) -> None:
        """The engine on the app's loop: an error becomes an alert, never a dead screen."""
        try:
            await self.engine.start()
            freeze_startup_objects()
            self.engine_state = "running"
            finished = await self.engine.run()
            self.engine_state = "replay finished" if finished else "stopped"
            if finished:
                log.info("replay finished: the engine is idle; press q to quit")
        except Exception as exc:
            self.engine_state = "failed"
            log.exception("engine failed: %s", exc)

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
        if snap is None:
            text = f"PAPER | {self.engine_state}"
        else:
            clock = snap.taken_at.astimezone(snap.market_tz).strftime("%Y-%m-%d %H:%M %Z")
            broker = "connected" if snap.broker_connected else "DISCONNECTED"
            # A finished or stopped feed has no freshness to show (and snapshots stay stable).
            age = f"{snap.feed_age:.1f}s" if snap.feed_age is not None and self.engine_state == "running" else "-"
            text = (f"{snap.mode} | engine {self.engine_state} | feed {snap.feed} last tick {age} ago,"
                    f" {snap.events_processed:,} events"
                    f" | broker {snap.broker_kind} {broker} | {clock} | equity {snap.equity:,.2f}"
                    f" | day P&L {snap.day_pnl:,.2f}")
        self.query_one("#status", Static).update(text)

    def _draw_positions(self, snap: EngineSnapshot) -> None:
        rows = [
            (p.symbol, (p.symbol, num(p.qty, "1"), num(p.avg_cost, "0.0001"), num(p.last, "0.01"),
                        money(p.market_value), money(p.unrealized_pnl), num(p.unrealized_pct, "0.01"),
                        money(p.realized_today), money(p.realized_pnl)))
            for p in snap.positions
        ]
        sync_rows(self.query_one("#positions", DataTable), rows, self._positions_shown)

    def _draw_orders(self, snap: EngineSnapshot) -> None:
        tz = snap.market_tz
        rows: list[tuple[str, tuple[str | Text, ...]]] = []
        for n, r in enumerate(reversed(snap.rejections[-5:])):  # a refused intent shows with its reason
            rows.append((f"refused-{r.ts.isoformat()}-{n}",
                         ("-", r.strategy, r.symbol, r.side.value, num(r.qty, "1"), num(None), "", num(None),
                          Text("REFUSED", style="bold red"), r.ts.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                          age(snap.taken_at - r.ts), Text(r.reason, style="red"))))
        for o in snap.orders:
            style = "red" if o.status.value == "REJECTED" else ("bold" if not o.status.is_terminal else "dim")
            rows.append((o.client_order_id,
                         (o.client_order_id, o.strategy, o.symbol, o.side, num(o.qty, "1"), num(o.filled_qty, "1"),
                          o.order_type, num(o.limit_price), Text(o.status.value, style=style),
                          o.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), age(snap.taken_at - o.created_at),
                          o.reason or "")))
        sync_rows(self.query_one("#orders", DataTable), rows, self._orders_shown)

    def _draw_pnl(self, snap: EngineSnapshot) -> None:
        rows = (("realized", snap.realized), ("unrealized", snap.unrealized), ("commissions", snap.commissions),
                ("net", snap.net), ("day", snap.day_pnl), ("max drawdown", -snap.max_drawdown),
                ("equity", snap.equity))
        text = Text()
        for label, value in rows:
            text.append(f"{label:<13}")
            text.append_text(money(value))
            text.append("\n")
        self.query_one("#pnl-figures", Static).update(text)
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
        if self.engine.store.is_open:
            self.engine.request_stop()
            if self._engine_worker is not None and not self._engine_worker.is_finished:
                self._engine_worker.cancel()
            try:
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
            await self.engine.shutdown()
        except Exception:
            log.exception("engine shutdown failed")
            self.exit(1)
            return
        self.exit(0)
