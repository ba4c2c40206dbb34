"""The paper venue and the OMS on a real SQLite store with a simulated clock."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

from core.config import PaperConfig, RiskConfig
from core.domain.model import Execution, OrderStatus, Side, TimeInForce
from core.execution.broker import Broker
from tests.paper_rig import OPEN

MS = timedelta(milliseconds=1)


async def test_market_order_acked_after_latency_then_filled_on_next_quote(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 100)
    assert order.status is OrderStatus.SUBMITTED
    rig.quote("AAPL", "101", OPEN + 10 * MS)  # inside the 50 ms latency: not live yet
    assert order.status is OrderStatus.SUBMITTED and order.filled_qty == 0
    rig.quote("AAPL", "102", OPEN + 60 * MS)
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == D("102.01")  # the ask, zero slippage configured
    pos = rig.portfolio.positions["AAPL"]
    assert pos.qty == 100 and pos.commissions == D("1.00")
    assert rig.broker.cash == D(100000) - D("10201") - D("1.00")


async def test_partial_fills_across_quotes_by_volume_share(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "20", OPEN)
    order = await rig.order(Side.BUY, 2500)
    for i in range(1, 4):
        rig.quote("AAPL", "20", OPEN + i * 100 * MS, volume="10000")  # 10% = 1000 shares a quote
    assert order.status is OrderStatus.FILLED
    await rig.store.flush()
    rows = await rig.store.fetchall("SELECT qty, commission FROM fills ORDER BY seq")
    assert [r["qty"] for r in rows] == ["1000", "1000", "500"]
    # commission is per order: 2500 x 0.005 = 12.50 in all, charged as it fills
    assert sum(D(r["commission"]) for r in rows) == D("12.50")


async def test_day_limit_order_expires_at_session_close_gtc_survives(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    day = await rig.order(Side.BUY, 10, limit="90")
    gtc = await rig.order(Side.BUY, 11, limit="90", tif=TimeInForce.GTC)  # 11: not a duplicate
    rig.quote("AAPL", "100", OPEN + timedelta(hours=1))
    assert day.status is OrderStatus.ACCEPTED and gtc.status is OrderStatus.ACCEPTED
    rig.bar("AAPL", OPEN, OPEN + timedelta(hours=6, minutes=30), "100")  # the session's daily bar
    assert day.status is OrderStatus.CANCELLED and "expired" in (day.reason or "")
    assert gtc.status is OrderStatus.ACCEPTED
    rig.quote("AAPL", "89", OPEN + timedelta(days=1))
    assert gtc.status is OrderStatus.FILLED and gtc.avg_fill_price == D("89.01")


async def test_order_is_committed_before_the_broker_sees_it(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.broker.records_in_engine_store = False  # as a real broker: its records are not ours
    seen: list[str | None] = []
    real_place = rig.broker.place

    def place_and_look(order) -> None:
        # An independent connection: what is on disk at the moment of sending.
        with sqlite3.connect(tmp_path / "cockpit.sqlite") as conn:
            row = conn.execute("SELECT status FROM orders WHERE client_order_id = ?",
                               (order.client_order_id,)).fetchone()
        seen.append(row[0] if row else None)
        real_place(order)

    rig.broker.place = place_and_look  # type: ignore[method-assign]  # the test swaps in a probe
    rig.quote("AAPL", "100", OPEN)
    await rig.order(Side.BUY, 10)
    assert seen == ["NEW"]


async def test_paper_order_and_venue_record_commit_together(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10)
    db = tmp_path / "cockpit.sqlite"

    def on_disk() -> tuple[int, int]:
        with sqlite3.connect(db) as conn:
            ours = conn.execute("SELECT count(*) FROM orders WHERE client_order_id = ?",
                                (order.client_order_id,)).fetchone()[0]
            venue = conn.execute("SELECT count(*) FROM paper_orders WHERE client_order_id = ?",
                                 (order.client_order_id,)).fetchone()[0]
        return ours, venue

    assert on_disk() == (0, 0)  # neither yet: a crash now replays the event that made it
    await rig.store.flush()
    assert on_disk() == (1, 1)


async def test_fill_reported_twice_is_applied_once(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10)
    rig.quote("AAPL", "100", OPEN + 100 * MS)
    await rig.store.flush()
    (execution,) = await rig.broker.executions_since(None)
    rig.oms.on_report(execution)
    rig.oms.on_report(execution)
    assert rig.portfolio.positions["AAPL"].qty == 10 and order.filled_qty == 10
    await rig.store.flush()
    assert len(await rig.store.fetchall("SELECT * FROM fills")) == 1


async def test_paper_account_and_open_orders_persist_across_restart(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    await rig.order(Side.BUY, 100)
    rig.quote("AAPL", "100", OPEN + 100 * MS)
    working = await rig.order(Side.SELL, 50, limit="120", tif=TimeInForce.GTC)
    cash = rig.broker.cash
    account = rig.broker.account_id
    await rig.store.close()

    again = await make_rig(clock=rig.clock)
    assert again.broker.account_id == account and again.broker.cash == cash
    assert [p.qty for p in await again.broker.positions()] == [D(100)]
    (open_order,) = await again.broker.open_orders()
    assert open_order.client_order_id == working.client_order_id
    assert working.client_order_id in again.oms.open_orders
    # the next id continues the sequence: never reused
    again.quote("AAPL", "121", OPEN + 200 * MS)
    assert again.oms.orders[working.client_order_id].status is OrderStatus.FILLED
    nxt = await again.order(Side.BUY, 1)
    assert nxt.client_order_id not in {working.client_order_id, "t-1", "t-2"}


async def test_missed_fill_is_recovered_once_at_restart(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10)
    # The engine goes blind: the venue fills but the engine's report handler is gone.
    rig.broker.set_report_handler(lambda report: None)
    rig.quote("AAPL", "100", OPEN + 100 * MS)
    await rig.store.close()
    again = await make_rig(clock=rig.clock)
    assert again.portfolio.positions["AAPL"].qty == 10
    assert again.oms.orders[order.client_order_id].status is OrderStatus.FILLED
    await again.store.flush()
    assert len(await again.store.fetchall("SELECT * FROM fills")) == 1
    await again.store.close()
    third = await make_rig(clock=rig.clock)
    await third.store.flush()
    assert len(await third.store.fetchall("SELECT * FROM fills")) == 1


async def test_risk_gate_refusal_is_an_event_with_reason_and_never_reaches_broker(tmp_path: Path, make_rig) -> None:
    rig = await make_rig(risk=RiskConfig(max_order_qty=D(100)))
    placed: list[str] = []
    real_place = rig.broker.place
    rig.broker.place = lambda o: (placed.append(o.client_order_id), real_place(o))  # type: ignore[method-assign]  # the test swaps in a probe
    rig.quote("AAPL", "100", OPEN)
    assert await rig.order(Side.BUY, 101) is None
    await rig.store.flush()
    (row,) = await rig.store.fetchall("SELECT reason FROM risk_events")
    assert "max_order_qty" in row["reason"]
    assert placed == []


async def test_paper_rejects_an_invalid_order_with_reason(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    await rig.broker.disconnect()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10)
    assert order.status is OrderStatus.REJECTED and "not connected" in (order.reason or "")


def test_paper_broker_implements_the_broker_interface() -> None:
    from brokers.paper import PaperBroker

    assert issubclass(PaperBroker, Broker) and not PaperBroker.__abstractmethods__
    assert PaperConfig().latency_ms == 50
    assert Execution.__slots__


async def test_illegal_status_report_is_refused_and_logged(tmp_path: Path, make_rig, caplog) -> None:
    from core.domain.model import OrderUpdate

    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10)
    rig.quote("AAPL", "100", OPEN + 100 * MS)
    assert order.status is OrderStatus.FILLED
    rig.oms.on_report(OrderUpdate(order.client_order_id, OrderStatus.ACCEPTED, OPEN + 200 * MS))
    assert order.status is OrderStatus.FILLED
    assert "illegal transition FILLED -> ACCEPTED" in caplog.text


async def test_cancel_before_sending_really_cancels(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    from core.domain.model import OrderType
    from core.risk.gate import OrderRequest

    order = rig.oms.submit(OrderRequest("test", "AAPL", Side.BUY, D(10), OrderType.MARKET))
    assert rig.oms.cancel(order.client_order_id) is True
    await rig.oms.send_pending()
    rig.quote("AAPL", "100", OPEN + 100 * MS)
    assert order.status is OrderStatus.CANCELLED and rig.portfolio.qty("AAPL") == 0
    assert await rig.broker.open_orders() == []


async def test_day_order_session_survives_restart_and_still_expires(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10, limit="90")
    rig.quote("AAPL", "100", OPEN + timedelta(hours=1))  # live today, does not fill
    await rig.store.close()
    again = await make_rig(clock=rig.clock)  # restart before the day's bar
    again.bar("AAPL", OPEN, OPEN + timedelta(hours=6, minutes=30), "100")
    assert again.oms.orders[order.client_order_id].status is OrderStatus.CANCELLED
    again.quote("AAPL", "89", OPEN + timedelta(days=1))
    assert again.portfolio.qty("AAPL") == 0


async def test_half_day_bar_expires_day_orders(tmp_path: Path, make_rig) -> None:
    rig = await make_rig()
    rig.quote("AAPL", "100", OPEN)
    order = await rig.order(Side.BUY, 10, limit="90")
    rig.quote("AAPL", "100", OPEN + timedelta(hours=1))
    rig.bar("AAPL", OPEN, OPEN + timedelta(hours=3, minutes=30), "100")  # 13:00 close
    assert order.status is OrderStatus.CANCELLED
