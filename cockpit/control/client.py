"""The CLI's side of the control API: HTTP/1.1 over the engine's Unix socket.

A command like `cockpit status` is a process that makes one request and exits. httpx took about
100 ms to import, the standard library's ``http.client`` about 20 ms (it brings the email package
and ssl): more than the rest of the command. So the request is written and the answer read here,
in a few lines over a plain ``AF_UNIX`` socket: one request per connection, the answer's body by
its Content-Length, chunked, or up to the close. It reads answers as ``http.client`` does, and
fails as it did, with the same exceptions' names and texts (the CLI prints them in its one-line
error): tests/test_control_client.py runs both on the same answers, good and broken.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

_MAXLINE = 65536  # http.client's limits, and its wording when one is passed
_MAXHEADERS = 100


class NoEngine(Exception):
    """No engine answers on the state dir's control socket."""


class ApiRefused(Exception):
    """The engine answered with a 4xx: the message is its reason."""


class HTTPException(Exception):
    """An answer that is not HTTP (``http.client.HTTPException``'s name and texts)."""


class BadStatusLine(HTTPException):
    def __init__(self, line: str) -> None:
        super().__init__(line or repr(line))


class LineTooLong(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(f"got more than {_MAXLINE} bytes when reading {what}")


class UnknownProtocol(HTTPException):
    pass


class IncompleteRead(HTTPException):
    def __init__(self, partial: bytes, expected: int | None = None) -> None:
        more = f", {expected} more expected" if expected is not None else ""
        super().__init__(f"IncompleteRead({len(partial)} bytes read{more})")


class RemoteDisconnected(ConnectionResetError):
    """The engine closed the connection before answering."""


def actor() -> str:
    """Who is typing: the audit trail records it."""
    from cockpit.identity import operator_id

    return operator_id("cli")


class _Reader:
    """Lines and bytes from a socket, as a buffered file of it gives them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def readline(self, limit: int) -> bytes:
        """Up to and with the next newline, at most ``limit`` bytes (less at the end)."""
        while True:
            end = self.buf.find(b"\n", 0, limit)
            if end >= 0:
                end += 1
                break
            if len(self.buf) >= limit or not self._more():
                end = min(limit, len(self.buf))
                break
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def read(self, size: int | None = None) -> bytes:
        """``size`` bytes (fewer at the end); all up to the close with None or a negative size."""
        while (size is None or size < 0 or len(self.buf) < size) and self._more():
            pass
        if size is None or size < 0:
            size = len(self.buf)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data


def _read_headers(reader: _Reader) -> list[bytes]:
    lines = []
    while True:
        line = reader.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise LineTooLong("header line")
        lines.append(line)
        if len(lines) > _MAXHEADERS:
            raise HTTPException(f"got more than {_MAXHEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def _header(lines: list[bytes], name: str) -> str | None:
    """The first ``name`` header's value, as the email parser http.client uses reads it: a line
    that is neither a header nor a continuation ends the headers."""
    found: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("iso-8859-1")
        if line in ("\r\n", "\n", ""):
            break
        if line.startswith("From "):  # an mbox envelope line: the email parser sets it aside
            continue
        if line[0] in " \t":
            if found:
                found[-1] = (found[-1][0], found[-1][1] + line)
            continue
        key, colon, value = line.partition(":")
        if not colon or any(not ("\041" <= c <= "\176") for c in key):
            break
        found.append((key, value.lstrip(" \t")))
    for key, value in found:
        if key.lower() == name:
            return value.rstrip("\r\n")
    return None


def _read_status(reader: _Reader) -> tuple[str, int]:
    line = str(reader.readline(_MAXLINE + 1), "iso-8859-1")
    if len(line) > _MAXLINE:
        raise LineTooLong("status line")
    if not line:
        raise RemoteDisconnected("Remote end closed connection without response")
    parts = line.split(None, 2)
    version, status = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
    if not version.startswith("HTTP/"):
        raise BadStatusLine(line)
    try:
        code = int(status)
    except ValueError:
        raise BadStatusLine(line) from None
    if code < 100 or code > 999:
        raise BadStatusLine(line)
    return version, code


def _read_chunked(reader: _Reader) -> bytes:
    value: list[bytes] = []
    first = True
    while True:
        if not first and len(reader.read(2)) < 2:  # the CRLF after a chunk
            raise IncompleteRead(b"".join(value))
        first = False
        line = reader.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise LineTooLong("chunk size")
        cut = line.find(b";")
        if cut >= 0:
            line = line[:cut]
        try:
            size = int(line, 16)
        except ValueError:
            size = -1
        if size < 0:  # http.client: a ValueError out of its reader (a traceback), here one line
            raise IncompleteRead(b"".join(value))
        if size == 0:
            while True:  # the trailer
                line = reader.readline(_MAXLINE + 1)
                if len(line) > _MAXLINE:
                    raise LineTooLong("trailer line")
                if line in (b"\r\n", b"\n", b""):
                    return b"".join(value)
        data = reader.read(size)
        if len(data) < size:
            raise IncompleteRead(b"".join(value))
        value.append(data)


def exchange(sock: socket.socket, request: bytes, method: str) -> tuple[int, bytes]:
    """Send ``request`` and read one answer: its status and body."""
    sock.sendall(request)
    reader = _Reader(sock)
    while True:
        version, status = _read_status(reader)
        if status != 100:
            break
        _read_headers(reader)  # a 100 Continue's headers
    if version not in ("HTTP/1.0", "HTTP/0.9") and not version.startswith("HTTP/1."):
        raise UnknownProtocol(version)
    headers = _read_headers(reader)
    encoding = _header(headers, "transfer-encoding")
    if encoding and encoding.lower() == "chunked":
        return status, _read_chunked(reader)
    length: int | None = None
    given = _header(headers, "content-length")
    if given:
        try:
            length = int(given)
        except ValueError:
            length = None
        if length is not None and length < 0:
            length = None
    if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
        length = 0
    if length is None:
        return status, reader.read()
    body = reader.read(length)
    if len(body) < length:
        raise IncompleteRead(body, length - len(body))
    return status, body


def request_bytes(method: str, url: str, body: bytes | None) -> bytes:
    """The request ``http.client`` wrote: the same headers, in its order."""
    # the path percent-encoded as httpx did (a strategy name may hold any character)
    target = quote(url, safe="/:@!$&'()*+,;=?%")
    lines = [f"{method} {target} HTTP/1.1", "Host: cockpit", "Accept-Encoding: identity"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Accept: application/json")
    if body is not None:
        lines.append("Content-Type: application/json")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body is not None else head


class ControlClient:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # one connection per call, closed by it

    def _request(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            return exchange(sock, request_bytes(method, url, body), method)
        finally:
            sock.close()

    def _call(self, method: str, url: str, body: bytes | None = None) -> Any:
        if not self.path.exists():
            raise NoEngine(f"no cockpit engine is running here (no control socket at {self.path}): "
                           "start one with `cockpit` or `cockpit --no-ui`")
        try:
            status, raw = self._request(method, url, body)
        except TimeoutError:
            raise NoEngine(f"engine at {self.path} did not answer in {self.timeout:g} s: it may be hung; "
                           "see the runbook (`cockpit flatten --all --direct` needs no engine)") from None
        except (ConnectionError, FileNotFoundError) as exc:
            raise NoEngine(f"no cockpit engine answers on {self.path} ({exc}): it stopped or was killed; "
                           "start one with `cockpit` or `cockpit --no-ui`") from None
        except (OSError, HTTPException) as exc:
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
