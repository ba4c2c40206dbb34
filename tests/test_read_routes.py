"""The control API's read routes over the in-process API against a real engine after a short
replay: positions and P&L agree with the read model, orders and fills with the store, alerts
with what the router recorded; bad queries are 422 with one line; the OpenAPI page answers and
lists every route (on TCP only with the token)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from cockpit.control.inprocess import InProcessApi
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG

READ_ROUTES = ("/positions", "/orders", "/fills", "/pnl", "/alerts")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    """One engine for the module: a replay to the end of March 2008, flushed, still open."""
    loop = asyncio.new_event_loop()
    engine = build_engine(load_config(CONFIG, state_dir=tmp_path_factory.mktemp("read") / "state", overrides={
        "feed": {"speed": "max", "end": "2008-03-31"}, "deadman": {"enabled": False}}))
    loop.run_until_complete(engine.start())
    loop.run_until_complete(engine.run())
    loop.run_until_complete(engine.store.flush())
    try:
        yield loop, engine
    finally:
        loop.run_until_complete(engine.shutdown())
        loop.close()


def get(replayed: tuple[asyncio.AbstractEventLoop, Any], path: str, token: str | None = None,
        headers: dict[str, str] | None = None) -> Any:
    loop, engine = replayed
    return loop.run_until_complete(InProcessApi(engine, token=token).request("GET", path, headers=headers))


def test_positions_and_pnl_are_the_read_models(replayed) -> None:
    loop, engine = replayed

    async def snapshot() -> Any:  # the read model times the feed on the running loop
        return engine.read_model.snapshot(max_orders=0)

    snap = loop.run_until_complete(snapshot())
    reply = get(replayed, "/positions")
    assert reply.status == 200
    held = {p.symbol: p for p in snap.positions if p.qty != 0}
    assert held and {p["symbol"]: Decimal(p["qty"]) for p in reply.body} == {s: p.qty for s, p in held.items()}
    assert all(abs(Decimal(p["avg_cost"]) - held[p["symbol"]].avg_cost) < Decimal("1e-8") for p in reply.body)
    pnl = get(replayed, "/pnl")
    assert pnl.status == 200 and abs(Decimal(pnl.body["equity"]) - snap.equity) < Decimal("1e-8")
    assert abs(Decimal(pnl.body["net"]) - snap.net) < Decimal("1e-8") and set(pnl.body) >= {"cash", "day_pnl", "max_drawdown"}


def test_orders_and_fills_are_the_stores(replayed) -> None:
    loop, engine = replayed
    stored = loop.run_until_complete(engine.store.fetchall("SELECT exec_id FROM fills ORDER BY seq"))
    fills = get(replayed, "/fills?limit=10000")
    assert fills.status == 200 and [f["exec_id"] for f in fills.body] == [r["exec_id"] for r in stored]
    last_two = get(replayed, "/fills?limit=2")
    assert [f["exec_id"] for f in last_two.body] == [r["exec_id"] for r in stored[-2:]]
    count = loop.run_until_complete(engine.store.fetchall("SELECT count(*) AS n FROM orders"))[0]["n"]
    orders = get(replayed, "/orders?limit=10000")
    assert orders.status == 200 and len(orders.body) == count > 3
    assert len(get(replayed, "/orders?limit=3").body) == 3
    working = get(replayed, "/orders?open=true")
    assert working.status == 200 and all(o["status"] not in ("FILLED", "CANCELLED", "REJECTED") for o in working.body)
    assert len(working.body) == engine.read_model.open_orders


def test_alerts_lists_recent_and_undelivered(replayed) -> None:
    reply = get(replayed, "/alerts?limit=5")
    assert reply.status == 200 and set(reply.body) == {"recent", "undelivered", "tests"}
    assert 0 < len(reply.body["recent"]) <= 5  # the engine's start, its fills: at least one alert
    first = reply.body["recent"][0]
    assert first["kind"] and first["severity"] and isinstance(first["deliveries"], list)


@pytest.mark.parametrize("path", ["/orders?limit=0", "/orders?limit=10001", "/orders?limit=x", "/orders?open=maybe",
                                  "/fills?limit=-1", "/fills?limit=" + "9" * 40, "/alerts?limit=0",
                                  "/alerts?limit=1.5"])
def test_a_bad_query_is_a_422_with_one_line(replayed, path: str) -> None:
    reply = get(replayed, path)
    assert reply.status == 422, reply.body
    assert isinstance(reply.detail, str) and reply.detail.strip() and "\n" not in reply.detail
    assert reply.detail.split(":")[0] in ("limit", "open"), reply.detail  # it names the parameter


def test_the_openapi_page_lists_every_read_route_and_is_behind_the_token(replayed) -> None:
    schema = get(replayed, "/openapi.json")
    assert schema.status == 200
    paths = schema.body["paths"]
    assert all("get" in paths[p] for p in (*READ_ROUTES, "/metrics", "/metrics/performance", "/status"))
    assert "200" in paths["/positions"]["get"]["responses"]
    docs = get(replayed, "/docs")
    assert docs.status == 200
    page = docs.raw.decode()
    assert "<code>/positions</code>" in page and "<code>/halt</code>" in page and "/openapi.json" in page
    assert "<script" not in page and "cdn" not in page.lower()  # no CDN, no script: it works offline
    assert get(replayed, "/openapi.json", token="tok-for-tests-0123").status == 401
    assert get(replayed, "/docs", token="tok-for-tests-0123").status == 401
    ok = get(replayed, "/openapi.json", token="tok-for-tests-0123",
             headers={"Authorization": "Bearer tok-for-tests-0123"})
    assert ok.status == 200
