"""Orders against the simulator with a real ib_async client: qualification, market and limit
fills with executions and commission reports, resting and cancelling, partial fills,
modification, refusal (201), global cancel, duplicate ids (103), what-if, IOC."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from ib_async import IB, Contract, Future, LimitOrder, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import Connect, IBLogGuard, eventually, status  # noqa: E402 - after register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]


async def qualified(ib: IB, symbol: str = "AAPL") -> Contract:
    [c] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
    assert c is not None
    return c


async def test_any_us_symbol_qualifies_with_a_stable_con_id(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path
) -> None:
    ib_log.expect(200)
    ib = await connect()
    got = await ib.qualifyContractsAsync(
        Stock("AAPL", "SMART", "USD"), Stock("ZZZQ", "SMART", "USD"), Stock("BRK B", "SMART", "USD"),
        Stock("MSFT", "NASDAQ", "USD"),
    )
    assert all(c is not None for c in got)
    aapl, zzzq, brk, msft = got
    assert len({aapl.conId, zzzq.conId, brk.conId, msft.conId}) == 4
    assert (aapl.exchange, aapl.currency, aapl.secType, aapl.localSymbol) == ("SMART", "USD", "STK", "AAPL")
    assert msft.exchange == "NASDAQ"
    # The same symbol again, and by conId alone.
    [again] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [by_id] = await ib.qualifyContractsAsync(Contract(conId=aapl.conId))
    assert again.conId == aapl.conId and by_id.symbol == "AAPL"
    # Not US stocks: refused with error 200, so ib_async returns None.
    refused = await ib.qualifyContractsAsync(
        Stock("BMW", "IBIS", "EUR"), Future("ES", "202612", "CME"), Stock("not a symbol", "SMART", "USD"),
        Contract(conId=12345),
    )
    assert refused == [None, None, None, None]
    assert ib_log.error_codes().count(200) == 4
    # A fresh simulator (no state) derives the same conId from the symbol.
    other = IBGatewaySim(tmp_path / "other.json")
    assert other.book.contract("AAPL").con_id == aapl.conId


async def test_market_order_fills_with_execution_and_commission(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 150)
    reports = []
    ib.commissionReportEvent += lambda trade, fill, report: reports.append(report)
    trade = ib.placeOrder(c, MarketOrder("BUY", 100, orderRef="cid-mkt"))
    await status(trade, "Filled")
    await eventually(lambda: len(reports) == 1, what="commission report")
    assert trade.orderStatus.filled == 100 and trade.orderStatus.remaining == 0
    assert trade.orderStatus.avgFillPrice == 150.01  # a buy fills at the ask
    assert trade.order.permId > 0
    [fill] = trade.fills
    assert (fill.execution.shares, fill.execution.price, fill.execution.side) == (100, 150.01, "BOT")
    assert fill.execution.orderRef == "cid-mkt" and fill.execution.permId == trade.order.permId
    assert fill.commissionReport.commission == 1.0 and fill.commissionReport.execId == fill.execution.execId
    assert reports[0].realizedPNL == 0.0  # unset for an opening fill
    await eventually(lambda: [p.position for p in ib.positions()] == [100], what="position update")
    assert ib.positions()[0].avgCost == pytest.approx(150.02)  # price + commission per share
    await eventually(lambda: any(p.position == 100 for p in ib.portfolio()), what="portfolio update")
    cash = {v.tag: float(v.value) for v in ib.accountValues()
            if v.currency == "USD" and not v.modelCode and v.tag != "Currency"}
    await eventually(lambda: float(next(v.value for v in ib.accountValues()
                                        if v.tag == "TotalCashValue" and v.currency == "USD" and not v.modelCode))
                     == 1_000_000 - 15_001 - 1, what="cash debited")
    assert cash["NetLiquidation"] > 0
    assert sim.position("AAPL") == 100

    # Selling it back realizes the P&L, reported with the commission.
    sold = ib.placeOrder(c, MarketOrder("SELL", 100, orderRef="cid-close"))
    await status(sold, "Filled")
    await eventually(lambda: len(reports) == 2, what="second commission report")
    assert sold.fills[0].execution.price == 149.99  # a sell fills at the bid
    assert reports[1].realizedPNL == pytest.approx((149.99 - 150.02) * 100 - 1.0)
    await eventually(lambda: ib.positions() == [], what="flat")


async def test_marketable_limits_fill_at_the_touch(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib, "NVDA")
    await sim.set_price("NVDA", 100)
    buy = ib.placeOrder(c, LimitOrder("BUY", 10, 100.5, orderRef="b"))
    sell = ib.placeOrder(c, LimitOrder("SELL", 4, 99, orderRef="s"))
    await status(buy, "Filled")
    await status(sell, "Filled")
    assert buy.orderStatus.avgFillPrice == 100.01 and sell.orderStatus.avgFillPrice == 99.99


async def test_non_marketable_limit_rests_until_cancelled(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    trade = ib.placeOrder(c, LimitOrder("BUY", 10, 95, orderRef="rest"))
    await status(trade, "Submitted")
    await sim.step_prices(3)  # a small walk from 100 does not reach 95
    open_trades = await ib.reqOpenOrdersAsync()
    assert [t.order.orderRef for t in open_trades] == ["rest"]
    ib.cancelOrder(trade.order)
    await status(trade, "Cancelled")
    await eventually(lambda: errors == [202], what="error 202")
    assert trade.orderStatus.status == "Cancelled" and trade.fills == []
    assert [o.status for o in sim.orders()] == ["Cancelled"]
    assert await ib.reqOpenOrdersAsync() == []


async def test_resting_limit_fills_when_the_price_comes(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    trade = ib.placeOrder(c, LimitOrder("SELL", 10, 103, orderRef="tp"))
    await status(trade, "Submitted")
    await sim.set_price("AAPL", 103.5)
    await status(trade, "Filled")
    assert trade.orderStatus.avgFillPrice == 103.49


async def test_partial_fill_then_the_rest(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    await sim.partial_fill_next(30)
    trade = ib.placeOrder(c, MarketOrder("BUY", 100, orderRef="part"))
    await eventually(lambda: trade.orderStatus.filled == 30, what="first partial")
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 70
    assert len(trade.fills) == 1
    await sim.step_prices(symbols=["AAPL"])
    await status(trade, "Filled")
    assert [f.execution.shares for f in trade.fills] == [30, 70]
    assert [f.execution.cumQty for f in trade.fills] == [30, 100]
    assert sim.position("AAPL") == 100


async def test_liquidity_cap_fills_in_slices(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_liquidity(40)
    trade = ib.placeOrder(c, MarketOrder("SELL", 100, orderRef="slices"))
    await eventually(lambda: trade.orderStatus.filled == 40, what="first slice")
    await sim.step_prices(symbols=["AAPL"])
    await eventually(lambda: trade.orderStatus.filled == 80, what="second slice")
    await sim.step_prices(symbols=["AAPL"])
    await status(trade, "Filled")
    assert [f.execution.shares for f in trade.fills] == [40, 40, 20]


async def test_modify_a_resting_limit(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    order = LimitOrder("BUY", 10, 90, orderRef="mod")
    trade = ib.placeOrder(c, order)
    await status(trade, "Submitted")
    perm = trade.order.permId
    order.lmtPrice = 95
    order.totalQuantity = 20
    ib.placeOrder(c, order)
    await eventually(lambda: trade.orderStatus.remaining == 20, what="modify acknowledged")
    assert trade.orderStatus.status == "Submitted"
    [sim_order] = sim.orders()
    assert (sim_order.lmt_price, sim_order.total_qty, sim_order.perm_id) == (Decimal(95), Decimal(20), perm)
    order.lmtPrice = 101  # now marketable
    ib.placeOrder(c, order)
    await status(trade, "Filled")
    assert trade.orderStatus.filled == 20 and trade.orderStatus.avgFillPrice == 100.01
    assert trade.order.permId == perm and len(sim.orders()) == 1


async def test_refused_order_ends_with_error_201(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(201)
    ib = await connect()
    c = await qualified(ib)
    await sim.refuse_next_order("YOUR ORDER IS NOT ACCEPTED (simulated margin check)")
    refused = ib.placeOrder(c, MarketOrder("BUY", 100, orderRef="nope"))
    await status(refused, "Inactive")
    assert [e.errorCode for e in refused.log if e.errorCode] == [201]
    assert "simulated margin check" in next(e.message for e in refused.log if e.errorCode == 201)
    assert refused.fills == [] and sim.position("AAPL") == 0
    # Only that one order is refused, and it did not use up a pending partial-fill cap.
    await sim.partial_fill_next(1)
    await sim.refuse_next_order("again")
    again = ib.placeOrder(c, MarketOrder("BUY", 1, orderRef="again"))
    await status(again, "Inactive")
    ok = ib.placeOrder(c, MarketOrder("BUY", 3, orderRef="yes"))
    await eventually(lambda: ok.orderStatus.filled == 1, what="capped first fill")
    await sim.step_prices(symbols=["AAPL"])
    await status(ok, "Filled")
    completed = await ib.reqCompletedOrdersAsync(False)
    assert {t.order.orderRef: t.orderStatus.status for t in completed} == {
        "nope": "Inactive", "again": "Inactive", "yes": "Filled"}


async def test_unsupported_order_type_is_refused(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(387)
    ib = await connect()
    c = await qualified(ib)
    from ib_async import StopOrder

    trade = ib.placeOrder(c, StopOrder("SELL", 10, 90))
    await status(trade, "Cancelled")
    assert [e.errorCode for e in trade.log if e.errorCode] == [387]
    assert sim.orders() == []


async def test_global_cancel_cancels_every_client(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    a = await connect(client_id=1)
    b = await connect(client_id=2)
    ca, cb = await qualified(a), await qualified(b)
    await sim.set_price("AAPL", 100)
    ta = a.placeOrder(ca, LimitOrder("BUY", 1, 50, orderRef="a"))
    tb = b.placeOrder(cb, LimitOrder("SELL", 1, 150, orderRef="b"))
    await status(ta, "Submitted")
    await status(tb, "Submitted")
    # Each client sees its own orders; reqAllOpenOrders sees both.
    assert [t.order.orderRef for t in await b.reqOpenOrdersAsync()] == ["b"]
    assert sorted(t.order.orderRef for t in await b.reqAllOpenOrdersAsync()) == ["a", "b"]
    a.reqGlobalCancel()
    await status(ta, "Cancelled")
    await status(tb, "Cancelled")
    assert all(o.status == "Cancelled" for o in sim.orders())


async def test_cancelling_unknown_or_filled_orders(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(10147, 10148)
    ib = await connect()
    c = await qualified(ib)
    codes: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append((req_id, code))
    filled = ib.placeOrder(c, MarketOrder("BUY", 1))
    await status(filled, "Filled")
    ib.client.cancelOrder(9999)
    ib.client.cancelOrder(filled.order.orderId)
    await eventually(lambda: len(codes) == 2, what="two refusals")
    assert codes == [(9999, 10147), (filled.order.orderId, 10148)]
    assert filled.orderStatus.status == "Filled"


async def test_duplicate_order_id_is_refused_with_103(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(103)
    ib = await connect()
    c = await qualified(ib)
    first = ib.placeOrder(c, MarketOrder("BUY", 1, orderRef="first"))
    await status(first, "Filled")
    # A client that forgot its ids reuses one (ib_async would not, so force the id).
    twin = MarketOrder("BUY", 1, orderRef="twin")
    twin.orderId = first.order.orderId
    raw = IB.placeOrder  # the same public call; the wrapper holds the filled trade under that key
    ib.wrapper.trades.pop((1, first.order.orderId))
    dup = raw(ib, c, twin)
    await status(dup, "Cancelled")
    assert [e.errorCode for e in dup.log if e.errorCode] == [103]
    assert [o.order_ref for o in sim.orders()] == ["first"]


async def test_what_if_reports_margin_without_placing(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(c, MarketOrder("BUY", 100)), 5)
    assert float(state.initMarginChange) == pytest.approx(100.01 * 100 * 0.25)
    assert state.commission == 1.0
    assert sim.orders() == [] and sim.executions() == []


async def test_ioc_leftover_is_cancelled(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    c = await qualified(ib)
    await sim.set_price("AAPL", 100)
    await sim.partial_fill_next(3)
    trade = ib.placeOrder(c, LimitOrder("BUY", 10, 101, tif="IOC", orderRef="ioc"))
    await status(trade, "Cancelled")
    assert trade.orderStatus.filled == 3
    resting = ib.placeOrder(c, LimitOrder("BUY", 10, 90, tif="IOC", orderRef="ioc2"))
    await status(resting, "Cancelled")
    assert resting.fills == []
