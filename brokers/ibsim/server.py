"""The IB Gateway simulator: a loopback TCP server speaking the TWS API wire protocol.

One :class:`IBGatewaySim` holds the account (``state``), the price paths and the order
book, accepts any number of API connections (one per client id), answers their requests
in the layout of each connection's negotiated server version, and exposes fault controls
(drop sockets, 1100/1101/1102, refuse an order, hold acks, partial fills, fills while
nobody is connected, restart with nextValidId rolled back, pacing) as plain async methods
so that tests and a curious user can rehearse what a real gateway does to a client.

Requests are handled synchronously as they arrive, one at a time, so that every
request sees the effects of the ones before it, exactly like TWS's single API thread.

The parts are mixins over one shared state, one job each: ``transport`` (listener, framing,
sessions, pacing), ``handlers`` (the answer to each request type), ``orders`` (order
messages and matching), ``pushes`` (unsolicited messages) and ``faults`` (fault controls).
This module holds the state and the lifecycle, and the price and order controls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.book import Book
from brokers.ibsim.faults import STATUS_TEXT, FaultControls
from brokers.ibsim.handlers import RequestHandlers
from brokers.ibsim.orders import OrderRequests
from brokers.ibsim.prices import PriceBook, Quote
from brokers.ibsim.pushes import Pushes
from brokers.ibsim.state import (
    SimExecution,
    SimOrder,
    SimState,
    StateError,
    load_state,
    save_state,
)
from brokers.ibsim.transport import MIN_CLIENT_VERSION, Conn, Received, Transport

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "MIN_CLIENT_VERSION",
    "SERVER_VERSION",
    "STATUS_TEXT",
    "IBGatewaySim",
    "Received",
]

log = logging.getLogger("cockpit.ibsim")

SERVER_VERSION = m.MAX_VERSION
# ib_async completes the handshake in milliseconds; 10 s leaves a loaded machine ample room.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# TWS and IB Gateway take up to 32 API clients; sockets still in their handshake count here too.
DEFAULT_MAX_CONNECTIONS = 64
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class IBGatewaySim(FaultControls, OrderRequests, RequestHandlers, Pushes, Transport):
    """A simulated IB Gateway on 127.0.0.1.

    ``state_path``: JSON file holding the account across restarts (``None``: in memory only).
    ``seed``: seeds every symbol's random walk. ``price_mode``: ``"walk"`` or ``"replay"``
    (bundled daily bars, for symbols that have them). ``pacing_limit``: messages per second
    a client may send before error 100 (``None`` turns pacing off);
    ``pacing_disconnect_after``: dropped messages after which the connection is closed
    (``None``: never). ``tick_interval``: seconds between automatic price steps (``None``:
    prices move only through :meth:`step_prices`/:meth:`set_price`, as tests want).
    ``handshake_timeout``: seconds a new socket has to complete the API handshake (magic,
    version, startApi) before it is closed (``None``: no limit); a started session may stay
    idle. ``max_connections``: sockets open at once, handshaking or not; more are closed on
    arrival (``None``: no limit).
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
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_CLIENT_VERSION <= max_version <= SERVER_VERSION:
            raise ValueError(f"max_version must be in {MIN_CLIENT_VERSION}..{SERVER_VERSION}")
        if handshake_timeout is not None and not 0 < handshake_timeout <= 86400:  # also refuses nan
            raise ValueError(f"handshake_timeout must be None or 0 < seconds <= 86400, not {handshake_timeout}")
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections must be None or at least 1, not {max_connections}")
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
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections
        self.refused_connections = 0  # sockets closed on arrival because max_connections were open
        self._refused_at_limit = 0
        self.clock = clock

        self.received: deque[Received] = deque(maxlen=50_000)  # the latest inbound messages
        self.handler_errors: list[str] = []  # simulator bugs: must stay empty
        self.save_errors: list[str] = []

        self._server: asyncio.Server | None = None
        self._port = 0
        self._conns: set[Conn] = set()
        self._by_client: dict[int, Conn] = {}
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._hold_acks = False
        self._held: deque[tuple[int, rq.ClientMessage]] = deque()  # (clientId, the order message)
        self._refusals: deque[str] = deque()
        self._link_up = True
        self.quote_fault: str | None = None  # "crossed" or "spike": market data goes bad (orders fill as before)
        self._changed = asyncio.Event()
        self._load()

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
