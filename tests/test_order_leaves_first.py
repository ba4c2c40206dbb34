"""The order leaves first, its bookkeeping follows: the risk gate checks an order, the broker gets
it, and then its events (new, submitted) reach the subscribers, in the order they happened, each
showing the order as it was at its event (core/common/bus.py ``hold``, core/execution/oms.py)."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.common.bus import Bus
from core.domain.events import IntentRejected, OrderChanged
from core.domain.model import OrderStatus, OrderType, Side, TimeInForce
from core.risk.gate import OrderRequest
from tests.paper_rig import OPEN


class A:
    def __init__(self, n: int) -> None:
        self.n = n


class B(A):
    pass


def test_held_events_come_first_in_order_and_nested_ones_keep_their_place() -> None:
    bus, seen = Bus(), []

    def on_a(e: A) -> None:
        seen.append(("a", e.n))
        if e.n == 2:
            bus.publish(B(20))  # published while 2 is handed out: at once, before 3

    bus.subscribe(A, on_a)
    bus.subscribe(A, lambda e: seen.append(("a'", e.n)))
    bus.subscribe(B, lambda e: seen.append(("b", e.n)))
    bus.hold(A(1))
    bus.hold(A(2))
    bus.hold(A(3))
    assert seen == [] and bus.holding
    bus.publish(B(4))  # what was held comes first
    assert seen == [("a", 1), ("a'", 1), ("a", 2), ("b", 20), ("a'", 2), ("a", 3), ("a'", 3), ("b", 4)]
    assert not bus.holding
    seen.clear()
    bus.hold(A(5))
    bus.release()
    bus.release()
    assert seen == [("a", 5), ("a'", 5)]


def test_a_subscriber_that_fails_while_held_events_go_out_drops_the_rest() -> None:
    bus, seen = Bus(), []

    def on_a(e: A) -> None:
        if e.n == 1:
            raise RuntimeError("store down")
        seen.append(e.n)

    bus.subscribe(A, on_a)
    bus.hold(A(1))
    bus.hold(A(2))
    with pytest.raises(RuntimeError):
        bus.release()
    assert not bus.holding
    bus.publish(A(3))
    assert seen == [3]


async def test_the_broker_has_the_order_before_anyone_hears_of_it(make_rig) -> None:
    rig = await make_rig()
    log: list[str] = []
    place = rig.broker.place

    def placing(order) -> None:  # type: ignore[no-untyped-def]
        log.append(f"place {order.client_order_id} ({order.status})")
        place(order)

    rig.broker.place = placing  # type: ignore[method-assign]
    rig.bus.subscribe(OrderChanged, lambda e: log.append(
        f"{e.order.client_order_id} {e.previous} -> {e.order.status}"))
    rig.quote("AAPL", "100", OPEN)
    order = rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(5), OrderType.MARKET), TimeInForce.DAY)
    assert order is not None and log == []  # gated and made: its event waits for the broker
    await rig.oms.send_pending()
    coid = order.client_order_id
    assert log == [f"place {coid} (NEW)", f"{coid} None -> NEW", f"{coid} NEW -> SUBMITTED"]


async def test_a_refusal_inside_place_reads_as_it_always_did(make_rig, tmp_path: Path) -> None:
    """The paper venue refuses synchronously (not connected): sent, then rejected, as before."""
    rig = await make_rig()
    statuses: list[tuple[object, OrderStatus]] = []
    rig.bus.subscribe(OrderChanged, lambda e: statuses.append((e.previous, e.order.status)))
    rig.quote("AAPL", "100", OPEN)
    rig.broker._connected = False
    order = await rig.order(Side.BUY, 5)
    assert order is not None and order.status is OrderStatus.REJECTED
    assert statuses == [(None, OrderStatus.NEW), (OrderStatus.NEW, OrderStatus.SUBMITTED),
                        (OrderStatus.SUBMITTED, OrderStatus.REJECTED)]
    await rig.store.flush()
    with sqlite3.connect(rig.store.path) as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM audit WHERE subject = ? ORDER BY seq",
                                            (order.client_order_id,))]
    assert kinds == ["gate.pass", "order.sent", "order.rejected"]


async def test_events_published_between_submit_and_send_keep_their_order(make_rig) -> None:
    """A refusal of a second order, a cancel of the first: each after the first order's event."""
    rig = await make_rig()
    seen: list[str] = []
    rig.bus.subscribe(OrderChanged, lambda e: seen.append(f"{e.order.client_order_id}:{e.previous}->{e.order.status}"))
    rig.bus.subscribe(IntentRejected, lambda e: seen.append(f"refused {e.qty}"))
    rig.quote("AAPL", "100", OPEN)
    first = rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(5), OrderType.MARKET), TimeInForce.DAY)
    assert first is not None
    rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(10**9), OrderType.MARKET), TimeInForce.DAY)
    assert rig.oms.cancel(first.client_order_id)
    await rig.oms.send_pending()
    coid = first.client_order_id
    assert seen == [f"{coid}:None->NEW", "refused 1000000000", f"{coid}:NEW->CANCELLED"]
    assert first.status is OrderStatus.CANCELLED


