"""`cockpit watchdog [--check]`: the process watchdog, or (``--check``) whether one runs.

The watchdog runs until SIGTERM or SIGINT, printing one line per thing it does (docker keeps
them: `docker compose logs watchdog`). ``--check`` reads its heartbeat in the state dir: exit 0
with one line while it is fresh, 1 otherwise (the container's health check).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import Settings

EXIT_OK, EXIT_DOWN = 0, 1


def add_watchdog_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("watchdog", help="the process watchdog (docker): flattens and alerts when the engine dies or "
                                        "hangs; --check: is one running")
    p.add_argument("--check", action="store_true", help="exit 0 if a watchdog's heartbeat is fresh, 1 if not")
    common(p)


def run_watchdog(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        return check(settings)
    from cockpit.logs import setup_logging
    from cockpit.watchdog.loop import Watchdog

    setup_logging(settings.logging.level, None)  # stderr only: the engine's log file is the engine's

    def out(text: str) -> None:
        print(text, flush=True)

    async def main() -> None:
        watchdog = Watchdog(settings, out)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, watchdog.request_stop)
        await watchdog.run()
        out("watchdog: stopped")

    asyncio.run(main())
    return EXIT_OK


def check(settings: Settings) -> int:
    from cockpit.watchdog.heartbeat import STATUS_FILE, read_status

    status = read_status(settings.state_dir)
    if status is None:
        print(f"watchdog: none: no heartbeat at {settings.state_dir / STATUS_FILE}", file=sys.stderr)
        return EXIT_DOWN
    age = status.age(datetime.now(UTC))
    if not status.alive(datetime.now(UTC)):
        print(f"watchdog: DOWN: its last heartbeat is {age:.0f} s old (stale after {status.stale_after:g} s)",
              file=sys.stderr)
        return EXIT_DOWN
    acting = f", responding to run {status.acting}" if status.acting else ""
    print(f"watchdog: running (pid {status.pid} on {status.host}, heartbeat {age:.1f} s ago{acting}; "
          f"{len(status.handled)} run(s) handled)")
    return EXIT_OK
