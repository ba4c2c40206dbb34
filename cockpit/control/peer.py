"""Who is asking: the control API's principal is decided by the server, never by the client.

On the Unix socket the kernel says who connected (``SO_PEERCRED``: the peer's uid, read once
per connection by ``PeerCredProtocol`` and handed to the app in the ASGI scope under
``scope["extensions"]["cockpit.peer"]``); on TCP the principal is the bearer token's name
(``api.token_name``). The body's ``actor`` is only the client's free-text label. The audit
trail records both as one string::

    uid 1000 (alice) via socket: cli:alice@box
    token api-token via tcp: nightly-script
    in-process: bench            (the app called without a socket: tests, bench/chaos_inputs.py)

The server's part comes first and never contains ": ", so the first ": " always ends it: a
label cannot impersonate it, and no recorded actor can equal an engine actor ("deadman",
"engine", "risk", "tui:alice" ...). The label's control characters become "?".
"""

from __future__ import annotations

import asyncio
import pwd
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

PEER_KEY = "cockpit.peer"
IN_PROCESS = "in-process"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_credentials(sock: Any) -> dict[str, int] | None:
    """pid, uid and gid of the process at the other end of a Unix socket (None: unknown)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size))
    except (OSError, struct.error):
        return None
    return {"pid": pid, "uid": uid, "gid": gid}


class PeerCredProtocol(H11Protocol):
    """uvicorn's h11 protocol (pinned with ``http=``), plus the peer's credentials in every
    request's scope. A connection whose credentials cannot be read is still served: its
    requests are recorded as "uid ?", never as whatever the client claims."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        creds = peer_credentials(transport.get_extra_info("socket")) or {"pid": None, "uid": None, "gid": None}
        app = self.app

        async def with_peer(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[PEER_KEY] = creds
            await app(scope, receive, send)

        self.app = with_peer


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def socket_principal(creds: dict[str, Any]) -> str:
    uid = creds.get("uid")
    if not isinstance(uid, int) or uid < 0:
        return "uid ? via socket"
    name = user_name(uid)
    name = clean_label(name).replace(":", "?") if name else None  # the first ": " must stay the separator
    return f"uid {uid} ({name}) via socket" if name else f"uid {uid} via socket"


def token_principal(token_name: str) -> str:
    return f"token {token_name} via tcp"


def principal(scope: MutableMapping[str, Any], token_name: str | None) -> str:
    """The server's half of the actor: the socket peer, else the token (TCP), else in-process."""
    creds = (scope.get("extensions") or {}).get(PEER_KEY)
    if creds is not None:
        return socket_principal(creds)
    if token_name is not None:
        return token_principal(token_name)
    return IN_PROCESS


def clean_label(label: str) -> str:
    """The client's label on one line: control characters become "?", outer blanks go."""
    return "".join(c if c.isprintable() else "?" for c in label.strip()).strip()


def recorded_actor(server_part: str, label: str) -> str:
    """What the audit trail and the logs record as who sent the command."""
    return f"{server_part}: {clean_label(label)}"
