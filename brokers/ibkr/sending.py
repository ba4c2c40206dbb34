"""Sending: place, cancel, cancel all and modify, through one queue and one pacing budget.

``place`` refuses rather than queues while the adapter cannot send (disconnected, IB's link
down, reconciling, inside the daily restart window): an order held through an outage would
go out minutes later at a price and in a book nobody decided on. When nothing is queued or
being sent, the contract is known, the order id is inside the block already reserved and the
pacing has room, ``place`` writes the order to the socket itself, before it returns; else the
sender takes it from the queue (the same steps, awaiting what it must). Orders already queued when
the connection drops were never sent and are reported REJECTED as such. Cancels are kept and
sent after the reconnect: cancelling late is always what was wanted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract

from brokers.ibkr import convert
from brokers.ibkr.config import IbkrConfig, RestartWindow
from brokers.ibkr.link import STATUS_TEXT, Link, LinkState
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.session import Supervisor
from brokers.ibkr.throttle import Throttle
from brokers.ibkr.tracking import OrderBook, Tracked
from brokers.order_checks import order_shape_problem
from core.common.clock import Clock
from core.domain.model import Order, OrderStatus, OrderType, OrderUpdate

log = logging.getLogger("cockpit.ibkr")


@dataclass(slots=True)
class Action:
    """One queued message to the gateway."""

    kind: str  # place | cancel | modify | global_cancel | subscribe
    tracked: Tracked | None = None
    symbol: str = ""
    qty: Decimal | None = None
    limit_price: Decimal | None = None


class Sending:
    """Mixin of :class:`~brokers.ibkr.broker.IbkrBroker`: the outgoing side."""

    ib: IB
    config: IbkrConfig
    clock: Clock
    window: RestartWindow | None
    _link: Link
    _supervisor: Supervisor
    _throttle: Throttle
    _ids: OrderIdAllocator
    _account: str
    _orders: OrderBook
    _queue: deque[Action]
    _wake: asyncio.Event
    _sending: bool  # the sender is between taking an action from the queue and sending it
    _contracts: dict[str, Contract]

    # provided by the other mixins
    _report: Callable[[OrderUpdate], None]
    _finish: Callable[..., None]
    _adopt_from_ib: Callable[[str], Tracked | None]
    _subscribe: Callable[[str], Awaitable[None]]

    @property
    def accepting(self) -> bool:
        """New messages may go out now (connected and not reconciling)."""
        return self._link.accepting

    def place(self, order: Order) -> None:
        reason = self._refusal(order)
        if reason is not None:
            log.warning("order %s refused: %s", order.client_order_id, reason)
            self._report(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, self.clock.now(), None, reason))
            return
        t = Tracked(order, qty=order.qty, limit_price=order.limit_price)
        self._orders.add(t)
        if not self._place_now(t):
            self._enqueue(Action("place", t))

    def _place_now(self, t: Tracked) -> bool:
        """Send ``t`` now, as ``_send_place`` would, when nothing is ahead of it and nothing need be
        awaited; False (nothing done) otherwise."""
        if self._queue or self._sending or not self.accepting:
            return False
        order = t.order
        contract = self._contracts.get(order.symbol)
        if contract is None or not self._throttle.ready():
            return False
        oid = self._ids.try_allocate()
        if oid is None:
            return False
        if not self._throttle.try_acquire():  # not seen: it was ready a moment ago, and time only frees slots
            self._enqueue(Action("place", t))  # the sender takes another id (ids need only grow)
            return True
        self._write_place(t, contract, oid)
        return True

    def _write_place(self, t: Tracked, contract: Contract, oid: int) -> None:
        ib = self.ib
        # keep ib_async's shared request/order counter above our ids: its request ids never equal an order id
        ib.client.updateReqId(oid + 1)
        self._orders.bind(t, order_id=oid)
        try:
            ib.placeOrder(contract, convert.ib_order(t.order, oid, self._account, qty=t.qty, limit_price=t.limit_price))
        except ConnectionError as exc:
            self._orders.unbind_order_id(t)
            self._not_sent(t, f"not sent: {exc}")
            return
        t.sent = True

    def _refusal(self, order: Order) -> str | None:
        problem = order_shape_problem(order, self._orders)
        if problem is not None:
            return problem
        if self.window is not None and self.window.contains(self.clock.now()):
            return f"inside IB Gateway's daily restart window ({self.window}): no new orders"
        link = self._link
        if not link.accepting:
            if link.state is LinkState.RESYNCING:
                return "re-reading orders from IB Gateway (after a reconnect or an IB status message): try again"
            if link.socket_up and not link.ib_link_up:
                return f"{STATUS_TEXT[1100]}: no new orders until it is restored"
            if link.socket_up:
                return "reconciling with IB Gateway after a reconnect: no new orders until it is done"
            err = self._supervisor.last_error
            return "not connected to IB Gateway (reconnecting" + (f": {err})" if err else ")")
        return None

    def cancel(self, client_order_id: str) -> None:
        t = self._orders.get(client_order_id)
        if t is None:
            t = self._adopt_from_ib(client_order_id)
            if t is None:
                log.info("cancel %s: no such order open at IB", client_order_id)
                return
        if t.terminal or (t.cancel_requested and self._cancel_queued(t)):
            return
        t.cancel_requested = True
        t.cancel_reason = t.cancel_reason or "cancelled by request"
        if not t.sent:
            queued = [a for a in self._queue if a.kind == "place" and a.tracked is t]
            for a in queued:
                self._queue.remove(a)
            if queued:
                self._finish(t, OrderStatus.CANCELLED, "cancelled before it was sent")
            return  # in flight: the sender sees cancel_requested and does not send it
        self._enqueue(Action("cancel", t))

    def _cancel_queued(self, t: Tracked) -> bool:
        return any(a.kind == "cancel" and a.tracked is t for a in self._queue)

    def cancel_all(self) -> None:
        """IB's global cancel (every open order of the account, ours or not); unsent orders are dropped."""
        keep: deque[Action] = deque()
        for a in self._queue:
            if a.kind == "place" and a.tracked is not None:
                a.tracked.cancel_requested = True
                self._finish(a.tracked, OrderStatus.CANCELLED, "cancel all: cancelled before it was sent")
            elif a.kind == "subscribe":
                keep.append(a)
        self._queue = keep
        for t in self._orders.open():
            t.cancel_requested = True
            t.cancel_reason = "cancel all (reqGlobalCancel)"
        self._queue.appendleft(Action("global_cancel"))
        self._wake.set()

    def modify(self, client_order_id: str, *, qty: Decimal | None = None, limit_price: Decimal | None = None) -> bool:
        """Change a working order's quantity and/or limit price in place (placeOrder with its id).

        Not part of the Broker interface (the engine cancels and replaces); IB answers with a
        new openOrder, or error 105 if it refuses (the order then stays as it was).
        """
        t = self._orders.get(client_order_id)
        if t is None or t.terminal or not t.sent or t.order_id is None or t.cancel_requested:
            return False
        if limit_price is not None and t.order.order_type is not OrderType.LIMIT:
            return False
        if not self.accepting:
            return False
        self._enqueue(Action("modify", t, qty=qty, limit_price=limit_price))
        return True

    def _enqueue(self, action: Action) -> None:
        self._queue.append(action)
        self._wake.set()

    def _enqueue_subscribe(self, symbol: str) -> None:
        self._enqueue(Action("subscribe", symbol=symbol))

    def _retry_place(self, t: Tracked) -> None:
        """Send ``t`` again, first in line (after IB refused its order id as a duplicate)."""
        self._queue.appendleft(Action("place", t))
        self._wake.set()

    def _queued_symbols(self) -> set[str]:
        busy: set[str] = set()
        for a in self._queue:
            if a.tracked is not None:
                busy.add(a.tracked.order.symbol)
            elif a.symbol:
                busy.add(a.symbol)
        return busy

    def _fail_unsent(self, reason: str) -> None:
        """Sending stopped: queued new orders never left (REJECTED); cancels wait for the reconnect."""
        self._link.gen += 1
        keep: deque[Action] = deque()
        for a in self._queue:
            if a.kind == "place" and a.tracked is not None:
                self._not_sent(a.tracked, f"not sent: {reason}")
            elif a.kind == "modify" and a.tracked is not None:
                log.warning("modify of %s not sent: %s", a.tracked.client_order_id, reason)
            elif a.kind in ("cancel", "global_cancel"):
                keep.append(a)
        self._queue = keep

    async def _send_loop(self) -> None:
        while True:
            while not (self._queue and self.accepting):
                self._wake.clear()
                await self._wake.wait()
            action = self._queue.popleft()
            self._sending = True
            try:
                await self._send(action)
            except asyncio.CancelledError:
                raise
            except (ConnectionError, TimeoutError) as exc:
                # the socket went mid-send: a lost cancel is re-sent by the reconnect's reconcile
                log.warning("ibkr: %s not sent: %s", action.kind, exc or type(exc).__name__)
                self._unsent(action, f"not sent: {exc or 'timeout'}")
            except Exception:
                log.exception("ibkr: sending %s failed", action.kind)
                self._unsent(action, "not sent: internal error (see log)")
            finally:
                self._sending = False

    def _unsent(self, action: Action, reason: str) -> None:
        t = action.tracked
        if action.kind == "place" and t is not None and not t.sent:
            self._not_sent(t, reason)

    def _not_sent(self, t: Tracked, reason: str) -> None:
        """A new order that never left: CANCELLED if its cancel was asked for meanwhile, else REJECTED."""
        if t.cancel_requested:
            self._finish(t, OrderStatus.CANCELLED, f"cancelled before it was sent ({reason})")
        else:
            self._finish(t, OrderStatus.REJECTED, reason)

    async def _send(self, a: Action) -> None:
        if a.kind == "place":
            assert a.tracked is not None
            await self._send_place(a.tracked)
        elif a.kind == "cancel":
            assert a.tracked is not None
            await self._send_cancel(a)
        elif a.kind == "modify":
            assert a.tracked is not None
            await self._send_modify(a)
        elif a.kind == "global_cancel":
            await self._throttle.acquire()
            if not self.accepting:
                self._queue.appendleft(a)
                return
            self.ib.reqGlobalCancel()
            log.warning("IBKR: global cancel sent")
        elif a.kind == "subscribe":
            await self._subscribe(a.symbol)

    async def _send_place(self, t: Tracked) -> None:
        gen = self._link.gen
        order = t.order
        try:
            contract = await self._contract(order.symbol)
        except (ConnectionError, TimeoutError) as exc:
            self._not_sent(t, f"not sent: contract lookup failed ({exc or 'timeout'})")
            return
        if contract is None:
            self._finish(t, OrderStatus.REJECTED, f"IB has no US stock {order.symbol} on SMART in USD")
            return
        oid = await self._ids.allocate()
        await self._throttle.acquire()
        if t.cancel_requested:
            self._finish(t, OrderStatus.CANCELLED, "cancelled before it was sent")
            return
        if gen != self._link.gen or not self.accepting:
            self._not_sent(t, "not sent: the connection to IB Gateway failed before it left")
            return
        self._write_place(t, contract, oid)

    async def _send_cancel(self, a: Action) -> None:
        t = a.tracked
        assert t is not None
        if t.terminal:
            return
        await self._throttle.acquire()
        if not self.accepting:
            self._queue.appendleft(a)
            return
        if t.order_id is None:
            if t.unknown_reported and not t.acked:
                # adopted from an earlier run, and the sync found no trace of it by orderRef
                self._finish(t, OrderStatus.CANCELLED, "IB Gateway has no trace of it (no open or completed "
                             "order, no execution with its orderRef): nothing to cancel")
            else:
                log.warning("cancel %s: IB's order id is unknown (not seen since connecting)", t.client_order_id)
            return
        # the client call, not IB.cancelOrder: ib_async's Trade may be gone after a reconnect
        # (it then logs an error), and its PendingCancel bookkeeping is of no use here
        self.ib.client.cancelOrder(t.order_id, "")

    async def _send_modify(self, a: Action) -> None:
        t = a.tracked
        assert t is not None and t.order_id is not None
        if t.terminal or t.cancel_requested:
            return
        contract = await self._contract(t.order.symbol)
        await self._throttle.acquire()
        if contract is None or not self.accepting or t.terminal:
            log.warning("modify of %s not sent", t.client_order_id)
            return
        qty = a.qty if a.qty is not None else t.qty
        price = a.limit_price if a.limit_price is not None else t.limit_price
        # client.placeOrder, not IB.placeOrder: ib_async asserts its Trade is not done, and it
        # may think so after a mere warning (the false cancels this adapter exists to ignore).
        self.ib.client.placeOrder(t.order_id, contract,
                                  convert.ib_order(t.order, t.order_id, self._account, qty=qty, limit_price=price))

    async def _contract(self, symbol: str) -> Contract | None:
        """The qualified contract of ``symbol`` (cached: conIds do not change)."""
        c = self._contracts.get(symbol)
        if c is not None:
            return c
        await self._throttle.acquire()
        result = await asyncio.wait_for(self.ib.qualifyContractsAsync(convert.stock(symbol)),
                                        self.config.connect_timeout)
        c = result[0] if result else None
        if isinstance(c, Contract):
            self._contracts[symbol] = c
            return c
        return None

    async def _request(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """A request to the gateway (a query), inside the shared pacing budget."""
        await self._throttle.acquire()
        return await asyncio.wait_for(make(), self.config.connect_timeout)
