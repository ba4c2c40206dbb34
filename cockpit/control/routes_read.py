"""Read routes with response models: GET /positions, /pnl (the read model: live marks), and GET
/orders, /fills, /alerts (history: the store, through cockpit/readers.py, the readers the CLI's
``--json`` uses, so both print the same rows).

History is read on a read-only connection of its own in a worker thread (as routes_metrics.py
does), so a request never holds the engine's loop while SQLite reads; it sees what the engine
has committed (it flushes every ``engine.flush_interval_ms``). Money and quantities are exact
decimal strings; ``None`` where the store holds no value (or an unreadable one: ``?``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict

from cockpit import readers
from cockpit.wiring import db_path
from core.domain.serialize import dec, money
from core.kernel.engine import Engine

MAX_LIMIT = 10_000


class PositionOut(BaseModel):
    symbol: str
    qty: str
    avg_cost: str
    last: str | None
    market_value: str
    unrealized_pnl: str
    unrealized_pct: str | None
    realized_pnl: str
    realized_today: str


class PnlOut(BaseModel):
    equity: str
    cash: str
    realized: str
    unrealized: str
    commissions: str
    net: str
    day_pnl: str
    max_drawdown: str
    engine_time: str


class OrderOut(BaseModel):
    client_order_id: str
    strategy: str | None
    symbol: str | None
    side: str | None
    qty: str | None
    order_type: str | None
    tif: str | None
    limit_price: str | None
    status: str | None
    filled_qty: str | None
    avg_fill_price: str | None
    broker_order_id: str | None
    reason: str | None
    created_at: str | None
    updated_at: str | None


class FillOut(BaseModel):
    exec_id: str
    client_order_id: str | None
    strategy: str | None
    symbol: str | None
    side: str | None
    qty: str | None
    price: str | None
    commission: str | None
    realized_pnl: str | None
    time: str | None


class DeliveryOut(BaseModel):
    sink: str | None
    status: str | None
    tries: int | None
    reason: str | None
    updated_at: str | None


class AlertOut(BaseModel):
    id: str
    at: str | None
    kind: str | None
    severity: str | None
    title: str | None
    text: str | None
    count: int | None
    resolved: bool | None
    deliveries: list[DeliveryOut]


class UndeliveredOut(BaseModel):
    """An alert a sink never delivered (kept in the store: ``cockpit alerts`` lists it too)."""

    id: str
    at: str | None
    kind: str | None
    severity: str | None
    title: str | None
    text: str | None
    count: int | None
    resolved: bool | None
    sink: str | None
    tries: int | None
    reason: str | None
    given_up_at: str | None


class SinkTestOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    sink: str
    last_status: str | None
    last_reason: str | None
    last_at: str | None
    last_delivered_at: str | None


class AlertsOut(BaseModel):
    recent: list[AlertOut]
    undelivered: list[UndeliveredOut]
    tests: list[SinkTestOut]


def _money(value: Decimal) -> str:
    try:
        return money(value)
    except ArithmeticError:  # too large to round to cents: shown as it is
        return dec(value)


def read_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    settings = engine.settings
    model = engine.read_model

    def stored(reader: Callable[..., Any], **kwargs: Any) -> Any:
        def ignore(_: str) -> None:
            return None

        try:
            conn = readers.connect_readonly(db_path(settings))
        except readers.NoState as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            with conn:
                return reader(conn, warn=ignore, **kwargs)
        except sqlite3.Error as exc:
            raise HTTPException(503, f"the store cannot be read right now: {exc}") from None
        finally:
            conn.close()

    def ready() -> None:
        if not model.ready:
            raise HTTPException(503, "the engine is still starting: its book is not loaded yet")

    @router.get("/positions", response_model=list[PositionOut])
    async def positions() -> Any:
        """Open positions as the engine holds them now (live marks)."""
        ready()
        return [{"symbol": p.symbol, "qty": dec(p.qty), "avg_cost": _money(p.avg_cost),
                 "last": None if p.last is None else dec(p.last), "market_value": _money(p.market_value),
                 "unrealized_pnl": _money(p.unrealized_pnl),
                 "unrealized_pct": None if p.unrealized_pct is None else dec(round(p.unrealized_pct, 4)),
                 "realized_pnl": _money(p.realized_pnl), "realized_today": _money(p.realized_today)}
                for p in model.snapshot(max_orders=0).positions if p.qty != 0]

    @router.get("/pnl", response_model=PnlOut)
    async def pnl() -> Any:
        """The account now: equity, cash, P&L (net of commissions), the day's and the drawdown."""
        ready()
        s = model.snapshot(max_orders=0)
        return {"equity": _money(s.equity), "cash": _money(s.cash), "realized": _money(s.realized),
                "unrealized": _money(s.unrealized), "commissions": _money(s.commissions), "net": _money(s.net),
                "day_pnl": _money(s.day_pnl), "max_drawdown": _money(s.max_drawdown),
                "engine_time": s.taken_at.isoformat()}

    @router.get("/orders", response_model=list[OrderOut])
    async def orders(open: Annotated[bool, Query(description="only working orders")] = False,
                     limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> Any:
        """Orders, newest first (this run's and earlier runs'), as committed to the store."""
        return await asyncio.to_thread(stored, readers.orders, only_open=open, limit=limit)

    @router.get("/fills", response_model=list[FillOut])
    async def fills(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> Any:
        """The last ``limit`` fills, oldest first (as `cockpit fills` prints them)."""
        return await asyncio.to_thread(stored, readers.fills, limit=limit)

    @router.get("/alerts", response_model=AlertsOut)
    async def alerts(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> Any:
        """The newest alerts with their deliveries, every undelivered one, each sink's last test."""
        return await asyncio.to_thread(stored, readers.alerts, limit=limit)

    return router
