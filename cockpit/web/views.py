"""What each page shows: the read model (status, snapshot) and the store read-only.

The store is read on a connection of its own in a worker thread (as the metrics routes do), so
a page never holds the engine's loop while SQLite reads; it shows what the engine has committed
(every ``engine.flush_interval_ms``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from cockpit import readers
from cockpit.web.svg import equity_svg
from cockpit.wiring import db_path
from core.domain.serialize import dec, money
from core.kernel.engine import Engine

PAGES = ("overview", "positions", "orders", "fills", "alerts", "metrics", "reports")
RECENT_FILLS = 100


def _store(engine: Engine, what: Callable[[sqlite3.Connection], Any], empty: Any) -> Any:
    try:
        conn = readers.connect_readonly(db_path(engine.settings))
    except readers.NoState:
        return empty
    try:
        with conn:
            return what(conn)
    except (sqlite3.Error, readers.UnknownStrategy):
        return empty
    finally:
        conn.close()


def _quiet(_: str) -> None:
    return None


async def page_data(engine: Engine, page: str, status: Callable[[Engine], dict[str, Any]]) -> dict[str, Any]:
    """Everything the page's template needs (``status`` is the control API's status())."""
    data: dict[str, Any] = {"status": status(engine)}
    model = engine.read_model
    if page == "overview":
        snap = model.snapshot(max_orders=0)
        data["curve"] = equity_svg(snap.equity_curve)
        data["max_drawdown"] = money(snap.max_drawdown)
        data["fills"] = await asyncio.to_thread(
            _store, engine, lambda c: readers.fills(c, limit=8, warn=_quiet), [])
    elif page == "positions":
        snap = model.snapshot(max_orders=0)
        data["positions"] = [{"symbol": p.symbol, "qty": dec(p.qty), "avg_cost": money(p.avg_cost),
                              "last": "" if p.last is None else dec(p.last), "market_value": money(p.market_value),
                              "unrealized": money(p.unrealized_pnl), "realized": money(p.realized_pnl),
                              "realized_today": money(p.realized_today)} for p in snap.positions]
    elif page == "orders":
        snap = model.snapshot(max_orders=100)
        data["orders"] = [{"id": o.client_order_id, "strategy": o.strategy, "symbol": o.symbol, "side": o.side,
                           "qty": dec(o.qty), "filled": dec(o.filled_qty), "type": o.order_type,
                           "limit": "" if o.limit_price is None else dec(o.limit_price), "status": str(o.status),
                           "created": f"{o.created_at:%Y-%m-%d %H:%M:%S}", "reason": o.reason or ""}
                          for o in snap.orders]
    elif page == "fills":
        fills = await asyncio.to_thread(_store, engine, lambda c: readers.fills(c, limit=RECENT_FILLS, warn=_quiet), [])
        data["fills"] = list(reversed(fills))  # newest first
    elif page == "alerts":
        data["alerts"] = await asyncio.to_thread(
            _store, engine, lambda c: readers.alerts(c, limit=100, warn=_quiet),
            {"recent": [], "undelivered": [], "tests": []})
    elif page == "metrics":
        s = engine.settings
        section = s.engine  # the [engine] settings (not the engine object's own attribute)
        data["metrics"] = await asyncio.to_thread(_store, engine, lambda c: readers.performance(
            c, risk_free_rate=s.metrics.risk_free_rate, market_tz=section.market_tz, warn=_quiet), None)
    elif page == "reports":
        reports = await asyncio.to_thread(_store, engine, lambda c: readers.daily_reports(c, warn=_quiet), [])
        data["reports"] = list(reversed(reports))  # newest first
    return data
