"""Fault controls: what a real gateway does to a client, on demand.

Dropped sockets, IB's 1100/1101/1102, held order acks, a restart (optionally with
nextValidId rolled back), refused orders, partial fills and thin liquidity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book
from brokers.ibsim.pushes import QUOTE_FAULTS
from brokers.ibsim.state import SimState
from brokers.ibsim.transport import Conn

STATUS_TEXT = {
    1100: "Connectivity between IBKR and Trader Workstation has been lost.",
    1101: "Connectivity between IBKR and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IBKR and Trader Workstation has been restored - data maintained.",
}


class FaultControls:
    """Mixin of :class:`~brokers.ibsim.server.IBGatewaySim`: the fault controls."""

    state: SimState
    book: Book
    _hold_acks: bool
    _held: deque[tuple[int, rq.ClientMessage]]  # (clientId, the decoded order message)
    _refusals: deque[str]
    _link_up: bool
    quote_fault: str | None

    # provided by the other parts
    _load: Callable[[], None]
    _save: Callable[[], None]
    _notify: Callable[[], None]
    _abort_all: Callable[[], None]
    _ready_conns: Callable[[], list[Conn]]
    _order_message: Callable[[int, rq.ClientMessage], None]

    def _hold(self, conn: Conn, msg: rq.ClientMessage) -> bool:
        """While acks are delayed, keep an order message unprocessed (True: it was held)."""
        if not self._hold_acks:
            return False
        assert conn.client_id is not None
        self._held.append((conn.client_id, msg))
        return True

    async def corrupt_quotes(self, fault: str | None) -> None:
        """Market data goes bad from the next price step: ``"crossed"`` or ``"spike"``; None ends it."""
        if fault is not None and fault not in QUOTE_FAULTS:
            raise ValueError(f"quote fault must be one of {', '.join(QUOTE_FAULTS)}, not {fault!r}")
        self.quote_fault = fault

    async def refuse_next_order(self, reason: str = "simulated rejection") -> None:
        """The next new order gets error 201 ``Order rejected - reason:<reason>`` and ends Inactive."""
        self._refusals.append(reason)

    async def partial_fill_next(self, qty: Decimal | int | str) -> None:
        """The next accepted order fills at most ``qty`` on its first match; the rest waits for a price step."""
        self.book.partial_next = Decimal(str(qty))

    async def set_liquidity(self, qty: Decimal | int | str | None) -> None:
        """At most ``qty`` shares per order per match from now on (``None``: unlimited)."""
        self.book.liquidity = None if qty is None else Decimal(str(qty))

    async def delay_acks(self, on: bool = True) -> None:
        """Hold placeOrder/cancelOrder/globalCancel unprocessed until :meth:`release_acks`.

        Turning the delay off releases what is held.
        """
        self._hold_acks = on
        if not on:
            await self.release_acks()

    async def release_acks(self) -> int:
        """Process the held order messages in arrival order (answers go to each client's current session)."""
        n = 0
        while self._held:
            client_id, msg = self._held.popleft()
            self._order_message(client_id, msg)
            n += 1
        self._notify()
        return n

    @property
    def held_acks(self) -> int:
        return len(self._held)

    async def drop_connections(self) -> None:
        """Cut every API socket at once (no goodbye); state, orders and held messages survive."""
        self._abort_all()

    async def send_status(self, code: int) -> None:
        """Broadcast 1100 (link lost: ticks stop), 1101 (restored, market data lost: every
        subscription is dropped and must be re-requested) or 1102 (restored, data kept)."""
        if code not in STATUS_TEXT:
            raise ValueError(f"status code must be one of {sorted(STATUS_TEXT)}")
        for conn in self._ready_conns():
            conn.send(m.error(conn.version, -1, code, STATUS_TEXT[code]))
            if code == 1101:
                conn.mkt.clear()
        self._link_up = code != 1100
        self._notify()

    async def restart(self, rollback_next_valid_id: int | None = None) -> None:
        """Restart the gateway: cut all sockets, lose held messages, reload the state file.

        ``rollback_next_valid_id``: the nextValidId the restarted gateway announces (e.g. 1),
        as a gateway that lost its id counter does; orders and permIds are kept, so a
        client reusing an old order id gets error 103.
        """
        self._abort_all()
        self._held.clear()
        self._link_up = True
        self._save()
        self._load()
        if rollback_next_valid_id is not None:
            self.state.next_valid_id = rollback_next_valid_id
        self._save()
        self._notify()
