"""The CLI's own HTTP over the control socket (cockpit/control/client.py) against the client it
replaced (``http.client`` on the same socket, kept here as the reference): on the same answers,
good ones and broken ones, both send the same bytes and give the same data or the same error
(its type and its one line)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cockpit.control import client as new_client
from cockpit.control.client import ApiRefused, ControlClient, NoEngine


class _UnixConnection(http.client.HTTPConnection):
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


class HttpClientReference(ControlClient):
    """The client as it was: ``http.client`` and its exceptions."""

    def _request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, quote(url, safe="/:@!$&'()*+,;=?%"), body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _call(self, method: str, url: str, body: bytes | None = None) -> Any:
        try:
            return super()._call(method, url, body)
        except NoEngine:
            raise
        except http.client.RemoteDisconnected as exc:  # the old except clauses, by their http.client names
            raise NoEngine(f"no cockpit engine answers on {self.path} ({exc}): it stopped or was killed; "
                           "start one with `cockpit` or `cockpit --no-ui`") from None
        except http.client.HTTPException as exc:
            raise NoEngine(f"engine at {self.path}: the request failed ({type(exc).__name__}: {exc})") from None


def _serve(path: Path, answer: bytes | None, got: list[bytes]) -> threading.Thread:
    """One connection: read the whole request, send ``answer`` (None: nothing), close."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        got.append(data[:len(head) + 4] + body)
        if answer is not None:
            conn.sendall(answer)
        conn.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _outcome(cls: type[ControlClient], tmp_path: Path, answer: bytes | None, call: str) -> tuple[Any, ...]:
    path = tmp_path / "c.sock"
    path.unlink(missing_ok=True)
    got: list[bytes] = []
    thread = _serve(path, answer, got)
    client = cls(path, timeout=5)
    try:
        if call == "get":
            result: Any = ("ok", client.get("/strategy/a b/é", verbose=True, limit=5, none=None))
        else:
            result = ("ok", client.post("/halt", reason="lunch ü", n=3))
    except (NoEngine, ApiRefused) as exc:
        result = (type(exc).__name__, str(exc).replace(str(path), "PATH"))
    thread.join(5)
    return result, got


OK_BODY = json.dumps({"trading_state": "ACTIVE", "n": [1, 2.5, None]}).encode()
ANSWERS: dict[str, bytes | None] = {
    "200": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(OK_BODY), OK_BODY),
    "200, lower-case length, then more bytes": b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%sEXTRA" % (
        len(OK_BODY), OK_BODY),
    "two lengths: the first counts": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nT: 1\r\n\r\n",
    "chunked, upper case": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "chunked, bad size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n",
    "chunked, cut": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n9\r\n[1,",
    "chunked, a negative size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n{}",
    "chunked, no end": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}",
    "404 with a detail": b"HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{\"detail\": \"no such\"}",
    "422 with a list": b"HTTP/1.1 422 Unprocessable\r\nContent-Length: 7\r\n\r\n[1,\"x\"]",
    "not JSON": b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n<html>not an engine</html>",
    "no length, up to the close": b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n{\"a\": 1}",
    "HTTP/1.0": b"HTTP/1.0 200 OK\r\n\r\n[]",
    "short body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\": 1}",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\n{}",
    "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n{}",
    "a folded header": b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 2\r\n\r\n{}",
    "a folded length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\n{}",
    "a line that is no header": b"HTTP/1.1 200 OK\r\ngarbage\r\nContent-Length: 1\r\n\r\n{}",
    "a spaced name": b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n{}",
    "an envelope line": b"HTTP/1.1 200 OK\r\nFrom somebody\r\nContent-Length: 2\r\n\r\n{}x",
    "204": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n{\"a\":",
    "100 then 200": b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "garbage": b"garbage\r\n",
    "status only": b"HTTP/1.1\r\n\r\n",
    "status 99": b"HTTP/1.1 99 Odd\r\n\r\n",
    "status 1000": b"HTTP/1.1 1000 Odd\r\n\r\n",
    "status not a number": b"HTTP/1.1 abc OK\r\n\r\n",
    "HTTP/2": b"HTTP/2.0 200 OK\r\n\r\n{}",
    "HTTP/1.1 without a reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}",
    "nothing": b"",
    "closed at once": None,
    "a long status line": b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n\r\n",
    "a long header": b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70000 + b"\r\n\r\n",
    "101 headers": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n{}",
    "100 headers": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 98 + b"Content-Length: 2\r\n\r\n{}",
    "a long chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 70000 + b"1\r\n",
    "a long trailer": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + b"x" * 70000 + b"\r\n\r\n",
    "latin-1 and bad UTF-8": b"HTTP/1.1 200 \xe9t\xe9\r\nContent-Length: 4\r\n\r\n\"\xff\"x",
}


@pytest.mark.parametrize("call", ["get", "post"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_same_request_and_the_same_outcome_as_http_client(name: str, call: str, tmp_path: Path) -> None:
    answer = ANSWERS[name]
    new = _outcome(ControlClient, tmp_path, answer, call)
    if name == "chunked, a negative size":  # http.client let a ValueError out (a traceback): now one line
        with pytest.raises(ValueError, match="read length must be non-negative"):
            _outcome(HttpClientReference, tmp_path, answer, call)
        assert new[0] == ("NoEngine", "engine at PATH: the request failed (IncompleteRead: IncompleteRead(0 bytes read))")
        return
    old = _outcome(HttpClientReference, tmp_path, answer, call)
    assert new == old


def test_the_request_bytes(tmp_path: Path) -> None:
    request = new_client.request_bytes("POST", "/strategy/a b", b"{}")
    assert request == (b"POST /strategy/a%20b HTTP/1.1\r\nHost: cockpit\r\nAccept-Encoding: identity\r\n"
                       b"Content-Length: 2\r\nAccept: application/json\r\nContent-Type: application/json\r\n\r\n{}")


def test_a_status_reads_without_http_client() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, cockpit.control.client, cockpit.control_cli;"
            "bad = [m for m in ('http.client', 'email', 'ssl', 'httpx', 'getpass') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
