"""One clock for every component: wall time live, simulated time in replays and tests.

No component reads the wall clock directly. Timers scheduled on a ``SimClock`` fire
when simulated time is advanced past them, so tests never sleep to wait for a timer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

UTC = timezone.utc


class TimerHandle:
    """A scheduled callback that can be cancelled before it fires."""

    __slots__ = ("when", "callback", "cancelled", "_loop_handle")

    def __init__(self, when: datetime, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._loop_handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._loop_handle is not None:
            self._loop_handle.cancel()


class Clock(ABC):
    """Time source and timer scheduler."""

    @abstractmethod
    def now(self) -> datetime:
        """The current time, tz-aware UTC."""

    @abstractmethod
    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once the clock reaches ``when``."""

    def call_later(self, delay: timedelta, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self.now() + delay, callback)


class LiveClock(Clock):
    """Wall-clock time; timers run on the asyncio loop."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(when, callback)
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - self.now()).total_seconds())
        handle._loop_handle = loop.call_later(delay, callback)
        return handle


class SimClock(Clock):
    """Simulated time that only moves when told to; due timers fire in time order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)
        self._timers: list[tuple[datetime, int, TimerHandle]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when``, firing every timer due on the way, in order.

        Time never goes backwards: an earlier ``when`` leaves the clock where it is.
        """
        timers = self._timers
        if not timers or timers[0][0] > when:  # the common case in a replay: nothing due
            if when > self._now:
                self._now = when
            return
        while timers and timers[0][0] <= when:
            due, _, handle = heapq.heappop(timers)
            if due > self._now:
                self._now = due
            if not handle.cancelled:
                handle.callback()
        if when > self._now:
            self._now = when

    def due_by(self, when: datetime) -> bool:
        """Whether a timer still to fire is due at or before ``when``."""
        timers = self._timers
        if not timers or timers[0][0] > when:
            return False
        due = self.next_due()
        return due is not None and due <= when

    def next_due(self) -> datetime | None:
        """When the earliest timer still to fire is due (None: no timer)."""
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def advance(self, delta: timedelta) -> None:
        self.advance_to(self._now + delta)

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, h in self._timers if not h.cancelled)
