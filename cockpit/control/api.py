"""The control API: the operator commands over HTTP, for the CLI and for scripts.

Served by uvicorn inside the engine's own loop (cockpit/control/server.py), so a request
runs between two engine batches and sees a consistent book. Every command goes through
``core.control.handler.Controls``, the same path as the cockpit's keys. Bad input is a 4xx whose
``detail`` names the problem on one line; a refused command is a 409 with the reason.

Who sent a command is decided here, not by the client (cockpit/control/peer.py): the socket
peer's uid, or the TCP token's name, followed by the body's ``actor``, the client's free-text
label ("uid 1000 (alice) via socket: cli:alice@box"). On TCP every request, to any path, needs
the bearer token first: an unknown path without it is a 401, not a 404; the web dashboard's
paths (``/``, ``/login``, ``/logout``, ``/web/...``, TCP only: cockpit/web/) take a session
cookie instead, and without one redirect to the login page.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import MutableMapping
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from cockpit.control.api_docs import add_docs_page
from cockpit.control.peer import clean_label, principal, recorded_actor
from cockpit.control.routes_alerts import include_alert_routes
from cockpit.control.routes_metrics import metrics_router
from cockpit.control.routes_prometheus import prometheus_router
from cockpit.control.routes_read import read_router
from cockpit.control.status_model import AllocationOut, StatusOut
from cockpit.web import auth as web_auth
from cockpit.web.auth import PageGate
from cockpit.web.routes import include_web
from core.control.handler import CommandHandler
from core.domain.commands import (
    Backup,
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
    SetAllocation,
    SetLimit,
    SetStrategy,
)
from core.domain.serialize import dec, money
from core.kernel.engine import Engine

log = logging.getLogger("cockpit.api")


MAX_BODY = 64 * 1024  # bytes: every command fits in a fraction of this
MAX_DETAIL = 500


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The client's label, recorded after the server's principal (see cockpit/control/peer.py).
    actor: str = Field("api", min_length=1, max_length=100)
    reason: str | None = Field(None, max_length=500)
    plan: str | None = Field(None, max_length=64)  # the fingerprint of the plan that was confirmed

    @field_validator("actor")
    @classmethod
    def _label_not_blank(cls, value: str) -> str:
        if not clean_label(value):
            raise ValueError("the client's label must not be blank (who is asking)")
        return value

    def command(self, actor: str) -> Command:
        raise NotImplementedError


class HaltBody(_Body):
    def command(self, actor: str) -> Command:
        return Halt(actor, self.reason)


class ResumeBody(_Body):
    def command(self, actor: str) -> Command:
        return Resume(actor, self.reason)


class CancelAllBody(_Body):
    def command(self, actor: str) -> Command:
        return CancelAll(actor, self.reason)


class ConfirmBody(_Body):
    def command(self, actor: str) -> Command:
        return ConfirmPresence(actor, self.reason)


class ReconcileBody(_Body):
    def command(self, actor: str) -> Command:
        return Reconcile(actor, self.reason)


class BackupBody(_Body):
    def command(self, actor: str) -> Command:
        return Backup(actor, self.reason)


class FlattenBody(_Body):
    symbol: str | None = Field(None, max_length=16)  # None: everything

    def command(self, actor: str) -> Command:
        return Flatten(actor, self.reason, symbol=self.symbol)


class StrategyBody(_Body):
    name: str = Field("", max_length=100)
    enabled: bool

    def command(self, actor: str) -> Command:
        return SetStrategy(actor, self.reason, strategy=self.name, enabled=self.enabled)


class LimitBody(_Body):
    key: str = Field(max_length=100)
    value: str = Field(max_length=100)

    def command(self, actor: str) -> Command:
        return SetLimit(actor, self.reason, key=self.key, value=self.value)


class AllocationBody(_Body):
    strategy: str = Field(max_length=100)
    value: str = Field(max_length=100)  # money ("50000"), a percentage ("25%") or "none"

    def command(self, actor: str) -> Command:
        return SetAllocation(actor, self.reason, strategy=self.strategy, value=self.value)


class PositionBody(_Body):
    symbol: str = Field(max_length=16)
    qty: str = Field(max_length=40)
    avg_cost: str = Field(max_length=40)
    new_symbol: bool = False

    def command(self, actor: str) -> Command:
        return OverridePosition(actor, self.reason, symbol=self.symbol, qty=self.qty, avg_cost=self.avg_cost,
                                new_symbol=self.new_symbol)


class ResolveBody(_Body):
    symbol: str = Field("", max_length=16)
    action: str = Field(max_length=20)  # accept | adopt | flatten

    def command(self, actor: str) -> Command:
        return ResolveBreak(actor, self.reason, symbol=self.symbol, action=self.action)


class OrderBody(_Body):
    side: str = Field(max_length=10)
    symbol: str = Field(max_length=16)
    qty: str = Field(max_length=40)
    limit: str | None = Field(None, max_length=40)

    def command(self, actor: str) -> Command:
        return ManualOrder(actor, self.reason, side=self.side, symbol=self.symbol, qty=self.qty, limit=self.limit)


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """A reason fit for one line of a terminal: no control characters, bounded."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "detail": one_line(detail)}, status_code=status, headers=headers)


