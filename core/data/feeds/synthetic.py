"""A synthetic live-like feed: seeded random walks for N symbols at a set quote rate.

For load tests and demos without data: quotes are stamped with the engine clock's time
(live), so the engine, the paper venue and the UI see a stream like a real feed's.
Nothing to resume: each run is new market data.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

from core.common.clock import Clock
from core.config import SyntheticConfig
from core.data.feeds.base import stopped_within
from core.data.feeds.replay import Cursor, Event
from core.domain.model import Bar, Quote

_TICK = 0.01  # seconds between batches: the rate is spread over 100 batches a second
_CENT = Decimal("0.01")


class SyntheticFeed:
    def __init__(self, config: SyntheticConfig, clock: Clock, *, symbols: list[str] | None = None,
                 name: str = "synthetic") -> None:
        """``symbols`` names the walks (a fallback rehearsing for another feed's symbols);
        by default they are SYN000, SYN001, ... (``config.symbols`` of them)."""
        self.name = name
        self.config = config
        self.clock = clock
        self.symbols = list(symbols) if symbols else [f"SYN{i:03d}" for i in range(config.symbols)]

    def load(self) -> None:
        """Nothing to read."""

    def fingerprint(self) -> str:
        return f"synthetic-{self.config.symbols}-{self.config.seed}"

    def bars_before(self, cursor: Cursor | None) -> list[Bar]:
        return []

    async def stream(self, after: Cursor | None, speed: float | str, stop: asyncio.Event,
                     batch_size: int = 512) -> AsyncIterator[list[Event]]:
        rng = random.Random(self.config.seed)
        cents = [10000 + rng.randrange(-2000, 2000) for _ in self.symbols]  # prices in cents
        rate = self.config.rate
        n = len(self.symbols)
        i = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_at = started
        while not stop.is_set():
            now = self.clock.now()
            batch: list[Event] = []
            due = int((loop.time() - started) * rate) + 1 - i  # keep the rate exact over time
            for _ in range(max(1, due)):
                k = i % n
                i += 1
                cents[k] = max(100, cents[k] + rng.choice((-2, -1, -1, 0, 1, 1, 2)))
                bid = Decimal(cents[k]) * _CENT
                batch.append(Quote(self.symbols[k], now, bid, bid + _CENT, bid, Decimal(100)))
            yield batch
            next_at += _TICK
            delay = next_at - loop.time()
            if delay > 0:
                if await stopped_within(stop, delay):
                    return
            else:
                next_at = loop.time()  # behind: the next batch carries what is due
