"""IB market data through the adapter's feed into a strategy, over real TCP against the
simulator: quotes, quarantine of bad ones, and what IB's 1100/1101/1102 and a dropped
socket do to the subscriptions."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.ibkr.broker import IbkrBroker
from brokers.ibkr.feed import IbkrFeed, check_quote
from brokers.ibsim import IBGatewaySim
from brokers.ibsim import messages as sim_messages
from core.common.clock import LiveClock
from core.domain.model import OrderStatus, Quote, Side
from core.strategy.base import Strategy

pytest.register_assert_rewrite("tests.ibsim_fixtures", "tests.ibkr_fixtures")
from tests.ibkr_fixtures import MakeBroker, Recorder, make_order  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import IBLogGuard  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures", "tests.ibkr_fixtures"]

D = Decimal
REQ_MKT_DATA = 1


class Watcher(Strategy):
    """A strategy that only watches: every quote it is handed, awaitable."""

    def __init__(self, symbols: list[str]) -> None:
        super().__init__("watcher", symbols, {})
        self.quotes: list[Quote] = []
        self._changed = asyncio.Event()

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append(quote)
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def until(self, predicate, timeout: float = 5.0, what: str = "quote") -> None:
        async def loop() -> None:
            while not predicate():
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; got {self.quotes[-3:]}") from None

    def saw(self, symbol: str, last: str) -> bool:
        return any(q.symbol == symbol and q.last == D(last) for q in self.quotes)


class Rig:
    def __init__(self, broker: IbkrBroker, rec: Recorder, feed: IbkrFeed, strategy: Watcher) -> None:
        self.broker, self.rec, self.feed, self.strategy = broker, rec, feed, strategy


@pytest.fixture
async def rig(sim: IBGatewaySim, make_broker: MakeBroker) -> AsyncIterator[Rig]:
    """Broker + feed + a strategy fed the way the engine feeds one (batches from ``stream``)."""
    for s, p in (("AAPL", 100), ("MSFT", 300)):
        await sim.set_price(s, p)
    broker, rec = await make_broker(connect=False)
    feed = IbkrFeed(broker, ["AAPL", "MSFT"], LiveClock())
    strategy = Watcher(["AAPL", "MSFT"])
    feed.load()  # the engine calls load() before connecting the broker
    await broker.connect()
    stop = asyncio.Event()

    async def run() -> None:
        async for batch in feed.stream(None, 1.0, stop):
            for ev in batch:
                if isinstance(ev, Quote) and ev.symbol in strategy.symbols:
                    strategy.on_quote(ev)

    task = asyncio.create_task(run())
    try:
        await strategy.until(lambda: strategy.saw("AAPL", "100") and strategy.saw("MSFT", "300"),
                             what="first quotes of both symbols")
        yield Rig(broker, rec, feed, strategy)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_quotes_reach_the_strategy_as_decimals(sim: IBGatewaySim, rig: Rig) -> None:
    await sim.set_price("AAPL", "123.45")
    await rig.strategy.until(lambda: rig.strategy.saw("AAPL", "123.45"))
    q = [q for q in rig.strategy.quotes if q.last == D("123.45")][-1]
    assert (q.symbol, q.bid, q.ask, q.last) == ("AAPL", D("123.44"), D("123.46"), D("123.45"))
    assert q.ts.tzinfo is not None
    assert rig.feed.delivered >= 3 and rig.feed.fingerprint() == "ibkr" and rig.feed.bars_before(None) == []
    assert sim.count_received(REQ_MKT_DATA) == 2  # one subscription per symbol


async def test_bad_quotes_are_quarantined(sim: IBGatewaySim, rig: Rig) -> None:
    """A crossed book and a non-positive price never reach the strategy; counted, then good data flows."""
    conn = sim._client_conn(1)  # the simulator has no control for raw ticks: write them on its session
    assert conn is not None
    [req_id] = [r for r, s in conn.mkt.items() if s == "AAPL"]
    before = rig.feed.quarantined
    n = len(rig.strategy.quotes)
    conn.send(sim_messages.tick_price(req_id, sim_messages.BID, D("100.50"), 100))  # bid above the 100.01 ask
    await _until(lambda: rig.feed.quarantined == before + 1)
    conn.send(sim_messages.tick_price(req_id, sim_messages.BID, D("-1.5"), 100))  # non-positive
    await _until(lambda: rig.feed.quarantined == before + 2)
    assert len(rig.strategy.quotes) == n
    conn.send(sim_messages.tick_price(req_id, sim_messages.BID, D("99.98"), 100))
    await rig.strategy.until(lambda: len(rig.strategy.quotes) == n + 1)
    assert (rig.strategy.quotes[-1].bid, rig.strategy.quotes[-1].ask) == (D("99.98"), D("100.01"))


async def _until(pred, timeout: float = 5.0) -> None:
    from tests.ibsim_fixtures import eventually

    await eventually(pred, timeout)


def test_quote_check() -> None:
    nan = math.nan
    assert check_quote(1.0, 1.01, 1.0) is None
    assert check_quote(1.0, 1.01, nan) is None  # no trade yet: the feed uses the mid
    assert check_quote(1.01, 1.0, 1.0).startswith("crossed")
    assert check_quote(0.0, 1.0, 1.0).startswith("non-positive")
    assert check_quote(1.0, 1.01, -1.0).startswith("non-positive last")
    assert check_quote(nan, 1.0, 1.0).startswith("missing")


async def test_1100_then_1102_keeps_the_subscriptions(sim: IBGatewaySim, rig: Rig, ib_log: IBLogGuard) -> None:
    ib_log.expect(1100, 1102)
    await sim.send_status(1100)
    await rig.rec.wait(lambda: rig.rec.changes[-1][0] is False, what="1100 announced")
    assert "1100" in rig.rec.changes[-1][1] and rig.feed.stale and not rig.broker.connected
    o = make_order("AAPL", Side.BUY, 1)
    rig.broker.place(o)
    assert rig.rec.last_status(o.client_order_id) is OrderStatus.REJECTED
    assert "1100" in (rig.rec.updates(o.client_order_id)[-1].reason or "")

    subs = sim.count_received(REQ_MKT_DATA)
    await sim.send_status(1102)
    await rig.rec.wait(lambda: rig.rec.changes[-1][0] is True, what="1102 announced")
    assert "1102" in rig.rec.changes[-1][1] and not rig.feed.stale
    await sim.set_price("MSFT", "301.5")
    await rig.strategy.until(lambda: rig.strategy.saw("MSFT", "301.5"), what="ticks after 1102")
    assert sim.count_received(REQ_MKT_DATA) == subs  # data maintained: nothing re-requested
    o2 = make_order("AAPL", Side.BUY, 1)
    rig.broker.place(o2)
    await rig.rec.wait(lambda: rig.rec.filled(o2.client_order_id) == 1, what="orders flow again")


async def test_1100_then_1101_resubscribes(sim: IBGatewaySim, rig: Rig, ib_log: IBLogGuard) -> None:
    ib_log.expect(1100, 1101)
    await sim.send_status(1100)
    await rig.rec.wait(lambda: rig.rec.changes[-1][0] is False, what="1100 announced")
    subs = sim.count_received(REQ_MKT_DATA)
    await sim.send_status(1101)  # the simulator drops every subscription
    await rig.rec.wait(lambda: rig.rec.changes[-1][0] is True, what="1101 handled")
    assert "1101" in rig.rec.changes[-1][1]
    assert sim.count_received(REQ_MKT_DATA) == subs + 2
    assert rig.broker.stats.resubscriptions >= 2  # at connect, and after 1101
    await sim.set_price("AAPL", "98.76")
    await sim.set_price("MSFT", "299.99")
    await rig.strategy.until(lambda: rig.strategy.saw("AAPL", "98.76") and rig.strategy.saw("MSFT", "299.99"),
                             what="ticks on the new subscriptions")


async def test_a_dropped_socket_resubscribes_after_reconnect(sim: IBGatewaySim, rig: Rig,
                                                             ib_log: IBLogGuard) -> None:
    ib_log.allow("Peer closed connection")
    subs = sim.count_received(REQ_MKT_DATA)
    await sim.drop_connections()
    await rig.rec.wait(lambda: [c[0] for c in rig.rec.changes][-2:] == [False, True], what="drop and reconnect")
    assert sim.count_received(REQ_MKT_DATA) == subs + 2
    await sim.set_price("AAPL", "101.01")
    await rig.strategy.until(lambda: rig.strategy.saw("AAPL", "101.01"), what="ticks after the reconnect")
