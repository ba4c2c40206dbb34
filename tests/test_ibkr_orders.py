"""The IBKR adapter against the IB Gateway simulator over real TCP: connect and initial sync,
the order lifecycle (partial fill, refusal, cancel, modify, cancel/replace), the rules on
what may cancel an order, refusals, and order ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import LimitOrder, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim
from brokers.ibsim import messages as sim_messages
from core.common.clock import SimClock
from core.domain.model import OrderStatus, Side, TimeInForce

pytest.register_assert_rewrite("tests.ibsim_fixtures", "tests.ibkr_fixtures")
from tests.ibkr_fixtures import MakeBroker, make_order  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import Connect, IBLogGuard, status  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures", "tests.ibkr_fixtures"]

UTC = timezone.utc
D = Decimal


async def test_connect_and_initial_sync_sees_what_the_gateway_holds(
    sim: IBGatewaySim, connect: Connect, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """A position, a resting order and today's executions made by an earlier session are all
    visible right after connect(), and the earlier fills are reported once each."""
    ib_log.allow("Peer closed connection")
    other = await connect(client_id=1)
    [c] = await other.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    await sim.set_price("MSFT", 300)
    filled = other.placeOrder(c, MarketOrder("BUY", 30, orderRef="old-fill"))
    resting = other.placeOrder(c, LimitOrder("BUY", 5, 250, orderRef="old-rest"))
    await status(filled, "Filled")
    await status(resting, "Submitted")
    other.disconnect()
    await sim.wait_for(lambda: sim.clients == [])

    broker, rec = await make_broker()
    assert broker.connected and broker.accepting
    assert rec.changes[-1][0] is True and "connected to IB Gateway" in rec.changes[-1][1]
    [pos] = await broker.positions()
    assert (pos.symbol, pos.qty) == ("MSFT", D(30))
    assert abs(pos.avg_cost - sim.state.positions["MSFT"].avg_cost) < D("1e-9")  # IB sends a float
    [open_order] = await broker.open_orders()
    assert (open_order.client_order_id, open_order.symbol, open_order.qty, open_order.limit_price) == (
        "old-rest", "MSFT", D(5), D(250))
    assert open_order.status is OrderStatus.ACCEPTED and open_order.broker_order_id == str(resting.order.permId)
    [e] = sim.executions()
    assert [(x.exec_id, x.client_order_id, x.qty, x.price, x.commission) for x in rec.executions] == [
        (e.exec_id, "old-fill", D(30), e.price, e.commission)]
    assert await broker.executions_since(None) == rec.executions
    snap = await broker.account()
    assert snap.cash == sim.state.cash and snap.equity is not None and snap.extra["account"] == "DU1234567"


async def test_market_order_fills_with_commission_and_order_ref(
    sim: IBGatewaySim, make_broker: MakeBroker
) -> None:
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 10)
    broker.place(o)
    await rec.wait(lambda: rec.filled(o.client_order_id) == 10, what="fill")
    [so] = sim.orders()
    assert so.order_ref == o.client_order_id and so.status == "Filled"
    [e] = sim.executions()
    [x] = rec.executions
    assert (x.exec_id, x.side, x.qty, x.price, x.commission, x.broker_order_id) == (
        e.exec_id, Side.BUY, D(10), D("100.01"), e.commission, str(so.perm_id))
    assert x.commission == D("1") and x.ts.tzinfo is not None
    # accepted first, then the execution; FILLED comes from the execution, never as an update
    assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]
    assert rec.reports.index(rec.updates(o.client_order_id)[0]) < rec.reports.index(x)


async def test_partial_fill_then_the_rest(sim: IBGatewaySim, make_broker: MakeBroker) -> None:
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    await sim.partial_fill_next(4)
    o = make_order("AAPL", Side.SELL, 10, limit="99.99")
    broker.place(o)
    await rec.wait(lambda: rec.filled(o.client_order_id) == 4, what="partial fill")
    assert sim.orders()[0].status == "Submitted"
    assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]
    await sim.fill_order(order_ref=o.client_order_id)  # the exchange fills the rest
    await rec.wait(lambda: rec.filled(o.client_order_id) == 10, what="the rest")
    assert len(rec.executions) == len(sim.executions()) == 2
    assert {x.exec_id for x in rec.executions} == {e.exec_id for e in sim.executions()}
    assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]


async def test_refused_order_is_rejected_with_ibs_reason(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.expect(201)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    await sim.refuse_next_order("insufficient margin for this test")
    o = make_order("AAPL", Side.BUY, 10)
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.REJECTED)
    [u] = rec.updates(o.client_order_id)
    assert "insufficient margin for this test" in (u.reason or "")
    await sim.wait_for(lambda: sim.orders()[0].status == "Inactive")
    assert rec.executions == []
    # the refusal leaves the session usable
    o2 = make_order("AAPL", Side.BUY, 1)
    broker.place(o2)
    await rec.wait(lambda: rec.filled(o2.client_order_id) == 1, what="next order fills")


async def test_unknown_symbol_is_rejected(sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard) -> None:
    ib_log.expect(200)
    broker, rec = await make_broker()
    o = make_order("NOT-A-TICKER!", Side.BUY, 1)
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.REJECTED)
    assert "NOT-A-TICKER!" in (rec.updates(o.client_order_id)[0].reason or "")
    assert sim.orders() == []


async def test_cancel_a_resting_order(sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 10, limit="90", tif=TimeInForce.GTC)
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.ACCEPTED)
    assert sim.orders()[0].tif == "GTC"
    broker.cancel(o.client_order_id)
    await rec.status(o.client_order_id, OrderStatus.CANCELLED)
    assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED, OrderStatus.CANCELLED]
    assert rec.updates(o.client_order_id)[-1].reason == "cancelled by request"
    assert sim.orders()[0].status == "Cancelled"
    broker.cancel(o.client_order_id)  # again: nothing goes out (no 10148 from the gateway)
    assert await broker.open_orders() == []
    assert await broker.ib.reqCurrentTimeAsync()  # a round trip: anything sent before it has arrived
    assert sim.count_received(4) == 1


async def test_cancel_at_the_gateway_side_is_reported(sim: IBGatewaySim, make_broker: MakeBroker,
                                                     ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 10, limit="90")
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.ACCEPTED)
    await sim.cancel_order(order_ref=o.client_order_id)
    await rec.status(o.client_order_id, OrderStatus.CANCELLED)
    assert rec.updates(o.client_order_id)[-1].reason == "cancelled at IB"


async def test_a_warning_that_ib_async_takes_for_a_cancel_does_not_cancel(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """ib_async marks a trade Cancelled on error 10349 (TIF set to DAY by preset) although the
    order works on: the adapter keeps it open, and its later fill is reported."""
    ib_log.expect(10349)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 10, limit="90")
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.ACCEPTED)
    [so] = sim.orders()
    sim._to_client(1, lambda v: sim_messages.error(v, so.order_id, 10349,
                                                   "Order TIF was set to DAY based on order preset."))
    [trade] = [t for t in broker.ib.trades() if t.order.orderRef == o.client_order_id]
    await _until(lambda: trade.isDone())
    assert trade.orderStatus.status == "Cancelled"  # ib_async's belief
    await sim.fill_order(order_ref=o.client_order_id)
    await rec.wait(lambda: rec.filled(o.client_order_id) == 10, what="fill after the warning")
    assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]


async def _until(pred, timeout: float = 5.0) -> None:
    from tests.ibsim_fixtures import eventually

    await eventually(pred, timeout)


async def test_modify_in_place_and_cancel_replace(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """The Broker interface has no modify: the engine cancels and replaces. The adapter also
    offers ``modify`` (placeOrder with the same id), used here first."""
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 10, limit="95")
    broker.place(o)
    await rec.status(o.client_order_id, OrderStatus.ACCEPTED)
    assert broker.modify(o.client_order_id, qty=D(6), limit_price=D("96"))
    await sim.wait_for(lambda: sim.orders()[0].total_qty == 6 and sim.orders()[0].lmt_price == D(96))
    assert len(sim.orders()) == 1
    assert broker.modify(o.client_order_id, limit_price=D("100.01"))  # marketable now: fills at the ask
    await rec.wait(lambda: rec.filled(o.client_order_id) == 6, what="modified order fills")
    assert rec.executions[-1].price == D("100.01")
    assert not broker.modify(o.client_order_id, qty=D(1))  # done: nothing to modify

    # cancel/replace, as the engine does it
    r1 = make_order("AAPL", Side.SELL, 5, limit="110")
    broker.place(r1)
    await rec.status(r1.client_order_id, OrderStatus.ACCEPTED)
    broker.cancel(r1.client_order_id)
    await rec.status(r1.client_order_id, OrderStatus.CANCELLED)
    r2 = make_order("AAPL", Side.SELL, 5, limit="99.99")
    broker.place(r2)
    await rec.wait(lambda: rec.filled(r2.client_order_id) == 5, what="replacement fills")
    assert [(so.order_ref, so.status) for so in sim.orders()] == [
        (o.client_order_id, "Filled"), (r1.client_order_id, "Cancelled"), (r2.client_order_id, "Filled")]
    assert len({so.order_id for so in sim.orders()}) == 3


async def test_cancel_all_uses_global_cancel(sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    orders = [make_order("AAPL", Side.BUY, 1, limit=str(80 + i)) for i in range(3)]
    for o in orders:
        broker.place(o)
    for o in orders:
        await rec.status(o.client_order_id, OrderStatus.ACCEPTED)
    broker.cancel_all()
    for o in orders:
        await rec.status(o.client_order_id, OrderStatus.CANCELLED)
    assert sim.count_received(58) == 1  # reqGlobalCancel
    assert sim.count_received(4) == 0  # no per-order cancels
    assert {u.reason for o in orders for u in rec.updates(o.client_order_id)[-1:]} == {"cancel all (reqGlobalCancel)"}


async def test_no_new_orders_inside_the_restart_window(sim: IBGatewaySim, make_broker: MakeBroker) -> None:
    clock = SimClock(datetime(2026, 3, 2, 4, 50, tzinfo=UTC))  # 23:50 in New York (EST)
    broker, rec = await make_broker(clock=clock, restart_window="23:45-00:15", restart_tz="America/New_York")
    o = make_order("AAPL", Side.BUY, 1)
    broker.place(o)
    [u] = rec.updates(o.client_order_id)
    assert u.status is OrderStatus.REJECTED and "restart window (23:45-00:15 America/New_York)" in (u.reason or "")
    clock.advance(timedelta(minutes=25))  # 00:15: outside
    await sim.set_price("AAPL", 50)
    o2 = make_order("AAPL", Side.BUY, 1)
    broker.place(o2)
    await rec.wait(lambda: rec.filled(o2.client_order_id) == 1, what="fill after the window")
    assert [so.order_ref for so in sim.orders()] == [o2.client_order_id]


async def test_bad_orders_are_refused_before_sending(sim: IBGatewaySim, make_broker: MakeBroker) -> None:
    broker, rec = await make_broker()
    zero = make_order("AAPL", Side.BUY, 0)
    broker.place(zero)
    nolimit = make_order("AAPL", Side.BUY, 1, limit="1")
    nolimit.limit_price = None
    broker.place(nolimit)
    ok = make_order("AAPL", Side.BUY, 1, limit="1")
    broker.place(ok)
    broker.place(ok)  # the same client order id twice
    assert [u.status for u in rec.updates()] == [OrderStatus.REJECTED] * 3
    assert ["positive" in (u.reason or "") or "duplicate" in (u.reason or "") for u in rec.updates()] == [True] * 3
    await rec.status(ok.client_order_id, OrderStatus.ACCEPTED)
    assert len(sim.orders()) == 1


async def test_orders_are_refused_while_disconnected(sim: IBGatewaySim, make_broker: MakeBroker) -> None:
    broker, rec = await make_broker(connect=False)
    o = make_order("AAPL", Side.BUY, 1)
    broker.place(o)
    [u] = rec.updates(o.client_order_id)
    assert u.status is OrderStatus.REJECTED and "not connected to IB Gateway" in (u.reason or "")
    with pytest.raises(ConnectionError):
        await broker.positions()


async def test_first_connect_to_a_closed_port_fails_clearly(make_broker: MakeBroker, ib_log: IBLogGuard,
                                                            sim: IBGatewaySim) -> None:
    ib_log.allow("API connection failed", "Make sure API port")
    port = sim.port
    await sim.stop()
    with pytest.raises(ConnectionError, match=f"connection refused at 127.0.0.1:{port}"):
        await make_broker()
    await sim.start(port=port)  # for the fixture's teardown


async def test_a_gateway_late_at_start_is_waited_for_within_start_wait_seconds(
        make_broker: MakeBroker, ib_log: IBLogGuard, sim: IBGatewaySim) -> None:
    """A service booting with its gateway: the first connect retries (the backoff's sleeps are the
    test's: the gateway comes up on the third) instead of failing, and still fails past the wait."""
    ib_log.allow("API connection failed", "Make sure API port")
    port = sim.port
    await sim.stop()
    sleeps: list[float] = []

    async def gateway_up_on_third_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            await sim.start(port=port)

    broker, _rec = await make_broker(sleep=gateway_up_on_third_sleep, start_wait_seconds=60)
    assert broker.connected and len(sleeps) == 3
    await broker.disconnect()
    await sim.stop()
    slept: list[float] = []

    async def never_up(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(ConnectionError, match=f"connection refused at 127.0.0.1:{port}"):
        await make_broker(sleep=never_up, start_wait_seconds=0.2)
    assert sum(slept) >= 0.2 and len(slept) >= 4  # 10-50 ms steps until the 0.2 s were spent
    await sim.start(port=port)  # for the fixture's teardown


async def test_client_id_in_use_fails_fast_with_326(sim: IBGatewaySim, connect: Connect, make_broker: MakeBroker,
                                                    ib_log: IBLogGuard) -> None:
    ib_log.expect(326)
    ib_log.allow("Peer closed connection", "API connection failed")
    await connect(client_id=1)
    loop = __import__("asyncio").get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectionError, match="client id 1 is already in use .*326"):
        await make_broker(connect_timeout=30)
    assert loop.time() - t0 < 5  # not the 30 s connect timeout


async def test_order_ids_persist_across_processes_and_gateway_rollback(
    sim: IBGatewaySim, make_broker: MakeBroker, tmp_path: Path, ib_log: IBLogGuard
) -> None:
    """With an id state file, a new broker (a restarted engine) facing a gateway that rolled
    nextValidId back to 1 continues above every id it used: no error 103."""
    ib_log.allow("Peer closed connection")
    ids = tmp_path / "ib-ids.json"
    first, rec1 = await make_broker(id_state_file=ids)
    await sim.set_price("AAPL", 100)
    a = make_order("AAPL", Side.BUY, 1)
    first.place(a)
    await rec1.wait(lambda: rec1.filled(a.client_order_id) == 1)
    await first.disconnect()
    await sim.wait_for(lambda: sim.clients == [])
    await sim.restart(rollback_next_valid_id=1)

    second, rec2 = await make_broker(id_state_file=ids)
    b = make_order("AAPL", Side.BUY, 1)
    second.place(b)
    await rec2.wait(lambda: rec2.filled(b.client_order_id) == 1)
    ida, idb = (so.order_id for so in sim.orders())
    assert idb > ida and second.stats.duplicate_id_retries == 0


async def test_duplicate_order_id_is_retried_once_with_a_new_id(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """Without an id state file a restarted engine meets a rolled-back gateway: error 103,
    then one retry above the collision, then the order works; no duplicate order."""
    ib_log.expect(103)
    ib_log.allow("Peer closed connection")
    first, rec1 = await make_broker()
    await sim.set_price("AAPL", 100)
    a = make_order("AAPL", Side.BUY, 1)
    first.place(a)
    await rec1.wait(lambda: rec1.filled(a.client_order_id) == 1)
    await first.disconnect()
    await sim.wait_for(lambda: sim.clients == [])
    await sim.restart(rollback_next_valid_id=1)

    second, rec2 = await make_broker()
    b = make_order("AAPL", Side.BUY, 2)
    second.place(b)
    await rec2.wait(lambda: rec2.filled(b.client_order_id) == 2, what="retried order fills")
    assert second.stats.duplicate_id_retries == 1
    assert [so.order_ref for so in sim.orders()] == [a.client_order_id, b.client_order_id]
    assert rec2.statuses(b.client_order_id) == [OrderStatus.ACCEPTED]


async def test_a_restarted_engine_learns_what_happened_to_its_orders(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """Orders from an earlier run (the engine's store says they are open) are adopted before
    connecting: one cancelled at IB and one filled while the engine was down are reported; the
    one still working can be cancelled."""
    ib_log.expect(202)
    first, rec1 = await make_broker()
    await sim.set_price("AAPL", 100)
    gone, filled, alive = (make_order("AAPL", Side.BUY, 3, limit=str(p)) for p in ("90", "91", "92"))
    for o in (gone, filled, alive):
        first.place(o)
        await rec1.status(o.client_order_id, OrderStatus.ACCEPTED)
    await first.disconnect()  # the engine stops; its orders stay live at IB
    await sim.wait_for(lambda: sim.clients == [])
    await sim.cancel_order(order_ref=gone.client_order_id)
    await sim.fill_order(order_ref=filled.client_order_id)

    second, rec2 = await make_broker(connect=False)
    for o in (gone, filled, alive):
        o.status = OrderStatus.ACCEPTED
    second.adopt([gone, filled, alive])
    await second.connect()
    await rec2.status(gone.client_order_id, OrderStatus.CANCELLED)
    assert rec2.updates(gone.client_order_id)[0].reason
    await rec2.wait(lambda: rec2.filled(filled.client_order_id) == 3, what="the fill while down")
    assert rec2.updates(filled.client_order_id) == [] and rec2.updates(alive.client_order_id) == []
    assert [o.client_order_id for o in await second.open_orders()] == [alive.client_order_id]
    second.cancel(alive.client_order_id)
    await rec2.status(alive.client_order_id, OrderStatus.CANCELLED)


async def test_cancel_of_an_order_from_an_earlier_run_without_adopting(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.expect(202)
    first, rec1 = await make_broker()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 3, limit="90")
    first.place(o)
    await rec1.status(o.client_order_id, OrderStatus.ACCEPTED)
    await first.disconnect()
    await sim.wait_for(lambda: sim.clients == [])
    second, rec2 = await make_broker()
    second.cancel(o.client_order_id)  # found among IB's open orders by orderRef
    await rec2.status(o.client_order_id, OrderStatus.CANCELLED)
    second.cancel("never-existed")  # nothing to do, nothing sent
    assert sim.count_received(4) == 1


async def test_positions_and_account_follow_fills_and_survive_a_drop(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.allow("Peer closed connection")
    gate_open = __import__("asyncio").Event()

    async def sleep(delay: float) -> None:
        await gate_open.wait()

    broker, rec = await make_broker(sleep=sleep)
    assert await broker.positions() == []
    cash0 = (await broker.account()).cash
    await sim.set_price("MSFT", 200)
    o = make_order("MSFT", Side.BUY, 7)
    broker.place(o)
    await rec.wait(lambda: rec.filled(o.client_order_id) == 7)
    await _until(lambda: bool(broker.ib.positions()))
    [p] = await broker.positions()
    assert (p.symbol, p.qty) == ("MSFT", D(7))
    await _until(lambda: broker.ib.accountValues() and _cash(broker) != cash0)
    snap = await broker.account()
    assert snap.cash == sim.state.cash
    await sim.drop_connections()
    await rec.wait(lambda: not broker.connected)
    assert (await broker.account()).cash == snap.cash  # the last known figures while down
    with pytest.raises(ConnectionError):
        await broker.positions()
    gate_open.set()
    await broker.wait_synced(timeout=5)
    assert [(p.symbol, p.qty) for p in await broker.positions()] == [("MSFT", D(7))]


def _cash(broker) -> Decimal:
    return next(Decimal(v.value) for v in broker.ib.accountValues() if v.tag == "TotalCashValue")


async def test_adopted_order_that_never_reached_ib_becomes_unknown_then_settles(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """The engine's store has an order SUBMITTED when it stopped, and IB has no trace of it:
    UNKNOWN after the sync; a cancel then settles it as CANCELLED without sending anything."""
    broker, rec = await make_broker(connect=False)
    lost = make_order("AAPL", Side.BUY, 1, limit="90")
    broker.adopt([lost])
    await broker.connect()
    await rec.status(lost.client_order_id, OrderStatus.UNKNOWN)
    broker.cancel(lost.client_order_id)
    await rec.status(lost.client_order_id, OrderStatus.CANCELLED)
    assert "no trace" in (rec.updates(lost.client_order_id)[-1].reason or "")
    assert sim.orders() == [] and sim.count_received(4) == 0


async def test_execution_without_a_commission_report_is_booked_after_the_wait(
    sim: IBGatewaySim, make_broker: MakeBroker
) -> None:
    """The commission report never comes (dropped here on purpose): the execution waits for
    it, then is reported once with commission 0 when the engine clock passes the wait."""
    clock = SimClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    broker, rec = await make_broker(connect=False, clock=clock, commission_wait_seconds=10)
    broker.raw_commissionReport = lambda report: None  # type: ignore[method-assign]  # the test swaps in a probe
    await broker.connect()
    await sim.set_price("AAPL", 100)
    o = make_order("AAPL", Side.BUY, 2)
    broker.place(o)
    await sim.wait_for(lambda: len(sim.executions()) == 1)
    assert await broker.ib.reqCurrentTimeAsync()  # the fill and its commission report have arrived
    assert rec.executions == [] and rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]
    clock.advance(timedelta(seconds=9))
    assert rec.executions == []
    clock.advance(timedelta(seconds=2))
    [x] = rec.executions
    assert (x.exec_id, x.qty, x.commission) == (sim.executions()[0].exec_id, D(2), D(0))
    assert broker.stats.commission_timeouts == 1


async def test_an_order_is_on_the_socket_when_place_returns_once_its_contract_is_known(
    sim: IBGatewaySim, make_broker: MakeBroker
) -> None:
    """The first order of a symbol waits for its contract lookup (the sender sends it); the next
    ones are written to the socket by place() itself, in the order placed, inside the pacing."""
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    first = make_order("AAPL", Side.BUY, 1)
    broker.place(first)
    assert broker._orders.get(first.client_order_id).order_id is None  # queued: no contract yet
    await rec.wait(lambda: rec.filled(first.client_order_id) == 1, what="the first fill")
    sent: list[int] = []
    write = broker.ib.client.placeOrder

    def counting(order_id, contract, order):  # type: ignore[no-untyped-def]
        sent.append(order_id)
        write(order_id, contract, order)

    broker.ib.client.placeOrder = counting  # type: ignore[method-assign]
    now = [1000.0]  # the pacing's own clock, moved here: a second between orders leaves it room
    broker._throttle._time = lambda: now[0]
    broker._throttle.reset()
    later = [make_order("AAPL", Side.BUY, 1) for _ in range(4)]
    placed = []
    for i, o in enumerate(later):
        now[0] += 1.0 if i < 3 else 0.0  # the last right after the third: inside the pacing's gap
        broker.place(o)
        placed.append(list(sent))  # what was on the socket when place() returned
    assert [len(p) for p in placed] == [1, 2, 3, 3]  # the fourth waits for the sender (and its gap)
    now[0] += 1.0
    await rec.wait(lambda: len(sent) == 4, what="the fourth sent by the sender")
    assert sent == sorted(sent) and len(set(sent)) == 4
    for o in later:
        await rec.wait(lambda o=o: rec.filled(o.client_order_id) == 1, what="the later fills")
    assert [so.order_ref for so in sim.orders()] == [first.client_order_id] + [o.client_order_id for o in later]
