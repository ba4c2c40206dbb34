"""Prometheus ``GET /metrics`` of a real engine after a short replay, parsed with prometheus-client's
own parser: names, types, labels and values (the fills equal the store's), on the real Unix
socket and on TCP behind the token; ``/metrics/performance`` still answers beside it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cockpit.control.inprocess import InProcessApi
from cockpit.control.routes_prometheus import LATENCY_BUCKETS, refusal_kind
from cockpit.control.server import ControlServer, socket_path
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG

TOKEN = "prom-token-for-tests-0123"

EXPECTED = {  # name as parsed (counters without _total) -> type
    "cockpit_orders_submitted": "counter", "cockpit_fills": "counter", "cockpit_gate_refusals": "counter",
    "cockpit_tick_to_order_seconds": "histogram", "cockpit_equity_dollars": "gauge", "cockpit_cash_dollars": "gauge",
    "cockpit_day_pnl_dollars": "gauge", "cockpit_realized_pnl_dollars": "gauge",
    "cockpit_unrealized_pnl_dollars": "gauge", "cockpit_position_shares": "gauge",
    "cockpit_position_market_value_dollars": "gauge", "cockpit_broker_connected": "gauge",
    "cockpit_feed_last_tick_age_seconds": "gauge", "cockpit_feed_healthy": "gauge", "cockpit_trading_state": "gauge",
    "cockpit_deadman_seconds_left": "gauge", "cockpit_open_orders": "gauge", "cockpit_events_processed": "counter",
    "cockpit_alerts_sent": "counter", "cockpit_alerts_failed": "counter", "cockpit_alerts_undelivered": "counter",
    "cockpit_alerts": "counter",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, object], name: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in fams[name].samples]  # type: ignore[attr-defined]


async def test_metrics_after_a_replay_parse_and_agree_with_the_store(tmp_path: Path, clean_env,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("COCKPIT_API_TOKEN", TOKEN)
    settings = load_config(CONFIG, state_dir=tmp_path / "s", overrides={
        "feed": {"speed": "max", "end": "2008-03-31"}, "api": {"tcp_port": port},
        "deadman": {"enabled": True, "interval_seconds": 3600}})
    engine = build_engine(settings)
    await engine.start()
    server = ControlServer(engine, settings)
    await server.start()
    try:
        api = InProcessApi(engine)  # the same engine's registry: both see the same collector
        await engine.run()
        await engine.store.flush()
        reply = await api.request("GET", "/metrics")
        assert reply.status == 200
        text = reply.raw.decode()
        fams = families(text)
        assert "_created" not in text and "cockpit_fills_total{" in text
        assert {n: fams[n].type for n in EXPECTED if n in fams} == EXPECTED  # type: ignore[attr-defined]

        stored = await engine.store.fetchall("SELECT strategy, side FROM fills")
        fills = samples(fams, "cockpit_fills")
        assert stored and sum(v for _, _, v in fills) == len(stored)
        assert {(lb["strategy"], lb["side"]) for _, lb, _ in fills} == {(r["strategy"], r["side"]) for r in stored}
        assert all(set(lb) == {"strategy", "side", "kind"} for _, lb, _ in fills)
        orders = await engine.store.fetchall("SELECT count(*) AS n FROM orders WHERE status != 'REJECTED'")
        assert sum(v for _, _, v in samples(fams, "cockpit_orders_submitted")) == orders[0]["n"]

        latency = {(n, lb.get("le")): v for n, lb, v in samples(fams, "cockpit_tick_to_order_seconds")}
        count = latency[("cockpit_tick_to_order_seconds_count", None)]
        assert count == latency[("cockpit_tick_to_order_seconds_bucket", "+Inf")] > 0
        assert {le for n, le in latency if n.endswith("_bucket")} == {*(repr(b) for b in LATENCY_BUCKETS), "+Inf"}
        assert 0 < latency[("cockpit_tick_to_order_seconds_sum", None)] < count  # seconds, not micro

        snap = engine.read_model.snapshot(max_orders=0)
        [(_, _, equity)] = samples(fams, "cockpit_equity_dollars")
        assert equity == pytest.approx(float(snap.equity))
        held = {p.symbol: float(p.qty) for p in snap.positions if p.qty != 0}
        assert {lb["symbol"]: v for _, lb, v in samples(fams, "cockpit_position_shares")} == held
        assert {lb["state"]: v for _, lb, v in samples(fams, "cockpit_trading_state")} == {
            "ACTIVE": 1.0, "REDUCING": 0.0, "HALTED": 0.0}
        assert samples(fams, "cockpit_broker_connected") == [("cockpit_broker_connected", {"broker": "paper"}, 1.0)]
        assert samples(fams, "cockpit_deadman_seconds_left") == []  # disarmed: the run is over
        engine.deadman.arm()  # as while trading (the test's hand, not the operator side's)
        [(_, _, left)] = samples(families((await api.request("GET", "/metrics")).raw.decode()),
                                 "cockpit_deadman_seconds_left")
        assert 3500 < left <= 3600
        [(_, feed, age)] = samples(fams, "cockpit_feed_last_tick_age_seconds")
        assert age >= 0 and feed["feed"]

        halted = await api.request("POST", "/halt", json={"actor": "test"})
        assert halted.status == 200
        after = families((await api.request("GET", "/metrics")).raw.decode())
        assert {lb["state"]: v for _, lb, v in samples(after, "cockpit_trading_state")}["HALTED"] == 1.0

        # The real listeners: the Unix socket without a token, TCP only with it.
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket_path(settings))),
                                     base_url="http://cockpit") as unix:
            got = await unix.get("/metrics")
            assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain")
            assert "cockpit_fills_total" in got.text
            assert (await unix.get("/metrics/performance")).status_code == 200
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as tcp:
            refused = await tcp.get("/metrics")
            assert refused.status_code == 401 and refused.json()["detail"] == "missing or wrong bearer token"
            got = await tcp.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert got.status_code == 200 and families(got.text)["cockpit_fills"]
    finally:
        await server.stop()
        await engine.shutdown()


@pytest.mark.parametrize(("reason", "kind"), [
    ("no new orders: the broker is disconnected", "hold"),
    ("trading HALTED (operator): no new orders, only cancels", "halted"),
    ("qty 5000 exceeds max_order_qty 1000", "max_order_qty"),
    ("notional $1,000.00 exceeds max_order_notional 500", "max_order_notional"),
    ("quote for AAPL is 90 s old, beyond quote_max_age_seconds 30", "stale_quote"),
    ("duplicate of BUY 1 AAPL sent 1 s ago, inside duplicate_window_seconds 2", "duplicate"),
    ("something nobody foresaw", "other"),
])
def test_a_refusal_is_labelled_by_its_kind_never_its_text(reason: str, kind: str) -> None:
    assert refusal_kind(reason) == kind
