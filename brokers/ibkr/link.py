"""The adapter's connection state: one enum for our API session, one flag for IB's own link.

Our session moves DISCONNECTED -> SYNCING -> READY (<-> RESYNCING) and back to DISCONNECTED
when the socket drops; CLOSED once the engine disconnects. IB Gateway's link to IB's servers
(1100 down, 1101/1102 up) is reported by the gateway independently of our session: a 1100
can arrive in any state, even during the start-up sync, so it is kept beside the enum rather
than multiplied into it. Everything the rest of the adapter asks (``connected``,
``accepting``, what to announce) is derived from these two, in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger("cockpit.ibkr")

ConnectionCallback = Callable[[bool, str], None]

STATUS_TEXT = {
    1100: "IB Gateway lost its connection to IB's servers (1100)",
    1101: "IB connectivity restored, market data lost and resubscribed (1101)",
    1102: "IB connectivity restored, data kept (1102)",
}


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"  # no socket (not yet connected, or lost: reconnecting)
    SYNCING = "syncing"  # socket up, the start-up sync and reconcile are running
    READY = "ready"  # synced: orders may go out while IB's link is up
    RESYNCING = "resyncing"  # synced, re-reading orders after 1101/1102/100
    CLOSED = "closed"  # the engine disconnected: no reconnects


class Link:
    """The one writer of the connection state, and the one place that announces its changes."""

    def __init__(self, on_connection_change: ConnectionCallback | None = None) -> None:
        self.on_connection_change = on_connection_change
        self.state = LinkState.DISCONNECTED
        self.ib_link_up = True  # IB Gateway's own link to IB (1100 / 1101 / 1102)
        self.gen = 0  # bumped whenever sending stops: an in-flight send checks it did not change
        self.ready = asyncio.Event()  # set whenever ``accepting`` becomes true
        self._announced: bool | None = None

    @property
    def socket_up(self) -> bool:
        """The API session is up (it may still be syncing)."""
        return self.state in (LinkState.SYNCING, LinkState.READY, LinkState.RESYNCING)

    @property
    def in_session(self) -> bool:
        """The API session is up and its start-up sync is done."""
        return self.state in (LinkState.READY, LinkState.RESYNCING)

    @property
    def connected(self) -> bool:
        """Connected, synced and IB's own link up: what the status bar shows."""
        return self.in_session and self.ib_link_up

    @property
    def accepting(self) -> bool:
        """New messages may go out now (connected and not reconciling)."""
        return self.state is LinkState.READY and self.ib_link_up

    def lost(self) -> None:
        """The socket went (unless the engine closed it)."""
        if self.state is not LinkState.CLOSED:
            self.state = LinkState.DISCONNECTED

    def announce(self, up: bool, reason: str) -> None:
        """Tell the engine about a transition, once per transition."""
        if up == self._announced:
            return
        self._announced = up
        (log.info if up else log.warning)("IBKR %s: %s", "up" if up else "DOWN", reason)
        if self.on_connection_change is not None:
            try:
                self.on_connection_change(up, reason)
            except Exception:
                log.exception("on_connection_change failed")

    @property
    def announced_down(self) -> bool:
        return self._announced is False
