"""IB market data as a live feed, with the same interface as the synthetic feed.

The broker owns the subscriptions (they share its API session, its pacing and its
reconnects: resubscribed after every reconnect and after IB's 1101); this feed turns ib_async
ticker updates into ``Quote`` batches for the engine. Quotes are stamped with the engine
clock's time, like the synthetic feed's. Nothing to resume: the fingerprint is constant so
that a changed symbol list never blocks a restart.

Quality: a quote with bid above ask, a non-positive price or a missing (NaN) side is
quarantined (dropped, counted, logged sparingly). Before a symbol's first complete quote a
missing side is just the subscription warming up, and is not counted. A missing last trade
is replaced by the mid (the engine marks positions at ``last``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol

from ib_async import IB, Contract

from brokers.ibkr.convert import dec
from brokers.ibkr.stats import Stats
from brokers.ibkr.throttle import Throttle
from core.common.clock import Clock
from core.domain.model import Bar, Quote

log = logging.getLogger("cockpit.ibkr.feed")
session_log = logging.getLogger("cockpit.ibkr")  # the subscriptions belong to the broker's session

Event = Quote | Bar
_TWO = Decimal(2)


def check_quote(bid: float, ask: float, last: float) -> str | None:
    """Why this top of book must not reach a strategy, or None if it is sound."""
    if bid is None or ask is None or math.isnan(bid) or math.isnan(ask):
        return "missing bid or ask"
    if bid <= 0 or ask <= 0:
        return f"non-positive price (bid {bid}, ask {ask})"
    if bid > ask:
        return f"crossed (bid {bid} > ask {ask})"
    if last is not None and not math.isnan(last) and last <= 0:
        return f"non-positive last {last}"
    return None


class QuoteSource(Protocol):
    """What the feed needs of the broker: its session's tickers and its subscriptions."""

    @property
    def ib(self) -> IB: ...
    @property
    def connected(self) -> bool: ...
    def want_quotes(self, symbols: Iterable[str]) -> None: ...


class QuoteSubscriptions:
    """Mixin of :class:`~brokers.ibkr.broker.IbkrBroker`: the market-data subscriptions of its session.

    They share the broker's session, pacing and reconnects: subscribed once connected, and
    again after every reconnect and after IB's 1101.
    """

    ib: IB
    stats: Stats
    accepting: bool
    _throttle: Throttle
    _md_symbols: dict[str, None]  # an ordered set

    # provided by the sending mixin
    _contract: Callable[[str], Awaitable[Contract | None]]
    _enqueue_subscribe: Callable[[str], None]

    def want_quotes(self, symbols: Iterable[str]) -> None:
        """Subscribe ``symbols`` (now if connected, and again after every reconnect and 1101)."""
        for s in symbols:
            if s not in self._md_symbols:
                self._md_symbols[s] = None
                if self.accepting:
                    self._enqueue_subscribe(s)

    @property
    def quote_symbols(self) -> list[str]:
        return list(self._md_symbols)

    async def _resubscribe(self) -> None:
        for s in list(self._md_symbols):
            await self._subscribe(s)
        if self._md_symbols:
            self.stats.resubscriptions += 1

    async def _subscribe(self, symbol: str) -> None:
        contract = await self._contract(symbol)
        if contract is None:
            session_log.error("market data: IB has no US stock %s on SMART in USD", symbol)
            return
        await self._throttle.acquire()
        self.ib.reqMktData(contract, "", False, False)


_REASON = {"missing": "nan", "non-positive": "non_positive", "crossed": "crossed"}


