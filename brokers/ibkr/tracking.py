"""What the adapter knows about each of our orders, found by orderRef, permId or order id.

orderRef is our client order id and survives everything; permId is IB's permanent id,
known from the first openOrder on; the order id is only meaningful for our client id and
is never reused by us, but a gateway may have used it before (a rolled-back nextValidId).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from core.domain.model import Order


@dataclass(slots=True, eq=False)
class Tracked:
    order: Order  # the engine's object: read, never written
    order_id: int | None = None
    perm_id: int | None = None
    sent: bool = False  # placeOrder went to the socket (it may still not have arrived)
    acked: bool = False  # the gateway has shown it (openOrder, orderStatus, completedOrder, execution)
    seen: bool = False  # shown during the current sync
    gateway_status: str = ""
    working_at_ib: bool = False  # its latest IB status is a working one
    accepted_reported: bool = False
    fills_started: bool = False
    terminal: bool = False
    unknown_reported: bool = False
    cancel_requested: bool = False
    cancel_reason: str | None = None
    reject_reason: str | None = None  # text of a 201 (or similar) waiting for IB's Inactive
    retried_duplicate_id: bool = False
    adopted: bool = False  # known from the engine's store, not placed by this process
    qty: Decimal | None = None  # as IB last showed it (after a modify)
    limit_price: Decimal | None = None

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id


class OrderBook:
    def __init__(self) -> None:
        self._by_ref: dict[str, Tracked] = {}
        self._by_perm: dict[int, Tracked] = {}
        self._by_oid: dict[int, Tracked] = {}

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self._by_ref

    def __len__(self) -> int:
        return len(self._by_ref)

    def add(self, t: Tracked) -> None:
        self._by_ref[t.client_order_id] = t

    def get(self, client_order_id: str) -> Tracked | None:
        return self._by_ref.get(client_order_id)

    def by_order_id(self, order_id: int) -> Tracked | None:
        return self._by_oid.get(order_id)

    def find(self, order_ref: str = "", perm_id: int = 0, order_id: int | None = None) -> Tracked | None:
        """Ours? By permId, else by orderRef; the order id only when the message has no orderRef
        (orderStatus) and its permId does not contradict ours: a gateway that rolled its ids
        back may hold someone else's order under one of our ids."""
        t = self._by_perm.get(perm_id) if perm_id else None
        if t is not None:
            return t
        if order_ref:
            return self._by_ref.get(order_ref)
        if order_id:
            t = self._by_oid.get(order_id)
            if t is not None and t.perm_id and perm_id and t.perm_id != perm_id:
                return None
        return t

    def bind(self, t: Tracked, *, order_id: int | None = None, perm_id: int | None = None) -> None:
        if order_id:
            if t.order_id is not None and t.order_id != order_id and self._by_oid.get(t.order_id) is t:
                del self._by_oid[t.order_id]
            t.order_id = order_id
            self._by_oid[order_id] = t
        if perm_id:
            t.perm_id = perm_id
            self._by_perm[perm_id] = t

    def unbind_order_id(self, t: Tracked) -> None:
        if t.order_id is not None and self._by_oid.get(t.order_id) is t:
            del self._by_oid[t.order_id]
        t.order_id = None

    def open(self) -> Iterator[Tracked]:
        """Orders not known to be finished (a snapshot: safe to report while iterating)."""
        return iter([t for t in self._by_ref.values() if not t.terminal])
