"""While the active feed is not live (IB delayed or frozen data, ``market_data_type`` 2-4) the
risk gate holds strategy orders: every one, closing ones too, with a reason naming the feed;
the operator's orders and flattens still go. The hold follows the active feed (a failback to a
live feed lifts it), is separate from the operator's halt, and is told on the bus: an alert
when it takes hold and when it lifts, an audit row, the status and the status bar.

tests/test_feed_hold_ib.py does the same over TCP with two `cockpit ib-sim` processes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.common.clock import SimClock
from core.config import FallbackFeedConfig, FeedQualityConfig, RiskConfig
from core.config.feeds import NOT_LIVE
from core.data.feeds.failover import FailoverFeed, FeedSource
from core.data.quality import QualityGate
from core.domain.events import FeedSwitched
from core.domain.model import OrderType, Side
from core.risk.gate import LIQUIDATION_SOURCE, OrderRequest, RiskGate, TradingState
from tests.test_feed_failover import Rig, ScriptedFeed, settle
from tests.test_risk_gate import LOOSE, View

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)
DELAYED = NOT_LIVE[3]
HELD = ("held: the active feed ib_delayed is IB delayed data (15-20 min late); strategies trade again "
        "when a live feed is back")


def req(side: Side = Side.BUY, qty: int = 10, *, source: str = "strategy", reduce_only: bool = False) -> OrderRequest:
    return OrderRequest("s", "AAPL", side, D(qty), OrderType.MARKET, reduce_only=reduce_only, source=source)


class ClockView(View):
    """The gate's view on a SimClock (the quote is always fresh: delayed data is stamped on arrival)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(positions={"AAPL": D(50)})
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    def quote(self, symbol: str) -> tuple[D, datetime] | None:
        return (D(40), self.clock.now())


def test_config_says_which_ib_feeds_are_not_live() -> None:
    assert FallbackFeedConfig(kind="ibkr", market_data_type=3).not_live() == "IB delayed data (15-20 min late)"
    assert FallbackFeedConfig(kind="ibkr", market_data_type=4).not_live() == NOT_LIVE[4]
    assert "frozen" in (FallbackFeedConfig(kind="ibkr", market_data_type=2).not_live() or "")
    assert FallbackFeedConfig(kind="ibkr").not_live() is None
    assert FallbackFeedConfig(kind="synthetic", market_data_type=3).not_live() is None  # no IB data type there


def test_a_delayed_feed_holds_every_strategy_order_but_not_the_operators() -> None:
    clock = SimClock(T0)
    view = ClockView(clock)
    told: list[tuple[str, str | None]] = []
    gate = RiskGate(RiskConfig(**LOOSE), on_feed_hold=lambda feed, hold: told.append((feed, hold)))
    assert gate.check(req(), view) is None

    gate.on_feed_switched(FeedSwitched("ibkr", "ib_delayed", "ibkr: its connection is down", False, DELAYED))
    assert gate.feed_hold == HELD and told == [("ib_delayed", HELD)]
    clock.advance(timedelta(seconds=1))
    assert gate.check(req(), view) == HELD  # opening
    assert gate.check(req(Side.SELL, 50), view) == HELD  # closing the whole position: decided on old prices too
    assert gate.check(req(Side.SELL, 10, reduce_only=True), view) == HELD
    assert gate.check(req(source="operator"), view) is None  # a manual order: the operator sees the hold
    assert gate.check(req(Side.SELL, 50, source=LIQUIDATION_SOURCE, reduce_only=True), view) is None  # a flatten
    assert gate.check(req(source="unknown"), view) == HELD  # fail closed: only the operator's sources pass

    gate.follow_feed("ib_delayed", DELAYED)  # the same feed again: nothing new to tell
    assert told == [("ib_delayed", HELD)]
    clock.advance(timedelta(seconds=1))
    gate.on_feed_switched(FeedSwitched("ib_delayed", "ibkr", "ibkr healthy for 30 s", True, None))
    assert gate.feed_hold is None and told[-1] == ("ibkr", None)
    clock.advance(timedelta(seconds=1))
    assert gate.check(req(Side.BUY, 11), view) is None


def test_the_feed_hold_and_the_operators_halt_are_separate() -> None:
    clock = SimClock(T0)
    view = ClockView(clock)
    gate = RiskGate(RiskConfig(**LOOSE))
    gate.follow_feed("ib_delayed", DELAYED)
    gate.set_state(TradingState.HALTED, reason="operator halt")
    assert gate.check(req(source="operator"), view) is not None and "HALTED" in (gate.check(req(), view) or "")
    gate.follow_feed("ibkr", None)  # the failback lifts the feed's hold, never the operator's halt
    assert gate.state is TradingState.HALTED and gate.feed_hold is None
    assert "HALTED" in (gate.check(req(), view) or "")
    gate.follow_feed("ib_delayed", DELAYED)
    gate.set_state(TradingState.ACTIVE, reason="resume")  # nor does a resume lift the feed's hold
    assert gate.check(req(), view) == HELD and gate.check(req(source="operator"), view) is None
    # REDUCING and the feed hold: the operator may still reduce, a strategy may not
    gate.set_state(TradingState.REDUCING, reason="operator reduce")
    assert gate.check(req(Side.SELL, 10), view) == HELD
    assert gate.check(req(Side.SELL, 10, source="operator"), view) is None