class IbkrFeed:
    def __init__(self, broker: QuoteSource, symbols: Iterable[str], clock: Clock, *,
                 max_buffered: int = 100_000, name: str = "ibkr",
                 owned_source: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.broker = broker
        # the quality gate's count of what this feed drops itself (set by the failover feed)
        self.reject: Callable[[str, str, str], None] | None = None
        self._close_source = owned_source  # a fallback's own data session ends with the feed
        self.clock = clock
        self.symbols = list(dict.fromkeys(symbols))
        self.max_buffered = max_buffered
        self.quarantined = 0
        self.delivered = 0
        self.overflowed = 0
        self._wanted = set(self.symbols)
        self._buffer: list[Quote] = []
        self._arrived = asyncio.Event()
        self._complete: set[str] = set()
        self._last: dict[str, tuple[float, float, float]] = {}
        self._quarantine_by_symbol: dict[str, int] = {}
        self._listening = False

    @property
    def stale(self) -> bool:
        """No live data now (socket down, or IB's link down after 1100)."""
        return not self.broker.connected

    def load(self) -> None:
        """Register the symbols with the broker (subscribed once connected, and after every
        reconnect) and start listening, so that the first quotes, sent while the broker's
        connect() finishes, are not missed before ``stream`` starts."""
        self.broker.want_quotes(self.symbols)
        self._listen()

    def _listen(self) -> None:
        if not self._listening:
            self.broker.ib.pendingTickersEvent += self._on_tickers
            self._listening = True

    def close(self) -> None:
        """Stop listening (the broker keeps the subscriptions: they end with its session)."""
        if self._listening:
            self.broker.ib.pendingTickersEvent -= self._on_tickers
            self._listening = False

    async def aclose(self) -> None:
        """End a fallback's own data session (the primary's belongs to the broker)."""
        self.close()
        if self._close_source is not None:
            await self._close_source()

    def fingerprint(self) -> str:
        return "ibkr"

    def bars_before(self, cursor: Any) -> list[Bar]:
        return []

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event,
                     batch_size: int = 512) -> AsyncIterator[list[Event]]:
        """Batches of quotes as IB sends them, until ``stop`` is set (``after`` and ``speed`` do not apply)."""
        self.broker.want_quotes(self.symbols)
        self._listen()
        try:
            while not stop.is_set():
                if not self._buffer:
                    self._arrived.clear()
                    arrived = asyncio.ensure_future(self._arrived.wait())
                    stopped = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        arrived.cancel()
                        stopped.cancel()
                    continue
                batch = self._buffer[:batch_size]
                del self._buffer[:batch_size]
                yield batch
        finally:
            self.close()

    def _on_tickers(self, tickers: Iterable[Any]) -> None:
        now = None
        for ticker in tickers:
            symbol = ticker.contract.symbol if ticker.contract is not None else ""
            if symbol not in self._wanted:
                continue
            bid, ask, last = ticker.bid, ticker.ask, ticker.last
            problem = check_quote(bid, ask, last)
            if problem is not None:
                if symbol in self._complete or not problem.startswith("missing"):
                    self._quarantine(symbol, problem)
                continue
            self._complete.add(symbol)
            key = (bid, ask, last)
            if self._last.get(symbol) == key:
                continue  # a size, volume or close update: the top of book did not move
            self._last[symbol] = key
            b, a = dec(bid), dec(ask)
            px = dec(last) if last is not None and not math.isnan(last) else (b + a) / _TWO
            if now is None:
                now = self.clock.now()
            if len(self._buffer) >= self.max_buffered:
                del self._buffer[0]  # the engine is far behind: the oldest quote is the least useful
                self.overflowed += 1
            self._buffer.append(Quote(symbol, now, b, a, px))
            self.delivered += 1
        if self._buffer:
            self._arrived.set()

    def _quarantine(self, symbol: str, problem: str) -> None:
        self.quarantined += 1
        if self.reject is not None:
            self.reject(symbol, _REASON.get(problem.split(" ")[0], "nan"), problem)
        n = self._quarantine_by_symbol.get(symbol, 0) + 1
        self._quarantine_by_symbol[symbol] = n
        if n <= 10 or n % 1000 == 0:
            log.warning("quote quarantined: %s %s (%d for %s so far)", symbol, problem, n, symbol)
