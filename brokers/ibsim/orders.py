"""Order messages: placeOrder (new, modify, what-if), cancelOrder and reqGlobalCancel, and
the matching that follows an acceptance or a new quote.

Each order message is handled whole and then the state is saved, whether it came straight
from a session or was held and released (``faults``); answers go to the client id's
*current* session.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book, Fill, commission_for
from brokers.ibsim.contracts import ContractInfo
from brokers.ibsim.handlers import _NO_SECDEF
from brokers.ibsim.prices import PriceBook
from brokers.ibsim.state import SimOrder, SimState

log = logging.getLogger("cockpit.ibsim")


def _cut(text: str, limit: int = 40) -> str:
    """A client's own text echoed in an error, cut short: a megabyte of it is not echoed back."""
    return text if len(text) <= limit else f"{text[:limit]}..."


class OrderRequests:
    """Mixin of :class:`~brokers.ibsim.server.IBGatewaySim`: the order messages."""

    account: str
    state: SimState
    book: Book
    prices: PriceBook
    handler_errors: list[str]
    _refusals: deque[str]

    # provided by the other mixins
    _save: Callable[[], None]
    _to_client: Callable[[int, Callable[[int], list[object]]], None]
    _resolve: Callable[[rq.ContractSpec], ContractInfo | None]
    _send_order: Callable[[SimOrder], None]
    _send_fill: Callable[[Fill], None]

    def _order_message(self, client_id: int, msg: rq.ClientMessage) -> None:
        """placeOrder, cancelOrder or reqGlobalCancel, decoded (malformed ones were refused with 320)."""
        try:
            if isinstance(msg.body, rq.PlaceOrder):
                self._place_order(client_id, msg.body)
            elif isinstance(msg.body, rq.CancelOrder):
                self._cancel_request(client_id, msg.body.order_id)
            elif msg.msg_id == rq.REQ_GLOBAL_CANCEL:
                self._global_cancel()
            else:
                raise TypeError(f"message {msg.msg_id} is no order message")
        except Exception as e:
            log.exception("order message from client %s failed", client_id)
            self.handler_errors.append(f"order message {msg.msg_id}: {type(e).__name__}: {e}")
        self._save()

    def _reject(self, client_id: int, order_id: int, code: int, text: str) -> None:
        self._to_client(client_id, lambda v: m.error(v, order_id, code, text))

    def _place_order(self, client_id: int, req: rq.PlaceOrder) -> None:
        oid = req.order_id
        existing = self.state.find_order(client_id, oid)
        if req.what_if:
            self._what_if(client_id, req)
            return
        if existing is not None:
            if existing.working:
                self._modify(existing, req)
            else:
                self._reject(client_id, oid, 103, "Duplicate order id")
            return
        contract = self._resolve(req.contract)
        if contract is None:
            self._reject(client_id, oid, 200, _NO_SECDEF)
            return
        problem = self._order_problem(req)
        if problem is not None:
            code, text = problem
            self._reject(client_id, oid, code, text)
            return
        order = SimOrder(
            order_id=oid,
            client_id=client_id,
            perm_id=self.book.next_perm_id(),
            symbol=contract.symbol,
            con_id=contract.con_id,
            exchange=req.contract.exchange or "SMART",
            action=req.action,
            total_qty=req.total_qty,
            order_type=req.order_type,
            lmt_price=req.lmt_price if req.order_type == "LMT" else None,
            tif=req.tif,
            account=self.account,
            order_ref=req.order_ref,
            outside_rth=req.outside_rth,
        )
        refusal = self._refusals.popleft() if self._refusals else None
        self.book.add_order(order, live=refusal is None)
        if refusal is not None:
            reason = refusal
            self.book.finish(order, "Inactive", f"Rejected: {reason}")
            self._reject(client_id, oid, 201, f"Order rejected - reason:{reason}")
            self._send_order(order)
            return
        self._send_order(order)  # PreSubmitted
        order.status = "Submitted"
        self._to_client(client_id, lambda v: m.order_status(order))
        self._after_accept(order)

    def _order_problem(self, req: rq.PlaceOrder) -> tuple[int, str] | None:
        """What real IB would refuse about a new order (code, text), or None."""
        if req.account and req.account != self.account:
            return 201, f"Order rejected - reason:The account code {_cut(req.account)} is not managed by this login"
        if req.action not in ("BUY", "SELL"):
            return 201, f"Order rejected - reason:Invalid action {_cut(req.action)!r}"
        if req.total_qty <= 0:
            return 201, "Order rejected - reason:The order size must be positive"
        if req.order_type not in ("MKT", "LMT"):
            return 387, (f"Unsupported order type for this exchange and security type: {_cut(req.order_type)} "
                         "(the simulator has MKT and LMT)")
        if req.order_type == "LMT" and (req.lmt_price is None or req.lmt_price <= 0):
            return 201, "Order rejected - reason:A limit order needs a positive limit price"
        if req.tif not in ("DAY", "GTC", "IOC"):
            return 201, f"Order rejected - reason:Time in force {_cut(req.tif)} is not simulated (DAY, GTC, IOC)"
        if not req.transmit or req.parent_id or req.conditions:
            return 201, "Order rejected - reason:untransmitted, child and conditional orders are not simulated"
        return None

    def _after_accept(self, order: SimOrder) -> None:
        """An order just became (or stayed) live: fill what is marketable, expire IOC leftovers."""
        fill = self.book.match(order)
        if fill is not None:
            self._send_fill(fill)
        if order.working and order.tif == "IOC":
            self.book.finish(order, "Cancelled", "Cancelled: IOC remainder")
            self._send_order(order)

    def _modify(self, order: SimOrder, req: rq.PlaceOrder) -> None:
        contract = self._resolve(req.contract)
        bad = None
        if contract is None or contract.symbol != order.symbol or req.action != order.action:
            bad = "the contract or side differs"
        elif req.order_type != order.order_type:
            bad = f"the order type cannot change from {order.order_type} to {_cut(req.order_type)}"
        elif req.total_qty < order.filled or req.total_qty <= 0:
            bad = f"the quantity {req.total_qty} is below the filled {order.filled}"
        elif req.order_type == "LMT" and (req.lmt_price is None or req.lmt_price <= 0):
            bad = "a limit order needs a positive limit price"
        if bad is not None:
            self._reject(order.client_id, order.order_id, 105,
                         f"Order being modified does not match original order: {bad}")
            return
        order.total_qty = req.total_qty
        if order.order_type == "LMT":
            order.lmt_price = req.lmt_price
        order.tif = req.tif if req.tif in ("DAY", "GTC", "IOC") else order.tif
        order.order_ref = req.order_ref
        order.outside_rth = req.outside_rth
        if order.remaining <= 0:
            self.book.finish(order, "Filled")
        self._send_order(order)
        if order.working:
            self._after_accept(order)

    def _what_if(self, client_id: int, req: rq.PlaceOrder) -> None:
        contract = self._resolve(req.contract)
        if contract is None:
            self._reject(client_id, req.order_id, 200, _NO_SECDEF)
            return
        quote = self.prices.quote(contract.symbol)
        price = quote.ask if req.action == "BUY" else quote.bid
        notional = req.total_qty * price
        margin = (notional * Decimal("0.25")).quantize(Decimal("0.01"))
        rows = {r[0]: r[1] for r in self.book.account_values() if r[2] == "USD"}
        init_before = Decimal(rows["InitMarginReq"])
        ewl = rows["EquityWithLoanValue"]
        commission = commission_for(req.total_qty, price)
        what_if = {
            "initMarginBefore": format(init_before, "f"),
            "maintMarginBefore": format(init_before, "f"),
            "equityWithLoanBefore": ewl,
            "initMarginChange": format(margin, "f"),
            "maintMarginChange": format(margin, "f"),
            "equityWithLoanChange": format(-commission, "f"),
            "initMarginAfter": format(init_before + margin, "f"),
            "maintMarginAfter": format(init_before + margin, "f"),
            "equityWithLoanAfter": format(Decimal(ewl) - commission, "f"),
            "commission": format(commission, "f"),
            "minCommission": format(commission, "f"),
            "maxCommission": format(commission, "f"),
            "commissionCurrency": "USD",
        }
        probe = SimOrder(
            order_id=req.order_id, client_id=client_id, perm_id=0, symbol=contract.symbol,
            con_id=contract.con_id, exchange=req.contract.exchange or "SMART", action=req.action,
            total_qty=req.total_qty, order_type=req.order_type, lmt_price=req.lmt_price,
            tif=req.tif, account=self.account, order_ref=req.order_ref,
        )
        self._to_client(client_id, lambda v: m.open_order(v, probe, contract, "PreSubmitted", what_if))

    def _cancel_request(self, client_id: int, order_id: int) -> None:
        order = self.state.find_order(client_id, order_id)
        if order is None:
            self._reject(client_id, order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
        elif not order.working:
            self._reject(client_id, order_id, 10148,
                         f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.")
        else:
            self._cancel(order)

    def _cancel(self, order: SimOrder) -> None:
        self.book.finish(order, "Cancelled")
        self._send_order(order)
        self._reject(order.client_id, order.order_id, 202, "Order Canceled - reason:")

    def _global_cancel(self) -> None:
        for order in self.book.working_orders():
            self._cancel(order)

    def _match_symbol(self, symbol: str) -> int:
        """Fill what the new quote makes marketable; return how many fills there were."""
        n = 0
        for order in self.book.working_orders(symbol):
            fill = self.book.match(order)
            if fill is not None:
                self._send_fill(fill)
                n += 1
        return n
