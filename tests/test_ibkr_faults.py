"""Faults, over real TCP against the simulator: a socket dropped mid-order with a fill during
the outage, an order the gateway acts on only after the reconnect, a gateway restart that
rolls nextValidId back, orders queued at the moment of a drop, cancels across a drop, the
reconnect backoff, pacing under a burst of 200 orders, and a pacing violation."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from brokers.ibsim import IBGatewaySim
from core.domain.model import OrderStatus, Side

pytest.register_assert_rewrite("tests.ibsim_fixtures", "tests.ibkr_fixtures")
from tests.ibkr_fixtures import MakeBroker, make_order  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import IBLogGuard, eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures", "tests.ibkr_fixtures"]

D = Decimal
PLACE_ORDER = 3


class Gate:
    """A backoff sleep that waits until the test opens it (the gateway's outage lasts as long as the test wants)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self.open.wait()


async def test_socket_dropped_mid_order_fill_during_outage_reported_once(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.allow("Peer closed connection")
    gate = Gate()
    broker, rec = await make_broker(sleep=gate)
    await sim.set_price("AAPL", 120)
    await sim.delay_acks(True)
    o = make_order("AAPL", Side.BUY, 50)
    broker.place(o)
    await sim.wait_for(lambda: sim.held_acks == 1)  # it reached the gateway, unanswered
    await sim.drop_connections()
    await rec.wait(lambda: rec.changes[-1][0] is False, what="the drop announced")
    assert not broker.connected
    assert await sim.release_acks() == 1  # the gateway fills it with nobody connected
    [e] = sim.executions()
    assert e.order_ref == o.client_order_id and sim.clients == []
    gate.open.set()
    await rec.wait(lambda: rec.changes[-1][0] is True, what="reconnect")
    await rec.wait(lambda: len(rec.executions) == 1, what="the outage's fill")
    [x] = rec.executions
    assert (x.exec_id, x.client_order_id, x.qty, x.commission) == (e.exec_id, o.client_order_id, D(50), e.commission)
    assert rec.updates(o.client_order_id) == []  # no UNKNOWN, no ACCEPTED after the fill: FILLED via the fill
    # more reconnects never report it again
    for _ in range(3):
        n = len(rec.changes)
        await sim.drop_connections()
        await rec.wait(lambda n=n: len(rec.changes) >= n + 2 and rec.changes[-1][0] is True, what="reconnect")
    assert len(rec.executions) == 1
    assert len(broker.stats.reconnect_seconds) == 4 and max(broker.stats.reconnect_seconds) < 5


async def test_order_acted_on_after_the_reconnect_is_unknown_then_known(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """The gateway holds the order through the drop and acts on it only after our resync: the
    adapter first says UNKNOWN (no trace of it), then reports what IB does with it."""
    ib_log.allow("Peer closed connection")
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 120)
    await sim.delay_acks(True)
    o = make_order("AAPL", Side.BUY, 5)
    broker.place(o)
    await sim.wait_for(lambda: sim.held_acks == 1)
    await sim.drop_connections()
    await rec.status(o.client_order_id, OrderStatus.UNKNOWN)
    assert "no trace" in (rec.updates(o.client_order_id)[-1].reason or "")
    assert broker.stats.unknown_after_sync == 1
    await sim.delay_acks(False)  # now it arrives: answered on the new session
    await rec.wait(lambda: rec.filled(o.client_order_id) == 5, what="its fill")
    assert rec.statuses(o.client_order_id) == [OrderStatus.UNKNOWN, OrderStatus.ACCEPTED]
    assert len(rec.executions) == len(sim.executions()) == 1


async def test_gateway_restart_with_rolled_back_next_valid_id(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """The same broker rides through a gateway restart that announces nextValidId 1: new
    orders get fresh ids (no error 103: the log guard would fail), nothing is placed twice,
    the resting order is still tracked and can be cancelled."""
    ib_log.allow("Peer closed connection")
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    a = make_order("AAPL", Side.BUY, 10)
    b = make_order("AAPL", Side.BUY, 10, limit="90")
    broker.place(a)
    broker.place(b)
    await rec.wait(lambda: rec.filled(a.client_order_id) == 10)
    await rec.status(b.client_order_id, OrderStatus.ACCEPTED)
    used = {so.order_id for so in sim.orders()}

    await sim.restart(rollback_next_valid_id=1)
    await rec.wait(lambda: [c[0] for c in rec.changes][-2:] == [False, True], what="reconnect after restart")
    c = make_order("AAPL", Side.SELL, 4)
    broker.place(c)
    await rec.wait(lambda: rec.filled(c.client_order_id) == 4, what="order after the restart")
    assert [so.order_ref for so in sim.orders()] == [a.client_order_id, b.client_order_id, c.client_order_id]
    assert sim.orders()[2].order_id > max(used)
    assert sim.count_received(PLACE_ORDER) == 3
    assert len(rec.executions) == 2 and broker.stats.duplicate_id_retries == 0
    assert [x.client_order_id for x in await broker.open_orders()] == [b.client_order_id]
    broker.cancel(b.client_order_id)
    await rec.status(b.client_order_id, OrderStatus.CANCELLED)


async def test_orders_queued_at_the_drop_are_rejected_unsent_and_cancels_survive(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    ib_log.allow("Peer closed connection")
    ib_log.expect(202)
    gate = Gate()
    broker, rec = await make_broker(sleep=gate, max_messages_per_second=3)
    await sim.set_price("AAPL", 100)
    resting = make_order("AAPL", Side.BUY, 1, limit="80")
    broker.place(resting)
    await rec.status(resting.client_order_id, OrderStatus.ACCEPTED)
    burst = [make_order("AAPL", Side.BUY, 1, limit="81") for _ in range(6)]
    for o in burst:
        broker.place(o)
    await sim.wait_received(PLACE_ORDER, 2)  # at 3 messages/s most of the burst is still queued here
    await sim.drop_connections()
    await rec.wait(lambda: rec.changes[-1][0] is False)
    broker.cancel(resting.client_order_id)  # while disconnected: kept, sent after the reconnect
    unsent = [o for o in burst if rec.last_status(o.client_order_id) is OrderStatus.REJECTED]
    assert len(unsent) >= 3  # still in our queue at the drop: refused at once
    gate.open.set()
    await rec.status(resting.client_order_id, OrderStatus.CANCELLED)
    await rec.wait(lambda: all(rec.statuses(o.client_order_id) for o in burst), what="every burst order settled")
    sent_refs = {so.order_ref for so in sim.orders()}
    for o in burst:
        if o.client_order_id in sent_refs:  # sent before the drop: IB has it and the resync said so
            assert rec.statuses(o.client_order_id) == [OrderStatus.ACCEPTED]
        else:  # queued or waiting for a send slot at the drop: never left, and said so
            [u] = rec.updates(o.client_order_id)
            assert u.status is OrderStatus.REJECTED and "not sent" in (u.reason or ""), u
    assert 1 <= len(sent_refs & {o.client_order_id for o in burst}) <= 3


async def test_reconnect_backs_off_exponentially_with_jitter(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """The gateway is down for 7 attempts: delays double from the minimum up to the cap,
    each in [step/2, step]; one DOWN announcement, then UP when the gateway is back."""
    ib_log.allow("Peer closed connection", "API connection failed", "Make sure API port")
    port = sim.port
    back = asyncio.Event()
    delays: list[float] = []

    statuses: list[str] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        statuses.append(broker.status)
        if len(delays) == 8:
            await sim.start(port=port)  # the gateway returns before the 8th attempt
            back.set()
        await asyncio.sleep(0)

    broker, rec = await make_broker(sleep=sleep, reconnect_min_seconds=1, reconnect_max_seconds=16)
    await sim.stop()  # the gateway goes away
    await rec.wait(lambda: rec.changes[-1][0] is True and back.is_set(), timeout=10, what="reconnect")
    steps = [1, 2, 4, 8, 16, 16, 16, 16]
    assert len(delays) == 8
    for d, s in zip(delays, steps, strict=False):
        assert s / 2 <= d <= s, (delays, steps)
    assert len(set(delays)) == 8  # jittered
    assert [c[0] for c in rec.changes] == [True, False, True]
    assert statuses[0].startswith("reconnecting (attempt 1)")
    assert statuses[3].startswith("reconnecting (attempt 4): connection refused at 127.0.0.1"), statuses[3]
    assert broker.status.startswith("connected")


async def test_burst_of_200_orders_stays_under_pacing(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """200 orders at once: sent at most 45 in any second, never answered with error 100
    (the log guard fails the test on it), all accepted."""
    ib_log.expect(202)
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    orders = [make_order("AAPL", Side.BUY, 1, limit=str(50 + i % 40)) for i in range(200)]
    for o in orders:
        broker.place(o)
    await rec.wait(lambda: all(rec.statuses(o.client_order_id) for o in orders), timeout=15, what="200 acks")
    odd = {o.client_order_id: rec.updates(o.client_order_id) for o in orders
           if rec.statuses(o.client_order_id) != [OrderStatus.ACCEPTED]}
    assert not odd
    times = sorted(r.at for r in sim.received if r.client_id == 1 and r.msg_id == PLACE_ORDER)
    assert len(times) == 200
    everything = sorted(r.at for r in sim.received if r.client_id == 1)
    assert _max_in_window(everything) < 50  # as the gateway counts, arrival times and all
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"\n200-order burst: {rate:.1f} orders/s sustained, at most {_max_in_window(everything)} "
          f"messages in any 1 s window at the gateway")
    # the pacing limit is the safety property; the floor only catches a throttle far slower than
    # the limit (a loaded 2-core run measured 25/s against 38-44/s alone: speed is the bench's job)
    assert 10 < rate <= 45
    assert broker.stats.pacing_errors == 0
    broker.cancel_all()
    await rec.wait(lambda: all(rec.last_status(o.client_order_id) is OrderStatus.CANCELLED for o in orders),
                   timeout=10, what="all cancelled")


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    best = j = 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_pacing_violation_slows_down_and_settles_dropped_orders(
    sim: IBGatewaySim, make_broker: MakeBroker, ib_log: IBLogGuard
) -> None:
    """A gateway stricter than we assumed (30/s) drops part of a burst with error 100: the
    adapter halves its rate, re-reads the orders, and every order ends up either known to IB or
    reported UNKNOWN/REJECTED; none is silently left SUBMITTED."""
    ib_log.expect(100)
    sim.pacing_limit = 30
    broker, rec = await make_broker()
    await sim.set_price("AAPL", 100)
    orders = [make_order("AAPL", Side.BUY, 1, limit="50") for _ in range(40)]
    for o in orders:
        broker.place(o)
    await rec.wait(lambda: all(rec.statuses(o.client_order_id) for o in orders), timeout=10, what="every order settled")
    await eventually(lambda: broker.accepting, what="resync done")
    assert broker.stats.pacing_errors >= 1
    assert broker._throttle.current_limit() == 22
    at_ib = {so.order_ref for so in sim.orders()}
    for o in orders:
        last = rec.last_status(o.client_order_id)
        if o.client_order_id in at_ib:
            assert last is OrderStatus.ACCEPTED
        else:
            assert last in (OrderStatus.UNKNOWN, OrderStatus.REJECTED), (o.client_order_id, rec.statuses(o.client_order_id))
    assert len(at_ib) < 40
    late = make_order("AAPL", Side.BUY, 1, limit="50")
    broker.place(late)
    await rec.status(late.client_order_id, OrderStatus.ACCEPTED)
