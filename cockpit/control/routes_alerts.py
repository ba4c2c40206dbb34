"""The control API's alert routes: ``POST /alerts/test`` sends a test alert through the running
engine's sinks (``cockpit alerts test`` with an engine), one attempt each, recorded in the store
(the engine's next flush, within ``engine.flush_interval_ms``, commits it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cockpit.control.peer import clean_label
from core.kernel.engine import Engine


class AlertTestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str = Field("api", min_length=1, max_length=100)
    sink: str | None = Field(None, min_length=1, max_length=32)

    @field_validator("actor")
    @classmethod
    def _label_not_blank(cls, value: str) -> str:
        if not clean_label(value):
            raise ValueError("the client's label must not be blank (who is asking)")
        return value


class ProbeOut(BaseModel):
    sink: str
    delivered: bool
    reason: str | None


class AlertTestOut(BaseModel):
    results: list[ProbeOut]


def include_alert_routes(app: FastAPI, engine: Engine, who: Callable[[Request, str], str]) -> None:
    """``who(request, label)``: the recorded actor, as the command routes record it."""
    router = engine.alerts

    @app.post("/alerts/test", response_model=AlertTestOut)
    async def alerts_test(body: AlertTestBody, request: Request) -> dict[str, Any]:
        names = list(router.lanes)
        if body.sink is not None and body.sink not in names:
            raise HTTPException(404, f"no alert sink {clean_label(body.sink)[:32]!r} in this engine "
                                     f"(configured: {', '.join(names) or 'none'}; a sink with no settings is off)")
        results = await router.send_test(body.sink, origin=who(request, body.actor))
        return {"results": [r.as_dict() for r in results]}
