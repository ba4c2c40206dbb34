"""The CLI's side of the control API: HTTP/1.1 over the engine's Unix socket.

It uses the standard library's ``http.client`` on an ``AF_UNIX`` socket, not httpx: a command
like `cockpit status` is a process that makes one request and exits, and importing httpx took
longer (about 100 ms on a small VM) than the rest of the command together.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cockpit.identity import operator_id


class NoEngine(Exception):
    """No engine answers on the state dir's control socket."""


class ApiRefused(Exception):
    """The engine answered with a 4xx: the message is its reason."""


def actor() -> str:
    """Who is typing: the audit trail records it."""
    return operator_id("cli")


class _UnixConnection(http.client.HTTPConnection):
    """``http.client`` to a Unix socket (the host name only fills the Host header)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("cockpit", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class ControlClient:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # one connection per call, closed by it

    def _request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            # the path percent-encoded as httpx did (a strategy name may hold any character)
            conn.request(method, quote(url, safe="/:@!$&'()*+,;=?%"), body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _call(self, method: str, url: str, body: bytes | None = None) -> Any:
        if not self.path.exists():
            raise NoEngine(f"no cockpit engine is running here (no control socket at {self.path}): "
                           "start one with `cockpit` or `cockpit --no-ui`")
        try:
            status, raw = self._request(method, url, body)
        except TimeoutError:
            raise NoEngine(f"engine at {self.path} did not answer in {self.timeout:g} s: it may be hung; "
                           "see the runbook (`cockpit flatten --all --direct` needs no engine)") from None
        except (ConnectionError, FileNotFoundError, http.client.RemoteDisconnected) as exc:
            raise NoEngine(f"no cockpit engine answers on {self.path} ({exc}): it stopped or was killed; "
                           "start one with `cockpit` or `cockpit --no-ui`") from None
        except (OSError, http.client.HTTPException) as exc:
            raise NoEngine(f"engine at {self.path}: the request failed ({type(exc).__name__}: {exc})") from None
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            raise NoEngine(f"engine at {self.path} answered HTTP {status} with something that is "
                           f"not JSON ({text[:80]!r}): is that socket a cockpit engine's?") from None
        if status >= 400:
            detail = data.get("detail", text) if isinstance(data, dict) else text
            raise ApiRefused(str(detail))
        return data

    def get(self, url: str, **params: Any) -> Any:
        query = urlencode({k: _param(v) for k, v in params.items() if v is not None})
        return self._call("GET", f"{url}?{query}" if query else url)

    def post(self, url: str, **body: Any) -> Any:
        payload = {"actor": actor(), **{k: v for k, v in body.items() if v is not None}}
        return self._call("POST", url, json.dumps(payload).encode())


def _param(value: Any) -> str:
    """A query value as httpx wrote it: booleans lower-case, the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
