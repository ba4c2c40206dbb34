"""Waiting on the engine's clock: a sleep, a timeout and a token bucket that a ``SimClock``
drives in tests (no test sleeps for a backoff, a rate limit or a hung sink's timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from core.common.clock import Clock

T = TypeVar("T")


class ClockTimeout(Exception):
    """The clock passed the deadline before the awaited thing finished."""


def _due(clock: Clock, seconds: float) -> asyncio.Future[None]:
    """A future resolved once ``clock`` is ``seconds`` further on (its timer cancelled with it)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fire() -> None:
        if not future.done():
            future.set_result(None)

    handle = clock.call_later(timedelta(seconds=max(0.0, seconds)), fire)
    future.add_done_callback(lambda _f: handle.cancel())
    return future


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` of ``clock`` time."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    await _due(clock, seconds)


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, or ClockTimeout once ``seconds`` of clock time passed (the
    awaitable is then cancelled: a hung coroutine is left behind, never waited for)."""
    task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    deadline = _due(clock, seconds)
    waiting: set[asyncio.Future[Any]] = {task, deadline}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        deadline.cancel()
    if task.done():
        return task.result()
    task.cancel()
    task.add_done_callback(_consume)  # its CancelledError (or late error) is nobody's to see
    raise ClockTimeout(f"no answer within {seconds:g} s")


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class TokenBucket:
    """``rate_per_minute`` sends, in bursts of at most ``burst``; 0: no cap."""

    def __init__(self, clock: Clock, rate_per_minute: int, burst: int | None = None) -> None:
        self.clock = clock
        self.rate = rate_per_minute / 60.0  # tokens a second
        self.capacity = float(burst if burst is not None else max(1, min(rate_per_minute, 5)))
        self.tokens = self.capacity
        self._at: datetime = clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        elapsed = (now - self._at).total_seconds()
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self._at = now

    def wait_seconds(self) -> float:
        """How long until a token is free (0: now)."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    async def take(self) -> None:
        if self.rate <= 0:
            return
        while (wait := self.wait_seconds()) > 0:
            await sleep(self.clock, wait)
        self.tokens -= 1
