"""The cockpit app: the engine runs on this app's own asyncio loop, the screen shows snapshots.

The UI never changes engine state itself and never draws per tick: a 4 Hz timer takes one
engine snapshot and hands it to the main screen. The app owns the keys (cockpit/tui/actions.py),
the engine's lifetime (cockpit/engine_host.py, shared with --no-ui) and which modal is open;
the operator's command flows are in cockpit/tui/operator.py.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import Worker

from cockpit.control.server import ControlServer
from cockpit.engine_host import EngineHost
from cockpit.identity import operator_id
from cockpit.tui.actions import ACTIONS, REPLACED_SYSTEM_COMMANDS, bindings
from cockpit.tui.alerts import AlertBuffer, TuiSink
from cockpit.tui.operator import OperatorCommands
from cockpit.tui.screens import (
    ConfirmScreen,
    DeadmanScreen,
    HelpScreen,
    TextPromptScreen,
)
from cockpit.tui.screens.main_screen import MainScreen
from cockpit.tui.screens.metrics import MetricsScreen, load_view
from core.alerts.model import Severity
from core.config import ConfigError
from core.control.deadman import DeadmanPhase
from core.control.read_model import EngineSnapshot
from core.kernel.engine import Engine

log = logging.getLogger("cockpit.tui")

REFRESH_SECONDS = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # systemd or kill; the ssh session went away


def binding_ids() -> set[str]:
    """Every binding id a keymap may name."""
    ids = set()
    for owner in (CockpitApp, ConfirmScreen, HelpScreen, TextPromptScreen, DeadmanScreen, MetricsScreen):
        ids.update(b.id for b in owner.BINDINGS if isinstance(b, Binding) and b.id)
    return ids


class CockpitApp(App[int]):
    CSS_PATH = "cockpit.tcss"
    TITLE = "cockpit"
    BINDINGS = bindings()

    def __init__(self, engine: Engine, alerts: AlertBuffer, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.host = EngineHost(engine)
        self.engine = engine
        self.alerts = alerts
        engine.alerts.add_sink(TuiSink(alerts))  # the pane is one of the router's sinks
        alerts.counter = engine.alerts.undelivered_total  # its subtitle: how many never went out
        if keymap:
            unknown = sorted(set(keymap) - binding_ids())
            if unknown:
                raise ConfigError(f"keys: unknown binding id(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(binding_ids()))})")
            self.set_keymap(keymap)
        self.actor = operator_id("tui", host=False)  # the audit trail's "who"
        self.operator = OperatorCommands(self, engine, self.actor)
        self.main_screen: MainScreen  # made by get_default_screen, when the app composes
        self.crash: str | None = None
        self._engine_worker: Worker[None] | None = None
        self._deadman_screen: DeadmanScreen | None = None

    @property
    def control(self) -> ControlServer:
        return self.host.control

    @property
    def engine_state(self) -> str:
        return self.host.state

    @property
    def engine_done(self) -> asyncio.Event:
        """Set when the engine's run ends, however it ends."""
        return self.host.done

    def get_default_screen(self) -> Screen:
        self.main_screen = MainScreen(self.alerts)
        return self.main_screen

    def on_mount(self) -> None:
        # The engine starts once the first frame is on screen: loading data and calendars
        # blocks the loop for a moment, and the trader should see the cockpit meanwhile.
        self.call_after_refresh(self._start_engine)
        self.set_interval(REFRESH_SECONDS, self.refresh_panes)
        self.refresh_panes()
        self.host.handle_signals(STOP_SIGNALS, self._on_stop_signal)

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
            finished = await self.host.run()
        except Exception as exc:
            log.exception("engine failed: %s", exc)
            self.alerts.note(Severity.ERROR, "engine.failed", f"engine failed: {type(exc).__name__}: {exc} "
                                                              "(traceback in the log file)")
            return
        if finished:
            log.info("replay finished: the engine is idle; press q to quit")

    # ---- drawing -------------------------------------------------------------------

    def refresh_panes(self) -> None:
        """One snapshot down to the main screen (open modals or not), and the dead-man modal."""
        snap = self.engine.read_model.snapshot() if self.engine.read_model.ready else None
        try:
            self.main_screen.show(snap, self.engine_state)
        except NoMatches:
            return  # the app is tearing down: the panes are gone
        if snap is not None:
            self._watch_deadman(snap)

    def _watch_deadman(self, snap: EngineSnapshot) -> None:
        """The grace window opens a modal; it closes when presence is confirmed (any way)."""
        dm = snap.deadman
        warning = dm is not None and dm.phase is DeadmanPhase.WARNING
        if warning and self._deadman_screen is None:
            modal = self._deadman_screen = DeadmanScreen(self.engine.settings.deadman.action)

            def answered(yes: bool | None) -> None:
                if self._deadman_screen is modal:
                    self._deadman_screen = None
                if yes:
                    self.action_confirm_presence()

            self.push_screen(self._deadman_screen, answered)
        modal = self._deadman_screen
        if modal is None:
            return
        if warning and modal.is_mounted:
            modal.show_seconds(dm.seconds_left if dm else None)
        elif not warning and self.screen is modal:  # dismiss pops the top screen: only when it is this one
            self._deadman_screen = None
            modal.dismiss(False)

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
        self.host.release_signals()
        self.host.request_stop()
        if self._engine_worker is not None and not self._engine_worker.is_finished:
            self._engine_worker.cancel()
        try:
            await self.host.stop()
        except Exception:
            log.exception("engine shutdown after a crash failed")

    # ---- actions: each key once, from cockpit/tui/actions.py ------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette offers the same actions as the keys, each once."""
        for command in super().get_system_commands(screen):
            if command.title not in REPLACED_SYSTEM_COMMANDS:
                yield command
        for action in ACTIONS:
            if action.title is not None:
                yield SystemCommand(action.title, action.help, getattr(self, f"action_{action.action}"))

    def action_alert_level(self) -> None:
        self.main_screen.alerts_pane.cycle_level()

    def action_alert_filter(self) -> None:
        self.main_screen.alerts_pane.open_filter()

    def action_clear_alert_filter(self) -> None:
        self.main_screen.alerts_pane.clear_filter()

    def action_flatten(self) -> None:
        self.operator.flatten()

    def action_cancel_all(self) -> None:
        self.operator.cancel_all()

    def action_halt_resume(self) -> None:
        self.operator.halt_resume()

    def action_strategies(self) -> None:
        self.operator.strategies()

    def action_risk_limits(self) -> None:
        self.operator.risk_limits()

    def action_manual_order(self) -> None:
        self.operator.manual_order()

    def action_position_override(self) -> None:
        self.operator.position_override()

    def action_breaks(self) -> None:
        self.operator.breaks()

    def action_confirm_presence(self) -> None:
        self.operator.confirm_presence()

    def action_metrics(self) -> None:
        from cockpit.wiring import db_path

        settings = self.engine.settings
        section = settings.engine  # [engine]: the market's zone says which session a fill is in
        db, market_tz = db_path(settings), section.market_tz
        from cockpit.capital_reader import allocation_args

        self.push_screen(MetricsScreen(lambda: load_view(db, settings.metrics.risk_free_rate,
                                                         market_tz, allocation_args(settings))))

    def action_help(self) -> None:
        rows = []
        for binding in self.BINDINGS:
            if isinstance(binding, Binding):
                key = self.get_key_display(self._active_binding(binding))
                rows.append((key, f"{binding.description}  [{binding.id}]"))
        self.push_screen(HelpScreen(rows))

    def _active_binding(self, binding: Binding) -> Binding:
        """The binding as remapped by the keymap (what the user actually presses)."""
        for active in self.active_bindings.values():
            if active.binding.id == binding.id:
                return active.binding
        return binding

    async def action_quit(self) -> None:
        """Textual's own quit (ctrl+q) asks too: leaving stops the engine."""
        self.action_quit_cockpit()

    def action_quit_cockpit(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._stop_engine_and_exit(), name="stop", group="stop", exclusive=True)

        self.push_screen(ConfirmScreen("Quit? The engine stops and its state is flushed."), answered)

    async def _stop_engine_and_exit(self) -> None:
        try:
            await self.host.stop()
        except Exception:
            log.exception("engine shutdown failed")
            self.exit(1)
            return
        self.exit(0)
