"""The cockpit under a tick storm: is a key still handled within 100 ms?

A synthetic feed sends 10,000 quotes/s across 50 symbols through the full engine (paper
venue, book marks, SQLite flushes) while the app runs headless (Textual's run_test, no
real terminal) and redraws its panes from snapshots. The book holds a position in every
symbol, so the positions pane has 50 rows whose marks change all the time.
Every 200 ms the bench posts the key `a` (a cheap action) into the app's message queue,
as a terminal keypress arrives, and times key -> action.

    python bench/tui_storm.py [--seconds 10] [--rate 10000] [--symbols 50]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.wiring import build_engine
from core.config import EngineConfig, FeedConfig, LoggingConfig, Settings, SyntheticConfig


def settings(state: Path, rate: int, symbols: int) -> Settings:
    return Settings(
        engine=EngineConfig(state_dir=state),
        feed=FeedConfig(kind="synthetic", synthetic=SyntheticConfig(symbols=symbols, rate=rate, seed=1)),
        logging=LoggingConfig(level="WARNING"),
    )


async def storm(seconds: float, rate: int, symbols: int) -> None:
    logging.disable(logging.WARNING)
    app = CockpitApp(build_engine(settings(Path(tempfile.mkdtemp()), rate, symbols)), AlertBuffer())
    handled: list[float] = []
    frames = 0
    real_cycle, real_refresh = app.action_alert_level, app.refresh_panes

    def cycle() -> None:
        handled.append(time.perf_counter())
        real_cycle()

    redraw_ms: list[float] = []

    def refresh() -> None:
        nonlocal frames
        frames += 1
        t0 = time.perf_counter()
        real_refresh()
        redraw_ms.append((time.perf_counter() - t0) * 1000)

    app.action_alert_level = cycle  # type: ignore[method-assign]
    app.refresh_panes = refresh  # type: ignore[method-assign]
    latencies: list[float] = []
    gc_pauses: list[tuple[int, float]] = []
    gc_started = 0.0

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], (time.perf_counter() - gc_started) * 1000))

    async with app.run_test(size=(160, 50)):
        while app.engine.oms is None:
            await asyncio.sleep(0.01)
        for sym in app.engine.feed.symbols:  # a position in every symbol: 50 live rows
            app.engine.portfolio.position(sym).qty = Decimal(100)
            app.engine.portfolio.position(sym).avg_cost = Decimal(100)
        await asyncio.sleep(1.0)  # warm up
        gc.callbacks.append(gc_watch)
        events0, cpu0, wall0, frames0 = app.engine.events_processed, time.process_time(), time.perf_counter(), frames
        while time.perf_counter() - wall0 < seconds:
            sent = time.perf_counter()
            before = len(handled)
            app.simulate_key("a")  # a Key event into the app's queue, as a terminal keypress arrives
            while len(handled) == before:
                await asyncio.sleep(0.0005)
            latencies.append((handled[-1] - sent) * 1000)
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - wall0
        gc.callbacks.remove(gc_watch)
        cpu = time.process_time() - cpu0
        events = app.engine.events_processed - events0
        drawn = frames - frames0
        app.engine.request_stop()
        await app.engine_done.wait()
        await app.engine.shutdown()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"storm: {symbols} symbols, target {rate:,} quotes/s, {wall:.1f} s measured, headless 160x50")
    print(f"  engine throughput   {events / wall:,.0f} quotes/s through the engine (paper venue, marks, SQLite)")
    print(f"  key -> action       n={len(latencies)}  p50 {p(0.5):.1f} ms  p99 {p(0.99):.1f} ms  "
          f"max {latencies[-1]:.1f} ms  mean {statistics.mean(latencies):.1f} ms")
    redraw_ms.sort()
    print(f"  pane redraws        {drawn / wall:.1f} per second (snapshot + all panes); one redraw p50 "
          f"{redraw_ms[len(redraw_ms) // 2]:.1f} ms, max {redraw_ms[-1]:.1f} ms (updating the widgets; "
          "Textual paints after)")
    for gen in (0, 1, 2):
        pauses = sorted(ms for g, ms in gc_pauses if g == gen)
        if pauses:
            print(f"  gc generation {gen}     {len(pauses)} collections, max {pauses[-1]:.1f} ms,"
                  f" total {sum(pauses):.0f} ms")
    print(f"  CPU                 {cpu / wall * 100:.0f}% of one core for the whole process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=10000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(storm(args.seconds, args.rate, args.symbols))


if __name__ == "__main__":
    main()
