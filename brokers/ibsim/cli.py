"""``cockpit ib-sim``: run the IB Gateway simulator in the foreground until SIGINT/SIGTERM.

Expected failures (port in use, unreadable or unwritable state file) print one line and
exit 1; bad arguments print argparse's usage and exit 2; a clean stop exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import math
import signal
import sys
from pathlib import Path

from brokers.ibsim.pushes import QUOTE_FAULTS
from brokers.ibsim.server import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    SERVER_VERSION,
    IBGatewaySim,
)
from brokers.ibsim.state import StateError

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "cockpit ib-sim") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="IB Gateway simulator: a loopback TWS API server to rehearse IBKR mode without an account.",
    )
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on (0 picks a free one)")
    p.add_argument("--state", type=Path, default=None, help="JSON file keeping the account across restarts")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"],
                   help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the price random walks (default 0)")
    p.add_argument("--prices", choices=["walk", "replay"], default="walk",
                   help="price source: seeded random walk, or replay of the bundled daily bars")
    p.add_argument("--tick-interval", type=float, default=1.0,
                   help="seconds between price steps (0 = prices never move on their own; default 1)")
    p.add_argument("--account", default="DU1234567", help="account code of a new state (default DU1234567)")
    p.add_argument("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT, metavar="SECONDS",
                   help="close a connection that has not completed the API handshake (through startApi) "
                        f"within SECONDS; 0 = never (default {DEFAULT_HANDSHAKE_TIMEOUT:g}). "
                        "Started sessions may stay idle.")
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                   help="at most N sockets open at once, handshaking or not; more are closed on arrival "
                        f"(0 = no limit; default {DEFAULT_MAX_CONNECTIONS})")
    p.add_argument("--quote-fault-on-usr1", choices=list(QUOTE_FAULTS), default=None, metavar="FAULT",
                   help="SIGUSR1 toggles bad market data: 'crossed' (bid above ask) or 'spike' (prices x10); "
                        "orders still fill at the true prices (rehearse the data quality gate and feed failover)")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def _run(args: argparse.Namespace) -> int:
    sim = IBGatewaySim(
        args.state,
        seed=args.seed,
        account=args.account,
        price_mode=args.prices,
        tick_interval=args.tick_interval or None,
        handshake_timeout=args.handshake_timeout or None,
        max_connections=args.max_connections or None,
    )
    try:
        port = await sim.start(args.host, args.port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"ib-sim: port {args.port} on {args.host} is already in use", file=sys.stderr)
        else:
            print(f"ib-sim: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform: Ctrl-C still ends asyncio.run
            pass
    if args.quote_fault_on_usr1:
        def toggle() -> None:
            sim.quote_fault = None if sim.quote_fault else args.quote_fault_on_usr1
            print(f"ib-sim: quote fault {sim.quote_fault or 'off'}", flush=True)
        loop.add_signal_handler(signal.SIGUSR1, toggle)
    print(
        f"IB Gateway simulator listening on {args.host}:{port} "
        f"(server version {SERVER_VERSION}, account {sim.account})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the simulator until SIGINT/SIGTERM, return the exit code."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        build_parser().error(f"--port must be 0..65535, not {args.port}")
    ticks = args.tick_interval
    if not math.isfinite(ticks) or ticks < 0 or (ticks and ticks < 0.001) or ticks > 86400:
        build_parser().error(f"--tick-interval must be 0 (prices never move) or 0.001..86400 seconds, not {ticks}")
    handshake = args.handshake_timeout
    if not math.isfinite(handshake) or handshake < 0 or (handshake and handshake < 0.01) or handshake > 86400:
        build_parser().error(f"--handshake-timeout must be 0 (never) or 0.01..86400 seconds, not {handshake}")
    if not 0 <= args.max_connections <= 100_000:
        build_parser().error(f"--max-connections must be 0 (no limit) or 1..100000, not {args.max_connections}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run(args))
    except StateError as e:
        print(f"ib-sim: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
