"""Who is at the keyboard: the "who" of every audit row the operator side writes."""

from __future__ import annotations

import getpass
import socket


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (a container's arbitrary uid): still audited, as unknown
        return "unknown"


def operator_id(prefix: str, *, host: bool = True) -> str:
    """``cli:alice@box``, ``tui:alice``: the tool, the user and (for remote-able tools) the host."""
    return f"{prefix}:{user_name()}@{socket.gethostname()}" if host else f"{prefix}:{user_name()}"
