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

from core.control.handler import CommandHandler
from core.domain.commands import (
    CancelAll,
    Command,
    CommandRefused,
    CommandResult,
    ConfirmPresence,
    Flatten,
    Halt,
    ManualOrder,
    OverridePosition,
    PlanChanged,
    Reconcile,
    ResolveBreak,
    Resume,
    SetLimit,
    SetStrategy,
)
from core.domain.serialize import dec, money
from core.kernel.engine import Engine

log = logging.getLogger("cockpit.api")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str = Field("api", min_length=1, max_length=100)
    reason: str | None = Field(None, max_length=500)
    plan: str | None = Field(None, max_length=64)  # the fingerprint of the plan that was confirmed

    def command(self) -> Command:
        raise NotImplementedError


class HaltBody(_Body):
    def command(self) -> Command:
        return Halt(self.actor, self.reason)


class ResumeBody(_Body):
    def command(self) -> Command:
        return Resume(self.actor, self.reason)


class CancelAllBody(_Body):
    def command(self) -> Command:
        return CancelAll(self.actor, self.reason)


class ConfirmBody(_Body):
    def command(self) -> Command:
        return ConfirmPresence(self.actor, self.reason)


class ReconcileBody(_Body):
    def command(self) -> Command:
        return Reconcile(self.actor, self.reason)


class FlattenBody(_Body):
    symbol: str | None = Field(None, max_length=16)  # None: everything

    def command(self) -> Command:
        return Flatten(self.actor, self.reason, symbol=self.symbol)


class StrategyBody(_Body):
    name: str = Field("", max_length=100)
    enabled: bool

    def command(self) -> Command:
        return SetStrategy(self.actor, self.reason, strategy=self.name, enabled=self.enabled)


class LimitBody(_Body):
    key: str = Field(max_length=100)
    value: str = Field(max_length=100)

    def command(self) -> Command:
        return SetLimit(self.actor, self.reason, key=self.key, value=self.value)


class PositionBody(_Body):
    symbol: str = Field(max_length=16)
    qty: str = Field(max_length=40)
    avg_cost: str = Field(max_length=40)
    new_symbol: bool = False

    def command(self) -> Command:
        return OverridePosition(self.actor, self.reason, symbol=self.symbol, qty=self.qty, avg_cost=self.avg_cost,
                                new_symbol=self.new_symbol)


class ResolveBody(_Body):
    symbol: str = Field("", max_length=16)
    action: str = Field(max_length=20)  # accept | adopt | flatten

    def command(self) -> Command:
        return ResolveBreak(self.actor, self.reason, symbol=self.symbol, action=self.action)


class OrderBody(_Body):
    side: str = Field(max_length=10)
    symbol: str = Field(max_length=16)
    qty: str = Field(max_length=40)
    limit: str | None = Field(None, max_length=40)

    def command(self) -> Command:
        return ManualOrder(self.actor, self.reason, side=self.side, symbol=self.symbol, qty=self.qty, limit=self.limit)


def _result(result: CommandResult) -> dict[str, Any]:
    return {"ok": True, "message": result.message, **result.data}


