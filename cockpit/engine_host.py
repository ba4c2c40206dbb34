"""Hosts one engine in this process: start, run, stop, stop signals, the final flush.

The TUI and `cockpit --no-ui` both go through this class, so an engine starts (store,
broker, control API, GC freeze) and stops (control API closed, engine flushed and shut
down exactly once) the same way whichever face the operator sees. No Textual here:
the headless path must never import it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable

from cockpit.control.server import ControlServer
from cockpit.gc_policy import freeze_startup_objects
from core.kernel.engine import Engine

log = logging.getLogger("cockpit.host")

#: What a stop signal does to a running cockpit, beyond asking the engine to stop.
SignalHandler = Callable[[signal.Signals], None]


class EngineHost:
    """One engine and its control API, with the run's state as the operator reads it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.control = ControlServer(engine, engine.settings)  # the CLI and scripts reach the engine here
        self.state = "starting"  # starting, running, replay finished, stopped, stopping, failed
        self.done = asyncio.Event()  # set when the run ends, however it ends
        self._running = False
        self._stop_task: asyncio.Task[None] | None = None
        self._signals: list[signal.Signals] = []

    async def run(self) -> bool:
        """Start the engine and its control API, then run until the feeds are exhausted (True) or a
        stop is requested (False). An error marks the run failed and propagates."""
        self._running = True
        try:
            await self.engine.start()
            await self.control.start()
            freeze_startup_objects()
            self.state = "running"
            finished = await self.engine.run()
            self.state = "replay finished" if finished else "stopped"
            return finished
        except Exception:
            self.state = "failed"
            raise
        finally:
            self.done.set()

    def request_stop(self) -> None:
        """Ask the run to end after the event in hand (safe from a signal handler)."""
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

    async def _stop(self) -> None:
        if self.state == "running":
            self.state = "stopping"
        self.engine.request_stop()
        if self._running:
            await self.done.wait()  # the run loop ends before the store closes under it
        await self.control.stop()
        await self.engine.shutdown()

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
