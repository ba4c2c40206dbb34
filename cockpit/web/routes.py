"""The dashboard's routes, added to the TCP listener's app by ``include_web``.

Pages are rendered on the server (Jinja2, autoescaped); each page's live part is re-rendered
about once a second and pushed over server-sent events (``/web/events``) only when it changed,
so a new fill shows without a reload. The four actions (halt, resume, flatten all, confirm
presence) go through the command handler's plan, shown in a confirm dialog, and then its
execute with that plan's fingerprint: the same path and audit as the CLI and the cockpit's
keys. The actor is decided here: ``web:<api.token_name>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse

from cockpit.web.auth import PageGate, same_origin, session_cookie
from cockpit.web.views import PAGES, page_data
from core.domain.commands import Command, CommandRefused, ConfirmPresence, Flatten, Halt, PlanChanged, Resume
from core.kernel.engine import Engine

HERE = Path(__file__).parent
STATIC = {"style.css": "text/css", "live.js": "text/javascript"}
PUSH_SECONDS = 1.0
STREAM_SECONDS = 300.0  # a stream ends after this; the browser's EventSource reconnects by itself
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
ACTIONS: dict[str, tuple[str, Callable[[str], Command]]] = {
    "halt": ("Halt trading", lambda who: Halt(who, "from the web dashboard")),
    "resume": ("Resume trading", lambda who: Resume(who, "from the web dashboard")),
    "flatten": ("Flatten all", lambda who: Flatten(who, "from the web dashboard", symbol=None)),
    "confirm": ("Confirm presence", lambda who: ConfirmPresence(who, "from the web dashboard")),
}

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _cash(value: object) -> str:
    """Money as a trader reads it on a page: cents and thousands (the exact figure is the API's)."""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


_env.filters["cash"] = _cash


def web_actor(token_name: str) -> str:
    """The recorded actor of every web action; ``token_name`` is config (``[A-Za-z0-9._-]``)."""
    return f"web:{token_name}"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")  # the guard bounds its size
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=20))


def _html(template: str, code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**context), status_code=code, headers=HEADERS)


def _live(page: str, context: dict[str, Any]) -> str:
    template = _env.get_template(f"{page}.html")
    return "".join(template.blocks["live"](template.new_context(context)))


def _event(html: str) -> str:
    return "event: update\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"


def include_web(app: FastAPI, engine: Engine, gate: PageGate, token_name: str,
                status: Callable[[Engine], dict[str, Any]]) -> None:
    """``status``: the control API's status() (what `cockpit status --json` prints)."""
    actor = web_actor(token_name)
    controls = engine.controls

    def common(request: Request) -> dict[str, Any]:
        headers = _headers(request)
        session = gate.session(headers)
        flash = None
        if session is not None:
            flash, session.flash = session.flash, None
        return {"csrf": session.csrf if session else "", "flash": flash, "actor": actor,
                "logged_in_by": "session" if session else "bearer token", "pages": PAGES}

    async def page(request: Request, name: str) -> Response:
        data = await page_data(engine, name, status)
        return _html(f"{name}.html", page=name, **common(request), **data)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/web/overview", status_code=303)

    @app.get("/login", include_in_schema=False)
    async def login_form() -> Response:
        return _html("login.html", message=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        problem = same_origin(_headers(request))
        form = await _form(request)
        if problem is None and not gate.token_matches(form.get("token", "")):
            problem = "wrong token"
        if problem is not None:
            return _html("login.html", code=401 if problem == "wrong token" else 403, message=problem)
        sid, _ = gate.open_session()
        response = RedirectResponse("/web/overview", status_code=303)
        response.headers["Set-Cookie"] = session_cookie(sid)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        refusal = gate.action_refusal(_headers(request), await _form(request))
        if refusal is not None:
            return _html("message.html", code=403, title="Refused", message=refusal, **common(request))
        gate.close_session(_headers(request))
        return RedirectResponse("/login", status_code=303)

    @app.get("/web/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404)
        return FileResponse(HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/web/events", include_in_schema=False)
    async def events(request: Request, page: str = "overview") -> Response:
        if page not in PAGES:
            return Response("no such page", status_code=404)
        context = common(request)

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            end = loop.time() + STREAM_SECONDS
            last = ""
            yield "retry: 2000\n\n"
            while not engine.stopping and loop.time() < end:
                html = _live(page, {**context, "page": page, **await page_data(engine, page, status)})
                yield _event(html) if html != last else ": still here\n\n"
                last = html
                await asyncio.sleep(PUSH_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/web/actions/{name}/plan", include_in_schema=False)
    async def action_plan(request: Request, name: str) -> Response:
        refusal = gate.action_refusal(_headers(request), await _form(request))
        if refusal is not None or name not in ACTIONS:
            return _html("message.html", code=403 if refusal else 404, title="Refused",
                         message=refusal or f"no action {name!r}", **common(request))
        title, make = ACTIONS[name]
        try:
            plan = await controls.plan(make(actor))
        except CommandRefused as exc:
            return _html("message.html", code=409, title=f"{title}: refused", message=str(exc), **common(request))
        return _html("confirm.html", name=name, title=title, plan=plan.as_dict(), **common(request))

    @app.post("/web/actions/{name}", include_in_schema=False)
    async def action_run(request: Request, name: str) -> Response:
        headers = _headers(request)
        form = await _form(request)
        refusal = gate.action_refusal(headers, form)
        if refusal is not None or name not in ACTIONS:
            return _html("message.html", code=403 if refusal else 404, title="Refused",
                         message=refusal or f"no action {name!r}", **common(request))
        title, make = ACTIONS[name]
        if not form.get("plan"):
            return _html("message.html", code=400, title=f"{title}: not run",
                         message="no plan was confirmed: use the button, read the plan, then confirm it",
                         **common(request))
        try:
            result = await controls.execute(make(actor), form["plan"])
        except PlanChanged as exc:
            return _html("confirm.html", code=409, name=name, title=title, plan=exc.plan.as_dict(),
                         changed=True, **common(request))
        except CommandRefused as exc:
            return _html("message.html", code=409, title=f"{title}: refused", message=str(exc), **common(request))
        session = gate.session(headers)
        if session is not None:
            session.flash = f"{title}: {result.message}"
        return RedirectResponse("/web/overview", status_code=303)

    def shows(name: str) -> Callable[[Request], Any]:
        async def show(request: Request) -> Response:
            return await page(request, name)
        return show

    for name in PAGES:
        app.get(f"/web/{name}", include_in_schema=False)(shows(name))


def _headers(request: Request) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in request.scope.get("headers") or []}
