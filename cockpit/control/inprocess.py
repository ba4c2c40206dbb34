"""The control API called in-process: no socket, no HTTP client, one ASGI call per request.

For tests and long input campaigns (bench/chaos_inputs.py) that send hundreds of thousands
of requests to a real engine. The app is the one the sockets serve (``make_app``), so
routing, validation, the bearer check and the error handlers are the real ones; only the
transport is skipped (about 0.2 ms a request). Build the engine once, start it, then call::

    from cockpit.control.inprocess import InProcessApi
    from cockpit.wiring import build_engine
    from core.config import load_config

    engine = build_engine(load_config(Path("config.toml"), state_dir=tmp / "state",
                                      overrides={"feed": {"speed": "max", "end": "2008-03-31"}}))
    await engine.start()
    await engine.run()                      # optional: prices for every symbol
    api = InProcessApi(engine)              # peer={"uid": 1000, ...}: as if over the Unix socket
    reply = await api.request("POST", "/halt", json={"actor": "chaos"})
    reply.status, reply.body                # 200, {"ok": True, ...}
    await engine.shutdown()

A request the app could not answer (an exception escaping every handler) comes back as
status 500 with the exception's text, never as a raise, so a campaign counts it and goes on.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from cockpit.control.api import make_app
from cockpit.control.peer import PEER_KEY
from core.kernel.engine import Engine


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any  # the decoded JSON, or the raw text when the answer is not JSON
    raw: bytes

    @property
    def detail(self) -> str | None:
        return self.body.get("detail") if isinstance(self.body, dict) else None


class InProcessApi:
    """``make_app(engine)`` and a minimal ASGI caller. ``peer``: the credentials the Unix
    listener would have read (``{"uid": 0, "gid": 0, "pid": 1}``); ``token``: act as the TCP
    listener (requests must then send ``Authorization: Bearer <token>``)."""

    def __init__(self, engine: Engine, *, peer: Mapping[str, Any] | None = None, token: str | None = None,
                 token_name: str = "api-token") -> None:
        self.app = make_app(engine, token, token_name)
        self.peer = dict(peer) if peer is not None else None

    async def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                      params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> Reply:
        """One request. ``path`` is sent as given (quote path parameters with ``quote_path``);
        ``json`` is encoded as the body unless ``content`` gives the raw bytes."""
        body = content if content is not None else b"" if json is None else jsonlib.dumps(json).encode()
        sent = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if body:
            sent += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        target, _, query = path.partition("?")
        query = "&".join(q for q in (query, urlencode(params or {})) if q)
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method.upper(), "scheme": "http", "path": unquote(target),
            "raw_path": target.encode("utf-8", "surrogateescape"), "root_path": "",
            "query_string": query.encode("utf-8", "surrogateescape"), "headers": sent, "client": None,
            "server": ("cockpit", None), "state": {},
        }
        if self.peer is not None:
            scope["extensions"] = {PEER_KEY: self.peer}
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # Starlette re-raises after its 500 answer: the answer is what counts
            if not status:
                return Reply(500, {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}, b"")
        raw = b"".join(chunks)
        try:
            decoded: Any = jsonlib.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", "replace")
        return Reply(status, decoded, raw)


def quote_path(segment: str) -> str:
    """A path parameter as it travels in a URL (``/strategies/{name}``)."""
    return quote(segment, safe="")
