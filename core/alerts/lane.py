"""One sink's lane: its bounded queue and the one worker task that delivers from it.

A lane never blocks whoever offers to it (the bus handler, on the engine's loop): a full queue
refuses the alert, counts it and records it undelivered. The worker waits for the sink's rate
limit, makes one attempt at a time under a timeout, retries with backoff (a sink's
``retry_after`` wins; ``permanent`` ends it), and after ``max_tries`` records the alert as
undelivered. A slow, failing or hung sink only ever holds up its own lane.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from core.alerts.model import Alert, Severity
from core.alerts.records import FAILED, QUEUED, SENT, UNDELIVERED
from core.alerts.sink import Sink, SinkError
from core.alerts.timing import ClockTimeout, TokenBucket, sleep, within
from core.common.clock import Clock
from core.config import AlertRoute, AlertsConfig

log = logging.getLogger("cockpit.alerts")

#: (alert, sink name, status, tries, reason)
Record = Callable[[Alert, str, str, int, str | None], None]
#: (sink name, alert, reason): an alert this lane will never deliver
Undelivered = Callable[[str, Alert, str], None]


@dataclass(slots=True)
class LaneStats:
    sent: int = 0
    failed_tries: int = 0  # attempts that failed (retried or not)
    undelivered: int = 0  # alerts given up on, refused for good, dropped or left at a stop
    overflow: int = 0  # of those: refused because the queue was full
    last_error: str | None = None


class Route:
    """Which alerts a sink takes: kind patterns and a least severity (None: none at all)."""

    def __init__(self, route: AlertRoute | None) -> None:
        self.min = Severity.parse(route.min_severity) if route is not None else None
        patterns = route.kinds if route is not None else []
        self._match = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
        self._kinds: dict[str, bool] = {}

    def accepts(self, alert: Alert) -> bool:
        if self.min is None or self._match is None or alert.severity < self.min:
            return False
        known = self._kinds.get(alert.kind)
        if known is None:
            known = self._kinds[alert.kind] = self._match.match(alert.kind) is not None
            if len(self._kinds) > 1000:  # kinds are a short fixed list; a flood of made-up ones is not
                self._kinds.clear()
        return known


def backoff(config: AlertsConfig, tries: int, retry_after: float | None) -> float:
    """Seconds before the next attempt after ``tries`` failed ones."""
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), config.max_backoff_seconds)
    return min(config.backoff_seconds * 2.0 ** (tries - 1), config.max_backoff_seconds)


class Lane:
    def __init__(self, sink: Sink, config: AlertsConfig, clock: Clock, record: Record,
                 undelivered: Undelivered) -> None:
        self.sink = sink
        self.name = sink.name
        self.config = config
        self.clock = clock
        self.route = Route(config.routes.get(sink.name))
        self.bucket = TokenBucket(clock, config.rate_of(sink.name))
        self.stats = LaneStats()
        self.queue: deque[Alert] = deque()
        self.busy: Alert | None = None
        self._record = record
        self._undelivered = undelivered
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.task: asyncio.Task[None] | None = None
        self.immediate = bool(getattr(sink, "immediate", False))

    @property
    def idle(self) -> bool:
        return self.busy is None and not self.queue

    def offer(self, alert: Alert) -> bool:
        """Queue ``alert`` (never waits); False, recorded undelivered, when the queue is full.

        A sink whose ``send`` never waits (``immediate``: the log, the pane) gets it at once
        while nothing is queued before it and no rate limit applies: a timeout could not
        interrupt it anyway, and a replay's thousands of alerts no longer wait for the worker
        to be scheduled (at full speed they filled the queue). One that fails goes to the
        queue: the worker retries it as any other."""
        if self.immediate and self.idle and self.bucket.rate <= 0 and self._send_now(alert):
            return True
        if len(self.queue) >= self.config.queue_size:
            self.stats.overflow += 1
            n = self.stats.overflow
            self._give_up(alert, 0, f"queue full ({self.config.queue_size} waiting for {self.name})",
                          quiet=n != 1 and n % 100 != 0)  # a flood: the store has each, the log every 100th
            return False
        self.queue.append(alert)
        self._record(alert, self.name, QUEUED, 0, None)
        self._idle.clear()
        self._wake.set()
        return True

    def _send_now(self, alert: Alert) -> bool:
        sending = self.sink.send(alert)
        try:
            sending.send(None)
        except StopIteration:
            self.stats.sent += 1
            self._record(alert, self.name, SENT, 1, None)
            return True
        except Exception:  # an attempt that failed: the worker's retries take it from here
            return False
        sending.close()  # it waited after all: from now on its alerts go through the worker
        self.immediate = False
        log.error("alert sink %s says it never waits, but its send did: its alerts now go through the queue",
                  self.name)
        return False

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            alert = self.busy = self.queue.popleft()
            try:
                await self._deliver(alert)
            except asyncio.CancelledError:
                raise  # ``busy`` stays: stop() records it undelivered
            except Exception as exc:  # a bug here must not end the lane
                log.exception("alert lane %s failed on %s", self.name, alert.kind)
                self._give_up(alert, 0, f"the alert router failed: {type(exc).__name__}: {exc}")
            self.busy = None

    async def _deliver(self, alert: Alert) -> None:
        cfg = self.config
        tries = 0
        while True:
            await self.bucket.take()
            tries += 1
            retry_after: float | None = None
            permanent = False
            try:
                await within(self.clock, cfg.send_timeout_seconds, self.sink.send(alert))
            except SinkError as exc:
                reason, retry_after, permanent = exc.reason, exc.retry_after, exc.permanent
            except ClockTimeout:
                reason = f"no answer within send_timeout_seconds {cfg.send_timeout_seconds:g}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink's bug is a failed attempt, never the router's end
                reason = f"{type(exc).__name__}: {exc}"
            else:
                self.stats.sent += 1
                self._record(alert, self.name, SENT, tries, None)
                return
            reason = " ".join(str(reason).split())[:500]  # one line, whatever the sink said
            self.stats.failed_tries += 1
            self.stats.last_error = reason
            if permanent:
                self._give_up(alert, tries, f"refused for good: {reason}")
                return
            if tries >= cfg.max_tries:
                self._give_up(alert, tries, f"gave up after {tries} tries: {reason}")
                return
            self._record(alert, self.name, FAILED, tries, reason)
            await sleep(self.clock, backoff(cfg, tries, retry_after))

    def _give_up(self, alert: Alert, tries: int, reason: str, quiet: bool = False) -> None:
        self.stats.undelivered += 1
        self._record(alert, self.name, UNDELIVERED, tries, reason)
        if not quiet:
            log.warning("alert %s (%s) not delivered to %s: %s (%d undelivered so far)", alert.id, alert.kind,
                        self.name, reason, self.stats.undelivered)
        self._undelivered(self.name, alert, reason)

    async def drain(self) -> None:
        """Until the queue is empty and nothing is in flight."""
        await self._idle.wait()

    async def stop(self, reason: str) -> None:
        """Cancel the worker; what it still held is recorded undelivered with ``reason``."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
        left = ([self.busy] if self.busy is not None else []) + list(self.queue)
        self.busy = None
        self.queue.clear()
        for alert in left:
            self._give_up(alert, 0, reason, quiet=True)
        if left:
            log.warning("%d alert(s) not delivered to %s: %s (`cockpit alerts` lists them)", len(left), self.name,
                        reason)
        self._idle.set()
        try:
            await self.sink.close()
        except Exception:
            log.exception("closing alert sink %s failed", self.name)
