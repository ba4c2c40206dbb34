"""The web dashboard without a browser: who may see a page, CSRF and origin on every action,
the actor the server records, and that the Unix socket's app serves no pages. A real engine
(three months replayed) and the control API's real app, called over ASGI."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest
import uvicorn

from cockpit.control.api import make_app
from cockpit.wiring import build_engine, db_path
from core.config import load_config
from tests.conftest import CONFIG

TOKEN = "t0ken-for-tests-only-123"
BASE = "http://127.0.0.1:8777"
SAME = {"Origin": BASE}
PAGES = ("overview", "positions", "orders", "fills", "alerts", "metrics", "reports")


@pytest.fixture
async def engine(tmp_path: Path, clean_env):
    settings = load_config(CONFIG, state_dir=tmp_path / "state",
                           overrides={"feed": {"speed": "max", "end": "2008-03-31"}, "deadman": {"enabled": False}})
    e = build_engine(settings)
    await e.start()
    assert await e.run() is True
    await e.store.flush()
    yield e
    await e.shutdown()


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False)


async def login(web: httpx.AsyncClient) -> str:
    """Log in through the form; the session's CSRF token from the overview's action forms."""
    answer = await web.post("/login", data={"token": TOKEN}, headers=SAME)
    assert answer.status_code == 303 and answer.headers["location"] == "/web/overview"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    page = await web.get("/web/overview")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_nothing_is_served_without_a_login(engine) -> None:
    async with client(make_app(engine, TOKEN, "nightly")) as web:
        for path in ("/", *(f"/web/{p}" for p in PAGES), "/web/events", "/web/static/live.js", "/web/nope"):
            answer = await web.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login", path
        assert (await web.post("/web/actions/halt", data={"plan": "x"})).status_code == 401
        assert (await web.get("/status")).status_code == 401  # the JSON API still wants the bearer token
        web.cookies.set("cockpit_session", "a-guessed-session-id")
        assert (await web.get("/web/overview")).status_code == 303
        assert (await web.get("/status")).status_code == 401
        assert (await web.get("/login")).status_code == 200
        assert (await web.get("/web/static/style.css")).status_code == 200
        wrong = await web.post("/login", data={"token": "not-the-token-at-all"}, headers=SAME)
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        foreign = await web.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


async def test_a_session_sees_every_page_but_not_the_json_api(engine) -> None:
    async with client(make_app(engine, TOKEN, "nightly")) as web:
        await login(web)
        for name in PAGES:
            page = await web.get(f"/web/{name}")
            assert page.status_code == 200 and f'data-page="{name}"' in page.text, name
            assert "Content-Security-Policy" in page.headers
        overview = (await web.get("/web/overview")).text
        assert "<svg" in overview and "ACTIVE" in overview and "<polyline" in overview
        assert "No fills yet" not in (await web.get("/web/fills")).text
        assert (await web.get("/status")).status_code == 401  # a cookie is not the bearer token


async def test_bearer_scripts_read_pages_and_the_socket_app_serves_none(engine) -> None:
    async with client(make_app(engine, TOKEN, "nightly")) as web:
        answer = await web.get("/web/positions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and "Positions" in answer.text
    async with client(make_app(engine)) as unix:  # the Unix socket's app: no token, no pages
        assert (await unix.get("/web/overview")).status_code == 404
        assert (await unix.get("/login")).status_code == 404
        assert (await unix.get("/status")).status_code == 200


async def test_an_action_needs_its_csrf_token_a_same_origin_and_a_plan(engine) -> None:
    async with client(make_app(engine, TOKEN, "nightly")) as web:
        csrf = await login(web)
        plan = await web.post("/web/actions/halt/plan", data={"csrf": csrf}, headers=SAME)
        assert plan.status_code == 200 and "<dialog" in plan.text
        fingerprint = re.search(r'name="plan" value="([0-9a-f]+)"', plan.text).group(1)
        for data, headers in (({"plan": fingerprint}, SAME),                         # no CSRF token
                              ({"plan": fingerprint, "csrf": "x" * 43}, SAME),       # a wrong one
                              ({"plan": fingerprint, "csrf": csrf}, {"Origin": "http://evil.example"}),
                              ({"plan": fingerprint, "csrf": csrf}, {})):            # neither Origin nor Referer
            refused = await web.post("/web/actions/halt", data=data, headers=headers)
            assert refused.status_code == 403, (data, headers)
        assert engine.read_model.snapshot(max_orders=0).trading_state == "ACTIVE"
        assert (await web.post("/web/actions/halt", data={"csrf": csrf}, headers=SAME)).status_code == 400
        done = await web.post("/web/actions/halt", data={"plan": fingerprint, "csrf": csrf},
                              headers={"Referer": f"{BASE}/web/overview"})
        assert done.status_code == 303
        assert engine.read_model.snapshot(max_orders=0).trading_state == "HALTED"
        assert "Halt trading:" in (await web.get("/web/overview")).text  # the outcome, shown once
        resumed = await web.post("/web/actions/resume/plan", data={"csrf": csrf}, headers=SAME)
        stale = re.search(r'name="plan" value="([0-9a-f]+)"', resumed.text).group(1)
        await web.post("/web/actions/halt/plan", data={"csrf": csrf}, headers=SAME)
        changed = await web.post("/web/actions/flatten", data={"plan": stale, "csrf": csrf}, headers=SAME)
        assert changed.status_code == 409 and "plan changed" in changed.text
    await engine.store.flush()
    with sqlite3.connect(db_path(engine.settings)) as conn:
        rows = conn.execute("SELECT actor, kind FROM audit WHERE kind LIKE 'operator.%'").fetchall()
    assert ("web:nightly", "operator.halt") in rows and all(actor == "web:nightly" for actor, _ in rows)


async def test_the_event_stream_pushes_the_live_part(engine) -> None:
    """Over real TCP (httpx's ASGI transport buffers a whole response, a stream never ends)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    server = uvicorn.Server(uvicorn.Config(make_app(engine, TOKEN, "nightly"), lifespan="off", log_config=None,
                                           timeout_graceful_shutdown=1))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as web:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with web.stream("GET", "/web/events?page=fills", headers=auth) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                seen = ""
                async for chunk in stream.aiter_text():
                    seen += chunk
                    if "event: update" in seen and "</table>" in seen:
                        break
            assert "data: " in seen and "data-exec=" in seen
            assert (await web.get("/web/events?page=nope", headers=auth)).status_code == 404
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_a_chunked_body_is_refused_before_it_is_read(engine) -> None:
    """Before: no Content-Length read as 0, so a chunked body of any size went through whole."""
    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    async with client(make_app(engine, TOKEN, "nightly")) as api:
        sent = await api.post("/halt/plan", content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert sent.status_code == 411 and "Content-Length" in sent.text


async def test_a_page_request_is_held_to_the_body_limit_like_the_api(engine) -> None:
    """Before: a page path skipped the guard's body-size check (only JSON paths had it)."""
    async with client(make_app(engine, TOKEN, "nightly")) as web:
        await login(web)
        big = {"token": "x" * (70 * 1024)}
        assert (await web.post("/login", data=big, headers=SAME)).status_code == 413
        assert (await web.post("/web/actions/halt", data=big, headers=SAME)).status_code == 413
