"""The real engine (store, OMS, risk gate, strategies) trading through IbkrBroker and IbkrFeed
against the simulator over TCP: IB quotes reach a strategy, its order is placed and filled,
and a fill made while the socket was down is applied exactly once after the reconnect."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.ibkr.feed import IbkrFeed
from brokers.ibsim import IBGatewaySim
from core.common.bus import Bus
from core.common.clock import LiveClock
from core.config import EngineConfig, Settings
from core.domain.model import OrderStatus, Quote
from core.kernel.engine import Engine
from core.persistence.store import Store
from core.strategy.base import Strategy

pytest.register_assert_rewrite("tests.ibsim_fixtures", "tests.ibkr_fixtures")
from tests.ibkr_fixtures import MakeBroker  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import IBLogGuard, eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures", "tests.ibkr_fixtures"]

D = Decimal


class DipBuyer(Strategy):
    """On its first quote: a market buy of 10 and a resting limit buy of 5 one dollar lower."""

    def __init__(self) -> None:
        super().__init__("dip", ["AAPL"], {})
        self.quotes: list[Quote] = []

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append(quote)
        if len(self.quotes) == 1:
            self.buy("AAPL", 10)
            self.buy("AAPL", 5, limit=quote.bid - 1)


async def test_engine_trades_through_ibkr_and_applies_an_outage_fill_once(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    ib_log.allow("Peer closed connection", "Connection reset by peer")
    await sim.set_price("AAPL", 100)
    broker, rec = await make_broker(connect=False)
    clock = LiveClock()
    settings = Settings(engine=EngineConfig(state_dir=tmp_path / "state"))
    (tmp_path / "state").mkdir()
    strategy = DipBuyer()
    engine = Engine(settings=settings, store=Store(tmp_path / "state" / "cockpit.sqlite"), clock=clock, bus=Bus(),
                    broker=broker, feed=IbkrFeed(broker, ["AAPL"], clock), strategies=[strategy])
    await engine.start()
    run = asyncio.create_task(engine.run())
    try:
        assert engine.oms is not None
        oms = engine.oms
        await eventually(lambda: engine.portfolio.position("AAPL").qty == 10, what="the market buy filled")
        [resting] = [o for o in oms.open_orders.values() if o.limit_price is not None]
        await eventually(lambda: resting.status is OrderStatus.ACCEPTED, what="the limit accepted")
        assert strategy.quotes[0].last == D(100) and strategy.quotes[0].bid == D("99.99")

        await sim.drop_connections()
        await sim.fill_order(order_ref=resting.client_order_id)  # while nobody is connected
        await eventually(lambda: resting.status is OrderStatus.FILLED, what="the outage fill applied")
        assert engine.portfolio.position("AAPL").qty == 15
        for _ in range(2):  # later reconnects bring the same execution again: ignored
            n = broker.stats.connects
            await sim.drop_connections()
            await eventually(lambda n=n: broker.stats.connects > n and broker.connected, what="reconnect")
        await engine.commit()
        rows = await engine.store.fetchall("SELECT exec_id, qty FROM fills ORDER BY rowid")
        assert sorted(r["exec_id"] for r in rows) == sorted(e.exec_id for e in sim.executions())
        assert engine.portfolio.position("AAPL").qty == 15 == sim.position("AAPL")
    finally:
        engine.request_stop()
        await asyncio.wait_for(run, 5)
        await engine.shutdown()
