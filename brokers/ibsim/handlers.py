"""Request handlers: what the gateway answers to each client->server message type.

``_dispatch`` routes a decoded message: order messages (or holds them, see ``faults``) to
``orders``, every other simulated request to its ``_h_*`` handler below, requests without data
here to the error a paper account without the subscription gets, the rest to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timezone
from typing import Any

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book
from brokers.ibsim.contracts import US_EXCHANGES, ContractInfo, valid_symbol
from brokers.ibsim.prices import PriceBook
from brokers.ibsim.state import SimExecution, SimState
from brokers.ibsim.transport import Conn

log = logging.getLogger("cockpit.ibsim")

_NO_SECDEF = "No security definition has been found for the request"
# Requests the simulator has no data for, answered with the error a paper account without
# the data subscription gets, so that a client's pending request ends instead of hanging.
_NO_DATA = {
    rq.REQ_HISTORICAL_DATA: (1, 162, "Historical Market Data Service error message:No market data permissions (simulator)"),
    rq.REQ_HEAD_TIMESTAMP: (1, 162, "Historical Market Data Service error message:No market data permissions (simulator)"),
    rq.REQ_HISTORICAL_TICKS: (1, 162, "Historical Market Data Service error message:No market data permissions (simulator)"),
    rq.REQ_REAL_TIME_BARS: (2, 354, "Requested market data is not subscribed (simulator)."),
    rq.REQ_TICK_BY_TICK_DATA: (1, 354, "Requested market data is not subscribed (simulator)."),
    rq.REQ_MKT_DEPTH: (2, 354, "Requested market data is not subscribed (simulator)."),
}
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
    _hold: Callable[[Conn, list[str]], bool]
    _order_message: Callable[[int, int, list[str]], None]
    _send_open_order: Callable[..., None]
    _send_quote: Callable[..., None]

    def _dispatch(self, conn: Conn, msg_id: int, fields: list[str]) -> None:
        assert conn.client_id is not None
        if msg_id in _ORDER_MESSAGES:
            if not self._hold(conn, fields):
                self._order_message(conn.client_id, conn.version, fields)
            return
        handler = self._handlers.get(msg_id)
        if handler is None:
            nodata = _NO_DATA.get(msg_id)
            if nodata is not None:
                pos, code, text = nodata
                req_id = int(fields[pos]) if len(fields) > pos and fields[pos].lstrip("-").isdigit() else -1
                conn.send(m.error(conn.version, req_id, code, text))
            else:
                log.info("client %s: request %d is not simulated; ignored", conn.client_id, msg_id)
            return
        try:
            handler(self, conn, fields)
        except (rq.BadRequest, IndexError, ValueError) as e:
            log.warning("client %s sent a malformed request %d: %s", conn.client_id, msg_id, e)
            conn.send(m.error(conn.version, -1, 320, f"Error reading request: message {msg_id}: {e}"))
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

    def _h_mkt_data(self, conn: Conn, fields: list[str]) -> None:
        req = rq.parse_mkt_data(fields)
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

    def _h_cancel_mkt_data(self, conn: Conn, fields: list[str]) -> None:
        conn.mkt.pop(int(fields[2]), None)

    def _visible(self, conn: Conn, client_id: int) -> bool:
        """Whether ``conn`` sees the orders/executions of ``client_id``: its own, or all as the master client."""
        return client_id == conn.client_id or (
            self.master_client_id is not None and conn.client_id == self.master_client_id
        )

    def _h_open_orders(self, conn: Conn, fields: list[str]) -> None:
        self._send_open_orders(conn, all_clients=False)

    def _h_all_open_orders(self, conn: Conn, fields: list[str]) -> None:
        self._send_open_orders(conn, all_clients=True)

    def _send_open_orders(self, conn: Conn, all_clients: bool) -> None:
        for order in self.book.working_orders():
            if all_clients or self._visible(conn, order.client_id):
                self._send_open_order(conn, order)
                conn.send(m.order_status(order))
        conn.send(m.open_order_end())

    def _h_completed_orders(self, conn: Conn, fields: list[str]) -> None:
        done = sorted((o for o in self.state.orders.values() if not o.working), key=lambda o: o.perm_id)
        for order in done:
            conn.send(m.completed_order(conn.version, order, self._contract(order.symbol)))
        conn.send(m.completed_orders_end())

    def _h_account_updates(self, conn: Conn, fields: list[str]) -> None:
        subscribe = fields[2] not in ("0", "")
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

    def _h_executions(self, conn: Conn, fields: list[str]) -> None:
        f = rq.parse_exec_filter(fields)
        for e in self.state.executions:
            if self._exec_matches(conn, e, f):
                c = self._contract(e.symbol)
                conn.send(m.exec_details(conn.version, f.req_id, e, c))
                conn.send(m.commission_report(e))
        conn.send(m.exec_details_end(f.req_id))

    def _h_ids(self, conn: Conn, fields: list[str]) -> None:
        conn.send(m.next_valid_id(self.state.next_valid_id))

    def _h_contract_details(self, conn: Conn, fields: list[str]) -> None:
        req_id, spec = rq.parse_contract_details_request(fields)
        c = self._resolve(spec)
        if c is None:
            conn.send(m.error(conn.version, req_id, 200, _NO_SECDEF))
            return
        exchange = spec.exchange if spec.exchange else "SMART"
        conn.send(m.contract_details(conn.version, req_id, c, exchange))
        conn.send(m.contract_details_end(req_id))
        self._save()

    def _h_auto_open_orders(self, conn: Conn, fields: list[str]) -> None:
        if conn.client_id != 0:
            conn.send(m.error(conn.version, -1, 321,
                              "Error validating request:-'a9' : cause - Only client id 0 can bind manual orders"))
            return
        conn.auto_open = fields[2] not in ("0", "")

    def _h_managed_accounts(self, conn: Conn, fields: list[str]) -> None:
        conn.send(m.managed_accounts([self.account]))

    def _h_current_time(self, conn: Conn, fields: list[str]) -> None:
        conn.send(m.current_time(self.clock()))

    def _h_market_data_type(self, conn: Conn, fields: list[str]) -> None:
        conn.market_data_type = int(fields[2])

    def _h_positions(self, conn: Conn, fields: list[str]) -> None:
        conn.positions = True
        for pos, *_ in self.book.portfolio():
            conn.send(m.position(self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_end())

    def _h_cancel_positions(self, conn: Conn, fields: list[str]) -> None:
        conn.positions = False

    def _h_account_summary(self, conn: Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        tags = frozenset(t.strip() for t in fields[4].split(",") if t.strip())
        conn.summaries[req_id] = tags
        for key, val, cur in self.book.account_values():
            if cur == "USD" and (key in tags or "All" in tags):
                conn.send(m.account_summary(req_id, self.account, key, val, cur))
        conn.send(m.account_summary_end(req_id))

    def _h_cancel_account_summary(self, conn: Conn, fields: list[str]) -> None:
        conn.summaries.pop(int(fields[2]), None)

    def _h_positions_multi(self, conn: Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        conn.pos_multi.add(req_id)
        for pos, *_ in self.book.portfolio():
            conn.send(m.position_multi(req_id, self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_multi_end(req_id))

    def _h_cancel_positions_multi(self, conn: Conn, fields: list[str]) -> None:
        conn.pos_multi.discard(int(fields[2]))

    def _h_account_updates_multi(self, conn: Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        conn.acct_multi.add(req_id)
        for key, val, cur in self.book.account_values():
            conn.send(m.account_update_multi(req_id, self.account, key, val, cur))
        conn.send(m.account_update_multi_end(req_id))

    def _h_cancel_account_updates_multi(self, conn: Conn, fields: list[str]) -> None:
        conn.acct_multi.discard(int(fields[2]))

    def _h_matching_symbols(self, conn: Conn, fields: list[str]) -> None:
        req_id = int(fields[1])
        pattern = fields[2].strip().upper()
        found = [self._contract(pattern)] if valid_symbol(pattern) else []
        conn.send(m.symbol_samples(conn.version, req_id, found))
        self._save()

    _handlers: dict[int, Callable[[Any, Conn, list[str]], None]] = {
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
        rq.REQ_PNL: lambda self, conn, fields: None,  # subscriptions the simulator never feeds
        rq.REQ_PNL_SINGLE: lambda self, conn, fields: None,
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
