"""The delayed-feed hold with real parts: two `cockpit ib-sim` processes over TCP, an engine in
IBKR mode whose fallback asks IB for delayed data (``market_data_type = 3``; the simulator
answers with live data, but the config decides what the engine trusts), on a simulated wall
clock (the feed's health checks and its failback run on it).

The primary gateway is SIGKILLed: the engine fails over to the delayed fallback and holds
strategy orders (and, while the broker is down, every order). The gateway comes back on the
same port and the broker reconciles: a strategy's order is still refused with the feed's
reason, the operator's goes, and the status says why. Once the primary has been healthy for
``failback_seconds`` (the wall clock moves) the engine fails back and strategy orders flow.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cockpit.control.api import status
from cockpit.wiring import build_engine
from core.common.clock import SimClock
from core.config import load_config
from core.domain.events import IntentRejected, OrderChanged
from core.domain.model import Side
from tests.test_feed_failover_ib import start_sim
from tests.test_ibkr_wiring import ibkr_config

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

WALL = datetime(2026, 12, 1, 15, tzinfo=UTC)  # a Tuesday, 10:00 in New York: the session is open
HELD = ("held: the active feed ib_delayed is IB delayed data (15-20 min late); strategies trade again "
        "when a live feed is back")


def delayed_config(tmp_path: Path, primary: int, fallback: int) -> Path:
    extra = f"""
[[feed.fallbacks]]
kind = "ibkr"
name = "ib_delayed"
port = {fallback}
client_id = 52
stale_seconds = 3
market_data_type = 3
"""
    path = ibkr_config(tmp_path, primary, client_id=51, reconnect=(0.05, 0.3), settle=0.2, extra=extra)
    text = path.read_text().replace('symbols = ["AAPL", "MSFT"]\n',
                                    'symbols = ["AAPL", "MSFT"]\nstale_seconds = 3\nfailback_seconds = 5\n')
    path.write_text(text)
    return path


async def test_strategies_are_held_on_the_delayed_fallback_until_failback(tmp_path: Path,
                                                                         clean_env: dict[str, str]) -> None:
    sim_a, port_a = start_sim(tmp_path / "a.json")
    sim_b, port_b = start_sim(tmp_path / "b.json")
    procs = [sim_a, sim_b]
    wall = SimClock(WALL)
    engine = build_engine(load_config(delayed_config(tmp_path, port_a, port_b)), wall_clock=wall)
    refused: list[IntentRejected] = []
    sent: list[OrderChanged] = []
    engine.bus.subscribe(IntentRejected, refused.append)
    engine.bus.subscribe(OrderChanged, lambda e: sent.append(e) if e.previous is None else None)
    await engine.start()
    run = asyncio.create_task(engine.run())
    try:
        feed = engine.feed
        sources = {s.name: s for s in feed.sources}  # type: ignore[attr-defined]
        await eventually(lambda: all(s.gate.passed > 0 for s in sources.values()), 20, "both feeds deliver")
        assert feed.active.name == "ibkr" and engine.gate.feed_hold is None  # type: ignore[attr-defined]
        assert {f["name"]: f["delayed"] for f in status(engine)["feeds"]} == {"ibkr": False, "ib_delayed": True}

        sim_a.send_signal(signal.SIGKILL)  # the primary gateway dies, the broker's session with it
        sim_a.wait(timeout=10)
        await eventually(lambda: feed.active.name == "ib_delayed", 20, "the failover")  # type: ignore[attr-defined]
        assert engine.gate.feed_hold == HELD

        sim_a, _ = start_sim(tmp_path / "a.json", "--port", str(port_a))  # back on its port and its state
        procs.append(sim_a)
        await eventually(lambda: engine.broker.connected and engine.gate.hold is None, 30,
                         "the broker reconnected and reconciled")
        await eventually(lambda: sources["ibkr"].healthy, 20, "the primary's data passes again")
        assert feed.active.name == "ib_delayed"  # type: ignore[attr-defined]  # not trusted yet: the wall clock stands
        quoted = engine.quote_ts.get("AAPL")
        await eventually(lambda: engine.quote_ts.get("AAPL") != quoted, 10, "a delayed quote reaches the engine")

        engine.submit_order("momentum", "AAPL", Side.BUY, Decimal(1))  # a strategy's intent
        assert [r.reason for r in refused] == [HELD]
        s = status(engine)
        assert s["feed_hold"] == HELD and s["hold"] is None and s["trading_state"] == "ACTIVE"
        active = next(f for f in s["feeds"] if f["active"])
        assert active["name"] == "ib_delayed" and active["delayed"] and "15-20 min late" in active["not_live"]
        result = await engine.controls.manual_order("buy", "AAPL", "1", actor="test")  # the operator's goes
        assert "sent order" in result.message

        # The primary healthy for failback_seconds (5) on the wall clock. Each step waits for a fresh
        # quote from the primary first: the freshness check reads the same clock, so a clock moved
        # ahead of the data (a loaded machine) would find the primary stale and restart the wait.
        for _ in range(40):
            if feed.active.name == "ibkr":  # type: ignore[attr-defined]
                break
            passed = sources["ibkr"].gate.passed
            await eventually(lambda before=passed: sources["ibkr"].gate.passed > before, 30, "a fresh quote from the primary")
            wall.advance(timedelta(seconds=0.75))
            await asyncio.sleep(0)
        await eventually(lambda: feed.active.name == "ibkr", 30, "the failback")  # type: ignore[attr-defined]
        assert engine.gate.feed_hold is None and status(engine)["feed_hold"] is None
        quoted = engine.quote_ts.get("AAPL")
        await eventually(lambda: engine.quote_ts.get("AAPL") != quoted, 30, "a live quote")
        engine.submit_order("momentum", "AAPL", Side.BUY, Decimal(2))
        # sent, or refused: a refusal fails at once with its reason instead of waiting out the limit
        # (the limits are generous: under a loaded CI the simulator's replies can take seconds)
        await eventually(lambda: any(e.source == "strategy" for e in sent) or len(refused) > 1, 30,
                         "the strategy's order sent or refused")
        assert [r.reason for r in refused] == [HELD], "the strategy's order after the failback was refused"
        assert any(e.source == "strategy" for e in sent)
        await engine.store.flush()
        rows = await engine.store.fetchall("SELECT kind, subject FROM audit WHERE kind LIKE 'risk.feed_hold%' "
                                           "OR kind LIKE 'feed.fail%' ORDER BY seq")
        assert [(r["kind"], r["subject"]) for r in rows] == [
            ("feed.failover", "ib_delayed"), ("risk.feed_hold", "ib_delayed"),
            ("feed.failback", "ibkr"), ("risk.feed_hold_lifted", "ibkr")]
    finally:
        engine.request_stop()
        await asyncio.wait_for(run, 10)
        await engine.shutdown()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
