"""The one small interface every alert sink implements (Discord, email, the TUI pane, the log)."""

from __future__ import annotations

from typing import Protocol

from core.alerts.model import Alert


class SinkError(Exception):
    """One delivery attempt failed. ``retry_after``: seconds the far side asked us to wait (a
    429's retry_after / X-RateLimit-Reset-After, already clamped by the sink); ``permanent``:
    retrying cannot help (401/403/404, a refused recipient, a bad config)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


class Sink(Protocol):
    """``send`` makes ONE attempt and returns when the far side accepted the alert, or raises
    SinkError. Retries, backoff, rate limits and timeouts around it are the router's job, so
    every sink gets the same policy; a sink never logs secrets (webhook URL, password).

    A sink may say ``immediate = True``: its ``send`` never waits (it writes to memory or to the
    log), so the router hands it an alert at once instead of through its queue and worker.
    ``renders_html = True``: it shows ``Alert.html`` (an email); the router words an HTML body
    only while such a sink is there."""

    name: str

    async def send(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...