async def test_a_failover_to_a_not_live_source_says_so_and_failback_says_it_is_live() -> None:
    rig = Rig()
    rig.feed.sources[1].not_live = DELAYED
    gate = RiskGate(RiskConfig(**LOOSE))
    async with rig:
        await rig.push(rig.a, rig.quote(0, "100"))
        await rig.push(rig.b, rig.quote(0, "100"))
        views = {v.name: v for v in rig.feed.views()}
        assert views["a"].not_live is None and views["b"].not_live == DELAYED
        rig.a.stale = True
        rig.wall.advance(timedelta(seconds=1.25))
        await settle()
        [switch] = [e for e in rig.events if isinstance(e, FeedSwitched)]
        assert (switch.to_feed, switch.not_live) == ("b", DELAYED)
        gate.on_feed_switched(switch)
        assert gate.feed_hold is not None and gate.feed_hold.startswith("held: the active feed b is IB delayed")
        rig.a.stale = False
        for s in range(1, 40, 2):  # a healthy again for failback_seconds (30) on the wall clock
            rig.wall.advance(timedelta(seconds=2))
            await rig.push(rig.a, rig.quote(s, "100"))
            await rig.push(rig.b, rig.quote(s, "100"))
        back = [e for e in rig.events if isinstance(e, FeedSwitched)][-1]
        assert (back.to_feed, back.failback, back.not_live) == ("a", True, None)
        gate.on_feed_switched(back)
        assert gate.feed_hold is None


# ---- the engine: the bus, alerts, audit, the read model, a restart --------------------------------


def _scripted_engine(tmp_path: Path, wall: SimClock, *, primary_not_live: str | None = None):
    """A paper engine on a failover feed of two scripted sources: ``ibkr`` (live) first, ``ib_delayed`` (not live) after."""
    from brokers.paper.broker import PaperBroker
    from core.common.bus import Bus
    from core.common.clock import LiveClock
    from core.config import load_config
    from core.kernel.engine import Engine
    from core.persistence.store import Store
    from tests.conftest import CONFIG

    settings = load_config(CONFIG, state_dir=tmp_path / "state", overrides={
        "feed": {"kind": "synthetic", "stale_seconds": 5, "failback_seconds": 10},
        "deadman": {"enabled": False}, "risk": {"allowed_symbols": []}})
    bus, clock = Bus(), LiveClock()
    cfg = FeedQualityConfig(fail_count=3, fail_window_seconds=10)
    a, b = ScriptedFeed("ibkr"), ScriptedFeed("ib_delayed")
    feed = FailoverFeed([FeedSource("ibkr", "ibkr", a, QualityGate("ibkr", cfg), 5.0, not_live=primary_not_live),
                         FeedSource("ib_delayed", "ibkr", b, QualityGate("ib_delayed", cfg), 5.0, not_live=DELAYED)],
                        wall, bus.publish, failback_seconds=10)
    store = Store(tmp_path / "state" / "cockpit.sqlite")
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=settings.paper, market_tz=settings.engine.market_tz)
    engine = Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=feed, strategies=[],
                    wall_clock=wall, alert_sinks=())
    return engine, a, b


def _quote(feed: ScriptedFeed, bid: str) -> None:
    from core.common.clock import LiveClock
    from core.domain.model import Quote

    feed.queue.put_nowait([Quote("AAPL", LiveClock().now(), D(bid), D(bid) + D("0.01"), D(bid))])


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2000):  # the loop's turns, not time: the engine acts on each
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