def status(engine: Engine) -> dict[str, Any]:
    """What `cockpit status --json` prints (from the read model)."""
    model = engine.read_model
    snap = model.snapshot(max_orders=0)
    dm = snap.deadman
    settings = model.settings_summary()
    return {
        "trading_state": snap.trading_state,
        "trading_reason": snap.trading_reason,
        "mode": snap.mode,
        "broker": {"kind": snap.broker_kind, "connected": snap.broker_connected, "status": snap.broker_status},
        "hold": snap.hold,
        "breaks": model.breaks(),
        "last_reconcile": model.last_reconcile(),
        "feeds": [{"name": snap.feed, "kind": settings["feed_kind"], "events": snap.events_processed,
                   "last_event_at": snap.last_event_at.isoformat() if snap.last_event_at else None,
                   "age_seconds": snap.feed_age, "healthy": snap.feed_healthy}],
        "strategies": [{"name": n, "enabled": e} for n, e in snap.strategies],
        "symbols": model.symbols(),
        "reduce_only_symbols": list(snap.reduce_only_symbols),
        "deadman": {"enabled": settings["deadman"]["enabled"], "phase": str(dm.phase) if dm else "off",
                    "armed": bool(dm and dm.armed), "seconds_left": dm.seconds_left if dm else None,
                    "action": settings["deadman"]["action"],
                    "interval_seconds": settings["deadman"]["interval_seconds"]},
        "risk": model.limits(),
        "account": {"equity": money(snap.equity), "cash": money(snap.cash), "day_pnl": money(snap.day_pnl),
                    "realized": money(snap.realized), "unrealized": money(snap.unrealized)},
        "positions": [{"symbol": p.symbol, "qty": dec(p.qty), "avg_cost": money(p.avg_cost),
                       "last": None if p.last is None else dec(p.last)} for p in snap.positions if p.qty != 0],
        "open_orders": model.open_orders,
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
    controls: CommandHandler = engine.controls

    @app.exception_handler(CommandRefused)
    async def _refused(_: Request, exc: CommandRefused) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "detail": str(exc)}
        if isinstance(exc, PlanChanged):
            body["plan"] = exc.plan.as_dict()
        return JSONResponse(body, status_code=409)

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

    async def run(body: _Body) -> dict[str, Any]:
        return _result(await controls.execute(body.command(), body.plan))

    async def plan(body: _Body) -> dict[str, Any]:
        return (await controls.plan(body.command())).as_dict()

    def command(path: str, body_type: type[_Body]) -> None:
        """POST path runs the command (with ``plan``: only if the plan still holds); POST
        path/plan answers what it would do now, for a confirm prompt."""
        async def execute(body: _Body) -> dict[str, Any]:
            return await run(body)

        async def preview(body: _Body) -> dict[str, Any]:
            return await plan(body)

        for endpoint in (execute, preview):  # FastAPI reads the body model from the annotation
            endpoint.__annotations__ = {"body": body_type, "return": dict[str, Any]}
        app.post(path)(execute)
        app.post(f"{path}/plan")(preview)

    for path, body_type in (("/halt", HaltBody), ("/resume", ResumeBody), ("/cancel-all", CancelAllBody),
                            ("/flatten", FlattenBody), ("/risk", LimitBody), ("/position", PositionBody),
                            ("/orders", OrderBody), ("/reconcile", ReconcileBody), ("/confirm", ConfirmBody),
                            ("/strategy", StrategyBody), ("/resolve", ResolveBody)):
        command(path, body_type)

    @app.post("/strategies/{name}")
    async def set_strategy(name: str, body: StrategyBody) -> dict[str, Any]:
        return await run(body.model_copy(update={"name": name}))

    @app.post("/breaks/{symbol}/resolve")
    async def resolve(symbol: str, body: ResolveBody) -> dict[str, Any]:
        return await run(body.model_copy(update={"symbol": symbol}))

    @app.get("/cancel-all/preview")
    async def cancel_preview() -> dict[str, Any]:
        return {"cancel": controls.cancel_all_preview()}

    @app.get("/flatten/preview")
    async def flatten_preview(symbol: str | None = None) -> dict[str, Any]:
        return controls.flatten_plan(symbol).as_dict()

    @app.get("/flatten/job")
    async def flatten_job() -> dict[str, Any]:
        job = engine.read_model.liquidation()
        if job is None:
            raise HTTPException(404, "no flatten has run since the engine started")
        return job

    @app.get("/strategies")
    async def strategies() -> list[dict[str, Any]]:
        return engine.read_model.strategies()

    @app.get("/risk")
    async def risk() -> dict[str, str]:
        return engine.read_model.limits()

    @app.get("/breaks")
    async def breaks() -> dict[str, Any]:
        return {"breaks": engine.read_model.breaks(), "last_reconcile": engine.read_model.last_reconcile()}

    return app
