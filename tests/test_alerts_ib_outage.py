"""An IB Gateway outage as the alerts pane shows it: one disconnect alert, the failed reconnect
attempts as a counter (a digest), "resolved" when the gateway is back; ib_async's own retry
lines ("API connection failed", "Make sure API port ...") stay in the log. The real engine in
IBKR mode against the simulator over TCP; the alerts' clock is simulated."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from brokers.ibsim import IBGatewaySim
from cockpit.alerts.log_sink import LogSink
from cockpit.alerts.tui_sink import AlertBuffer, PaneLine, TuiSink
from cockpit.wiring import build_engine
from core.common.clock import SimClock
from core.config import load_config
from core.domain.events import BrokerReconnectFailed

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import IBLogGuard, eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.test_ibkr_wiring import ibkr_config  # noqa: E402 - the same IBKR-mode config as the wiring tests

pytest_plugins = ["tests.ibsim_fixtures"]

LIBRARY_LINES = ("API connection failed", "Make sure API port", "Disconnecting", "Peer closed connection")


async def test_an_outage_is_one_alert_a_retry_digest_and_resolved(
    sim: IBGatewaySim, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    ib_log.allow(*LIBRARY_LINES, "Connection reset by peer", "Connection refused")
    caplog.set_level(logging.INFO)
    await sim.set_price("AAPL", 100)
    wall = SimClock(datetime(2026, 3, 2, 15, tzinfo=UTC))
    pane = AlertBuffer()
    engine = build_engine(load_config(ibkr_config(tmp_path, sim.port)), wall_clock=wall,
                          alert_sinks=[TuiSink(pane), LogSink()])
    retries: list[BrokerReconnectFailed] = []
    engine.bus.subscribe(BrokerReconnectFailed, retries.append)
    await engine.start()
    run = asyncio.create_task(engine.run())

    def broker_lines() -> list[PaneLine]:
        return [line for line in pane.items if line.kind == "broker.disconnected"]

    try:
        await eventually(lambda: "AAPL" in engine.quote_ts, what="an IB quote")
        port = sim.port
        await sim.stop()  # the gateway goes away; the adapter retries every 10-50 ms
        await eventually(lambda: len(retries) >= 5, what="reconnect attempts failing")
        await eventually(lambda: len(broker_lines()) == 1, what="the disconnect alert")
        [down] = broker_lines()
        assert "BROKER ibkr DISCONNECTED" in down.message
        seen = len(retries)
        await eventually(lambda: len(retries) >= seen + 5, what="five more failed attempts")
        assert len(broker_lines()) == 1  # still the one line
        library = [r for r in caplog.records if r.name.startswith("ib_async")
                   and any(t in r.getMessage() for t in LIBRARY_LINES)]
        assert library, "ib_async logged its retries (the log keeps them)"
        assert not any(t in line.message for line in pane.items for t in LIBRARY_LINES)

        wall.advance(timedelta(seconds=300))  # the dedupe window closes: one digest counts the retries
        await eventually(lambda: len(broker_lines()) == 2, what="the retry digest")
        digest = broker_lines()[1]
        counted = int(digest.message.rsplit("(x", 1)[1].split(" ")[0])
        assert counted >= 5 and digest.message.endswith(" in 5 min)") and "attempt" in digest.message

        wall.advance(timedelta(seconds=60))
        await sim.start(port=port)  # the gateway is back
        await eventually(lambda: engine.broker.connected, what="reconnected", timeout=10)
        await eventually(lambda: len(broker_lines()) == 3, what="resolved")
        resolved = broker_lines()[2]
        assert "broker ibkr connected" in resolved.message and "(resolved after 6 min, fired x" in resolved.message
        fired = int(resolved.message.rsplit("fired x", 1)[1].rstrip(")"))
        assert fired == 1 + len([r for r in retries])  # the disconnect and every failed attempt
    finally:
        engine.request_stop()
        await asyncio.wait_for(run, 5)
        await engine.shutdown()
    rows = await _deliveries(tmp_path / "state" / "cockpit.sqlite")
    assert ("broker.disconnected", "tui", "sent") in rows and ("broker.disconnected", "log", "sent") in rows


async def _deliveries(db: Path) -> set[tuple[str, str, str]]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT a.kind, d.sink, d.status FROM alerts a JOIN alert_deliveries d"
                                " ON a.id = d.alert_id"))
    finally:
        conn.close()
