"""Hosts one engine in this process: start, run, stop, stop signals, the final flush.

The TUI and `cockpit --no-ui` both go through this class, so an engine starts (store,
broker, control API, GC freeze) and stops (control API closed, engine flushed and shut
down exactly once) the same way whichever face the operator sees. No Textual here:
the headless path must never import it.

A bad control API setting refuses before anything starts (the token when the host is made,
the TCP port before the store opens), and a stop always reaches the engine's shutdown: a
failure closing the control API is logged, never a reason to leave the store open.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from cockpit.control.server import ControlServer
from cockpit.gc_policy import freeze_startup_objects
from cockpit.systemd_notify import Notifier
from core.kernel.engine import Engine

if TYPE_CHECKING:
    from cockpit.engine_run import EngineRun

log = logging.getLogger("cockpit.host")

#: What a stop signal does to a running cockpit, beyond asking the engine to stop.
SignalHandler = Callable[[signal.Signals], None]


class EngineHost:
    """One engine and its control API, with the run's state as the operator reads it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The CLI and scripts reach the engine here; a bad TCP token refuses now (ConfigError).
        self.control = ControlServer(engine, engine.settings)
        self.state = "starting"  # starting, running, refused (parked), replay finished, stopped, stopping, failed
        self.done = asyncio.Event()  # set when the run ends, however it ends
        self._stop_asked = asyncio.Event()  # what a parked run (a refused LIVE start) waits for
        self._running = False
        self._stop_task: asyncio.Task[None] | None = None
        self._signals: list[signal.Signals] = []
        self.override_preflight: str | None = None  # `--override-preflight REASON`: a live start despite a FAIL
        # The state dir's run (cockpit/engine_run.py): the run record the watchdog reads, the halt to start with.
        self.run_record: EngineRun | None = None
        self.notifier = Notifier.from_env()  # systemd: READY, WATCHDOG, STATUS, STOPPING (nothing otherwise)
        self._watchdog: asyncio.Task[None] | None = None

    async def run(self) -> bool:
        """Start the engine and its control API, then run until the feeds are exhausted (True) or a
        stop is requested (False). An error marks the run failed and propagates."""
        self._running = True
        try:
            self.control.prepare()  # a TCP port in use refuses before the engine opens anything
            run = self.run_record
            await self.engine.start(halt=run.halt() if run is not None else None)
            if run is not None:
                run.started()
            refused = await self._live_guard()
            if refused is not None:
                return await self._parked(refused)
            await self.control.start()
            freeze_startup_objects()
            self.state = "running"
            if run is not None:
                run.running()  # from now on a death without a clean stop is the watchdog's to answer
            self.notifier.ready(self._status())
            self._watchdog = asyncio.ensure_future(self.notifier.watchdog(self._status))
            finished = await self.engine.run()
            self.state = "replay finished" if finished else "stopped"
            return finished
        except Exception:
            self.state = "failed"
            raise
        finally:
            self.done.set()

    async def _live_guard(self) -> str | None:
        """A real-money account starts only when the go-live check passes, or with an override
        that the audit trail keeps (who, why, which checks failed). A refusal raises
        PreflightRefused (exit 2), or with ``[engine] on_refused_start = "wait"`` returns why,
        for the run to park."""
        engine = self.engine
        if not engine.read_model.live_account():
            return None
        from cockpit.identity import operator_id
        from cockpit.preflight.guard import PreflightRefused, failing_checks

        # Off the loop: the check reads the store, verifies the newest backup by restoring it into a
        # scratch copy (seconds on a big store) while the broker's and feeds' sessions are live.
        failing = await asyncio.to_thread(failing_checks, engine.settings)
        names = [f.name for f in failing]
        if not failing:
            engine.controls.preflight_decided("pass", [], actor="engine")
            return None
        if self.override_preflight:
            who = operator_id("cli")
            engine.controls.preflight_decided("override", names, actor=who, reason=self.override_preflight)
            log.critical("LIVE account started despite a failing go-live check (%s): override by %s: %s",
                         ", ".join(names), who, self.override_preflight)
            return None
        engine.controls.preflight_decided("refused", names, actor="engine")
        start_cfg = engine.settings.engine  # [engine]
        if start_cfg.on_refused_start == "wait":
            return f"the go-live check refused this LIVE start: {', '.join(names)} fail"[:400]
        raise PreflightRefused(
            "refusing to trade a LIVE account: the go-live check fails: "
            + "; ".join(f"{f.name} ({f.detail})" for f in failing)[:900]
            + ". Fix them (`cockpit preflight` lists each fix) or start with --override-preflight REASON (audited)")

    async def _parked(self, reason: str) -> bool:
        """The refused LIVE start that waits (docker: exiting would be restarted into the same
        refusal, an alert and an IB login each time). Its alert delivered, its broker session
        closed and every command refused (the engine's park), it answers on its control API
        (`cockpit status`: run_state "refused") until a stop is asked; the run record never
        says it traded, and its stop is a clean one, so the watchdog leaves it alone."""
        await self.engine.controls.park(reason)
        await self.control.start()
        self.state = "refused"
        log.critical("LIVE start refused, parked: %s. Nothing is sent and the broker session is closed; waiting "
                     "for a stop (SIGTERM). Fix them (`cockpit preflight` lists each fix) and start again, or "
                     "start with --override-preflight REASON (audited)", reason)
        self.notifier.ready(self._status())  # up and answering (under systemd too), though not trading
        self._watchdog = asyncio.ensure_future(self.notifier.watchdog(self._status))
        await self._stop_asked.wait()
        self.state = "stopped"
        return False

    def request_stop(self) -> None:
        """Ask the run to end after the event in hand (safe from a signal handler)."""
        self._stop_asked.set()
        self.engine.request_stop()

    async def stop(self) -> None:
        """End the run, close the control API, flush and shut the engine down; once only.

        A second caller waits for the same stop, and cancelling a caller (Textual cancels its
        workers on exit) never cancels the flush half-way.
        """
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop())
        elif self._stop_task.done():
            return
        await asyncio.shield(self._stop_task)

    def _status(self) -> str:
        """The STATUS line systemd shows: the run's state and the trading state."""
        try:
            return f"{self.state}, trading {self.engine.read_model.snapshot(max_orders=0).trading_state}"
        except Exception:  # a half-started engine: the run's state alone; never in the way of a stop
            return self.state

    async def _stop(self) -> None:
        if self.state in ("running", "refused"):
            self.state = "stopping"
        if self.run_record is not None:
            self.run_record.stopping()  # the control socket closes next: the watchdog must not read it as a hang
        self.notifier.stopping(self._status())
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.request_stop()
        if self._running:
            await self.done.wait()  # the run loop ends before the store closes under it
        try:
            await self.control.stop()
        except Exception:  # the flush below matters more than a listener that would not close
            log.exception("closing the control API failed; shutting the engine down anyway")
        finally:
            try:
                await self.engine.shutdown()
            except BaseException:
                self._record_stop(False, "the shutdown failed")
                raise
            else:
                reason, failed = self.engine.read_model.stop_reason()
                self._record_stop(not failed and self.state != "failed", reason)
            finally:
                self.notifier.close()

    def _record_stop(self, clean: bool, reason: str) -> None:
        """How the run ended, in the run record: a clean stop (asked for, flushed) or not."""
        if self.run_record is not None:
            self.run_record.stopped(clean=clean, reason=reason)

    # ---- signals -------------------------------------------------------------------

    def handle_signals(self, signals: Iterable[signal.Signals], handler: SignalHandler) -> None:
        """Route stop signals to ``handler`` on the running loop (undone by ``release_signals``)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, handler, sig)
            self._signals.append(sig)

    def release_signals(self) -> None:
        loop = asyncio.get_running_loop()
        while self._signals:
            loop.remove_signal_handler(self._signals.pop())
