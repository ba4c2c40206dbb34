"""Read routes for performance and the daily reports: GET /metrics/performance, GET /reports/daily.

(/metrics itself is Prometheus'.) They answer what ``cockpit metrics --json`` and
``cockpit report daily --json`` print: the same readers over the same store, read-only on a
connection of their own in a worker thread, so a request never holds the engine's loop while
SQLite reads. What they see is what the engine has committed (it flushes every
``engine.flush_interval_ms``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict

from cockpit import readers
from cockpit.capital_reader import allocation_args
from cockpit.wiring import db_path
from core.kernel.engine import Engine


class PerformanceOut(BaseModel):
    """The account's (or ``scope``'s) figures and the same per strategy; every other figure of
    core/analytics/performance.py comes along (ratios as numbers, money as decimal strings)."""

    model_config = ConfigDict(extra="allow")
    scope: str
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    win_rate: float | None
    profit_factor: float | None
    trades: int
    strategies: dict[str, dict[str, Any]]


class DailyReportOut(BaseModel):
    """One session's summary (core/domain/daily_summary.py), every field of it."""

    model_config = ConfigDict(extra="allow")
    date: str
    realized: str
    unrealized: str
    commissions: str
    net: str
    strategies: list[dict[str, Any]]


def metrics_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    settings = engine.settings
    section = settings.engine  # [engine]: the market's zone says which session a fill is in
    market_tz = section.market_tz

    def read(what: str, **kwargs: Any) -> Any:
        def ignore(_: str) -> None:
            return None

        try:
            conn = readers.connect_readonly(db_path(settings))
        except readers.NoState as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            with conn:
                if what == "performance":
                    return readers.performance(conn, warn=ignore, risk_free_rate=settings.metrics.risk_free_rate,
                                               market_tz=market_tz, **allocation_args(settings), **kwargs)
                return readers.daily_reports(conn, warn=ignore, **kwargs)
        except readers.UnknownStrategy as exc:
            raise HTTPException(404, str(exc)) from None
        except sqlite3.Error as exc:
            raise HTTPException(503, f"the store cannot be read right now: {exc}") from None
        finally:
            conn.close()

    @router.get("/metrics/performance", response_model=PerformanceOut)
    async def performance(strategy: Annotated[str | None, Query(min_length=1, max_length=64)] = None) -> Any:
        return await asyncio.to_thread(read, "performance", strategy=strategy)

    @router.get("/reports/daily", response_model=list[DailyReportOut])
    async def daily(day: Annotated[date | None, Query(alias="date")] = None) -> Any:
        return await asyncio.to_thread(read, "daily", day=day.isoformat() if day else None)

    return router
