"""The systemd notify protocol, spoken by the engine itself (sd_notify(3), stdlib only).

One datagram per message to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace): READY=1 once trading starts, STATUS=<trading state>, WATCHDOG=1 at half of
``$WATCHDOG_USEC`` from the engine's own event loop (so a stuck loop stops the pings and
systemd restarts the unit), STOPPING=1 on the way out. Without ``$NOTIFY_SOCKET`` (not under
systemd) every call does nothing. A send that fails is logged once and never raises: the
watchdog must not be what stops the engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("cockpit.systemd")


class Notifier:
    def __init__(self, address: str | None, watchdog_seconds: float | None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds  # the unit's WatchdogSec; pings go at half of it
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET") or None
        address = ("\0" + raw[1:]) if raw and raw.startswith("@") else raw
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        seconds: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            seconds = int(usec) / 1e6
        return cls(address, seconds)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("systemd notify to %s failed: %s (further failures not logged)", self.address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    async def watchdog(self, status: Callable[[], str]) -> None:
        """Ping at half the watchdog period, with the current status, until cancelled."""
        if self.watchdog_seconds is None:
            return
        while True:
            self.send("WATCHDOG=1", f"STATUS={status()}")
            await asyncio.sleep(self.watchdog_seconds / 2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
