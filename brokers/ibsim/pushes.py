"""Pushes: what the gateway sends unasked, to the sessions that should hear it.

Order state changes to the owner's session (openOrder + orderStatus, as TWS reports every
change), fills (execDetails, openOrder, orderStatus, commissionReport), account and position
updates to their subscribers, and ticks to market-data subscribers while IB's link is up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

from brokers.ibsim import messages as m
from brokers.ibsim.book import Book, Fill
from brokers.ibsim.contracts import ContractInfo
from brokers.ibsim.prices import Quote
from brokers.ibsim.state import SimOrder
from brokers.ibsim.transport import Conn


class Pushes:
    """Mixin of :class:`~brokers.ibsim.server.IBGatewaySim`: unsolicited messages."""

    account: str
    book: Book
    clock: Callable[[], float]
    _link_up: bool

    # provided by the other mixins
    _contract: Callable[[str], ContractInfo]
    _client_conn: Callable[[int], Conn | None]
    _ready_conns: Callable[[], list[Conn]]

    def _send_open_order(self, conn: Conn, order: SimOrder, status: str | None = None) -> None:
        conn.send(m.open_order(conn.version, order, self._contract(order.symbol), status))
        conn.known.add(order.perm_id)

    def _send_order(self, order: SimOrder) -> None:
        """openOrder + orderStatus to the owner's session, as TWS reports every state change."""
        conn = self._client_conn(order.client_id)
        if conn is not None:
            self._send_open_order(conn, order)
            conn.send(m.order_status(order))

    def _send_fill(self, fill: Fill) -> None:
        """execDetails, openOrder, orderStatus, commissionReport to the owner; account pushes to all."""
        order, e = fill.order, fill.execution
        conn = self._client_conn(order.client_id)
        if conn is not None:
            if order.perm_id not in conn.known:
                # A session that has not heard of this order (it was placed by an earlier
                # session of this client id and not re-requested) first gets it as open,
                # so that the fill attaches to a trade, as TWS re-reports orders it binds.
                self._send_open_order(conn, order, "Submitted")
            conn.send(m.exec_details(conn.version, -1, e, self._contract(order.symbol)))
            self._send_order(order)
            conn.send(m.commission_report(e))
        self._push_account(order.symbol)

    def _push_account(self, symbol: str | None = None) -> None:
        """After a fill: portfolio/account rows to reqAccountUpdates subscribers, positions to reqPositions."""
        conns = self._ready_conns()
        if not conns:
            return
        values = self.book.account_values()
        portfolio = [r for r in self.book.portfolio() if symbol is None or r[0].symbol == symbol]
        now = self.clock()
        for conn in conns:
            if conn.acct_updates:
                for pos, mark, value, unreal in portfolio:
                    conn.send(m.portfolio_value(pos, self._contract(pos.symbol), mark, value, unreal, self.account))
                for key, val, cur in values:
                    conn.send(m.account_value(key, val, cur, self.account))
                conn.send(m.account_time(now))
            if conn.positions:
                for pos, *_ in portfolio:
                    conn.send(m.position(self.account, pos, self._contract(pos.symbol)))
            for req_id in conn.pos_multi:
                for pos, *_ in portfolio:
                    conn.send(m.position_multi(req_id, self.account, pos, self._contract(pos.symbol)))
            for req_id in conn.acct_multi:
                for key, val, cur in values:
                    conn.send(m.account_update_multi(req_id, self.account, key, val, cur))

    # ================================================================== market data
    quote_fault: str | None

    def _send_quote(self, conn: Conn, req_id: int, q: Quote, first: bool) -> None:
        # Bid and ask are two messages: a client may act between them. Moving up, the ask goes
        # first (and moving down the bid), so the book in between is wider, never crossed.
        bid, ask = m.tick_price(req_id, m.BID, q.bid, q.bid_size), m.tick_price(req_id, m.ASK, q.ask, q.ask_size)
        rising = q.bid > conn.last_bid.get(req_id, q.bid)
        conn.last_bid[req_id] = q.bid
        for tick in ((ask, bid) if rising else (bid, ask)):
            conn.send(tick)
        conn.send(m.tick_price(req_id, m.LAST, q.last, q.last_size))
        conn.send(m.tick_size(req_id, m.VOLUME, q.volume))
        if first:
            conn.send(m.tick_price(req_id, m.CLOSE, q.close, 0))

    def _broadcast_quote(self, symbol: str, q: Quote) -> None:
        if not self._link_up:
            return
        if self.quote_fault is not None:
            q = corrupt(q, self.quote_fault)
        for conn in self._ready_conns():
            for req_id, sym in list(conn.mkt.items()):
                if sym == symbol:
                    self._send_quote(conn, req_id, q, first=False)


QUOTE_FAULTS = ("crossed", "spike")


def corrupt(q: Quote, fault: str) -> Quote:
    """What a broken data line sends: a crossed book (bid above ask) or every price x10."""
    if fault == "crossed":
        return dataclasses.replace(q, bid=q.ask + Decimal("0.05"), ask=q.bid)
    ten = Decimal(10)
    return dataclasses.replace(q, bid=q.bid * ten, ask=q.ask * ten, last=q.last * ten)
