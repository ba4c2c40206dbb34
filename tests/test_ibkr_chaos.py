"""Chaos: 100 random socket drops (and a few gateway restarts with nextValidId rolled back)
during continuous trading, over real TCP against the simulator. No fill lost or doubled
(the simulator's executions against the reported ones, by execId), every status the
adapter reports is one the OMS's state machine accepts, every order ends consistent with
what the gateway did, and each reconnect completes within 5 s of the gateway's return."""

from __future__ import annotations

import asyncio
import os
import random
from decimal import Decimal

import pytest

from brokers.ibsim import IBGatewaySim
from core.domain.model import OrderStatus, Side

pytest.register_assert_rewrite("tests.ibsim_fixtures", "tests.ibkr_fixtures")
from tests.ibkr_fixtures import MakeBroker, MiniOms, make_order  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import IBLogGuard  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures", "tests.ibkr_fixtures"]

D = Decimal
SYMBOLS = ("AAPL", "MSFT", "SPY")
DROPS = 100


async def test_chaos_random_drops_during_continuous_trading(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.allow("Peer closed connection", "Connection reset by peer")
    # 10147: a cancel of an order whose placeOrder was lost with a restart; 10148: a cancel that
    # raced a fill. Both are IB's answers to what the test does, logged as errors by ib_async.
    ib_log.expect(202, 10147, 10148)
    rng = random.Random(int(os.environ.get("IBKR_CHAOS_SEED", "20260517")))
    broker, rec = await make_broker(reconnect_min_seconds=0.002, reconnect_max_seconds=0.02)
    oms = MiniOms(broker, rec)
    for i, s in enumerate(SYMBOLS):
        await sim.set_price(s, 100 + 50 * i)
    loop = asyncio.get_running_loop()
    placed_in_outage: list[str] = []
    placed_at_drop: list[str] = []
    restarts = 0
    fills_while_down = 0
    reconnect_after_return: list[float] = []

    def working_ours() -> list:
        return [so for so in sim.orders() if so.client_id == 1 and so.working]

    for n in range(DROPS):
        await broker.wait_synced(timeout=5)
        held = rng.random() < 0.2
        if held:
            await sim.delay_acks(True)  # some orders and cancels will be in flight at the drop
        new: list[str] = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            sym = rng.choice(SYMBOLS)
            side = rng.choice((Side.BUY, Side.SELL))
            if r < 0.45:
                o = make_order(sym, side, rng.randint(1, 9))
            elif r < 0.85:
                q = sim.quote(sym)
                off = D(rng.randint(-3, 6)) * D("0.01")
                price = q.bid - off if side is Side.BUY else q.ask + off  # some marketable, some resting
                o = make_order(sym, side, rng.randint(1, 9), limit=str(price))
            else:
                o = None
                live = [o for o in oms.orders.values() if not o.status.is_terminal]
                if live:
                    oms.cancel(rng.choice(live).client_order_id)
            if o is not None:
                oms.place(o)
                new.append(o.client_order_id)
        if not held and rng.random() < 0.7:  # mostly, the gateway answers before the cut
            await rec.wait(lambda new=new: all(rec.statuses(c) or rec.filled(c) for c in new), what="acks")
        if rng.random() < 0.5:
            await sim.step_prices(1)  # resting limits may fill
        if rng.random() < 0.3:
            await sim.partial_fill_next(1)
        for _ in range(rng.randint(0, 6)):  # let a random amount of I/O through before the cut
            await asyncio.sleep(0)

        restart = n % 20 == 19
        if restart:
            restarts += 1
            await sim.restart(rollback_next_valid_id=1)  # held messages are lost with it
        else:
            await sim.drop_connections()
        returned = loop.time()  # the listener never goes away: the gateway is back at once
        # while nobody is connected: the exchange fills some working orders
        for so in working_ours():
            if rng.random() < 0.3:
                qty = so.remaining if rng.random() < 0.5 else min(so.remaining, D(1))
                await sim.fill_order(so.perm_id, qty=qty)
                fills_while_down += 1
        o = make_order(rng.choice(SYMBOLS), Side.BUY, 1)
        oms.place(o)  # before the adapter has seen the drop: it may go into the dead socket
        placed_at_drop.append(o.client_order_id)
        await rec.wait(lambda: not broker.connected, what="the drop seen")
        o = make_order(rng.choice(SYMBOLS), Side.BUY, 1)
        oms.place(o)  # the engine keeps trading during the outage: refused, never queued
        if not broker.connected:
            placed_in_outage.append(o.client_order_id)
        if held and rng.random() < 0.5:
            await sim.delay_acks(False)  # the gateway acts on them with nobody listening
        ups = sum(1 for up, _ in rec.changes if up)
        await rec.wait(lambda u=ups: sum(1 for up, _ in rec.changes if up) > u, timeout=5, what=f"reconnect {n}")
        reconnect_after_return.append(loop.time() - returned)
        if held:
            await sim.delay_acks(False)  # or after the reconnect: the adapter must cope with both

    # quiet end: everything the gateway did reaches the adapter
    await broker.wait_synced(timeout=5)
    await sim.delay_acks(False)
    ours = [e for e in sim.executions() if e.client_id == 1]
    await rec.wait(lambda: {x.exec_id for x in rec.executions} >= {e.exec_id for e in ours}, timeout=10,
                   what="every execution reported")

    reported = [x.exec_id for x in rec.executions]
    assert len(reported) == len(set(reported)), "an execution was reported twice"
    assert set(reported) == {e.exec_id for e in ours}, "a fill was lost (or invented)"
    by_id = {x.exec_id: x for x in rec.executions}
    for e in ours:
        x = by_id[e.exec_id]
        assert (x.client_order_id, x.qty, x.price, x.commission) == (e.order_ref, e.shares, e.price, e.commission)
    assert not oms.problems, oms.problems[:10]

    at_ib = {so.order_ref: so for so in sim.orders() if so.client_id == 1}
    assert len(at_ib) == sum(1 for so in sim.orders() if so.client_id == 1), "an orderRef placed twice"
    for coid, order in oms.orders.items():
        so = at_ib.get(coid)
        if so is None:  # never reached IB: refused, not sent, or lost in flight (UNKNOWN)
            assert order.status in (OrderStatus.REJECTED, OrderStatus.UNKNOWN, OrderStatus.CANCELLED), (
                coid, order.status, rec.updates(coid))
            assert order.filled_qty == 0
            continue
        assert order.filled_qty == so.filled, (coid, order.filled_qty, so.filled)
        if so.status == "Filled":
            assert order.status is OrderStatus.FILLED, (coid, order.status)
        elif so.status == "Cancelled":
            assert order.status is OrderStatus.CANCELLED, (coid, order.status, rec.updates(coid))
        elif so.status == "Inactive":
            assert order.status is OrderStatus.REJECTED, (coid, order.status)
        else:
            assert not order.status.is_terminal, (coid, order.status, so.status)

    assert len(broker.stats.reconnect_seconds) == DROPS
    assert max(reconnect_after_return) < 5
    for coid in placed_in_outage:
        [u] = rec.updates(coid)
        assert u.status is OrderStatus.REJECTED and "not connected" in (u.reason or ""), u
    for coid in placed_at_drop:
        # failed unsent when the drop was seen; or, if the sender got to it before, written into
        # the dead socket: UNKNOWN (then CANCELLED by 10147 if the test cancelled it)
        assert coid not in at_ib and oms.orders[coid].status in (
            OrderStatus.REJECTED, OrderStatus.UNKNOWN, OrderStatus.CANCELLED), rec.updates(coid)
    assert len(placed_in_outage) >= DROPS // 2
    # UNKNOWN orders (written into a dying socket, or lost with a restart) are settled by
    # cancelling them: IB cancels what it has and says 10147 for what it never got
    unknown = [c for c, o in oms.orders.items() if o.status is OrderStatus.UNKNOWN]
    for coid in unknown:
        oms.cancel(coid)
    await rec.wait(lambda: all(oms.orders[c].status is OrderStatus.CANCELLED for c in unknown),
                   what="UNKNOWN orders settled by a cancel")
    assert not any(c in at_ib for c in unknown)
    assert not oms.problems, oms.problems[:10]
    # liveness, not a speed: orders kept reaching IB across the drops (114-137 placeOrders on an idle
    # machine, 99 once under the full suite's load: more of them meet a drop in flight)
    assert sim.count_received(3) >= 60, sim.count_received(3)
    assert fills_while_down >= 10, fills_while_down
    print(f"\nchaos: {DROPS} drops ({restarts} gateway restarts with nextValidId 1), {len(oms.orders)} orders "
          f"({sim.count_received(3)} placeOrder messages at the gateway), "
          f"{len(ours)} executions ({fills_while_down} fills while down), "
          f"reconnect after the gateway's return: median "
          f"{sorted(reconnect_after_return)[len(reconnect_after_return) // 2] * 1000:.0f} ms, "
          f"max {max(reconnect_after_return) * 1000:.0f} ms; orders unknown after a sync: {len(unknown)} "
          f"(settled by cancel); "
          f"orders refused in the outage: {len(placed_in_outage)}")
