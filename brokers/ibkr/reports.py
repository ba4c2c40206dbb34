"""Inbound reports: the gateway's raw word on orders and fills -> the engine's OrderUpdate and Execution.

Only IB's orderStatus (Cancelled/ApiCancelled, Inactive after a 201) and completed orders
make an order CANCELLED or REJECTED, never ib_async's ``Trade.isDone()``. FILLED is never
reported as a status: the engine derives it from the executions. Each execution is reported
once, keyed by execId, when its commission report is in (or the wait is over); terminal
statuses the gateway sends during a sync are held behind that sync's executions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ib_async import IB

from brokers.ibkr import convert
from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.link import Link
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.outbox import Outbox
from brokers.ibkr.stats import Stats
from brokers.ibkr.tracking import OrderBook, Tracked
from core.common.clock import Clock
from core.domain.model import ZERO, Execution, OrderStatus, OrderUpdate

log = logging.getLogger("cockpit.ibkr")


@dataclass(slots=True)
class PendingExec:
    """An execution waiting for its commission report."""

    client_order_id: str
    symbol: str
    side: Any
    qty: Decimal
    price: Decimal
    ts: datetime
    broker_order_id: str | None
    timer: Any = None


class Reports:
    """Mixin of :class:`~brokers.ibkr.broker.IbkrBroker`: the inbound side (the raw taps of ``hooks``)."""

    ib: IB
    config: IbkrConfig
    clock: Clock
    stats: Stats
    _link: Link
    _ids: OrderIdAllocator
    _orders: OrderBook
    _outbox: Outbox
    _pending: dict[str, PendingExec]
    _execs: dict[str, Execution]
    _deferred: list[tuple[str, OrderUpdate]]
    _in_sync: bool

    # provided by the sending mixin
    _retry_place: Callable[[Tracked], None]

    def _finish(self, t: Tracked, status: OrderStatus, reason: str, *, from_gateway: bool = False) -> None:
        """Report ``t`` as terminal, once."""
        if t.terminal:
            return
        t.terminal = True
        update = OrderUpdate(t.client_order_id, status, self.clock.now(),
                             str(t.perm_id) if t.perm_id else None, reason)
        if from_gateway and self._in_sync:
            self._deferred.append((t.client_order_id, update))
        else:
            self._outbox.put(t.client_order_id, update)

    def _on_order_error(self, req_id: int, code: int, text: str) -> None:
        """An IB error that is not about the connection: about one of our orders, or just logged."""
        t = self._orders.by_order_id(req_id) if req_id > 0 else None
        if t is not None:
            self._order_error(t, code, text)
        elif 2100 <= code < 2200:
            log.info("IB %d: %s", code, text)
        elif req_id == -1:
            log.warning("IB %d: %s", code, text)

    def _order_error(self, t: Tracked, code: int, text: str) -> None:
        if code == 103 and not t.acked and t.order_id is not None:
            if t.retried_duplicate_id or t.terminal:
                self._finish(t, OrderStatus.REJECTED, f"IB error 103: {text}")
                return
            t.retried_duplicate_id = True
            t.sent = False
            self.stats.duplicate_id_retries += 1
            old = t.order_id
            self._ids.skip_past(old)
            self._orders.unbind_order_id(t)
            log.warning("order %s: IB says order id %d is a duplicate; retrying once with a new id",
                        t.client_order_id, old)
            self._retry_place(t)
            return
        if code == 201:
            t.reject_reason = text
            if not t.acked or t.gateway_status == "Inactive":
                self._finish(t, OrderStatus.REJECTED, text)
            return
        if code in convert.REFUSED_NEW and not t.acked:
            self._finish(t, OrderStatus.REJECTED, f"IB error {code}: {text}")
            return
        if code == 202:
            log.info("order %s: %s (IB's orderStatus decides)", t.client_order_id, text)
            return
        if code == 10147 and not t.acked:
            # a cancel found no such order, and IB never showed it: its placeOrder never arrived
            # (IB handles a client's messages in order, so it cannot still be on its way)
            self._finish(t, OrderStatus.CANCELLED, f"IB Gateway has no such order (10147): {text}")
            return
        log.warning("order %s: IB %d: %s", t.client_order_id, code, text)

    # ---- the gateway's word (raw taps, see hooks.py) ----------------------------------------------

    def raw_openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
        if order.whatIf:
            return
        own = order.clientId == self.config.client_id
        t = self._orders.find(order.orderRef, order.permId, orderId if own else None)
        if t is None:
            return
        self._orders.bind(t, order_id=orderId if own else None, perm_id=order.permId)
        t.seen = t.acked = True
        t.qty = convert.dec(order.totalQuantity)
        if order.orderType == "LMT" and convert.usable(order.lmtPrice):
            t.limit_price = convert.dec(order.lmtPrice)
        self._gateway_status(t, orderState.status, authoritative=False)

    def raw_orderStatus(self, orderId: int, status: str, filled: float, remaining: float, avgFillPrice: float,
                        permId: int, parentId: int, lastFillPrice: float, clientId: int, whyHeld: str,
                        mktCapPrice: float = 0.0) -> None:
        own = clientId == self.config.client_id
        t = self._orders.find("", permId, orderId if own else None)
        if t is None:
            return
        self._orders.bind(t, perm_id=permId)
        t.seen = t.acked = True
        self._gateway_status(t, status, authoritative=True)

    def raw_completedOrder(self, contract: Any, order: Any, orderState: Any) -> None:
        t = self._orders.find(order.orderRef, order.permId)
        if t is None:
            return
        self._orders.bind(t, perm_id=order.permId)
        t.seen = t.acked = True
        t.working_at_ib = False
        status, text = orderState.status, orderState.completedStatus
        t.gateway_status = status
        if status == "Filled":
            t.terminal = True
        elif status in convert.CANCELLED:
            self._finish(t, OrderStatus.CANCELLED, t.cancel_reason or text or "cancelled at IB", from_gateway=True)
        elif status == "Inactive":
            self._finish(t, OrderStatus.REJECTED, t.reject_reason or text or "inactive at IB", from_gateway=True)

    def _gateway_status(self, t: Tracked, status: str, *, authoritative: bool) -> None:
        t.gateway_status = status
        t.working_at_ib = status in convert.WORKING
        if t.terminal:
            return
        if status in convert.WORKING:
            if not (t.accepted_reported or t.fills_started or t.cancel_requested):
                t.accepted_reported = True
                self._outbox.put(t.client_order_id, OrderUpdate(
                    t.client_order_id, OrderStatus.ACCEPTED, self.clock.now(), str(t.perm_id) if t.perm_id else None))
        elif authoritative and status == "Filled":
            t.terminal = True  # done; the engine learns it from the executions, never from a status
        elif authoritative and status in convert.CANCELLED:
            self._finish(t, OrderStatus.CANCELLED, t.cancel_reason or "cancelled at IB", from_gateway=True)
        elif authoritative and status == "Inactive":
            if t.reject_reason is not None:
                self._finish(t, OrderStatus.REJECTED, t.reject_reason, from_gateway=True)
            else:
                log.warning("order %s is Inactive at IB without a rejection: left open", t.client_order_id)

    def raw_execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        eid = execution.execId
        if not eid or eid in self._execs or eid in self._pending:
            return
        own = execution.clientId == self.config.client_id
        t = self._orders.find(execution.orderRef, execution.permId, execution.orderId if own else None)
        if t is not None:
            self._orders.bind(t, perm_id=execution.permId)
            t.seen = t.acked = True
            t.fills_started = True
            coid = t.client_order_id
        else:
            coid = execution.orderRef or f"ib-perm-{execution.permId}"
        now = self.clock.now()
        self._pending[eid] = PendingExec(
            coid, convert.contract_symbol(contract), convert.side_of(execution.side), convert.dec(execution.shares),
            convert.dec(execution.price), convert.exec_time(execution.time, now),
            str(execution.permId) if execution.permId else None)
        self._outbox.hold(eid, coid)
        fill = self.ib.wrapper.fills.get(eid)
        if fill is not None and fill.commissionReport.execId == eid:
            self._complete_exec(eid, fill.commissionReport.commission)
        else:
            self._wait_for_commission(eid)

    def raw_commissionReport(self, commissionReport: Any) -> None:
        if commissionReport.execId in self._pending:
            self._complete_exec(commissionReport.execId, commissionReport.commission)

    def _wait_for_commission(self, eid: str) -> None:
        self._pending[eid].timer = self.clock.call_later(
            timedelta(seconds=self.config.commission_wait_seconds), lambda: self._commission_overdue(eid))

    def _complete_exec(self, eid: str, commission: float | None) -> None:
        p = self._pending.pop(eid)
        if p.timer is not None:
            p.timer.cancel()
        if commission is None or not convert.usable(commission):
            if commission is not None:
                log.warning("execution %s: IB sent no usable commission (%r): booked with 0", eid, commission)
            comm = ZERO
        else:
            comm = convert.dec(commission)
        ex = Execution(eid, p.client_order_id, p.symbol, p.side, p.qty, p.price, comm, p.ts, p.broker_order_id)
        self._execs[eid] = ex
        self._outbox.complete(eid, ex)

    def _commission_overdue(self, eid: str) -> None:
        if eid not in self._pending:
            return
        if not self._link.connected:  # the reconnect's execution request brings it
            self._wait_for_commission(eid)
            return
        self.stats.commission_timeouts += 1
        log.warning("execution %s: no commission report after %ss: booked with commission 0",
                    eid, self.config.commission_wait_seconds)
        self._complete_exec(eid, None)

    def _pending_symbols(self) -> set[str]:
        """Symbols with an execution not yet handed to the engine (waiting for its commission or in line)."""
        busy = {p.symbol for p in self._pending.values()}
        busy.update(r.symbol for r in self._outbox.undelivered() if isinstance(r, Execution))
        return busy
