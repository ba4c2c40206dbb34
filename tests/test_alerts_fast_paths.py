"""The alert path's shortcuts give what the long way gives: an immediate sink gets its alerts at
once (and a failing or lying one falls back to the queue), order changes that make no alert are
dropped as they come, and the daily tally's level is the worded line's level."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from core.alerts.from_events import alerts_for, order_may_alert
from core.control import alert_text
from core.domain.events import EngineError, FillApplied, OrderChanged
from core.domain.model import Execution, Order, OrderStatus, OrderType, Side, TimeInForce
from core.persistence.store import Store
from tests.test_alerts_router import T0, Recording, router_with, until


class Immediate(Recording):
    immediate = True


class ImmediateFailing(Recording):
    immediate = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.fail = 1

    async def send(self, alert):  # type: ignore[no-untyped-def]
        self.got.append(alert)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the disk hiccuped")


class ImmediateLiar(Recording):
    immediate = True

    async def send(self, alert):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        self.got.append(alert)


@pytest.fixture
async def store(tmp_path: Path):
    s = Store(tmp_path / "cockpit.sqlite")
    await s.open()
    yield s
    await s.close()


async def test_an_immediate_sink_gets_each_alert_as_it_is_dispatched(store: Store) -> None:
    sink = Immediate("rec")
    router, bus, _ = await router_with(store, sink)
    for n in range(3000):  # more than the queue holds: nothing waits for the worker
        bus.publish(EngineError(f"part {n}", f"problem {n}"))
    await until(lambda: len(sink.got) >= 3000, "every alert")
    stats = router.stats.sinks["rec"]
    assert stats.sent == len(sink.got) and stats.overflow == 0 and stats.undelivered == 0
    await router.stop()
    await store.flush()
    statuses = await store.fetchall("SELECT status, tries, COUNT(*) FROM alert_deliveries GROUP BY status, tries")
    assert [tuple(r) for r in statuses] == [("sent", 1, len(sink.got))]


async def test_an_immediate_sink_that_fails_is_retried_by_the_worker(store: Store) -> None:
    sink = ImmediateFailing("rec")
    router, bus, _ = await router_with(store, sink)
    bus.publish(EngineError("test", "once"))
    await until(lambda: router.stats.sinks["rec"].sent == 1, "the worker's try")
    assert len(sink.got) == 2  # the inline attempt failed; the worker's succeeded
    await router.stop()


async def test_a_sink_that_says_immediate_but_waits_goes_through_the_queue(store: Store, caplog) -> None:
    sink = ImmediateLiar("rec")
    router, bus, _ = await router_with(store, sink)
    bus.publish(EngineError("one", "one"))
    bus.publish(EngineError("two", "two"))
    await until(lambda: len(sink.got) == 2, "both, through the worker")
    assert router.lanes["rec"].immediate is False and "never waits" in caplog.text
    await router.stop()


def _order(status: OrderStatus) -> Order:
    return Order(client_order_id="c-1", strategy="s", symbol="X", side=Side.BUY, qty=Decimal(5),
                 order_type=OrderType.MARKET, tif=TimeInForce.DAY, limit_price=None, created_at=T0, status=status)


def test_order_changes_dropped_early_are_those_that_make_no_alert() -> None:
    for status, previous in itertools.product(OrderStatus, [None, *OrderStatus]):
        event = OrderChanged(_order(status), previous=previous, reason="r")
        assert order_may_alert(event) == bool(alerts_for(event, T0)), (status, previous)
        described = alert_text.describe(event)
        assert alert_text.level(event) == (described[0] if described else None)


@pytest.mark.parametrize("kind", ["trade", "adjustment"])
def test_a_fills_level_is_its_worded_lines(kind: str) -> None:
    fill = Execution("e-1", "c-1", "X", Side.SELL, Decimal(5), Decimal("10.5"), Decimal(1), T0)
    event = FillApplied(fill, "s", Decimal(0), (("s", Decimal(-5)),), kind, "broker", None)
    described = alert_text.describe(event)
    assert described is not None and alert_text.level(event) == described[0]


class HtmlShowing(Recording):
    renders_html = True


@pytest.mark.parametrize("sink_class, has_html", [(Recording, False), (HtmlShowing, True)])
async def test_the_daily_summary_has_an_html_body_only_for_a_sink_that_shows_one(store: Store, sink_class: type,
                                                                               has_html: bool) -> None:
    from datetime import UTC, date, datetime

    from core.domain.daily_summary import DailySummary
    from core.domain.events import DailySummaryReady

    d = Decimal
    summary = DailySummary(
        date=date(2008, 11, 28), calendar="XNYS", session_open=datetime(2008, 11, 28, 14, 30, tzinfo=UTC),
        session_close=datetime(2008, 11, 28, 18, 0, tzinfo=UTC), half_day=True, equity_open=d(100000),
        equity_close=d("101234.5"), realized=d(1000), unrealized=d(300), commissions=d("65.5"), total=d(1300),
        net=d("1234.5"), realized_pct=d(1), unrealized_pct=d("0.3"), total_pct=d("1.3"), net_pct=d("1.2345"),
        orders=4, fills=3, adjustments=0, refusals=1, rejected=0, trades_closed=0, best_trade=None, worst_trade=None,
        max_intraday_drawdown=d(800), max_intraday_drawdown_pct=d("0.8"), drawdown_samples=5,
        daily_loss_limit=d(20000), worst_day_pnl=d(-800), loss_limit_used_pct=d(4), loss_limit_hit=False,
        trading_state="ACTIVE", breaks_found=0, breaks_resolved=0, disconnects=1, reconnects=1, data_incidents=0,
        alerts=(("info", 3), ("warning", 2), ("error", 1), ("critical", 0)), engine_starts=1, positions=(),
        strategies=())
    sink = sink_class("rec")
    router, bus, _ = await router_with(store, sink)
    bus.publish(DailySummaryReady(summary))
    await until(lambda: len(sink.got) == 1, "the summary")
    [got] = sink.got
    expected = DailySummaryReady(summary).alert()
    assert (got.title, got.text, got.fields) == (expected.title, expected.text, expected.fields)
    assert got.html == (expected.html if has_html else None)
    await router.stop()
