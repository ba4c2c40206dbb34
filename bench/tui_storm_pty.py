"""The tick storm through a real terminal: key press to changed screen, as the trader sees it.

bench/tui_storm.py measures inside the process (headless); this one runs `cockpit` in a
pseudo-terminal at 160x50 with the synthetic feed (10,000 quotes/s across 50 symbols by
default) and a position in every symbol, so the positions pane has 50 live rows. It
types `a` every 200 ms and times until the alerts pane's title shows the next level, i.e.
the key was read, handled, and the new frame written to the terminal.

    python bench/tui_storm_pty.py [--seconds 20] [--rate 10000] [--symbols 50]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.wiring import build_engine  # noqa: E402
from core.config import load_config  # noqa: E402
from tests.pty_session import PtySession  # noqa: E402

LEVELS = ("INFO", "WARNING", "ERROR")


def storm_env(rate: int, symbols: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update({"COCKPIT_FEED__KIND": "synthetic", "COCKPIT_FEED__SYNTHETIC__RATE": str(rate),
                "COCKPIT_FEED__SYNTHETIC__SYMBOLS": str(symbols), "COCKPIT_LOGGING__LEVEL": "WARNING",
                # the demo strategies name the replay's symbols; on this feed they watch all of its own
                "COCKPIT_STRATEGIES__SMA_CROSS__SYMBOLS": "[]", "COCKPIT_STRATEGIES__RSI_REVERSION__SYMBOLS": "[]"})
    return env


async def seed_positions(state: Path, env: dict[str, str]) -> None:
    """A position in every synthetic symbol, written through the engine's own store."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        engine = build_engine(load_config(ROOT / "config.toml", state_dir=state))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    await engine.start()
    assert engine.oms is not None
    for sym in engine.feed.symbols:
        pos = engine.portfolio.position(sym)
        pos.qty, pos.avg_cost = Decimal(100), Decimal(100)
        engine.oms.persist_position(sym)
    await engine.store.flush()
    await engine.shutdown()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=10000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    env = storm_env(args.rate, args.symbols)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        asyncio.run(seed_positions(state, env))
        session = PtySession(["--config", str(ROOT / "config.toml"), "--state-dir", str(state)], cwd=ROOT, env=env)
        try:
            session.wait_for(r"broker paper up")
            session.wait_for(r"STALE|ok \d", timeout=10)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # warm up, draining the terminal
                session._read(0.05)
            latencies: list[float] = []
            level = 0
            cpu0, wall0, bytes0 = cpu_seconds(session.proc.pid), time.perf_counter(), len(session.raw)
            while time.perf_counter() - wall0 < args.seconds:
                level = (level + 1) % len(LEVELS)
                sent = time.perf_counter()
                session.type("a")
                session.wait_for(rf"Alerts \(newest first, {LEVELS[level]}\+", timeout=5)
                latencies.append((time.perf_counter() - sent) * 1000)
                pause = time.monotonic() + 0.2
                while time.monotonic() < pause:
                    session._read(0.02)
            wall = time.perf_counter() - wall0
            cpu = cpu_seconds(session.proc.pid) - cpu0
            written = len(session.raw) - bytes0
            session.signal(signal.SIGTERM)
            session.wait_exit()
        finally:
            session.close()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"storm through a pty: {args.symbols} symbols (a position in each), {args.rate:,} quotes/s,"
          f" {wall:.1f} s, 160x50")
    print(f"  key -> screen   n={len(latencies)}  p50 {p(0.5):.1f} ms  p99 {p(0.99):.1f} ms"
          f"  max {latencies[-1]:.1f} ms  mean {statistics.mean(latencies):.1f} ms")
    print(f"  terminal output {written / wall / 1024:.0f} KiB/s")
    print(f"  CPU             {cpu / wall * 100:.0f}% of one core (the cockpit process)")


if __name__ == "__main__":
    main()