async def test_engine_holds_strategies_on_a_delayed_feed_and_tells_everyone(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from cockpit.control.api import status
    from cockpit.control.inprocess import InProcessApi
    from cockpit.control_cli import _status
    from cockpit.tui.status_line import status_line
    from core.domain.events import IntentRejected, OrderChanged

    wall = SimClock(T0)
    engine, a, b = _scripted_engine(tmp_path, wall)
    refused: list[IntentRejected] = []
    passed: list[OrderChanged] = []
    engine.bus.subscribe(IntentRejected, refused.append)
    engine.bus.subscribe(OrderChanged, lambda e: passed.append(e) if e.previous is None else None)
    await engine.start()
    run = asyncio.create_task(engine.run())
    try:
        _quote(a, "100")
        _quote(b, "100")
        await _until(lambda: "AAPL" in engine.quote_ts, "a quote")
        assert engine.gate.feed_hold is None and status(engine)["feed_hold"] is None

        a.stale = True  # the primary's connection drops: the next check fails over to the delayed feed
        wall.advance(timedelta(seconds=1.25))
        await _until(lambda: engine.feed.active.name == "ib_delayed", "the failover")
        assert engine.gate.feed_hold == HELD
        _quote(b, "100.5")
        await _until(lambda: engine.portfolio.marks.price.get("AAPL") == D("100.5"), "a delayed quote")
        engine.submit_order("momentum", "AAPL", Side.BUY, D(5))  # a strategy's intent, on the context
        assert [r.reason for r in refused] == [HELD]
        result = await engine.controls.manual_order("buy", "AAPL", "3", actor="test")  # the operator still may
        assert "sent order" in result.message
        await _until(lambda: len(passed) == 1, "the operator's order sent")
        assert [e.source for e in passed] == ["operator"]

        s = status(engine)
        assert s["feed_hold"] == HELD and s["hold"] is None and s["trading_state"] == "ACTIVE"
        feeds = {f["name"]: f for f in s["feeds"]}
        assert feeds["ib_delayed"]["delayed"] and feeds["ib_delayed"]["not_live"] == DELAYED
        assert feeds["ib_delayed"]["active"] and not feeds["ibkr"]["delayed"]
        assert "STRATEGIES HELD: ib_delayed not live" in status_line(engine.snapshot(), "running").plain
        reply = await InProcessApi(engine).request("GET", "/status")  # the API's own response model checks it
        assert reply.status == 200 and reply.body["feed_hold"] == HELD, reply.body

        class Answered:  # `cockpit status` prints what the API answered
            def get(self, _path: str) -> dict:
                return reply.body

        capsys.readouterr()
        _status(Answered(), argparse.Namespace(json=False))
        text = capsys.readouterr().out
        assert f"HELD      strategy orders {HELD} (operator orders and flattens still go)" in text
        assert "ib_delayed (ibkr) ACTIVE, healthy: " in text and f"NOT LIVE: {DELAYED}" in text

        a.stale = False  # back, and healthy for failback_seconds on the wall clock
        for _ in range(12):
            _quote(a, "101")
            _quote(b, "101")
            wall.advance(timedelta(seconds=1.25))
            await _until(lambda: not a.queue.qsize(), "a's quote taken")
        await _until(lambda: engine.feed.active.name == "ibkr", "the failback")
        assert engine.gate.feed_hold is None and status(engine)["feed_hold"] is None
        _quote(a, "101.5")
        await _until(lambda: engine.portfolio.marks.price.get("AAPL") == D("101.5"), "a live quote")
        engine.submit_order("momentum", "AAPL", Side.BUY, D(7))
        _quote(a, "101.6")  # the next event hands the order's held events out (core/common/bus.py)
        await _until(lambda: len(passed) == 2, "the strategy's order sent")
        assert len(refused) == 1 and [e.source for e in passed] == ["operator", "strategy"]
        await engine.store.flush()
        audit = [(r["kind"], r["subject"]) for r in await engine.store.fetchall(
            "SELECT kind, subject FROM audit WHERE kind LIKE 'risk.feed_hold%' OR kind LIKE 'feed.fail%' ORDER BY seq")]
        alerts = [(r["kind"], r["resolved"], r["title"], r["text"]) for r in await engine.store.fetchall(
            "SELECT * FROM alerts WHERE kind = 'risk.feed_hold' ORDER BY at")]
        assert audit == [("feed.failover", "ib_delayed"), ("risk.feed_hold", "ib_delayed"),
                         ("feed.failback", "ibkr"), ("risk.feed_hold_lifted", "ibkr")]
    finally:
        engine.request_stop()
        await asyncio.wait_for(run, 10)
        await engine.shutdown()
    assert [(kind, bool(resolved)) for kind, resolved, _, _ in alerts] == [("risk.feed_hold", False),
                                                                             ("risk.feed_hold", True)]
    assert "ib_delayed" in alerts[0][2] and HELD in alerts[0][3] and "the active feed ibkr is live" in alerts[1][3]


async def test_a_restart_on_a_not_live_feed_is_held_from_the_start(tmp_path: Path) -> None:
    """At start the active feed decides, as a switch would (the primary is always live in a config
    today; a restart that fails over again is held again by the switch)."""
    from cockpit.control.api import status

    wall = SimClock(T0)
    engine, _a, _b = _scripted_engine(tmp_path, wall, primary_not_live=DELAYED)
    await engine.start()
    try:
        assert engine.gate.feed_hold is not None and "the active feed ibkr is" in engine.gate.feed_hold
        assert status(engine)["feed_hold"] == engine.gate.feed_hold
    finally:
        await engine.shutdown()
    engine, _a, _b = _scripted_engine(tmp_path, wall)  # the same state dir, on a live feed
    await engine.start()
    try:
        assert engine.gate.feed_hold is None  # nothing stored: the hold is the feed's, not a setting
    finally:
        await engine.shutdown()


@pytest.mark.parametrize("kind", ["risk.feed_hold"])
def test_the_alert_kind_is_a_condition_routed_off_the_box(kind: str) -> None:
    from core.alerts.from_events import RESOLVABLE
    from core.config.alerts import DEFAULT_ROUTES

    assert kind in RESOLVABLE
    assert kind in DEFAULT_ROUTES["discord"]["kinds"] and kind in DEFAULT_ROUTES["email"]["kinds"]
