"""Runs the engine without a UI until the feeds are exhausted or SIGINT/SIGTERM arrives."""

from __future__ import annotations

import asyncio
import logging
import signal

from cockpit.engine_host import EngineHost
from cockpit.engine_run import EngineRun
from cockpit.wiring import build_engine
from core.config import Settings
from core.domain.text import money

log = logging.getLogger("cockpit.headless")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_headless(settings: Settings, override_preflight: str | None = None, start_halted: bool = False) -> int:
    """Run to the end of the replay; return the process exit code."""
    host = EngineHost(build_engine(settings))
    host.override_preflight = override_preflight
    engine = host.engine
    with EngineRun(settings, start_halted=start_halted) as run:
        host.run_record = run
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            log.info("%s received: stopping after the events in hand, state will be flushed", sig.name)
            host.request_stop()

        host.handle_signals(STOP_SIGNALS, on_signal)
        started = loop.time()
        try:
            exhausted = await host.run()
        finally:
            await host.stop()
            host.release_signals()
        snap = engine.read_model.snapshot(max_orders=0)
        log.info(
            "%s after %d events in %.1fs: realized %s, unrealized %s, commissions %s, net %s, cash %s",
            "replay finished" if exhausted else "stopped", snap.events_processed, loop.time() - started,
            money(snap.realized), money(snap.unrealized), money(snap.commissions), money(snap.net),
            money(snap.cash),  # never raises, even on a value no command could store
        )
    return 0