async def test_the_audit_trail_of_a_traded_day_is_in_the_order_things_happened(make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    orders = []
    for i in range(6):
        orders.append(await rig.order(Side.BUY if i % 2 == 0 else Side.SELL, 5))
        rig.quote("AAPL", "100.5", OPEN + timedelta(seconds=10 * i + 5))  # live after the latency: filled
    await rig.store.flush()
    with sqlite3.connect(rig.store.path) as conn:
        rows = conn.execute("SELECT kind, subject FROM audit ORDER BY seq").fetchall()
    for order in orders:
        kinds = [k for k, s in rows if s == order.client_order_id]
        assert kinds == ["gate.pass", "order.sent", "order.ack", "order.fill"], kinds
    firsts = [next(i for i, (k, s) in enumerate(rows) if s == o.client_order_id) for o in orders]
    assert firsts == sorted(firsts)


async def test_a_refused_start_rejects_what_was_queued_and_sends_nothing(make_rig) -> None:
    """A LIVE start the go-live check refuses: orders a strategy queued at start never reach the
    broker on the way down (the handler's preflight_decided('refused') calls OrderManager.reject_unsent)."""
    rig = await make_rig()
    placed: list[str] = []
    rig.broker.place = lambda order: placed.append(order.client_order_id)  # type: ignore[method-assign]
    statuses: list[tuple[object, OrderStatus, str | None]] = []
    rig.bus.subscribe(OrderChanged, lambda e: statuses.append((e.previous, e.order.status, e.order.reason)))
    rig.quote("AAPL", "100", OPEN)
    order = rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(5), OrderType.MARKET), TimeInForce.DAY)
    assert order is not None and rig.oms.has_unsent
    assert rig.oms.reject_unsent("not sent: refused") == 1
    await rig.oms.send_pending()
    assert placed == [] and not rig.oms.has_unsent and order.status is OrderStatus.REJECTED
    assert statuses == [(None, OrderStatus.NEW, None), (OrderStatus.NEW, OrderStatus.REJECTED, "not sent: refused")]


async def test_the_log_says_each_order_where_it_was_made_though_it_is_noted_after_the_send(
        make_rig, caplog: pytest.LogCaptureFixture) -> None:
    """An order's "order ..." line is noted once the broker has it; the lines the OMS notes or writes
    meanwhile (a refusal, a cancel) still come after it, and a sent one's line is there too."""
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    with caplog.at_level(logging.INFO, logger="cockpit.oms"):
        first = rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(5), OrderType.MARKET), TimeInForce.DAY)
        assert first is not None
        rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, Decimal(10**9), OrderType.MARKET), TimeInForce.DAY)
        assert rig.oms.cancel(first.client_order_id)
        second = await rig.order(Side.SELL, 3)
        rig.oms.log.flush()  # what the loop's step end would write
    assert second is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "cockpit.oms"]
    assert [line.split(":")[0] for line in lines] == [
        f"order {first.client_order_id} BUY 5 AAPL MARKET (test)", "refused BUY 1000000000 AAPL (test)",
        f"order {first.client_order_id} CANCELLED", f"order {second.client_order_id} SELL 3 AAPL MARKET (test)"]
