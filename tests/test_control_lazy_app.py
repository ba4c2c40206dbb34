"""The control API's app is built on its first request (cockpit/control/lazy_app.py).

Requests go through httpx's ASGI transport, which calls the app as uvicorn does. A build that
fails must answer every request with the reason, never a hang or a bare connection reset; and
concurrent first requests must share one build.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from cockpit.control.lazy_app import App, LazyApp, Receive, Scope, Send


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"built"})


def _client(app: LazyApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cockpit")


async def test_concurrent_first_requests_share_one_build_made_off_the_loop_thread() -> None:
    builds: list[str] = []
    release = threading.Event()

    def build() -> App:
        builds.append(threading.current_thread().name)
        release.wait(10)
        return _ok

    app = LazyApp(build)
    async with _client(app) as client:
        first = [asyncio.ensure_future(client.get("/status")) for _ in range(5)]
        while not builds:  # the build has started in its thread; the loop is free meanwhile
            await asyncio.sleep(0)
        release.set()
        answers = await asyncio.gather(*first)
        later = await client.get("/status")
    assert [a.text for a in answers] == ["built"] * 5 and later.text == "built"
    assert len(builds) == 1 and builds[0] != threading.main_thread().name


async def test_a_failed_build_answers_every_request_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def build() -> Any:
        calls.append(1)
        raise ImportError("No module named 'fastapi'")

    app = LazyApp(build)
    async with _client(app) as client:
        answers = [await client.get(path) for path in ("/status", "/positions", "/metrics")]
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json() == {"ok": False, "detail": "the control API could not be built: ImportError: "
                                 "No module named 'fastapi' (traceback in the engine's log)"}
    assert len(calls) == 1  # not rebuilt per request
    logged = [r for r in caplog.records if "could not be built" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
