"""The control API's ASGI app, built on its first request.

Importing FastAPI and building the app (pydantic models, every route's schema) costs about
half a second; a run nobody asks anything (a `cockpit --no-ui --speed max` replay) never pays
it, yet the socket is listening from the start and the first request is answered by the same
app ``make_app`` builds. The build runs in a worker thread, so the engine's loop keeps
trading while it happens; concurrent first requests wait for the one build. ``make_app``
only reads the engine's handles (controls, read model, settings, alerts) into its routes'
closures, so building it off the loop thread changes no state.

A build that fails is logged once with its traceback, and every request is then answered
500 with the reason, in the control API's own error shape: the engine keeps trading, and the
operator sees why the API does not answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("cockpit.api")


class LazyApp:
    """An ASGI app that is ``build()`` once, when the first request arrives."""

    def __init__(self, build: Callable[[], App]) -> None:
        self._build = build
        self._app: App | None = None
        self._building: asyncio.Future[App] | None = None
        self._broken: bytes | None = None  # the 500 body, once the build has failed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            app = await self._ready()
        if app is None:
            await self._refuse(scope, send)
            return
        await app(scope, receive, send)

    async def _ready(self) -> App | None:
        if self._broken is not None:
            return None
        if self._building is None:
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build))
        try:
            # shielded: a client that hangs up while it waits never cancels the build the others wait for
            app = await asyncio.shield(self._building)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._broken is None:
                log.exception("the control API could not be built; every request is answered 500")
                detail = (f"the control API could not be built: {type(exc).__name__}: {exc} "
                          "(traceback in the engine's log)")
                self._broken = json.dumps({"ok": False, "detail": detail}).encode()
            return None
        self._app = app
        return app

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["type"] != "http" or self._broken is None:
            return
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self._broken)).encode())]})
        await send({"type": "http.response.body", "body": self._broken})
