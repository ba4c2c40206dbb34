"""Runs the engine without a UI until the feeds are exhausted or SIGINT/SIGTERM arrives."""

from __future__ import annotations

import asyncio
import logging
import signal

from core.config import Settings
from core.domain.serialize import dec

from cockpit.control.server import ControlServer
from cockpit.gc_policy import freeze_startup_objects
from cockpit.state_lock import StateLock
from cockpit.wiring import build_engine

log = logging.getLogger("cockpit.headless")


async def run_headless(settings: Settings) -> int:
    """Run to the end of the replay; return the process exit code."""
    engine = build_engine(settings)
    with StateLock(settings.state_dir):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _on_signal, engine, sig)
        started = loop.time()
        control = ControlServer(engine, settings)
        try:
            await engine.start()
            await control.start()
            freeze_startup_objects()
            exhausted = await engine.run()
        finally:
            await control.stop()
            await engine.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        pnl = engine.portfolio.pnl()
        log.info(
            "%s after %d events in %.1fs: realized %s, unrealized %s, commissions %s, net %s, cash %s",
            "replay finished" if exhausted else "stopped", engine.events_processed, loop.time() - started,
            dec(round(pnl.realized, 2)), dec(round(pnl.unrealized, 2)), dec(round(pnl.commissions, 2)),
            dec(round(pnl.net, 2)), dec(round(engine.portfolio.cash, 2)),
        )
    return 0


def _on_signal(engine: object, sig: signal.Signals) -> None:
    log.info("%s received: stopping after the events in hand, state will be flushed", sig.name)
    engine.request_stop()  # type: ignore[attr-defined]
