"""The IBKR broker: orders and fills through IB Gateway with ib_async's async API, on the engine's loop.

What it guarantees the engine:
- every order carries its client order id as IB's ``orderRef`` and is tracked by permId;
  order ids never repeat (see ``order_ids``);
- every execution is reported exactly once (keyed by IB's execId), with its final
  commission, including fills that happened while the socket was down (``reports``);
- only IB's orderStatus (Cancelled/ApiCancelled, Inactive after a 201) and completed
  orders make an order CANCELLED or REJECTED, never ib_async's ``Trade.isDone()``;
- outgoing messages stay under IB's 50/s (``throttle``);
- after every connect (and after IB's 1101/1102) the state is re-read and reconciled before
  anything new is sent; until then ``place`` refuses (``sync``, ``sending``).

This module is the facade: it builds the shared state, owns the lifecycle (connect,
disconnect) and answers the engine's queries; each job lives in its own mixin (``sync``,
``sending``, ``reports``, ``feed.QuoteSubscriptions``) and the connection state in ``link``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract

from brokers.ibkr import convert, hooks
from brokers.ibkr.backoff import Backoff
from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.feed import QuoteSubscriptions
from brokers.ibkr.link import STATUS_TEXT, ConnectionCallback, Link, LinkState
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.outbox import Outbox
from brokers.ibkr.redact import remember_accounts
from brokers.ibkr.reports import PendingExec, Reports
from brokers.ibkr.sending import Action, Sending
from brokers.ibkr.session import Supervisor
from brokers.ibkr.stats import Stats
from brokers.ibkr.sync import SessionSync
from brokers.ibkr.throttle import Throttle
from brokers.ibkr.tracking import OrderBook, Tracked
from core.common.clock import Clock
from core.domain.model import (
    ZERO,
    AccountSnapshot,
    BrokerPosition,
    Execution,
    Order,
    OrderStatus,
    OrderUpdate,
)
from core.execution.broker import Broker

__all__ = ["IbkrBroker", "LinkState", "Stats"]

log = logging.getLogger("cockpit.ibkr")

Sleep = Callable[[float], Awaitable[None]]

#: ib_async's own limiter, kept as a backstop below IB's 50/s for messages it sends by itself.
IB_ASYNC_BACKSTOP = 49


class IbkrBroker(SessionSync, Sending, Reports, QuoteSubscriptions, Broker):
    kind = "ibkr"
    records_in_engine_store = False

    def __init__(self, config: IbkrConfig, clock: Clock, *, rng: random.Random | None = None,
                 sleep: Sleep = asyncio.sleep, on_connection_change: ConnectionCallback | None = None,
                 ib_factory: Callable[[], IB] = IB,
                 on_reconnect_failed: Callable[[int, str, float], None] | None = None) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.window = config.window
        self.stats = Stats()
        self._link = Link(on_connection_change)
        self.on_pacing_violation: Callable[[str], None] | None = None  # IB's 100: recorded for the go-live check
        self._on_reconnect_failed = on_reconnect_failed  # (attempt, reason, next delay): the alerts' retry counter
        self._ib_factory = ib_factory
        self._ib: IB | None = None
        self._orders = OrderBook()
        self._outbox = Outbox(self._report)
        self._pending: dict[str, PendingExec] = {}
        self._execs: dict[str, Execution] = {}
        self._deferred: list[tuple[str, OrderUpdate]] = []
        self._queue: deque[Action] = deque()
        self._wake = asyncio.Event()
        self._sending = False
        self._throttle = Throttle(config.max_messages_per_second)
        self._ids = OrderIdAllocator(config.id_state_file, config.client_id)
        self._contracts: dict[str, Contract] = {}
        self._md_symbols: dict[str, None] = {}  # an ordered set
        self._lost = asyncio.Event()
        self._sleep = sleep
        self._supervisor_backoff = Backoff(config.reconnect_min_seconds, config.reconnect_max_seconds,
                                           rng or random.Random())
        self._supervisor = Supervisor(
            connect_once=self._connect_once, lost=self._lost, backoff=self._supervisor_backoff,
            sleep=sleep, describe=self._describe_failure, on_failed_attempt=self._on_failed_attempt,
            start_wait=config.start_wait_seconds,
        )
        self._supervisor_task: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_again: int | None = None
        self._refused: asyncio.Future[str] | None = None
        self._foreign_positions_logged: set[tuple[object, ...]] = set()
        self._open_orders_lock = asyncio.Lock()
        self._in_sync = False  # terminal statuses from the gateway are deferred behind this sync's fills
        self._lost_at: float | None = None
        self._account = config.account
        remember_accounts([config.account])  # masked in every log line, ib_async's included
        self._last_account: AccountSnapshot | None = None

    # ---- state -------------------------------------------------------------------------

    @property
    def ib(self) -> IB:
        """The ib_async client (one object across reconnects); the feed listens to its tickers."""
        if self._ib is None:
            self._ib = self._make_ib()
        return self._ib

    @property
    def on_connection_change(self) -> ConnectionCallback | None:
        return self._link.on_connection_change

    @on_connection_change.setter
    def on_connection_change(self, callback: ConnectionCallback | None) -> None:
        self._link.on_connection_change = callback

    @property
    def link_state(self) -> LinkState:
        """Where the API session is: disconnected, syncing, ready, resyncing or closed."""
        return self._link.state

    @property
    def connected(self) -> bool:
        """Connected, synced and IB's own link up: what the status bar shows."""
        return self._link.connected

    @property
    def synced(self) -> bool:
        return self.accepting

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Until the adapter is connected and reconciled (the engine's cue to reconcile too)."""
        while not self.accepting:
            self._link.ready.clear()
            await asyncio.wait_for(self._link.ready.wait(), timeout)

    @property
    def status(self) -> str:
        """One line for the operator."""
        link = self._link
        if link.accepting:
            return f"connected to {self.config.host}:{self.config.port} as client {self.config.client_id}"
        if link.socket_up and not link.ib_link_up:
            return STATUS_TEXT[1100]
        if link.socket_up:
            return "reconciling with IB Gateway"
        err = self._supervisor.last_error
        return f"reconnecting (attempt {self._supervisor.attempt + 1})" + (f": {err}" if err else "")

    def _make_ib(self) -> IB:
        ib = self._ib_factory()
        ib.client.MaxRequests = IB_ASYNC_BACKSTOP
        hooks.install(ib, self)
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_socket_lost
        return ib

    def _on_error(self, req_id: int, code: int, text: str, contract: Any = None) -> None:
        if not self._on_status(code, text):
            self._on_order_error(req_id, code, text)

    # ---- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and sync; raise ConnectionError if the first attempt fails. Reconnects are automatic."""
        if self._supervisor_task is not None and not self._supervisor_task.done():
            await self.wait_synced()
            return
        if self._link.state is LinkState.CLOSED:
            self._link.state = LinkState.DISCONNECTED
        self._supervisor.closing = False
        await self._ids.load()
        _ = self.ib
        loop = asyncio.get_running_loop()
        self._sender_task = loop.create_task(self._send_loop(), name="ibkr-sender")
        first: asyncio.Future[None] = loop.create_future()
        self._supervisor_task = loop.create_task(self._supervisor.run(first), name="ibkr-supervisor")
        try:
            await first
        except ConnectionError:
            await self._stop_tasks()
            raise

    async def disconnect(self) -> None:
        """Stop reconnecting and close the session (orders stay live at IB: IB does not cancel them)."""
        was = self.connected
        self._link.state = LinkState.CLOSED
        self._supervisor.closing = True
        await self._stop_tasks()
        self._fail_unsent("the engine is stopping")
        if self._ib is not None and self._ib.isConnected():
            self._ib.disconnect()
        if was:
            self._link.announce(False, "disconnected by the engine")

    async def _stop_tasks(self) -> None:
        for task in (self._supervisor_task, self._sender_task, self._resync_task):
            if task is not None and not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        self._supervisor_task = self._sender_task = self._resync_task = None

    # ---- orders the engine knew before ------------------------------------------------------

    def _adopt_from_ib(self, client_order_id: str) -> Tracked | None:
        """An order open at IB that we did not track (placed by an earlier run, or elsewhere and
        adopted by the operator): track it so its fills reach the engine and it can be cancelled.
        ``client_order_id`` is its orderRef, or ``ib-perm-<permId>`` for an order without one."""
        for trade in self.ib.openTrades():
            ref = trade.order.orderRef or f"ib-perm-{trade.order.permId}"
            if ref == client_order_id:
                order = convert.order_from_trade(trade, client_order_id)
                t = Tracked(order, sent=True, acked=True, adopted=True, qty=order.qty, limit_price=order.limit_price,
                            accepted_reported=True, working_at_ib=True)
                self._orders.add(t)
                own = trade.order.clientId == self.config.client_id
                self._orders.bind(t, order_id=trade.order.orderId if own else None, perm_id=trade.order.permId)
                return t
        return None

    def client_order_ids(self) -> set[str]:
        """Every orderRef IB reported in this session: open and completed orders, executions."""
        refs = {t.order.orderRef for t in self.ib.trades()}
        refs.update(f.execution.orderRef for f in self.ib.fills())
        refs.discard("")
        return refs

    def in_flight_symbols(self) -> set[str]:
        return self._pending_symbols() | self._queued_symbols()

    def adopt_unknown(self, order: Order) -> bool:
        if order.client_order_id in self._orders:
            return True
        return self._link.socket_up and self._adopt_from_ib(order.client_order_id) is not None

    def adopt(self, orders: Iterable[Order]) -> None:
        """Orders the engine's store says are open (from an earlier run): track them, so that
        what IB reports about them at the next sync (cancelled, rejected, filled) reaches the engine."""
        for order in orders:
            if order.client_order_id in self._orders or order.status is OrderStatus.NEW or order.status.is_terminal:
                continue
            # acknowledged before (ACCEPTED, PARTIALLY_FILLED, PENDING_CANCEL): IB knew it; SUBMITTED
            # or UNKNOWN: it may never have arrived, and a sync without a trace of it says UNKNOWN
            was_acked = order.status not in (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN)
            self._orders.add(Tracked(order, sent=True, adopted=True, qty=order.qty, limit_price=order.limit_price,
                                     acked=was_acked, accepted_reported=was_acked,
                                     unknown_reported=order.status is OrderStatus.UNKNOWN,
                                     cancel_requested=order.status is OrderStatus.PENDING_CANCEL))

    # ---- queries -------------------------------------------------------------------------

    def _require_session(self, what: str) -> None:
        if not self._link.in_session:
            raise ConnectionError(f"not connected to IB Gateway: {what} unknown")

    async def positions(self) -> list[BrokerPosition]:
        """The account's US stock positions (what the engine trades). Options, futures or
        foreign stocks are left out, never merged into a stock symbol; they are logged once."""
        self._require_session("positions")
        out = []
        for p in self.ib.positions(self._account) if self._account else self.ib.positions():
            qty = convert.dec(p.position)
            if not qty:
                continue
            c = p.contract
            if c.secType != "STK" or (c.currency or "USD") != "USD":
                key = (c.conId, c.secType, c.localSymbol or c.symbol)
                if key not in self._foreign_positions_logged:
                    self._foreign_positions_logged.add(key)
                    log.warning("position %s %s %s (%s) is not a US stock: not the engine's; left out of its "
                                "book and of reconciliation", qty, c.secType, c.localSymbol or c.symbol, c.currency)
                continue
            out.append(BrokerPosition(convert.contract_symbol(c), qty, convert.dec(p.avgCost)))
        return out

    async def open_orders(self) -> list[Order]:
        """Every open order on the account, of every API client and TWS (reqAllOpenOrders: a fresh
        snapshot; orders of other clients are not kept in sync afterwards, so ask each time)."""
        self._require_session("open orders")
        out = []
        async with self._open_orders_lock:  # ib_async keys every open-orders request alike
            trades = await self._request(self.ib.reqAllOpenOrdersAsync)
        for trade in trades:
            if trade.orderStatus.status in convert.CANCELLED or trade.orderStatus.status in ("Filled", "Inactive"):
                continue
            t = self._orders.find(trade.order.orderRef, trade.order.permId)
            out.append(convert.order_from_trade(trade, t.client_order_id if t else None))
        return out

    async def executions_since(self, since: datetime | None) -> list[Execution]:
        """Every execution reported this run (today's, from IB's sync), with its final commission."""
        execs = sorted(self._execs.values(), key=lambda e: e.ts)
        return [e for e in execs if since is None or e.ts > since]

    @property
    def live_account(self) -> bool:
        """IB's paper accounts are named D... (DU1234567); any other, or none known yet, is real money."""
        accounts = [self._account] if self._account else (list(self.ib.managedAccounts()) if self._ib else [])
        return not accounts or any(not a.upper().startswith("D") for a in accounts)

    async def account(self) -> AccountSnapshot:
        if not self._link.in_session:
            if self._last_account is not None:
                return self._last_account
            raise ConnectionError("not connected to IB Gateway: account unknown")
        values = {(v.tag, v.currency): v.value for v in self.ib.accountValues(self._account)}

        def money(tag: str) -> Decimal | None:
            for cur in ("USD", "BASE"):
                if (tag, cur) in values:
                    try:
                        return Decimal(values[(tag, cur)])
                    except ArithmeticError:
                        return None
            return None

        cash = money("TotalCashValue")
        if cash is None:
            cash = money("CashBalance") or ZERO
        keep = ("AvailableFunds", "BuyingPower", "ExcessLiquidity", "GrossPositionValue", "MaintMarginReq",
                "InitMarginReq", "UnrealizedPnL", "RealizedPnL")
        extra = {k: values[(k, "USD")] for k in keep if (k, "USD") in values}
        if self._account:
            extra["account"] = self._account
        self._last_account = AccountSnapshot(cash=cash, equity=money("NetLiquidation"), currency="USD", extra=extra)
        return self._last_account