class _Guard:
    """Before any route: the bearer token (TCP) and the body's size. Pure ASGI, so an unknown
    path is refused like a known one."""

    def __init__(self, app: Any, token: str | None = None, pages: PageGate | None = None) -> None:
        self.app = app
        self.expected = None if token is None else f"Bearer {token}".encode()
        self.pages = pages  # the web dashboard's paths: a session cookie or the bearer token (cockpit/web/auth.py)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.lower(): v for k, v in scope.get("headers") or []}
            refusal: Any = None
            if self.pages is not None and web_auth.owns(scope["path"]):
                refusal = self.pages.refusal(scope, headers)
            elif self.expected is not None and not hmac.compare_digest(headers.get(b"authorization", b""),
                                                                       self.expected):
                refusal = _refuse(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
            if refusal is None:  # let in, pages included: the body's size next
                length = headers.get(b"content-length", b"0")
                if b"transfer-encoding" in headers:  # a chunked body has no length to check up front
                    refusal = _refuse(411, "send the request body with a Content-Length (no Transfer-Encoding)")
                elif not length.isdigit() or int(length) > MAX_BODY:
                    refusal = _refuse(413, f"the request body is over {MAX_BODY} bytes (or its length is unreadable)")
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _money(value: Decimal) -> str:
    """Money as exact text; a value too large to round to its places is shown as it is."""
    try:
        return money(value)
    except ArithmeticError:
        return dec(value)


def _result(result: CommandResult) -> dict[str, Any]:
    return {"ok": True, "message": result.message, **result.data}


def status(engine: Engine) -> dict[str, Any]:
    """What `cockpit status --json` prints (from the read model)."""
    model = engine.read_model
    snap = model.snapshot(max_orders=0)
    dm = snap.deadman
    settings = model.settings_summary()
    return {
        "run_state": model.run_state(),
        "preflight": model.preflight_view(),
        "trading_state": snap.trading_state,
        "trading_reason": snap.trading_reason,
        "mode": snap.mode,
        "broker": {"kind": snap.broker_kind, "connected": snap.broker_connected, "status": snap.broker_status},
        "hold": snap.hold,
        "feed_hold": snap.feed_hold,
        "breaks": model.breaks(),
        "last_reconcile": model.last_reconcile(),
        "feeds": [{**f, "events": snap.events_processed if f["active"] else None,
                   "last_event_at": snap.last_event_at.isoformat() if f["active"] and snap.last_event_at else None,
                   "age_seconds": snap.feed_age if f["active"] else None} for f in snap.feeds],
        "strategies": [{"name": n, "enabled": e,
                        "quarantined": sorted(sym for who, sym in snap.quarantined if who == n)}
                       for n, e in snap.strategies],
        "symbols": model.symbols(),
        "reduce_only_symbols": list(snap.reduce_only_symbols),
        "deadman": {"enabled": settings["deadman"]["enabled"], "phase": str(dm.phase) if dm else "off",
                    "armed": bool(dm and dm.armed), "seconds_left": dm.seconds_left if dm else None,
                    "action": settings["deadman"]["action"],
                    "interval_seconds": settings["deadman"]["interval_seconds"]},
        "risk": model.limits(),
        "allocation": model.allocation(),
        "account": {"equity": _money(snap.equity), "cash": _money(snap.cash), "day_pnl": _money(snap.day_pnl),
                    "realized": _money(snap.realized), "unrealized": _money(snap.unrealized)},
        "positions": [{"symbol": p.symbol, "qty": dec(p.qty), "avg_cost": _money(p.avg_cost),
                       "last": None if p.last is None else dec(p.last)} for p in snap.positions if p.qty != 0],
        "open_orders": model.open_orders,
        "liquidation": snap.liquidation,
        "engine_time": snap.taken_at.isoformat(),
    }


def make_app(engine: Engine, token: str | None = None, token_name: str = "api-token") -> FastAPI:
    """``token``: when set (the TCP listener), every request must carry it as a bearer token,
    and its commands are recorded as "token <token_name> via tcp: <label>". Without a token the
    principal is the socket peer's uid (``PeerCredProtocol``), or "in-process" when the app is
    called without a socket (cockpit/control/inprocess.py)."""
    # The OpenAPI page: /openapi.json and /docs (on TCP behind the token, like every path).
    app = FastAPI(title="cockpit control", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    add_docs_page(app)  # rendered here from the schema: FastAPI's own page needs a CDN
    pages = PageGate(token) if token is not None else None  # the web pages: on the TCP listener only
    app.add_middleware(_Guard, token=token, pages=pages)
    controls: CommandHandler = engine.controls
    server_side = token_name if token is not None else None

    @app.exception_handler(CommandRefused)
    async def _refused(_: Request, exc: CommandRefused) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "detail": one_line(str(exc))}
        if isinstance(exc, PlanChanged):
            body["plan"] = exc.plan.as_dict()
        return JSONResponse(body, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return _refuse(422, problems or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _refuse(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("control API request failed")
        return _refuse(500, f"internal error in the engine: {type(exc).__name__}: {exc} (traceback in the engine's log)")

    @app.get("/status", response_model=StatusOut)
    async def get_status() -> dict[str, Any]:
        return status(engine)

    app.include_router(metrics_router(engine))  # GET /metrics/performance, /reports/daily
    app.include_router(prometheus_router(engine))  # GET /metrics (Prometheus' text; a route, never a mount)
    app.include_router(read_router(engine))  # GET /positions, /orders, /fills, /pnl, /alerts

    def who(request: Request, body: _Body) -> str:
        return recorded_actor(principal(request.scope, server_side), body.actor)

    async def run(body: _Body, request: Request) -> dict[str, Any]:
        return _result(await controls.execute(body.command(who(request, body)), body.plan))

    async def plan(body: _Body, request: Request) -> dict[str, Any]:
        return (await controls.plan(body.command(who(request, body)))).as_dict()

    def command(path: str, body_type: type[_Body]) -> None:
        """POST path runs the command (with ``plan``: only if the plan still holds); POST
        path/plan answers what it would do now, for a confirm prompt."""
        async def execute(body: _Body, request: Request) -> dict[str, Any]:
            return await run(body, request)

        async def preview(body: _Body, request: Request) -> dict[str, Any]:
            return await plan(body, request)

        for endpoint in (execute, preview):  # FastAPI reads the body model from the annotation
            endpoint.__annotations__ = {"body": body_type, "request": Request, "return": dict[str, Any]}
        app.post(path)(execute)
        app.post(f"{path}/plan")(preview)

    for path, body_type in (("/halt", HaltBody), ("/resume", ResumeBody), ("/cancel-all", CancelAllBody),
                            ("/flatten", FlattenBody), ("/risk", LimitBody), ("/position", PositionBody),
                            ("/orders", OrderBody), ("/reconcile", ReconcileBody), ("/confirm", ConfirmBody),
                            ("/strategy", StrategyBody), ("/resolve", ResolveBody), ("/allocation", AllocationBody),
                            ("/backup", BackupBody)):
        command(path, body_type)

    @app.post("/strategies/{name}")
    async def set_strategy(name: str, body: StrategyBody, request: Request) -> dict[str, Any]:
        return await run(body.model_copy(update={"name": name}), request)

    @app.post("/breaks/{symbol}/resolve")
    async def resolve(symbol: str, body: ResolveBody, request: Request) -> dict[str, Any]:
        return await run(body.model_copy(update={"symbol": symbol}), request)

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

    @app.get("/allocation", response_model=AllocationOut)
    async def allocation() -> dict[str, Any]:
        return engine.read_model.allocation()

    @app.get("/breaks")
    async def breaks() -> dict[str, Any]:
        return {"breaks": engine.read_model.breaks(), "last_reconcile": engine.read_model.last_reconcile()}

    include_alert_routes(app, engine, lambda request, label: recorded_actor(principal(request.scope, server_side),
                                                                            label))
    if pages is not None:
        include_web(app, engine, pages, token_name, status)
    return app
