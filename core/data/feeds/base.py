"""What the engine needs from a feed: replay, synthetic and IB market data all look like this."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from core.data.feeds.replay_quotes import PendingQuote
from core.domain.model import Bar, Quote


async def stopped_within(stop: asyncio.Event, delay: float) -> bool:
    """Wait up to ``delay`` seconds for ``stop``: a paced feed sleeps until its next batch is
    due, but a stop must end the stream at once rather than after the sleep."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True


class Feed(Protocol):
    #: the key of the resume cursor in the store ("replay", "synthetic", "ibkr")
    name: str

    @property
    def symbols(self) -> list[str]: ...

    def load(self) -> None:
        """Read or register what the feed needs; a bad file refuses to start here."""

    def fingerprint(self) -> str:
        """Changes when resuming the stored cursor would replay or skip events."""

    def bars_before(self, cursor: Any) -> list[Bar]:
        """History up to ``cursor``, to warm strategies up after a restart."""

    def stream(self, after: Any, speed: float | str, stop: asyncio.Event
               ) -> AsyncIterator[Sequence[Quote | Bar | PendingQuote]]:
        """Batches of events after ``after`` until exhausted or ``stop`` is set (a replay's
        quotes come as ``PendingQuote``s: made only where someone needs them)."""
