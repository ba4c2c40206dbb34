"""Serves the control API inside the engine's loop: a Unix socket (mode 0600) in the state
dir, and optionally TCP on 127.0.0.1 with a bearer token from the environment.

The app is built on its first request (cockpit/control/lazy_app.py), so FastAPI and the
route schemas stay off the start path; the sockets listen from the start all the same, and
the Prometheus counters follow the bus from the start.

The sockets are bound here, not by uvicorn: the Unix socket gets its mode before it listens,
so no other user can connect in between. uvicorn's own signal handling is switched off
(cockpit/control/embedded.py); the engine's runner owns SIGINT/SIGTERM. The Unix listener runs uvicorn's h11
protocol with the peer's credentials added (``PeerCredProtocol``): the audit trail records
the uid the kernel reports, never the client's claim.

A bad TCP setting refuses before anything starts: the token is checked when the server is
made (``ControlServer(...)`` raises ConfigError), the port is bound by ``prepare()`` before the
engine opens its store. ``stop()`` always gets through all its steps and raises nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ConfigError, Settings
from core.kernel.engine import Engine

if TYPE_CHECKING:
    from cockpit.control.embedded import EmbeddedServer

log = logging.getLogger("cockpit.api")

_UNIX_PATH_MAX = 107


def socket_path(settings: Settings) -> Path:
    return settings.state_dir / settings.api.socket


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _bind_unix(path: Path) -> socket.socket:
    if len(str(path).encode()) > _UNIX_PATH_MAX:
        raise ConfigError(f"api.socket: the control socket path {path} is longer than a Unix socket allows "
                          f"({_UNIX_PATH_MAX} bytes): use a shorter state_dir")
    if path.is_symlink() or (path.exists() and not _is_socket(path)):
        raise ConfigError(f"api.socket: {path} exists and is not a control socket: the engine removes only "
                          f"a socket of its own; move that file away or set another api.socket")
    if path.exists():
        path.unlink()  # a stale socket of a killed engine; the state lock says no engine owns it now
    # Bound under a private name, made 0600, then renamed into place: the socket never shows at
    # its path with the umask's mode, so nobody (and no test) can see or reach it before it is private.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    if len(str(tmp).encode()) > _UNIX_PATH_MAX:
        tmp = path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp))
    os.chmod(tmp, 0o600)  # before listen(): nobody can connect until it is private
    sock.listen(64)
    sock.setblocking(False)
    if tmp != path:
        os.replace(tmp, path)
    return sock


def _bind_tcp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"api.tcp_port: cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _make_app(engine: Engine, token: str | None, token_name: str) -> Any:
    """``make_app``, imported when first needed (FastAPI is the bulk of the control API's cost)."""
    from cockpit.control.api import make_app

    return make_app(engine, token, token_name)


MIN_TOKEN = 16


def read_token(settings: Settings) -> str | None:
    """The TCP listener's bearer token (None: no TCP listener); ConfigError when it is unusable."""
    api = settings.api
    if not api.tcp_port:
        return None
    token = os.environ.get(api.token_env, "")
    if len(token) < MIN_TOKEN:
        raise ConfigError(f"api.tcp_port is set, so the environment must hold a bearer token of at least "
                          f"{MIN_TOKEN} characters in {api.token_env}")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise ConfigError(f"{api.token_env}: the bearer token must be printable ASCII without spaces "
                          f"(HTTP trims or mangles anything else, so no client could match it)")
    return token


class ControlServer:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.path = socket_path(settings)
        self.token = read_token(settings)  # before anything starts: a bad TCP setting refuses here
        self._tcp: socket.socket | None = None
        self._servers: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []

    def prepare(self) -> None:
        """Bind the TCP port, if any, before the engine starts: a port in use refuses first."""
        if self.token is not None and self._tcp is None:
            self._tcp = _bind_tcp(self.settings.api.tcp_port)

    async def start(self) -> None:
        import uvicorn

        from cockpit.control.embedded import EmbeddedServer
        from cockpit.control.lazy_app import LazyApp
        from cockpit.control.peer import PeerCredProtocol
        from cockpit.control.routes_prometheus import registry_for

        self.prepare()
        registry_for(self.engine)  # the counters count from the start, not from the first request
        listeners: list[tuple[socket.socket, str | None]] = [(_bind_unix(self.path), None)]
        if self._tcp is not None:
            listeners.append((self._tcp, self.token))
            self._tcp = None  # the server owns it now
        for sock, token in listeners:
            app = LazyApp(functools.partial(_make_app, self.engine, token, self.settings.api.token_name))
            config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, log_level="warning",
                                    http=PeerCredProtocol if token is None else "h11",
                                    # TCP serves the web pages' event streams: a stop never waits on an open browser
                                    timeout_graceful_shutdown=None if token is None else 3)
            server = EmbeddedServer(config)
            task = asyncio.ensure_future(server.serve(sockets=[sock]))
            self._servers.append((server, task))
        log.info("control API on %s%s", self.path,
                 f" and 127.0.0.1:{self.settings.api.tcp_port}" if self.settings.api.tcp_port else "")

    async def stop(self) -> None:
        """Close every listener and remove our socket; each step runs even if one before failed."""
        for server, _ in self._servers:
            server.exit()
        for _, task in self._servers:
            with contextlib.suppress(Exception):
                await task
        self._servers.clear()
        if self._tcp is not None:  # prepared, never served (the engine failed to start)
            self._tcp.close()
            self._tcp = None
        try:
            if _is_socket(self.path):  # ours: never a file someone put there meanwhile
                self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("could not remove the control socket %s: %s", self.path, exc.strerror or exc)
