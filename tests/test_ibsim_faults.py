"""Faults a real gateway inflicts, rehearsed against the simulator: a socket dropped with an
order in flight, fills while nobody is connected, held acknowledgements, a restart that
reloads the state file and rolls nextValidId back."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import Connect, IBLogGuard, eventually, status  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]


async def test_dropped_mid_order_then_filled_while_disconnected(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    """The order reaches the gateway, the socket dies before the ack, the order fills with
    nobody connected; after reconnecting the client finds exactly one fill and the position."""
    ib_log.allow("Peer closed connection")
    ib = await connect(client_id=7)
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.set_price("AAPL", 120)
    await sim.delay_acks(True)
    trade = ib.placeOrder(c, MarketOrder("BUY", 50, orderRef="in-flight-1"))
    await sim.wait_received(3)
    assert sim.held_acks == 1 and trade.orderStatus.status == "PendingSubmit"
    await sim.drop_connections()
    await eventually(lambda: not ib.isConnected(), what="client sees the drop")
    assert await sim.release_acks() == 1  # the gateway acts on it with nobody listening
    [execution] = sim.executions()
    assert execution.order_ref == "in-flight-1" and sim.clients == []

    back = await connect(client_id=7)
    fills = back.fills()  # the start-up sync already asked for executions
    assert [f.execution.execId for f in fills] == [execution.exec_id]
    again = await back.reqExecutionsAsync()
    assert [(f.execution.execId, f.execution.orderRef, f.execution.shares) for f in again] == [
        (execution.exec_id, "in-flight-1", 50.0)]
    assert [(p.contract.symbol, p.position) for p in back.positions()] == [("AAPL", 50.0)]
    assert back.openTrades() == []
    completed = await back.reqCompletedOrdersAsync(False)
    assert [(t.order.orderRef, t.orderStatus.status, t.order.permId) for t in completed] == [
        ("in-flight-1", "Filled", execution.perm_id)]


async def test_resting_order_fills_while_the_client_is_away(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    ib_log.allow("Peer closed connection")
    ib = await connect(client_id=2)
    [c] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    await sim.set_price("MSFT", 300)
    take_profit = ib.placeOrder(c, LimitOrder("SELL", 20, 305, orderRef="tp-1"))
    stop_gap = ib.placeOrder(c, LimitOrder("BUY", 5, 280, orderRef="dip-1"))
    await status(take_profit, "Submitted")
    await status(stop_gap, "Submitted")
    await sim.drop_connections()
    await eventually(lambda: not ib.isConnected(), what="drop seen")
    await sim.set_price("MSFT", 306)  # the market reaches the limit with nobody connected
    await sim.fill_order(order_ref="dip-1", qty=2)  # and the exchange fills part of the other
    assert [(e.order_ref, e.shares) for e in sim.executions()] == [("tp-1", Decimal(20)), ("dip-1", Decimal(2))]

    back = await connect(client_id=2)
    assert sorted((f.execution.orderRef, f.execution.shares) for f in back.fills()) == [("dip-1", 2.0), ("tp-1", 20.0)]
    assert [p.position for p in back.positions()] == [-18.0]
    [still_open] = back.openTrades()
    assert still_open.order.orderRef == "dip-1" and still_open.orderStatus.filled == 2
    assert still_open.orderStatus.remaining == 3
    done = await back.reqCompletedOrdersAsync(False)
    assert [t.order.orderRef for t in done] == ["tp-1"]


async def test_held_acks_are_released_in_order(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(202)
    ib = await connect()
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.set_price("AAPL", 100)
    await sim.delay_acks(True)
    first = ib.placeOrder(c, LimitOrder("BUY", 1, 90, orderRef="h1"))
    second = ib.placeOrder(c, MarketOrder("BUY", 2, orderRef="h2"))
    ib.cancelOrder(first.order)
    await sim.wait_received(4)
    await sim.wait_for(lambda: sim.held_acks == 3)
    # Barrier: the round trip proves nothing about these orders came back meanwhile.
    assert await ib.reqCurrentTimeAsync()
    assert first.orderStatus.status == "PendingCancel" and second.orderStatus.status == "PendingSubmit"
    assert sim.orders() == []
    await sim.delay_acks(False)  # releases what was held
    await status(second, "Filled")
    await status(first, "Cancelled")
    assert [o.order_ref for o in sim.orders()] == ["h1", "h2"]


async def test_restart_reloads_state_and_rolls_back_next_valid_id(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    ib_log.expect(103)
    ib_log.allow("Peer closed connection")
    ib = await connect(client_id=1)
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.set_price("AAPL", 100)
    filled = ib.placeOrder(c, MarketOrder("BUY", 10, orderRef="before-restart"))
    resting = ib.placeOrder(c, LimitOrder("BUY", 10, 50, orderRef="resting"))
    await status(filled, "Filled")
    await status(resting, "Submitted")
    used_ids = {filled.order.orderId, resting.order.orderId}
    old_perms = {filled.order.permId, resting.order.permId}
    assert sim.state_path is not None
    on_disk = json.loads(Path(sim.state_path).read_text())
    assert {o["order_ref"] for o in on_disk["orders"]} == {"before-restart", "resting"}

    await sim.restart(rollback_next_valid_id=1)
    await eventually(lambda: not ib.isConnected(), what="restart cuts the socket")
    assert sim.state.next_valid_id == 1

    announced: list[int] = []
    ib2 = IB()
    ib2.wrapper.nextValidId = announced.append  # type: ignore[method-assign]  # the test swaps in a probe
    await ib2.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5, raiseSyncErrors=True)
    try:
        assert announced == [1]
        # Everything the gateway knew survived: fills, positions, the resting order, permIds.
        assert [f.execution.orderRef for f in ib2.fills()] == ["before-restart"]
        assert [p.position for p in ib2.positions()] == [10.0]
        assert [t.order.permId for t in ib2.openTrades()] == [resting.order.permId]
        # A client trusting the rolled-back id collides with its own old orders: error 103.
        stale = MarketOrder("BUY", 1, orderRef="stale-id")
        stale.orderId = filled.order.orderId
        dup = ib2.placeOrder(c, stale)
        await status(dup, "Cancelled")
        assert [e.errorCode for e in dup.log if e.errorCode] == [103]
        # One that skips past every id it ever used is accepted, with a fresh permId.
        fresh = MarketOrder("BUY", 1, orderRef="fresh-id")
        fresh.orderId = max(used_ids) + 1
        ok = ib2.placeOrder(c, fresh)
        await status(ok, "Filled")
        assert ok.order.permId > max(old_perms)
        assert sim.state.next_valid_id == fresh.orderId + 1
    finally:
        ib2.disconnect()


async def test_state_file_survives_a_new_simulator(tmp_path: Path, ib_log: IBLogGuard) -> None:
    """Stopping and starting a new simulator on the same file is the same gateway."""
    path = tmp_path / "gw.json"
    first = IBGatewaySim(path, seed=3)
    port = await first.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=4, timeout=5, raiseSyncErrors=True)
        [c] = await ib.qualifyContractsAsync(Stock("ORCL", "SMART", "USD"))
        trade = ib.placeOrder(c, MarketOrder("SELL", 30, orderRef="short-1"))
        await status(trade, "Filled")
        await first.step_prices(5)
        price = first.quote("ORCL").last
    finally:
        ib.disconnect()
        await first.stop()

    second = IBGatewaySim(path, seed=3)
    assert second.quote("ORCL").last == price  # the path continues where it was
    assert second.position("ORCL") == -30
    assert [o.order_ref for o in second.orders()] == ["short-1"]
    assert second.state.next_perm_id == first.state.next_perm_id
    assert second.book.contract("ORCL").con_id == c.conId
    port = await second.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=4, timeout=5, raiseSyncErrors=True)
        assert [(p.contract.conId, p.position) for p in ib.positions()] == [(c.conId, -30.0)]
        assert [f.execution.orderRef for f in ib.fills()] == ["short-1"]
    finally:
        ib.disconnect()
        await second.stop()


async def test_held_order_is_reported_to_the_next_session_of_its_client(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    """An order acked only after its client reconnected reaches the new session as a trade
    with its fill attached (openOrder first), not as an orphan execution."""
    ib_log.allow("Peer closed connection")
    ib = await connect(client_id=3)
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.delay_acks(True)
    ib.placeOrder(c, MarketOrder("SELL", 15, orderRef="late-ack"))
    await sim.wait_received(3)
    await sim.drop_connections()
    await eventually(lambda: not ib.isConnected(), what="drop seen")
    back = await connect(client_id=3)
    assert back.trades() == []
    await sim.release_acks()
    await eventually(lambda: [t.orderStatus.status for t in back.trades()] == ["Filled"], what="late ack")
    [trade] = back.trades()
    assert trade.order.orderRef == "late-ack"
    assert [f.execution.shares for f in trade.fills] == [15.0]
    await eventually(lambda: [p.position for p in back.positions()] == [-15.0], what="position push")


async def test_fill_reaches_a_session_that_did_not_sync_open_orders(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    """A session that skipped reqOpenOrders still gets a fill of an older order as a trade
    (openOrder first), not as an orphan execution."""
    from ib_async import StartupFetch, StartupFetchALL

    ib_log.allow("Peer closed connection")
    ib = await connect(client_id=6)
    [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await sim.set_price("AAPL", 100)
    resting = ib.placeOrder(c, LimitOrder("BUY", 8, 95, orderRef="old-session"))
    await status(resting, "Submitted")
    await sim.drop_connections()
    await eventually(lambda: not ib.isConnected(), what="drop seen")
    back = await connect(client_id=6, fetchFields=StartupFetchALL & ~StartupFetch.ORDERS_OPEN)
    assert back.trades() == []
    await sim.set_price("AAPL", 94)
    await eventually(lambda: [t.orderStatus.status for t in back.trades()] == ["Filled"], what="fill")
    [trade] = back.trades()
    assert trade.order.orderRef == "old-session"
    assert [f.execution.shares for f in trade.fills] == [8.0]
