"""Who may see a page: a browser session made once from the token, or the bearer token itself.

The session cookie holds a random id kept in memory here (never the token): HTTP-only,
SameSite=Strict, gone when the engine stops. Each session has its own CSRF token, sent back in
a hidden field of every action's form and compared with ``hmac.compare_digest``; an action
also needs an Origin (or Referer) of this very host. A request with the bearer token carries no
ambient credential a foreign page could borrow, so it needs neither.

``PageGate.refusal`` runs in the control API's guard (cockpit/control/api.py) before any route:
a page path without a login is refused there, like a JSON path without the token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse, RedirectResponse, Response

COOKIE = "cockpit_session"
MAX_SESSIONS = 64  # one operator, a few browsers: the oldest goes first
SESSION_SECONDS = 12 * 3600
PUBLIC = frozenset({"/login", "/web/static/style.css"})


def owns(path: str) -> bool:
    """The paths the web dashboard serves (every other path is the JSON API's)."""
    return path in ("/", "/login", "/logout") or path.startswith("/web/")


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: float = field(default_factory=time.monotonic)
    flash: str | None = None  # the outcome of the last action, shown once


def cookies(headers: Mapping[bytes, bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name and name not in out:
            out[name] = value
    return out


class PageGate:
    def __init__(self, token: str) -> None:
        self._bearer = f"Bearer {token}".encode()
        self._token = token.encode()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    # ---- logging in -------------------------------------------------------------------------

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self._token)

    def open_session(self) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = session = Session()
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return sid, session

    def close_session(self, headers: Mapping[bytes, bytes]) -> None:
        self._sessions.pop(cookies(headers).get(COOKIE, ""), None)

    # ---- who is asking ----------------------------------------------------------------------

    def has_bearer(self, headers: Mapping[bytes, bytes]) -> bool:
        return hmac.compare_digest(headers.get(b"authorization", b""), self._bearer)

    def session(self, headers: Mapping[bytes, bytes]) -> Session | None:
        sid = cookies(headers).get(COOKIE)
        session = self._sessions.get(sid) if sid else None
        if session is not None and time.monotonic() - session.started > SESSION_SECONDS:
            del self._sessions[sid]  # type: ignore[arg-type]
            return None
        return session

    def refusal(self, scope: MutableMapping[str, Any], headers: Mapping[bytes, bytes]) -> Response | None:
        """None: let the request through; else the answer to a request without a login."""
        if scope["path"] in PUBLIC or self.has_bearer(headers) or self.session(headers) is not None:
            return None
        if scope.get("method") in ("GET", "HEAD"):
            return RedirectResponse("/login", status_code=303)
        return PlainTextResponse("log in first: no session (or bearer token) with this request", status_code=401)

    # ---- actions ----------------------------------------------------------------------------

    def action_refusal(self, headers: Mapping[bytes, bytes], form: Mapping[str, str]) -> str | None:
        """Why an action must not run (None: it may). A bearer request is a script's own."""
        if self.has_bearer(headers):
            return None
        session = self.session(headers)
        if session is None:
            return "log in first"
        if not hmac.compare_digest(form.get("csrf", "").encode("utf-8", "replace"), session.csrf.encode()):
            return "the form's CSRF token is missing or wrong: reload the page and try again"
        return same_origin(headers)


def same_origin(headers: Mapping[bytes, bytes]) -> str | None:
    """None when the request comes from a page of this host (Origin, else Referer)."""
    host = headers.get(b"host", b"").decode("latin-1")
    origin = headers.get(b"origin", b"").decode("latin-1")
    if origin and origin != "null":
        return None if urlsplit(origin).netloc == host and host else f"the request comes from another site ({origin})"
    referer = headers.get(b"referer", b"").decode("latin-1")
    if referer:
        return None if urlsplit(referer).netloc == host and host else "the request comes from another site (Referer)"
    return "the request has neither Origin nor Referer: it cannot be told from a foreign site's"


def session_cookie(sid: str) -> str:
    return f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/"
