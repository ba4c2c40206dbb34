"""Market data from the simulator: ticks streaming to an ib_async ticker as the price path
moves, cancel, snapshots, and the determinism of the seeded walk and of the replay."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB, Contract, Stock

from brokers.ibsim import IBGatewaySim
from brokers.ibsim.prices import BUNDLED_DAILY, PriceBook

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import Connect, IBLogGuard, eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]


async def _barrier(ib: IB) -> None:
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)


async def test_ticks_flow_to_a_ticker_as_the_path_moves(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.set_price("AAPL", 187.5)
    ticker = ib.reqMktData(c)
    await eventually(lambda: ticker.last == 187.5, what="first ticks")
    assert (ticker.bid, ticker.ask) == (187.49, 187.51)
    assert ticker.bidSize > 0 and ticker.askSize > 0 and ticker.lastSize > 0
    assert ticker.close == float(sim.quote("AAPL").close) and ticker.volume >= 0

    updates: list[float] = []
    ticker.updateEvent += lambda t: updates.append(t.last)
    quotes = []
    for _ in range(5):
        quotes.append((await sim.step_prices(symbols=["AAPL"]))["AAPL"])
    await eventually(lambda: ticker.last == float(quotes[-1].last), what="ticks after steps")
    assert ticker.bid == float(quotes[-1].bid) and ticker.ask == float(quotes[-1].ask)
    assert len(updates) >= 1
    assert ticker.volume == quotes[-1].volume

    ib.cancelMktData(c)
    await _barrier(ib)
    frozen = ticker.last
    await sim.set_price("AAPL", 10)
    await _barrier(ib)
    assert ticker.last == frozen  # no ticks after the cancel


async def test_two_subscribers_and_a_snapshot(sim: IBGatewaySim, connect: Connect) -> None:
    a = await connect(client_id=1)
    b = await connect(client_id=2)
    [ca] = await a.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    [cb] = await b.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ta, tb = a.reqMktData(ca), b.reqMktData(cb)
    await sim.set_price("SPY", 450.25)
    await eventually(lambda: ta.last == 450.25 and tb.last == 450.25, what="both subscribers")
    [snap] = await asyncio.wait_for(a.reqTickersAsync(ca), 5)
    assert (snap.bid, snap.ask, snap.last) == (450.24, 450.26, 450.25)
    # Asking for delayed data still gets live data, and the ticker is told so (type 1).
    b.reqMarketDataType(3)
    [cq] = await b.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    tq = b.reqMktData(cq)
    await eventually(lambda: tq.last == float(sim.quote("QQQ").last), what="QQQ ticks")
    assert tq.marketDataType == 1


async def test_unknown_contract_gets_error_200(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(200)
    ib = await connect()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    ib.reqMktData(Contract(conId=999, symbol="VOD", secType="STK", exchange="LSE", currency="GBP"))
    await eventually(lambda: codes == [200], what="error 200")


def test_the_walk_is_seeded_per_symbol() -> None:
    a, b, other = PriceBook(seed=1), PriceBook(seed=1), PriceBook(seed=2)
    path_a = [a.step("XYZ").last for _ in range(20)]
    assert path_a == [b.step("XYZ").last for _ in range(20)]
    assert path_a != [other.step("XYZ").last for _ in range(20)]
    assert len(set(path_a)) > 5  # it moves
    assert all(p > 0 and p == p.quantize(Decimal("0.01")) for p in path_a)
    # Cursors restore the path mid-way.
    c = PriceBook(seed=1)
    c.restore(a.cursors())
    d = PriceBook(seed=1)
    for _ in range(20):
        d.step("XYZ")
    assert [c.step("XYZ").last for _ in range(5)] == [d.step("XYZ").last for _ in range(5)]


@pytest.mark.skipif(not any(BUNDLED_DAILY.glob("SPY_*.csv")), reason="bundled data not present")
def test_replay_follows_the_bundled_bars() -> None:
    book = PriceBook(mode="replay")
    path = next(BUNDLED_DAILY.glob("SPY_*.csv"))
    rows = path.read_text().splitlines()[1:3]
    o, h, lo, c = (Decimal(x).quantize(Decimal("0.01")) for x in rows[0].split(",")[1:5])
    first = [book.quote("SPY").last] + [book.step("SPY").last for _ in range(3)]
    assert first == ([o, lo, h, c] if c >= o else [o, h, lo, c])  # an up day dips first
    assert book.step("SPY").last == Decimal(rows[1].split(",")[1]).quantize(Decimal("0.01"))
    # A symbol with no bundled file walks instead.
    assert PriceBook(mode="replay").step("NOFILE").last > 0


def test_bad_price_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        IBGatewaySim(tmp_path / "s.json", price_mode="dice")
