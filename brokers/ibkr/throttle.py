"""Outgoing message pacing: at most N messages in any window of 1.1 s, spread out.

IB disconnects clients that exceed 50 messages a second (error 100 first). A sliding
window is exact about "any second", where a token bucket would let a full bucket plus a
second's refill through in one window. IB counts arrival times, though: a message held up
on the way (or by a busy loop at either end) while the next one is not squeezes more into
one of IB's seconds than we sent in one of ours. Hence the window is 1.1 s, not 1 s (arrival
jitter up to 100 ms cannot push IB's count above N), and a burst is spread out: consecutive
messages are at least ``window / limit / 2`` apart (12 ms at 45), so a burst never lands on
the gateway all at once right before the next second's messages.

Every request the adapter issues (orders, cancels, contract lookups, market-data
subscriptions, resync requests) takes a slot first, and the messages ib_async sends by
itself at connect are counted in (``note``): without that, the start-up sync plus a burst
reached 48 of IB's 50 in one second against the simulator. ib_async's own limiter stays
configured just below 50 as a backstop for the odd message it sends later on its own (the
account summary it re-requests after 1102).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class Throttle:
    """``await acquire()`` returns once a message may be sent now; the slot is then taken."""

    def __init__(self, limit: int, window: float = 1.1, *, time: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._time = time
        self._sleep = sleep
        self.min_gap = window / limit / 2
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._slow_until = 0.0
        self._slow_limit = limit
        self.waits = 0  # how often a sender had to wait: a measure of pressure

    def _now(self) -> float:
        return self._time() if self._time is not None else asyncio.get_running_loop().time()

    def current_limit(self, now: float | None = None) -> int:
        now = self._now() if now is None else now
        return self._slow_limit if now < self._slow_until else self.limit

    def slow_down(self, seconds: float = 30.0, factor: float = 0.5) -> None:
        """After a pacing error (100): a lower limit for a while, since IB counts differently than we do."""
        self._slow_limit = max(1, int(self.limit * factor))
        self._slow_until = self._now() + seconds

    def reset(self) -> None:
        """A new API connection: IB paces each connection on its own."""
        self._sent.clear()

    def note(self, n: int) -> None:
        """``n`` messages went out without asking (ib_async's own start-up requests): count them now."""
        now = self._now()
        self._sent.extend([now] * max(0, n))

    def ready(self, now: float | None = None) -> bool:
        """Whether ``acquire()`` would return at once: no one waiting, room in the window, the gap kept."""
        if self._lock.locked():
            return False  # someone is waiting: first come, first served
        now = self._now() if now is None else now
        sent = self._sent
        while sent and now - sent[0] >= self.window:
            sent.popleft()
        return len(sent) < self.current_limit(now) and not (sent and sent[-1] + self.min_gap - now > 0)

    def try_acquire(self) -> bool:
        """Take a slot if ``acquire()`` would return at once: True; else False, and nothing is taken."""
        now = self._now()
        if not self.ready(now):
            return False
        self._sent.append(now)
        return True

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self._now()
                sent = self._sent
                while sent and now - sent[0] >= self.window:
                    sent.popleft()
                limit = self.current_limit(now)
                if len(sent) < limit:
                    gap = sent[-1] + self.min_gap - now if sent else 0.0
                    if gap <= 0:
                        sent.append(now)
                        return
                    await self._sleep(gap)
                    continue
                self.waits += 1
                # the slot frees when the message that keeps us at the limit leaves the window
                await self._sleep(sent[len(sent) - limit] + self.window - now + 1e-4)
