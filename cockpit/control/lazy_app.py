"""The control API's ASGI app, built on its first request.

Importing FastAPI and building the app (pydantic models, every route's schema) costs about
half a second; a run nobody asks anything (a `cockpit --no-ui --speed max` replay) never pays
it, yet the socket is listening from the start and the first request is answered by the same
app ``make_app`` builds. The build runs in a worker thread, so the engine's loop keeps
trading while it happens; concurrent first requests wait for the one build.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyApp:
    """An ASGI app that is ``build()`` once, when the first request arrives."""

    def __init__(self, build: Callable[[], App]) -> None:
        self._build = build
        self._app: App | None = None
        self._building: asyncio.Future[App] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            app = await self._ready()
        await app(scope, receive, send)

    async def _ready(self) -> App:
        if self._building is None:
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build))
        # shielded: a client that hangs up while it waits never cancels the build the others wait for
        app = await asyncio.shield(self._building)
        self._app = app
        return app
