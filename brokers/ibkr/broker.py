"""The IBKR broker: orders and fills through IB Gateway with ib_async's async API, on the engine's loop.

What it guarantees the engine:
- every order carries its client order id as IB's ``orderRef`` and is tracked by permId;
  order ids never repeat (see ``order_ids``);
- every execution is reported exactly once (keyed by IB's execId), with its final
  commission, including fills that happened while the socket was down;
- only IB's orderStatus (Cancelled/ApiCancelled, Inactive after a 201) and completed
  orders make an order CANCELLED or REJECTED, never ib_async's ``Trade.isDone()``;
- outgoing messages stay under IB's 50/s (``throttle``);
- after every connect (and after IB's 1101/1102) the state is re-read and reconciled before
  anything new is sent; until then ``place`` refuses.

``place`` refuses rather than queues while the adapter cannot send (disconnected, IB's link
down, reconciling, inside the daily restart window): an order held through an outage would
go out minutes later at a price and in a book nobody decided on. Orders already queued when
the connection drops were never sent and are reported REJECTED as such. Cancels are kept and
sent after the reconnect: cancelling late is always what was wanted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract

from core.execution.broker import Broker
from core.common.clock import Clock
from core.domain.model import (
    ZERO,
    AccountSnapshot,
    BrokerPosition,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
)

from brokers.ibkr import convert, hooks
from brokers.ibkr.backoff import Backoff
from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.outbox import Outbox
from brokers.ibkr.session import Supervisor
from brokers.ibkr.throttle import Throttle
from brokers.ibkr.tracking import OrderBook, Tracked

log = logging.getLogger("cockpit.ibkr")

ConnectionCallback = Callable[[bool, str], None]
Sleep = Callable[[float], Awaitable[None]]

#: ib_async's own limiter, kept as a backstop below IB's 50/s for messages it sends by itself.
IB_ASYNC_BACKSTOP = 49

STATUS_TEXT = {
    1100: "IB Gateway lost its connection to IB's servers (1100)",
    1101: "IB connectivity restored, market data lost and resubscribed (1101)",
    1102: "IB connectivity restored, data kept (1102)",
}


@dataclass(slots=True)
class _Action:
    kind: str  # place | cancel | modify | global_cancel | subscribe
    tracked: Tracked | None = None
    symbol: str = ""
    qty: Decimal | None = None
    limit_price: Decimal | None = None


@dataclass(slots=True)
class _PendingExec:
    client_order_id: str
    symbol: str
    side: Any
    qty: Decimal
    price: Decimal
    ts: datetime
    broker_order_id: str | None
    timer: Any = None


@dataclass(slots=True)
class Stats:
    """Figures for the status line, the logs and the tests."""

    connects: int = 0
    reconnect_seconds: list[float] = field(default_factory=list)  # socket lost -> synced again
    pacing_errors: int = 0
    resubscriptions: int = 0
    unknown_after_sync: int = 0
    duplicate_id_retries: int = 0
    commission_timeouts: int = 0


class IbkrBroker(Broker):
    kind = "ibkr"
    records_in_engine_store = False

    def __init__(self, config: IbkrConfig, clock: Clock, *, rng: random.Random | None = None,
                 sleep: Sleep = asyncio.sleep, on_connection_change: ConnectionCallback | None = None,
                 ib_factory: Callable[[], IB] = IB) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.on_connection_change = on_connection_change
        self.window = config.window
        self.stats = Stats()
        self._ib_factory = ib_factory
        self._ib: IB | None = None
        self._orders = OrderBook()
        self._outbox = Outbox(self._report)
        self._pending: dict[str, _PendingExec] = {}
        self._execs: dict[str, Execution] = {}
        self._deferred: list[tuple[str, OrderUpdate]] = []
        self._queue: deque[_Action] = deque()
        self._wake = asyncio.Event()
        self._throttle = Throttle(config.max_messages_per_second)
        self._ids = OrderIdAllocator(config.id_state_file, config.client_id)
        self._contracts: dict[str, Contract] = {}
        self._md_symbols: dict[str, None] = {}  # an ordered set
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._sleep = sleep
        self._supervisor_backoff = Backoff(config.reconnect_min_seconds, config.reconnect_max_seconds,
                                           rng or random.Random())
        self._supervisor = Supervisor(
            connect_once=self._connect_once, lost=self._lost, backoff=self._supervisor_backoff,
            sleep=sleep, describe=self._describe_failure, on_failed_attempt=self._on_failed_attempt,
        )
        self._supervisor_task: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_again: int | None = None
        self._refused: asyncio.Future[str] | None = None
        self._socket_up = False  # the API session is up (it may still be syncing)
        self._synced = False  # this session's start-up sync and reconcile are done
        self._foreign_positions_logged: set[tuple[object, ...]] = set()
        self._open_orders_lock = asyncio.Lock()
        self._link_up = True  # IB Gateway's own link to IB (1100 / 1101 / 1102)
        self._resyncing = False
        self._in_sync = False  # terminal statuses from the gateway are deferred behind this sync's fills
        self._announced: bool | None = None
        self._lost_at: float | None = None
        self._gen = 0  # bumped whenever sending stops: an in-flight send checks it did not change
        self._account = config.account
        self._last_account: AccountSnapshot | None = None
        self._closing = False

    # ---- state -------------------------------------------------------------------------

    @property
    def ib(self) -> IB:
        """The ib_async client (one object across reconnects); the feed listens to its tickers."""
        if self._ib is None:
            self._ib = self._make_ib()
        return self._ib

    @property
    def connected(self) -> bool:
        """Connected, synced and IB's own link up: what the status bar shows."""
        return self._socket_up and self._synced and self._link_up

    @property
    def accepting(self) -> bool:
        """New messages may go out now (connected and not reconciling)."""
        return self.connected and not self._resyncing

    @property
    def synced(self) -> bool:
        return self.accepting

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Until the adapter is connected and reconciled (the engine's cue to reconcile too)."""
        while not self.accepting:
            self._ready.clear()
            await asyncio.wait_for(self._ready.wait(), timeout)

    @property
    def status(self) -> str:
        """One line for the operator."""
        if self.accepting:
            return f"connected to {self.config.host}:{self.config.port} as client {self.config.client_id}"
        if self._socket_up and not self._link_up:
            return STATUS_TEXT[1100]
        if self._socket_up:
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

    # ---- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and sync; raise ConnectionError if the first attempt fails. Reconnects are automatic."""
        if self._supervisor_task is not None and not self._supervisor_task.done():
            await self.wait_synced()
            return
        self._closing = self._supervisor.closing = False
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
        self._closing = self._supervisor.closing = True
        await self._stop_tasks()
        self._fail_unsent("the engine is stopping")
        if self._ib is not None and self._ib.isConnected():
            self._ib.disconnect()
        self._socket_up = self._synced = False
        if was:
            self._announce(False, "disconnected by the engine")

    async def _stop_tasks(self) -> None:
        for task in (self._supervisor_task, self._sender_task, self._resync_task):
            if task is not None and not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        self._supervisor_task = self._sender_task = self._resync_task = None

    async def _connect_once(self) -> None:
        """One attempt: connect (ib_async syncs positions, open and completed orders, executions,
        account), reconcile our orders against that, resubscribe market data. Raises on failure."""
        ib = self.ib
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._lost.clear()
        self._link_up = True  # a new session; a 1100 during its sync says otherwise
        self._refused = loop.create_future()
        self._begin_sync()
        self._in_sync = True
        connecting = asyncio.ensure_future(ib.connectAsync(
            cfg.host, cfg.port, clientId=cfg.client_id, timeout=cfg.connect_timeout, account=cfg.account,
            raiseSyncErrors=True))
        try:
            done, _ = await asyncio.wait({connecting, self._refused}, return_when=asyncio.FIRST_COMPLETED)
            if connecting not in done:
                connecting.cancel()
                with suppress(BaseException):
                    await connecting
                raise ConnectionError(self._refused.result())
            await connecting
            self._throttle.reset()  # IB paces per connection
            self._throttle.note(ib.client.conn.numMsgSent)  # ib_async's start-up requests count too
            self._socket_up = True
            # ids: above nextValidId, above every id ib_async saw, above every id we ever used;
            # and ib_async's request ids above all of those, so that no error is misattributed.
            self._ids.floor(ib.client.getReqId())
            ib.client.updateReqId(self._ids.next_id + 1)
            accounts = ib.client.getAccounts()
            if cfg.account and cfg.account not in accounts:
                raise ConnectionError(f"account {cfg.account} is not managed by this login ({', '.join(accounts)})")
            self._account = cfg.account or (accounts[0] if len(accounts) == 1 else "")
            self._end_sync()
            await self._resubscribe()
            if self._lost.is_set() or not ib.isConnected():
                raise ConnectionError("connection lost while syncing")
        except BaseException:
            if not self._lost.is_set() and ib.isConnected():
                ib.disconnect()
            self._socket_up = False
            raise
        finally:
            self._in_sync = False
        self._synced = True
        self.stats.connects += 1
        if self._lost_at is not None:
            self.stats.reconnect_seconds.append(loop.time() - self._lost_at)
            self._lost_at = None
        detail = f"{cfg.host}:{cfg.port} as client {cfg.client_id}, account {self._account or '?'}"
        self._refresh(f"connected to IB Gateway at {detail}" if self.stats.connects == 1 else
                      f"reconnected to IB Gateway at {detail} (reconnect {self.stats.connects - 1})")

    def _describe_failure(self, exc: BaseException) -> str:
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused at {where}: is IB Gateway running with the API port open?"
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return f"IB Gateway at {where} did not answer within {cfg.connect_timeout}s"
        text = str(exc) or type(exc).__name__
        return f"cannot connect to IB Gateway at {where} as client {cfg.client_id}: {text}"

    def _on_failed_attempt(self, attempt: int, reason: str, next_delay: float) -> None:
        if self._announced is not False:
            self._announce(False, reason)

    def _on_socket_lost(self) -> None:
        """ib_async's disconnectedEvent (it can fire twice for one loss: idempotent)."""
        self._lost.set()
        if self._closing or not self._socket_up:
            return
        self._socket_up = False
        self._synced = False
        if self._lost_at is None:
            self._lost_at = asyncio.get_running_loop().time()
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
        self._fail_unsent("the connection to IB Gateway was lost before it was sent")
        self._refresh("connection to IB Gateway lost; reconnecting")

    def _refresh(self, reason: str) -> None:
        """After any state change: announce it, wake the sender, release waiters."""
        if not self.accepting:
            self._gen += 1
        self._announce(self.connected, reason)
        if self.accepting:
            self._ready.set()
            self._wake.set()

    def _announce(self, up: bool, reason: str) -> None:
        if up == self._announced:
            return
        self._announced = up
        (log.info if up else log.warning)("IBKR %s: %s", "up" if up else "DOWN", reason)
        if self.on_connection_change is not None:
            try:
                self.on_connection_change(up, reason)
            except Exception:
                log.exception("on_connection_change failed")

    # ---- IB status messages --------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, text: str, contract: Any = None) -> None:
        if code == 326:
            if self._refused is not None and not self._refused.done():
                self._refused.set_result(
                    f"client id {self.config.client_id} is already in use at IB Gateway (error 326): "
                    "another session with this client id? Backing off")
            return
        if code == 1100:
            self._link_up = False
            self._fail_unsent("IB Gateway lost its connection to IB's servers (1100) before it was sent")
            self._refresh(STATUS_TEXT[1100])
            return
        if code in (1101, 1102):
            if self._socket_up and self._synced:
                self._start_resync(code)  # the link counts as up once the resync is done
            else:
                self._link_up = True  # during connect: that sync is the resync
            return
        if code == 100:
            self.stats.pacing_errors += 1
            self._throttle.slow_down()
            log.error("IB pacing violation (100): %s; sending at half rate for a while and re-reading "
                      "orders (the dropped message is unknown)", text)
            if self._socket_up and self._synced:
                self._start_resync(100)
            return
        t = self._orders.by_order_id(req_id) if req_id > 0 else None
        if t is not None:
            self._order_error(t, code, text)
        elif 2100 <= code < 2200:
            log.info("IB %d: %s", code, text)
        elif req_id == -1:
            log.warning("IB %d: %s", code, text)

    def _start_resync(self, code: int) -> None:
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_again = code
            return
        self._resync_task = asyncio.get_running_loop().create_task(self._resync(code), name=f"ibkr-resync-{code}")

    async def _resync(self, code: int) -> None:
        """IB's link came back (1101/1102) or a message was dropped (100): re-read orders and
        executions, report what changed, resubscribe market data if IB lost it."""
        ib = self.ib
        self._resyncing = True
        self._refresh(f"re-reading orders after IB message {code}")
        restored = False
        failures = 0
        resubscribe = code == 1101
        try:
            while self._socket_up and not self._closing:
                self._resync_again = None
                self._begin_sync()
                self._in_sync = True
                try:
                    if resubscribe:
                        await self._resubscribe()
                        resubscribe = False
                    async with self._open_orders_lock:
                        await self._request(ib.reqOpenOrdersAsync)
                    await self._request(lambda: ib.reqCompletedOrdersAsync(False))
                    await self._request(ib.reqExecutionsAsync)
                    self._end_sync()
                except (ConnectionError, asyncio.TimeoutError, TimeoutError) as exc:
                    if not self._socket_up:
                        break  # the reconnect's own sync takes over
                    failures += 1
                    log.warning("re-reading orders after IB message %d failed (%s); retrying", code, exc)
                    await self._sleep(self._supervisor_backoff.delay(failures))
                    continue
                finally:
                    self._in_sync = False
                if self._resync_again is None:
                    restored = True
                    break
                resubscribe = resubscribe or self._resync_again == 1101
                code = self._resync_again
        finally:
            self._resyncing = False
        if restored and code in (1101, 1102):
            self._link_up = True
        if self._socket_up:
            self._refresh(STATUS_TEXT.get(code, f"orders re-read after IB message {code}"))

    # ---- sync and reconcile ----------------------------------------------------------------

    def _begin_sync(self) -> None:
        for t in self._orders.open():
            t.seen = False

    def _end_sync(self) -> None:
        """Everything the gateway said during the sync is in: settle orders it did not mention,
        then release the terminal statuses held behind this sync's executions."""
        global_cancel_queued = any(a.kind == "global_cancel" for a in self._queue)
        for t in self._orders.open():
            if not t.sent or t.seen:
                if t.seen and t.cancel_requested and t.working_at_ib and not global_cancel_queued \
                        and not self._cancel_queued(t):
                    self._queue.append(_Action("cancel", t))  # the cancel may have been lost with the socket
                continue
            if not t.acked:
                if not t.unknown_reported:
                    t.unknown_reported = True
                    self.stats.unknown_after_sync += 1
                    self._outbox.put(t.client_order_id, OrderUpdate(
                        t.client_order_id, OrderStatus.UNKNOWN, self.clock.now(), None,
                        "sent as the connection failed; IB Gateway has no trace of it (it may never have arrived)"))
                if t.cancel_requested and not self._cancel_queued(t):
                    self._queue.append(_Action("cancel", t))  # settles it: cancelled, or 10147 (never arrived)
            else:
                log.error("order %s (permId %s) was live at IB but the gateway no longer reports it",
                          t.client_order_id, t.perm_id)
        self._in_sync = False
        deferred, self._deferred = self._deferred, []
        for coid, update in deferred:
            self._outbox.put(coid, update)

    # ---- orders out --------------------------------------------------------------------------

    def place(self, order: Order) -> None:
        reason = self._refusal(order)
        if reason is not None:
            log.warning("order %s refused: %s", order.client_order_id, reason)
            self._report(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, self.clock.now(), None, reason))
            return
        t = Tracked(order, qty=order.qty, limit_price=order.limit_price)
        self._orders.add(t)
        self._enqueue(_Action("place", t))

    def _refusal(self, order: Order) -> str | None:
        if order.client_order_id in self._orders:
            return f"duplicate client order id {order.client_order_id}"
        if order.qty <= 0:
            return f"quantity must be positive, got {order.qty}"
        if order.order_type is OrderType.LIMIT and (order.limit_price is None or order.limit_price <= 0):
            return "limit order without a positive limit price"
        if self.window is not None and self.window.contains(self.clock.now()):
            return f"inside IB Gateway's daily restart window ({self.window}): no new orders"
        if not self.accepting:
            if self._socket_up and self._synced and self._resyncing:
                return "re-reading orders from IB Gateway (after a reconnect or an IB status message): try again"
            if self._socket_up and not self._link_up:
                return f"{STATUS_TEXT[1100]}: no new orders until it is restored"
            if self._socket_up:
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
        self._enqueue(_Action("cancel", t))

    def _cancel_queued(self, t: Tracked) -> bool:
        return any(a.kind == "cancel" and a.tracked is t for a in self._queue)

    def cancel_all(self) -> None:
        """IB's global cancel (every open order of the account, ours or not); unsent orders are dropped."""
        keep: deque[_Action] = deque()
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
        self._queue.appendleft(_Action("global_cancel"))
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
        self._enqueue(_Action("modify", t, qty=qty, limit_price=limit_price))
        return True

    def _enqueue(self, action: _Action) -> None:
        self._queue.append(action)
        self._wake.set()

    def _fail_unsent(self, reason: str) -> None:
        """Sending stopped: queued new orders never left (REJECTED); cancels wait for the reconnect."""
        self._gen += 1
        keep: deque[_Action] = deque()
        for a in self._queue:
            if a.kind == "place" and a.tracked is not None:
                self._finish(a.tracked, OrderStatus.REJECTED, f"not sent: {reason}")
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
            try:
                await self._send(action)
            except asyncio.CancelledError:
                raise
            except (ConnectionError, asyncio.TimeoutError, TimeoutError) as exc:
                # the socket went mid-send: a lost cancel is re-sent by the reconnect's reconcile
                log.warning("ibkr: %s not sent: %s", action.kind, exc or type(exc).__name__)
                self._unsent(action, f"not sent: {exc or 'timeout'}")
            except Exception:
                log.exception("ibkr: sending %s failed", action.kind)
                self._unsent(action, "not sent: internal error (see log)")

    def _unsent(self, action: _Action, reason: str) -> None:
        t = action.tracked
        if action.kind == "place" and t is not None and not t.sent:
            self._finish(t, OrderStatus.REJECTED, reason)

    async def _send(self, a: _Action) -> None:
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
        gen = self._gen
        order = t.order
        try:
            contract = await self._contract(order.symbol)
        except (ConnectionError, asyncio.TimeoutError, TimeoutError) as exc:
            self._finish(t, OrderStatus.REJECTED, f"not sent: contract lookup failed ({exc or 'timeout'})")
            return
        if contract is None:
            self._finish(t, OrderStatus.REJECTED, f"IB has no US stock {order.symbol} on SMART in USD")
            return
        oid = await self._ids.allocate()
        await self._throttle.acquire()
        if t.cancel_requested:
            self._finish(t, OrderStatus.CANCELLED, "cancelled before it was sent")
            return
        if gen != self._gen or not self.accepting:
            self._finish(t, OrderStatus.REJECTED, "not sent: the connection to IB Gateway failed before it left")
            return
        ib = self.ib
        # keep ib_async's shared request/order counter above our ids: its request ids never equal an order id
        ib.client.updateReqId(oid + 1)
        self._orders.bind(t, order_id=oid)
        try:
            ib.placeOrder(contract, convert.ib_order(order, oid, self._account, qty=t.qty, limit_price=t.limit_price))
        except ConnectionError as exc:
            self._orders.unbind_order_id(t)
            self._finish(t, OrderStatus.REJECTED, f"not sent: {exc}")
            return
        t.sent = True

    async def _send_cancel(self, a: _Action) -> None:
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

    async def _send_modify(self, a: _Action) -> None:
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
            self._queue.appendleft(_Action("place", t))
            self._wake.set()
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

    def in_flight_symbols(self) -> set[str]:
        busy = {p.symbol for p in self._pending.values()}  # executions waiting for their commission
        busy.update(r.symbol for r in self._outbox.undelivered() if isinstance(r, Execution))
        for a in self._queue:
            if a.tracked is not None:
                busy.add(a.tracked.order.symbol)
            elif a.symbol:
                busy.add(a.symbol)
        return busy

    def adopt_unknown(self, order: Order) -> bool:
        if order.client_order_id in self._orders:
            return True
        return self._socket_up and self._adopt_from_ib(order.client_order_id) is not None

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
        self._pending[eid] = _PendingExec(
            coid, convert.contract_symbol(contract), convert.side_of(execution.side), convert.dec(execution.shares),
            convert.dec(execution.price), convert.exec_time(execution.time, now),
            str(execution.permId) if execution.permId else None)
        self._outbox.hold(eid, coid)
        fill = self.ib.wrapper.fills.get(eid)
        if fill is not None and fill.commissionReport.execId == eid:
            self._complete_exec(eid, fill.commissionReport.commission)
        else:
            self._pending[eid].timer = self.clock.call_later(
                timedelta(seconds=self.config.commission_wait_seconds), lambda: self._commission_overdue(eid))

    def raw_commissionReport(self, commissionReport: Any) -> None:
        if commissionReport.execId in self._pending:
            self._complete_exec(commissionReport.execId, commissionReport.commission)

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
        p = self._pending.get(eid)
        if p is None:
            return
        if not self.connected:  # the reconnect's execution request brings it
            p.timer = self.clock.call_later(timedelta(seconds=self.config.commission_wait_seconds),
                                            lambda: self._commission_overdue(eid))
            return
        self.stats.commission_timeouts += 1
        log.warning("execution %s: no commission report after %ss: booked with commission 0",
                    eid, self.config.commission_wait_seconds)
        self._complete_exec(eid, None)

    # ---- contracts and market data -------------------------------------------------------------

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

    def want_quotes(self, symbols: Iterable[str]) -> None:
        """Subscribe ``symbols`` (now if connected, and again after every reconnect and 1101)."""
        for s in symbols:
            if s not in self._md_symbols:
                self._md_symbols[s] = None
                if self.accepting:
                    self._enqueue(_Action("subscribe", symbol=s))

    @property
    def quote_symbols(self) -> list[str]:
        return list(self._md_symbols)

    async def _resubscribe(self) -> None:
        for s in list(self._md_symbols):
            await self._subscribe(s)
        if self._md_symbols:
            self.stats.resubscriptions += 1

    async def _subscribe(self, symbol: str) -> None:
        contract = await self._contract(symbol)
        if contract is None:
            log.error("market data: IB has no US stock %s on SMART in USD", symbol)
            return
        await self._throttle.acquire()
        self.ib.reqMktData(contract, "", False, False)

    # ---- queries -------------------------------------------------------------------------

    async def _request(self, make: Callable[[], Awaitable[Any]]) -> Any:
        await self._throttle.acquire()
        return await asyncio.wait_for(make(), self.config.connect_timeout)

    def _require_session(self, what: str) -> None:
        if not (self._socket_up and self._synced):
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

    async def account(self) -> AccountSnapshot:
        if not (self._socket_up and self._synced):
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
