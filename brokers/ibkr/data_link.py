"""A data-only IB session: the market data of a fallback feed (a second gateway, or delayed data).

It never sends an order: the broker's own session does that. Its quotes reach the engine
through an :class:`~brokers.ibkr.feed.IbkrFeed` like the primary's, and the failover feed
judges its health like any other source. It connects in the background when the feed loads
(a fallback that is down at start-up is an unhealthy source, not a refusal to start) and keeps
reconnecting with backoff; every reconnect resubscribes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

from ib_async import IB, Contract

from brokers.ibkr import convert
from brokers.ibkr.backoff import Backoff
from core.config.feeds import FallbackFeedConfig

log = logging.getLogger("cockpit.ibkr.feed")


class IbDataLink:
    """What :class:`~brokers.ibkr.feed.IbkrFeed` needs (``QuoteSource``), on its own session."""

    def __init__(self, config: FallbackFeedConfig, *, backoff: Backoff | None = None) -> None:
        self.config = config
        self.ib = IB()
        self.backoff = backoff or Backoff(0.5, 30.0, random.Random())
        self._symbols: dict[str, None] = {}
        self._contracts: dict[str, Contract] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.attempts = 0
        self.last_error: str | None = None
        self.ib.disconnectedEvent += self._on_disconnected
        self._lost = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    def want_quotes(self, symbols: Iterable[str]) -> None:
        """Subscribe ``symbols`` once connected (and again after every reconnect)."""
        new = [s for s in symbols if s not in self._symbols]
        for s in new:
            self._symbols[s] = None
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        elif self.connected and new:
            asyncio.ensure_future(self._subscribe(new))

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.ib.disconnect()

    def _on_disconnected(self) -> None:
        self._lost.set()

    async def _run(self) -> None:
        cfg = self.config
        while not self._closing:
            self._lost.clear()
            try:
                await self.ib.connectAsync(cfg.host, cfg.port, clientId=cfg.client_id, timeout=cfg.connect_timeout)
                self.ib.reqMarketDataType(cfg.market_data_type)
                await self._subscribe(list(self._symbols))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # down at start or during a restart: retry, the feed shows it stale
                self.ib.disconnect()
                self.attempts += 1
                self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                delay = self.backoff.delay(self.attempts)
                if self.attempts <= 3 or self.attempts % 20 == 0:
                    log.warning("fallback feed %s: connecting to %s:%d failed (%s); retry in %.1f s",
                                cfg.name, cfg.host, cfg.port, self.last_error, delay)
                await asyncio.sleep(delay)
                continue
            self.attempts = 0
            log.info("fallback feed %s: connected to %s:%d (client id %d)", cfg.name, cfg.host, cfg.port,
                     cfg.client_id)
            await self._lost.wait()
            if not self._closing:
                log.warning("fallback feed %s: the connection to %s:%d dropped; reconnecting", cfg.name,
                            cfg.host, cfg.port)
                await asyncio.sleep(self.backoff.delay(1))

    async def _subscribe(self, symbols: list[str]) -> None:
        for symbol in symbols:
            contract = self._contracts.get(symbol)
            if contract is None:
                found = await asyncio.wait_for(self.ib.qualifyContractsAsync(convert.stock(symbol)),
                                               self.config.connect_timeout)
                if not found or not isinstance(found[0], Contract):
                    log.error("fallback feed %s: IB has no US stock %s on SMART in USD", self.config.name, symbol)
                    continue
                contract = self._contracts[symbol] = found[0]
            self.ib.reqMktData(contract, "", False, False)
