"""The control API: the operator commands over HTTP, for the CLI and for scripts.

Served by uvicorn inside the engine's own loop (cockpit/control/server.py), so a request
runs between two engine batches and sees a consistent book. Every command goes through
``core.control.handler.Controls``, the same path as the cockpit's keys. Bad input is a 4xx whose
``detail`` names the problem; a refused command is a 409 with the reason.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.control.handler import CommandRefused, CommandResult, Controls
from core.kernel.engine import Engine

log = logging.getLogger("cockpit.api")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str = Field("api", max_length=100)
    reason: str | None = Field(None, max_length=500)


class FlattenBody(_Body):
    symbol: str | None = None  # None: everything


class StrategyBody(_Body):
    enabled: bool


class LimitBody(_Body):
    key: str
    value: str


class PositionBody(_Body):
    symbol: str
    qty: str
    avg_cost: str


class ResolveBody(_Body):
    action: str  # accept | adopt | flatten


class OrderBody(_Body):
    side: str
    symbol: str
    qty: str
    limit: str | None = None


def _result(result: CommandResult) -> dict[str, Any]:
    return {"ok": True, "message": result.message, **result.data}


def status(engine: Engine) -> dict[str, Any]:
    """What `cockpit status --json` prints."""
    snap = engine.snapshot(max_orders=0)
    dm = snap.deadman
    return {
        "trading_state": snap.trading_state,
        "trading_reason": snap.trading_reason,
        "mode": snap.mode,
        "broker": {"kind": snap.broker_kind, "connected": snap.broker_connected, "status": snap.broker_status},
        "hold": snap.hold,
        "breaks": engine.reconciler.views(),
        "last_reconcile": engine.reconciler.last.as_dict() if engine.reconciler.last is not None else None,
        "feeds": [{"name": snap.feed, "kind": engine.settings.feed.kind, "events": snap.events_processed,
                   "last_event_at": snap.last_event_at.isoformat() if snap.last_event_at else None,
                   "age_seconds": snap.feed_age}],
        "strategies": [{"name": n, "enabled": e} for n, e in snap.strategies],
        "symbols": sorted(engine.feed.symbols),
        "reduce_only_symbols": list(snap.reduce_only_symbols),
        "deadman": {"enabled": engine.settings.deadman.enabled, "phase": str(dm.phase) if dm else "off",
                    "armed": bool(dm and dm.armed), "seconds_left": dm.seconds_left if dm else None,
                    "action": engine.settings.deadman.action,
                    "interval_seconds": engine.settings.deadman.interval_seconds},
        "risk": engine.gate.limits_dict(),
        "account": {"equity": str(snap.equity), "cash": str(snap.cash), "day_pnl": str(snap.day_pnl),
                    "realized": str(snap.realized), "unrealized": str(snap.unrealized)},
        "positions": [{"symbol": p.symbol, "qty": str(p.qty), "avg_cost": str(p.avg_cost),
                       "last": None if p.last is None else str(p.last)} for p in snap.positions if p.qty != 0],
        "open_orders": len(engine.oms.open_orders) if engine.oms is not None else 0,
        "liquidation": snap.liquidation,
        "engine_time": snap.taken_at.isoformat(),
    }


def make_app(engine: Engine, token: str | None = None) -> FastAPI:
    """``token``: when set (the TCP listener), every request must carry it as a bearer token."""

    def authorize(request: Request) -> None:
        if token is None:
            return
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token")

    app = FastAPI(title="cockpit control", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(authorize)])
    controls: Controls = engine.controls

    @app.exception_handler(CommandRefused)
    async def _refused(_: Request, exc: CommandRefused) -> JSONResponse:
        return JSONResponse({"ok": False, "detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"ok": False, "detail": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("control API request failed")
        return JSONResponse({"ok": False, "detail": f"internal error in the engine: {type(exc).__name__}: {exc} "
                                                    "(traceback in the engine's log)"}, status_code=500)

    @app.get("/status")
    async def get_status() -> dict[str, Any]:
        return status(engine)

    @app.post("/halt")
    async def halt(body: _Body) -> dict[str, Any]:
        return _result(await controls.halt(actor=body.actor, reason=body.reason))

    @app.post("/resume")
    async def resume(body: _Body) -> dict[str, Any]:
        return _result(await controls.resume(actor=body.actor, reason=body.reason))

    @app.get("/cancel-all/preview")
    async def cancel_preview() -> dict[str, Any]:
        return {"cancel": controls.cancel_all_preview()}

    @app.post("/cancel-all")
    async def cancel_all(body: _Body) -> dict[str, Any]:
        return _result(await controls.cancel_all(actor=body.actor, reason=body.reason))

    @app.get("/flatten/preview")
    async def flatten_preview(symbol: str | None = None) -> dict[str, Any]:
        return controls.flatten_preview(symbol).as_dict()

    @app.post("/flatten")
    async def flatten(body: FlattenBody) -> dict[str, Any]:
        return _result(await controls.flatten(body.symbol, actor=body.actor, reason=body.reason))

    @app.get("/flatten/job")
    async def flatten_job() -> dict[str, Any]:
        job = controls.liquidation
        if job is None:
            raise HTTPException(404, "no flatten has run since the engine started")
        return job.summary()

    @app.get("/strategies")
    async def strategies() -> list[dict[str, Any]]:
        return controls.strategies()

    @app.post("/strategies/{name}")
    async def set_strategy(name: str, body: StrategyBody) -> dict[str, Any]:
        return _result(await controls.set_strategy(name, body.enabled, actor=body.actor, reason=body.reason))

    @app.get("/risk")
    async def risk() -> dict[str, str]:
        return controls.risk_limits()

    @app.post("/risk")
    async def set_limit(body: LimitBody) -> dict[str, Any]:
        return _result(await controls.set_limit(body.key, body.value, actor=body.actor, reason=body.reason))

    @app.post("/position")
    async def set_position(body: PositionBody) -> dict[str, Any]:
        return _result(await controls.set_position(body.symbol, body.qty, body.avg_cost, actor=body.actor,
                                                   reason=body.reason))

    @app.post("/orders")
    async def order(body: OrderBody) -> dict[str, Any]:
        return _result(await controls.manual_order(body.side, body.symbol, body.qty, body.limit, actor=body.actor,
                                                   reason=body.reason))

    @app.get("/breaks")
    async def breaks() -> dict[str, Any]:
        rec = engine.reconciler
        return {"breaks": rec.views(), "last_reconcile": rec.last.as_dict() if rec.last is not None else None}

    @app.post("/reconcile")
    async def reconcile(body: _Body) -> dict[str, Any]:
        return _result(await controls.reconcile(actor=body.actor))

    @app.post("/breaks/{symbol}/resolve")
    async def resolve(symbol: str, body: ResolveBody) -> dict[str, Any]:
        return _result(await controls.resolve_break(symbol, body.action, actor=body.actor, reason=body.reason))

    @app.post("/confirm")
    async def confirm(body: _Body) -> dict[str, Any]:
        return _result(await controls.confirm(actor=body.actor))

    return app
