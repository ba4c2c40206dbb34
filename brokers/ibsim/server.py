"""The IB Gateway simulator: a loopback TCP server speaking the TWS API wire protocol.

One :class:`IBGatewaySim` holds the account (``state``), the price paths and the order
book, accepts any number of API connections (one per client id), answers their requests
in the layout of each connection's negotiated server version, and exposes fault controls
(drop sockets, 1100/1101/1102, refuse an order, hold acks, partial fills, fills while
nobody is connected, restart with nextValidId rolled back, pacing) as plain async methods
so that tests and a curious user can rehearse what a real gateway does to a client.

Requests are handled synchronously as they arrive, one at a time, so that every
request sees the effects of the ones before it, exactly like TWS's single API thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book, Fill, commission_for
from brokers.ibsim.contracts import US_EXCHANGES, ContractInfo, valid_symbol
from brokers.ibsim.prices import PriceBook, Quote
from brokers.ibsim.state import SimExecution, SimOrder, SimState, StateError, load_state, save_state
from brokers.ibsim.wire import MAGIC, WireError, encode_fields, frame, parse_version_range, read_frame, split_payload

__all__ = ["IBGatewaySim", "Received", "SERVER_VERSION", "MIN_CLIENT_VERSION"]

log = logging.getLogger("cockpit.ibsim")

SERVER_VERSION = m.MAX_VERSION
MIN_CLIENT_VERSION = m.MIN_VERSION
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

STATUS_TEXT = {
    1100: "Connectivity between IBKR and Trader Workstation has been lost.",
    1101: "Connectivity between IBKR and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IBKR and Trader Workstation has been restored - data maintained.",
}
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
    _EXCHANGE_TZ = timezone.utc


@dataclass(frozen=True, slots=True)
class Received:
    """One message a client sent (after the handshake), for assertions."""

    client_id: int | None
    fields: list[str]
    at: float

    @property
    def msg_id(self) -> int:
        try:
            return int(self.fields[0])
        except (IndexError, ValueError):
            return -1


@dataclass(eq=False)
class _Conn:
    """One API connection."""

    writer: asyncio.StreamWriter
    peer: str
    version: int = 0
    client_id: int | None = None
    ready: bool = False
    closed: bool = False
    mkt: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    acct_updates: bool = False
    positions: bool = False
    acct_multi: set[int] = field(default_factory=set)
    pos_multi: set[int] = field(default_factory=set)
    summaries: dict[int, frozenset[str]] = field(default_factory=dict)
    auto_open: bool = False
    market_data_type: int = 1
    times: deque[float] = field(default_factory=deque)
    dropped: int = 0
    known: set[int] = field(default_factory=set)  # permIds this session has had an openOrder for

    def send(self, fields: list[object]) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(frame(encode_fields(fields)))

    def abort(self) -> None:
        """Drop the socket without a goodbye, as a crashing gateway or a network cut does."""
        self.closed = True
        self.writer.transport.abort()

    def close(self) -> None:
        """Close after what was written has gone out."""
        self.closed = True
        self.writer.close()


class IBGatewaySim:
    """A simulated IB Gateway on 127.0.0.1.

    ``state_path``: JSON file holding the account across restarts (``None``: in memory only).
    ``seed``: seeds every symbol's random walk. ``price_mode``: ``"walk"`` or ``"replay"``
    (bundled daily bars, for symbols that have them). ``pacing_limit``: messages per second
    a client may send before error 100 (``None`` turns pacing off);
    ``pacing_disconnect_after``: dropped messages after which the connection is closed
    (``None``: never). ``tick_interval``: seconds between automatic price steps (``None``:
    prices move only through :meth:`step_prices`/:meth:`set_price`, as tests want).
    """

    def __init__(
        self,
        state_path: str | Path | None = None,
        *,
        seed: int = 0,
        account: str = "DU1234567",
        initial_cash: Decimal | int | str = 1_000_000,
        price_mode: str = "walk",
        bundled_dir: Path | None = None,
        max_version: int = SERVER_VERSION,
        pacing_limit: int | None = 50,
        pacing_disconnect_after: int | None = 100,
        tick_interval: float | None = None,
        master_client_id: int | None = None,
        executions_today_only: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_CLIENT_VERSION <= max_version <= SERVER_VERSION:
            raise ValueError(f"max_version must be in {MIN_CLIENT_VERSION}..{SERVER_VERSION}")
        self.state_path = Path(state_path) if state_path is not None else None
        self.seed = seed
        self.account = account
        self.initial_cash = Decimal(str(initial_cash))
        self.price_mode = price_mode
        self.bundled_dir = bundled_dir
        self.max_version = max_version
        self.pacing_limit = pacing_limit
        self.pacing_disconnect_after = pacing_disconnect_after
        self.tick_interval = tick_interval
        self.master_client_id = master_client_id
        self.executions_today_only = executions_today_only
        self.clock = clock

        self.received: deque[Received] = deque(maxlen=50_000)  # the latest inbound messages
        self.handler_errors: list[str] = []  # simulator bugs: must stay empty
        self.save_errors: list[str] = []

        self._server: asyncio.Server | None = None
        self._port = 0
        self._conns: set[_Conn] = set()
        self._by_client: dict[int, _Conn] = {}
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._hold_acks = False
        self._held: deque[tuple[int, int, list[str]]] = deque()  # (clientId, version, fields)
        self._refusals: deque[str] = deque()
        self._link_up = True
        self._changed = asyncio.Event()
        self._load()

    # ================================================================== lifecycle

    def _load(self) -> None:
        st = load_state(self.state_path) if self.state_path is not None else None
        if st is None:
            st = SimState(account=self.account, cash=self.initial_cash)
        self.state = st
        self.account = st.account
        self.prices = PriceBook(self.seed, self.price_mode, self.bundled_dir)
        self.prices.restore(st.prices)
        self.book = Book(st, self.prices, self.clock)

    def _save(self) -> None:
        self.state.prices = self.prices.cursors()
        if self.state_path is None:
            return
        try:
            save_state(self.state_path, self.state)
        except StateError as e:
            log.error("%s", e)
            self.save_errors.append(str(e))

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`start`)."""
        return self._port

    @property
    def clients(self) -> list[int]:
        """Client ids with a live API session."""
        return sorted(cid for cid, c in self._by_client.items() if not c.closed)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (loopback only; port 0 picks a free one); return the port."""
        if host not in LOOPBACK:
            raise ValueError(f"the simulator listens on loopback only, not {host!r}")
        if self.state_path is not None:
            save_state(self.state_path, self.state)  # fail now, not at the first fill
        self._server = await asyncio.start_server(self._serve, host, port)
        self._port = self._server.sockets[0].getsockname()[1]
        if self.tick_interval:
            self._ticker = asyncio.create_task(self._auto_tick(self.tick_interval))
        log.info("IB Gateway simulator listening on %s:%d", host, self._port)
        return self._port

    async def stop(self) -> None:
        """Close every connection and the listener; the state file is already up to date."""
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        if self._server is not None:
            self._server.close()
        self._abort_all()
        if self._conn_tasks:
            await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._save()

    async def __aenter__(self) -> IBGatewaySim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _auto_tick(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.step_prices()
            except Exception:  # a bug here must not stop the ticker of a rehearsal
                log.exception("price step failed")

    # ================================================================== waiting

    def _notify(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every message and control."""

        async def until() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    def count_received(self, msg_id: int, client_id: int | None = None) -> int:
        """How many messages with ``msg_id`` arrived (from ``client_id``, if given)."""
        return sum(
            1 for r in self.received if r.msg_id == msg_id and (client_id is None or r.client_id == client_id)
        )

    async def wait_received(self, msg_id: int, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` messages with ``msg_id`` have arrived."""
        await self.wait_for(lambda: self.count_received(msg_id) >= count, timeout)

    # ================================================================== connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        peer = writer.get_extra_info("peername")
        conn = _Conn(writer=writer, peer=str(peer))
        self._conns.add(conn)
        try:
            if await self._handshake(reader, conn):
                while not conn.closed:
                    payload = await read_frame(reader)
                    if payload is None:
                        break
                    fields = split_payload(payload)
                    if fields:
                        self._on_message(conn, fields)
        except (WireError, ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            if not conn.closed:
                log.info("connection %s (client %s) ended: %s", conn.peer, conn.client_id, e)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a simulator bug: drop this connection, keep serving the others
            log.exception("connection %s (client %s) failed", conn.peer, conn.client_id)
            self.handler_errors.append(f"connection: {type(e).__name__}: {e}")
        finally:
            self._forget(conn)
            if not conn.closed:
                conn.close()
            if task is not None:
                self._conn_tasks.discard(task)
            self._notify()

    def _forget(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        if conn.client_id is not None and self._by_client.get(conn.client_id) is conn:
            del self._by_client[conn.client_id]

    def _abort_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
            self._forget(conn)
        self._notify()

    async def _handshake(self, reader: asyncio.StreamReader, conn: _Conn) -> bool:
        magic = await reader.readexactly(len(MAGIC))
        if magic != MAGIC:
            raise WireError(f"expected the API magic, got {magic!r}")
        payload = await read_frame(reader)
        if payload is None:
            return False
        announced = split_payload(payload)
        low, high = parse_version_range(announced[0] if announced else "")
        version = min(high, self.max_version)
        if version < max(low, MIN_CLIENT_VERSION):
            log.warning(
                "client %s announced v%d..%d; the simulator speaks v%d..%d: closing",
                conn.peer, low, high, MIN_CLIENT_VERSION, self.max_version,
            )
            conn.close()
            return False
        conn.version = version
        conn.send(m.handshake(version, self.clock()))
        return True

    def _client_conn(self, client_id: int) -> _Conn | None:
        c = self._by_client.get(client_id)
        return c if c is not None and not c.closed else None

    def _on_message(self, conn: _Conn, fields: list[str]) -> None:
        self.received.append(Received(conn.client_id, fields, self.clock()))
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s sent a message without an id: %r", conn.client_id, fields[:3])
            return
        try:
            if not self._pace(conn):
                return
            if msg_id == rq.START_API:
                self._start_api(conn, fields)
            elif not conn.ready:
                log.warning("client %s sent message %d before startApi: ignored", conn.peer, msg_id)
            elif self._hold_acks and msg_id in _ORDER_MESSAGES:
                assert conn.client_id is not None
                self._held.append((conn.client_id, conn.version, fields))
            else:
                self._dispatch(conn, msg_id, fields)
        finally:
            self._notify()

    def _pace(self, conn: _Conn) -> bool:
        """Enforce TWS's 50 messages/second: an excess message is answered with error 100 and dropped."""
        if self.pacing_limit is None:
            return True
        now = asyncio.get_running_loop().time()
        q = conn.times
        while q and now - q[0] >= 1.0:
            q.popleft()
        if len(q) < self.pacing_limit:
            q.append(now)
            return True
        conn.dropped += 1
        conn.send(m.error(
            conn.version, -1, 100,
            f"Max rate of messages per second has been exceeded:max={self.pacing_limit} rec={len(q) + 1} (1)",
        ))
        if self.pacing_disconnect_after is not None and conn.dropped >= self.pacing_disconnect_after:
            log.warning("client %s kept breaching the pacing limit: disconnecting", conn.client_id)
            conn.close()
            self._forget(conn)
        return False

    def _start_api(self, conn: _Conn, fields: list[str]) -> None:
        if conn.ready:
            return
        try:
            client_id = int(fields[2])
        except (IndexError, ValueError):
            conn.send(m.error(conn.version, -1, 320, f"Error reading request: startApi {fields[1:]!r}"))
            conn.close()
            return
        if self._client_conn(client_id) is not None:
            conn.send(m.error(
                conn.version, -1, 326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            ))
            conn.close()
            return
        conn.client_id = client_id
        conn.ready = True
        self._by_client[client_id] = conn
        conn.send(m.managed_accounts([self.account]))
        conn.send(m.next_valid_id(self.state.next_valid_id))
        if self._link_up:
            farms = [(2104, "Market data farm connection is OK:usfarm"),
                     (2106, "HMDS data farm connection is OK:ushmds"),
                     (2158, "Sec-def data farm connection is OK:secdefnj")]
        else:
            farms = [(2103, "Market data farm connection is broken:usfarm")]
        for code, text in farms:
            conn.send(m.error(conn.version, -1, code, text))
        log.info("client %d connected from %s at server version %d", client_id, conn.peer, conn.version)

    def _dispatch(self, conn: _Conn, msg_id: int, fields: list[str]) -> None:
        assert conn.client_id is not None
        if msg_id in _ORDER_MESSAGES:
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

    # ================================================================== sending helpers

    def _to_client(self, client_id: int, make: Callable[[int], list[object]]) -> None:
        """Send a (version-dependent) message to ``client_id``'s live session, if any."""
        conn = self._client_conn(client_id)
        if conn is not None:
            conn.send(make(conn.version))

    def _ready_conns(self) -> list[_Conn]:
        return [c for c in self._conns if c.ready and not c.closed]

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

    # ================================================================== orders

    def _order_message(self, client_id: int, version: int, fields: list[str]) -> None:
        msg_id = int(fields[0])
        try:
            if msg_id == rq.PLACE_ORDER:
                self._place_order(client_id, version, fields)
            elif msg_id == rq.CANCEL_ORDER:
                if len(fields) < 3 or not fields[2].lstrip("-").isdigit():
                    raise rq.BadRequest(f"cancelOrder without an order id: {fields[1:]!r}")
                self._cancel_request(client_id, int(fields[2]))
            else:
                self._global_cancel()
        except rq.BadRequest as e:
            order_id = int(fields[1]) if msg_id == rq.PLACE_ORDER and fields[1:2] and fields[1].isdigit() else -1
            text = f"Error reading request: {e}"
            log.warning("client %s sent a malformed order message: %s", client_id, e)
            self._to_client(client_id, lambda v: m.error(v, order_id, 320, text))
        except Exception as e:
            log.exception("order message from client %s failed", client_id)
            self.handler_errors.append(f"order message {msg_id}: {type(e).__name__}: {e}")
        self._save()

    def _reject(self, client_id: int, order_id: int, code: int, text: str) -> None:
        self._to_client(client_id, lambda v: m.error(v, order_id, code, text))

    def _place_order(self, client_id: int, version: int, fields: list[str]) -> None:
        req = rq.parse_place_order(fields, version)
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
            return 201, f"Order rejected - reason:The account code {req.account} is not managed by this login"
        if req.action not in ("BUY", "SELL"):
            return 201, f"Order rejected - reason:Invalid action {req.action!r}"
        if req.total_qty <= 0:
            return 201, "Order rejected - reason:The order size must be positive"
        if req.order_type not in ("MKT", "LMT"):
            return 387, f"Unsupported order type for this exchange and security type: {req.order_type} (the simulator has MKT and LMT)"
        if req.order_type == "LMT" and (req.lmt_price is None or req.lmt_price <= 0):
            return 201, "Order rejected - reason:A limit order needs a positive limit price"
        if req.tif not in ("DAY", "GTC", "IOC"):
            return 201, f"Order rejected - reason:Time in force {req.tif} is not simulated (DAY, GTC, IOC)"
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
            bad = f"the order type cannot change from {order.order_type} to {req.order_type}"
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

    def _send_open_order(self, conn: _Conn, order: SimOrder, status: str | None = None) -> None:
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

    # ================================================================== account pushes

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

    def _send_quote(self, conn: _Conn, req_id: int, q: Quote, first: bool) -> None:
        conn.send(m.tick_price(req_id, m.BID, q.bid, q.bid_size))
        conn.send(m.tick_price(req_id, m.ASK, q.ask, q.ask_size))
        conn.send(m.tick_price(req_id, m.LAST, q.last, q.last_size))
        conn.send(m.tick_size(req_id, m.VOLUME, q.volume))
        if first:
            conn.send(m.tick_price(req_id, m.CLOSE, q.close, 0))

    def _broadcast_quote(self, symbol: str, q: Quote) -> None:
        if not self._link_up:
            return
        for conn in self._ready_conns():
            for req_id, sym in list(conn.mkt.items()):
                if sym == symbol:
                    self._send_quote(conn, req_id, q, first=False)

    def _match_symbol(self, symbol: str) -> int:
        """Fill what the new quote makes marketable; return how many fills there were."""
        n = 0
        for order in self.book.working_orders(symbol):
            fill = self.book.match(order)
            if fill is not None:
                self._send_fill(fill)
                n += 1
        return n

    # ================================================================== request handlers

    def _h_mkt_data(self, conn: _Conn, fields: list[str]) -> None:
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

    def _h_cancel_mkt_data(self, conn: _Conn, fields: list[str]) -> None:
        conn.mkt.pop(int(fields[2]), None)

    def _visible(self, conn: _Conn, client_id: int) -> bool:
        """Whether ``conn`` sees the orders/executions of ``client_id``: its own, or all as the master client."""
        return client_id == conn.client_id or (
            self.master_client_id is not None and conn.client_id == self.master_client_id
        )

    def _h_open_orders(self, conn: _Conn, fields: list[str]) -> None:
        self._send_open_orders(conn, all_clients=False)

    def _h_all_open_orders(self, conn: _Conn, fields: list[str]) -> None:
        self._send_open_orders(conn, all_clients=True)

    def _send_open_orders(self, conn: _Conn, all_clients: bool) -> None:
        for order in self.book.working_orders():
            if all_clients or self._visible(conn, order.client_id):
                self._send_open_order(conn, order)
                conn.send(m.order_status(order))
        conn.send(m.open_order_end())

    def _h_completed_orders(self, conn: _Conn, fields: list[str]) -> None:
        done = sorted((o for o in self.state.orders.values() if not o.working), key=lambda o: o.perm_id)
        for order in done:
            conn.send(m.completed_order(conn.version, order, self._contract(order.symbol)))
        conn.send(m.completed_orders_end())

    def _h_account_updates(self, conn: _Conn, fields: list[str]) -> None:
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

    def _exec_matches(self, conn: _Conn, e: SimExecution, f: rq.ExecFilter) -> bool:
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

    def _h_executions(self, conn: _Conn, fields: list[str]) -> None:
        f = rq.parse_exec_filter(fields)
        for e in self.state.executions:
            if self._exec_matches(conn, e, f):
                c = self._contract(e.symbol)
                conn.send(m.exec_details(conn.version, f.req_id, e, c))
                conn.send(m.commission_report(e))
        conn.send(m.exec_details_end(f.req_id))

    def _h_ids(self, conn: _Conn, fields: list[str]) -> None:
        conn.send(m.next_valid_id(self.state.next_valid_id))

    def _h_contract_details(self, conn: _Conn, fields: list[str]) -> None:
        req_id, spec = rq.parse_contract_details_request(fields)
        c = self._resolve(spec)
        if c is None:
            conn.send(m.error(conn.version, req_id, 200, _NO_SECDEF))
            return
        exchange = spec.exchange if spec.exchange else "SMART"
        conn.send(m.contract_details(conn.version, req_id, c, exchange))
        conn.send(m.contract_details_end(req_id))
        self._save()

    def _h_auto_open_orders(self, conn: _Conn, fields: list[str]) -> None:
        if conn.client_id != 0:
            conn.send(m.error(conn.version, -1, 321,
                              "Error validating request:-'a9' : cause - Only client id 0 can bind manual orders"))
            return
        conn.auto_open = fields[2] not in ("0", "")

    def _h_managed_accounts(self, conn: _Conn, fields: list[str]) -> None:
        conn.send(m.managed_accounts([self.account]))

    def _h_current_time(self, conn: _Conn, fields: list[str]) -> None:
        conn.send(m.current_time(self.clock()))

    def _h_market_data_type(self, conn: _Conn, fields: list[str]) -> None:
        conn.market_data_type = int(fields[2])

    def _h_positions(self, conn: _Conn, fields: list[str]) -> None:
        conn.positions = True
        for pos, *_ in self.book.portfolio():
            conn.send(m.position(self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_end())

    def _h_cancel_positions(self, conn: _Conn, fields: list[str]) -> None:
        conn.positions = False

    def _h_account_summary(self, conn: _Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        tags = frozenset(t.strip() for t in fields[4].split(",") if t.strip())
        conn.summaries[req_id] = tags
        for key, val, cur in self.book.account_values():
            if cur == "USD" and (key in tags or "All" in tags):
                conn.send(m.account_summary(req_id, self.account, key, val, cur))
        conn.send(m.account_summary_end(req_id))

    def _h_cancel_account_summary(self, conn: _Conn, fields: list[str]) -> None:
        conn.summaries.pop(int(fields[2]), None)

    def _h_positions_multi(self, conn: _Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        conn.pos_multi.add(req_id)
        for pos, *_ in self.book.portfolio():
            conn.send(m.position_multi(req_id, self.account, pos, self._contract(pos.symbol)))
        conn.send(m.position_multi_end(req_id))

    def _h_cancel_positions_multi(self, conn: _Conn, fields: list[str]) -> None:
        conn.pos_multi.discard(int(fields[2]))

    def _h_account_updates_multi(self, conn: _Conn, fields: list[str]) -> None:
        req_id = int(fields[2])
        conn.acct_multi.add(req_id)
        for key, val, cur in self.book.account_values():
            conn.send(m.account_update_multi(req_id, self.account, key, val, cur))
        conn.send(m.account_update_multi_end(req_id))

    def _h_cancel_account_updates_multi(self, conn: _Conn, fields: list[str]) -> None:
        conn.acct_multi.discard(int(fields[2]))

    def _h_matching_symbols(self, conn: _Conn, fields: list[str]) -> None:
        req_id = int(fields[1])
        pattern = fields[2].strip().upper()
        found = [self._contract(pattern)] if valid_symbol(pattern) else []
        conn.send(m.symbol_samples(conn.version, req_id, found))
        self._save()

    _handlers: dict[int, Callable[[IBGatewaySim, _Conn, list[str]], None]] = {
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

    # ================================================================== controls: prices

    async def set_price(self, symbol: str, price: Decimal | float | str) -> Quote:
        """Move ``symbol``'s last price to ``price``; ticks go out and marketable orders fill."""
        q = self.prices.set_price(symbol.upper(), Decimal(str(price)))
        self._contract(symbol.upper())
        self._broadcast_quote(symbol.upper(), q)
        self._match_symbol(symbol.upper())
        self._save()
        self._notify()
        return q

    async def step_prices(self, n: int = 1, symbols: list[str] | None = None) -> dict[str, Quote]:
        """Advance the price paths ``n`` steps (all known symbols, or ``symbols``); return the last quotes."""
        out: dict[str, Quote] = {}
        targets = [s.upper() for s in symbols] if symbols else self.prices.symbols()
        fills = 0
        known = len(self.state.con_ids)
        for _ in range(n):
            for sym in targets:
                out[sym] = self.prices.step(sym)
                self._contract(sym)
                self._broadcast_quote(sym, out[sym])
                fills += self._match_symbol(sym)
        if fills or len(self.state.con_ids) != known:
            self._save()  # price cursors alone are saved with the next change (and at stop)
        self._notify()
        return out

    def quote(self, symbol: str) -> Quote:
        """The current quote of ``symbol`` (starting its path if new)."""
        return self.prices.quote(symbol.upper())

    # ================================================================== controls: orders and fills

    async def refuse_next_order(self, reason: str = "simulated rejection") -> None:
        """The next new order gets error 201 ``Order rejected - reason:<reason>`` and ends Inactive."""
        self._refusals.append(reason)

    async def partial_fill_next(self, qty: Decimal | int | str) -> None:
        """The next accepted order fills at most ``qty`` on its first match; the rest waits for a price step."""
        self.book.partial_next = Decimal(str(qty))

    async def set_liquidity(self, qty: Decimal | int | str | None) -> None:
        """At most ``qty`` shares per order per match from now on (``None``: unlimited)."""
        self.book.liquidity = None if qty is None else Decimal(str(qty))

    async def fill_order(
        self,
        perm_id: int | None = None,
        *,
        order_ref: str | None = None,
        qty: Decimal | int | str | None = None,
        price: Decimal | float | str | None = None,
    ) -> SimExecution:
        """Fill a working order now, whether or not its client is connected.

        Defaults: the whole remainder, at the limit price (LMT) or the touch (MKT).
        """
        order = self._find(perm_id, order_ref)
        if not order.working:
            raise ValueError(f"order permId {order.perm_id} is {order.status}, not working")
        if price is None:
            if order.lmt_price is not None:
                px = order.lmt_price
            else:
                q = self.prices.quote(order.symbol)
                px = q.ask if order.action == "BUY" else q.bid
        else:
            px = Decimal(str(price))
        fill = self.book.fill(order, order.remaining if qty is None else Decimal(str(qty)), px)
        self._send_fill(fill)
        self._save()
        self._notify()
        return fill.execution

    async def cancel_order(self, perm_id: int | None = None, *, order_ref: str | None = None) -> None:
        """Cancel a working order from the gateway side (as TWS's user or IB's risk desk would)."""
        order = self._find(perm_id, order_ref)
        if order.working:
            self._cancel(order)
        self._save()
        self._notify()

    def _find(self, perm_id: int | None, order_ref: str | None) -> SimOrder:
        for o in sorted(self.state.orders.values(), key=lambda o: -o.perm_id):
            if (perm_id is not None and o.perm_id == perm_id) or (order_ref is not None and o.order_ref == order_ref):
                return o
        raise KeyError(f"no order with permId {perm_id} / orderRef {order_ref!r}")

    def orders(self) -> list[SimOrder]:
        """Every order the gateway knows, oldest first."""
        return sorted(self.state.orders.values(), key=lambda o: o.perm_id)

    def executions(self) -> list[SimExecution]:
        return list(self.state.executions)

    def position(self, symbol: str) -> Decimal:
        pos = self.state.positions.get(symbol.upper())
        return pos.qty if pos is not None else Decimal(0)

    # ================================================================== controls: faults

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
            client_id, version, fields = self._held.popleft()
            self._order_message(client_id, version, fields)
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
    return dt.replace(tzinfo=timezone.utc).timestamp()
