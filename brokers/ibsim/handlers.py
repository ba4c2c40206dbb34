"""Request handlers: what the gateway answers to each client->server message type.

``_dispatch`` routes a decoded message: order messages (or holds them, see ``faults``) to
``orders``, every other simulated request to its ``_h_*`` handler below, requests without data
here to the error a paper account without the subscription gets, the rest to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timezone
from typing import Any, TypeVar

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book
from brokers.ibsim.contracts import US_EXCHANGES, ContractInfo, valid_symbol
from brokers.ibsim.prices import PriceBook
from brokers.ibsim.state import SimExecution, SimState
from brokers.ibsim.transport import Conn

log = logging.getLogger("cockpit.ibsim")

_NO_SECDEF = "No security definition has been found for the request"
_NO_HMDS = (162, "Historical Market Data Service error message:No market data permissions (simulator)")
_NOT_SUBSCRIBED = (354, "Requested market data is not subscribed (simulator).")
# Requests the simulator has no data for, answered with the error a paper account without
# the data subscription gets, so that a client's pending request ends instead of hanging.
_NO_DATA = {
    rq.REQ_HISTORICAL_DATA: _NO_HMDS,
    rq.REQ_HEAD_TIMESTAMP: _NO_HMDS,
    rq.REQ_HISTORICAL_TICKS: _NO_HMDS,
    rq.REQ_REAL_TIME_BARS: _NOT_SUBSCRIBED,
    rq.REQ_TICK_BY_TICK_DATA: _NOT_SUBSCRIBED,
    rq.REQ_MKT_DEPTH: _NOT_SUBSCRIBED,
}
_B = TypeVar("_B")


def _body(msg: rq.ClientMessage, kind: type[_B]) -> _B:
    """The decoded body of ``msg`` (``decode_fields`` made it; a mismatch is a simulator bug)."""
    if not isinstance(msg.body, kind):
        raise TypeError(f"message {msg.msg_id} decoded as {type(msg.body).__name__}, not {kind.__name__}")
    return msg.body
_ORDER_MESSAGES = frozenset({rq.PLACE_ORDER, rq.CANCEL_ORDER, rq.REQ_GLOBAL_CANCEL})

try:
    from zoneinfo import ZoneInfo

    _EXCHANGE_TZ: timezone | ZoneInfo = ZoneInfo("America/New_York")
except Exception:  # no tz database: the trading day falls back to UTC
    _EXCHANGE_TZ = UTC


class RequestHandlers:
    """Mixin of :class:`~brokers.ibsim.server.IBGatewaySim`: the answers to requests, per message type."""

    account: str
    state: SimState
    book: Book
    prices: PriceBook
    master_client_id: int | None
    executions_today_only: bool
    clock: Callable[[], float]
    handler_errors: list[str]
    _link_up: bool

    # provided by the other mixins
    _save: Callable[[], None]
    _hold: Callable[[Conn, rq.ClientMessage], bool]
    _order_message: Callable[[int, rq.ClientMessage], None]
    _send_open_order: Callable[..., None]
    _send_quote: Callable[..., None]

    def _dispatch(self, conn: Conn, msg: rq.ClientMessage) -> None:
        """Answer one decoded request of a started session (``decode_fields`` refused the malformed)."""
        assert conn.client_id is not None
        msg_id = msg.msg_id
        if msg_id in _ORDER_MESSAGES:
            if not self._hold(conn, msg):
                self._order_message(conn.client_id, msg)
            return
        handler = self._handlers.get(msg_id)
        try:
            if handler is not None:
                handler(self, conn, msg)
            elif msg_id in _NO_DATA:
                code, text = _NO_DATA[msg_id]
                conn.send(m.error(conn.version, _body(msg, rq.ReqId).req_id, code, text))
            else:
                log.info("client %s: request %d is not simulated; ignored", conn.client_id, msg_id)
        except Exception as e:
            log.exception("request %d from client %s failed", msg_id, conn.client_id)
            self.handler_errors.append(f"request {msg_id}: {type(e).__name__}: {e}")

    def _contract(self, symbol: str) -> ContractInfo:
        return self.book.contract(symbol)

    def _resolve(self, spec: rq.ContractSpec) -> ContractInfo | None:
        """The stock a request names, or None if it is not a US stock on SMART/USD."""
        if spec.sec_type not in ("", "STK") or spec.currency not in ("", "USD"):
            return None
        if spec.exchange not in US_EXCHANGES or spec.primary_exchange not in US_EXCHANGES:
            return None
        if spec.con_id:
            symbol = self.book.symbol_for_con_id(spec.con_id)
            if symbol is None or (spec.symbol and spec.symbol != symbol):
                return None
        else:
            symbol = spec.symbol or spec.local_symbol
        if not valid_symbol(symbol):
            return None
        return self._contract(symbol)

    def _h_mkt_data(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req = _body(msg, rq.MktDataRequest)
        c = self._resolve(req.contract)
        if c is None:
            conn.send(m.error(conn.version, req.req_id, 200, _NO_SECDEF))
            return
        conn.send(m.tick_req_params(req.req_id))
        if conn.market_data_type != 1:
            conn.send(m.market_data_type(req.req_id, 1))  # real-time is always available here
        if self._link_up:
            self._send_quote(conn, req.req_id, self.prices.quote(c.symbol), first=True)
        if req.snapshot:
            conn.send(m.tick_snapshot_end(req.req_id))
        else:
            conn.mkt[req.req_id] = c.symbol
        self._save()  # a new symbol's conId and price path

    def _h_cancel_mkt_data(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.mkt.pop(_body(msg, rq.ReqId).req_id, None)

    def _visible(self, conn: Conn, client_id: int) -> bool:
        """Whether ``conn`` sees the orders/executions of ``client_id``: its own, or all as the master client."""
        return client_id == conn.client_id or (
            self.master_client_id is not None and conn.client_id == self.master_client_id
        )

    def _h_open_orders(self, conn: Conn, msg: rq.ClientMessage) -> None:
        self._send_open_orders(conn, all_clients=False)

    def _h_all_open_orders(self, conn: Conn, msg: rq.ClientMessage) -> None:
        self._send_open_orders(conn, all_clients=True)

    def _send_open_orders(self, conn: Conn, all_clients: bool) -> None:
        for order in self.book.working_orders():
            if all_clients or self._visible(conn, order.client_id):
                self._send_open_order(conn, order)
                conn.send(m.order_status(order))
        conn.send(m.open_order_end())

    def _h_completed_orders(self, conn: Conn, msg: rq.ClientMessage) -> None:
        done = sorted((o for o in self.state.orders.values() if not o.working), key=lambda o: o.perm_id)
        for order in done:
            conn.send(m.completed_order(conn.version, order, self._contract(order.symbol)))
        conn.send(m.completed_orders_end())

    def _h_account_updates(self, conn: Conn, msg: rq.ClientMessage) -> None:
        subscribe = _body(msg, rq.AccountUpdates).subscribe
        conn.acct_updates = subscribe
        if not subscribe:
            return
        for key, val, cur in self.book.account_values():
            conn.send(m.account_value(key, val, cur, self.account))
        for pos, mark, value, unreal in self.book.portfolio():
            conn.send(m.portfolio_value(pos, self._contract(pos.symbol), mark, value, unreal, self.account))
        conn.send(m.account_time(self.clock()))
        conn.send(m.account_download_end(self.account))

    def _exec_matches(self, conn: Conn, e: SimExecution, f: rq.ExecFilter) -> bool:
        if not self._visible(conn, e.client_id):
            return False
        if f.client_id and e.client_id != f.client_id:
            return False
        if f.account and f.account != e.account:
            return False
        if f.symbol and f.symbol != e.symbol:
            return False
        if f.sec_type and f.sec_type != "STK":
            return False
        if f.exchange and f.exchange not in (e.exchange, "SMART"):
            return False
        if f.side and {"BUY": "BOT", "SELL": "SLD"}.get(f.side, f.side) != e.side:
            return False
        if f.time:
            since = _parse_filter_time(f.time)
            if since is not None and e.time < since:
                return False
        if self.executions_today_only:
            today = datetime.fromtimestamp(self.clock(), _EXCHANGE_TZ).date()
            if datetime.fromtimestamp(e.time, _EXCHANGE_TZ).date() != today:
                return False
        return True

    def _h_executions(self, conn: Conn, msg: rq.ClientMessage) -> None:
        f = _body(msg, rq.ExecFilter)
        for e in self.state.executions:
            if self._exec_matches(conn, e, f):
                c = self._contract(e.symbol)
                conn.send(m.exec_details(conn.version, f.req_id, e, c))
                conn.send(m.commission_report(e))
        conn.send(m.exec_details_end(f.req_id))

    def _h_ids(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.send(m.next_valid_id(self.state.next_valid_id))

    def _h_contract_details(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req = _body(msg, rq.ContractDetailsRequest)
        req_id, spec = req.req_id, req.contract
        c = self._resolve(spec)
        if c is None:
            conn.send(m.error(conn.version, req_id, 200, _NO_SECDEF))
            return
        exchange = spec.exchange if spec.exchange else "SMART"
        conn.send(m.contract_details(conn.version, req_id, c, exchange))
        conn.send(m.contract_details_end(req_id))
        self._save()

    def _h_auto_open_orders(self, conn: Conn, msg: rq.ClientMessage) -> None:
        if conn.client_id != 0:
            conn.send(m.error(conn.version, -1, 321,
                              "Error validating request:-'a9' : cause - Only client id 0 can bind manual orders"))
            return
        conn.auto_open = _body(msg, rq.Flag).on

    def _h_managed_accounts(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.send(m.managed_accounts([self.account]))

    def _h_current_time(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.send(m.current_time(self.clock()))

    def _h_market_data_type(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.market_data_type = _body(msg, rq.MarketDataType).kind

    def _h_positions(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.positions = True
        for pos, *_ in self.book.portfolio():
            conn.send(m.position(self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_end())

    def _h_cancel_positions(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.positions = False

    def _h_account_summary(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req = _body(msg, rq.AccountSummary)
        req_id, tags = req.req_id, req.tags
        conn.summaries[req_id] = tags
        for key, val, cur in self.book.account_values():
            if cur == "USD" and (key in tags or "All" in tags):
                conn.send(m.account_summary(req_id, self.account, key, val, cur))
        conn.send(m.account_summary_end(req_id))

    def _h_cancel_account_summary(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.summaries.pop(_body(msg, rq.ReqId).req_id, None)

    def _h_positions_multi(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req_id = _body(msg, rq.ReqId).req_id
        conn.pos_multi.add(req_id)
        for pos, *_ in self.book.portfolio():
            conn.send(m.position_multi(req_id, self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_multi_end(req_id))

    def _h_cancel_positions_multi(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.pos_multi.discard(_body(msg, rq.ReqId).req_id)

    def _h_account_updates_multi(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req_id = _body(msg, rq.ReqId).req_id
        conn.acct_multi.add(req_id)
        for key, val, cur in self.book.account_values():
            conn.send(m.account_update_multi(req_id, self.account, key, val, cur))
        conn.send(m.account_update_multi_end(req_id))

    def _h_cancel_account_updates_multi(self, conn: Conn, msg: rq.ClientMessage) -> None:
        conn.acct_multi.discard(_body(msg, rq.ReqId).req_id)

    def _h_matching_symbols(self, conn: Conn, msg: rq.ClientMessage) -> None:
        req = _body(msg, rq.MatchingSymbols)
        req_id, pattern = req.req_id, req.pattern
        found = [self._contract(pattern)] if valid_symbol(pattern) else []
        conn.send(m.symbol_samples(conn.version, req_id, found))
        self._save()

    _handlers: dict[int, Callable[[Any, Conn, rq.ClientMessage], None]] = {
        rq.REQ_MKT_DATA: _h_mkt_data,
        rq.CANCEL_MKT_DATA: _h_cancel_mkt_data,
        rq.REQ_OPEN_ORDERS: _h_open_orders,
        rq.REQ_ACCT_DATA: _h_account_updates,
        rq.REQ_EXECUTIONS: _h_executions,
        rq.REQ_IDS: _h_ids,
        rq.REQ_CONTRACT_DATA: _h_contract_details,
        rq.REQ_AUTO_OPEN_ORDERS: _h_auto_open_orders,
        rq.REQ_ALL_OPEN_ORDERS: _h_all_open_orders,
        rq.REQ_MANAGED_ACCTS: _h_managed_accounts,
        rq.REQ_CURRENT_TIME: _h_current_time,
        rq.REQ_MARKET_DATA_TYPE: _h_market_data_type,
        rq.REQ_POSITIONS: _h_positions,
        rq.REQ_ACCOUNT_SUMMARY: _h_account_summary,
        rq.CANCEL_ACCOUNT_SUMMARY: _h_cancel_account_summary,
        rq.CANCEL_POSITIONS: _h_cancel_positions,
        rq.REQ_POSITIONS_MULTI: _h_positions_multi,
        rq.CANCEL_POSITIONS_MULTI: _h_cancel_positions_multi,
        rq.REQ_ACCOUNT_UPDATES_MULTI: _h_account_updates_multi,
        rq.CANCEL_ACCOUNT_UPDATES_MULTI: _h_cancel_account_updates_multi,
        rq.REQ_MATCHING_SYMBOLS: _h_matching_symbols,
        rq.REQ_COMPLETED_ORDERS: _h_completed_orders,
        rq.REQ_PNL: lambda self, conn, msg: None,  # subscriptions the simulator never feeds
        rq.REQ_PNL_SINGLE: lambda self, conn, msg: None,
    }


def _parse_filter_time(text: str) -> float | None:
    """An execution filter's ``yyyymmdd hh:mm:ss`` (taken as UTC; a zone suffix is ignored)."""
    t = text.strip().replace("-", " ")
    parts = t.split()
    if len(parts) < 2:
        return None
    try:
        dt = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y%m%d %H:%M:%S")
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC).timestamp()
