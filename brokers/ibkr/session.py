"""The reconnect loop: connect, wait for the loss, back off, connect again, forever.

ib_async never reconnects by itself (and IBC's Watchdog restarts the gateway process
instead, which is not what a dropped socket needs). The first connect is the caller's to
fail: a gateway that is not there at start-up is a configuration problem worth a clear
error, not a silent retry loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from brokers.ibkr.backoff import Backoff

log = logging.getLogger("cockpit.ibkr")

Sleep = Callable[[float], Awaitable[None]]


class Supervisor:
    def __init__(self, *, connect_once: Callable[[], Awaitable[None]], lost: asyncio.Event, backoff: Backoff,
                 sleep: Sleep, describe: Callable[[BaseException], str],
                 on_failed_attempt: Callable[[int, str, float], None] | None = None,
                 start_wait: float = 0.0) -> None:
        self._connect_once = connect_once
        self._lost = lost
        self._backoff = backoff
        self._sleep = sleep
        self._describe = describe
        self._on_failed_attempt = on_failed_attempt
        self._start_wait = start_wait  # seconds of backoff the first connect may spend waiting for the gateway
        self.attempt = 0  # failed attempts since the connection was last up (retry n waits step n)
        self.last_error: str | None = None
        self.delays: list[float] = []  # every backoff delay used, for tests and the status line
        self.closing = False

    async def run(self, first: asyncio.Future[None]) -> None:
        """Connect; resolve ``first`` with the outcome of the first attempt; then keep reconnecting."""
        retrying = False
        waited = 0.0  # backoff slept before the first connection (counted, not clocked: tests fake the sleep)
        while not self.closing:
            if retrying:
                delay = self._backoff.delay(self.attempt + 1)
                self.delays.append(delay)
                if not first.done():
                    waited += delay
                await self._sleep(delay)
                if self.closing:
                    return
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = self._describe(exc)
                self.last_error = reason
                if not first.done() and waited >= self._start_wait:
                    first.set_exception(ConnectionError(reason))
                    return
                if not first.done():
                    self.attempt += 1
                    retrying = True
                    log.warning("IB Gateway not reachable at start: %s; waiting up to %.0f s more (ibkr.start_wait_seconds)",
                                reason, max(0.0, self._start_wait - waited))
                    continue
                self.attempt += 1
                retrying = True
                next_delay = self._backoff.step(self.attempt + 1)
                log.warning("IB Gateway: connect attempt %d failed: %s (next within %.2fs)",
                            self.attempt, reason, next_delay)
                if self._on_failed_attempt is not None:
                    self._on_failed_attempt(self.attempt, reason, next_delay)
                continue
            self.attempt = 0
            self.last_error = None
            if not first.done():
                first.set_result(None)
            await self._lost.wait()
            retrying = True
