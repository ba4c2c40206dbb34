"""Start-up and reconnect sync: one connect attempt, the loss of the socket, IB's status codes,
and the re-read of orders and executions after every (re)connect and after 1101/1102/100.

Until a sync is done and every order it did not mention is settled, ``place`` refuses:
nothing new goes out on a state the adapter has not reconciled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from ib_async import IB

from brokers.ibkr.backoff import Backoff
from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.link import STATUS_TEXT, Link, LinkState
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.outbox import Outbox
from brokers.ibkr.redact import mask_account, remember_accounts
from brokers.ibkr.sending import Action
from brokers.ibkr.stats import Stats
from brokers.ibkr.throttle import Throttle
from brokers.ibkr.tracking import OrderBook
from core.common.clock import Clock
from core.domain.model import OrderStatus, OrderUpdate

log = logging.getLogger("cockpit.ibkr")

Sleep = Callable[[float], Awaitable[None]]


class SessionSync:
    """Mixin of :class:`~brokers.ibkr.broker.IbkrBroker`: the connection's life and its syncs."""

    ib: IB
    config: IbkrConfig
    clock: Clock
    stats: Stats
    _link: Link
    _on_reconnect_failed: Callable[[int, str, float], None] | None
    on_pacing_violation: Callable[[str], None] | None
    _lost: asyncio.Event
    _refused: asyncio.Future[str] | None
    _lost_at: float | None
    _throttle: Throttle
    _ids: OrderIdAllocator
    _account: str
    _orders: OrderBook
    _outbox: Outbox
    _queue: deque[Action]
    _wake: asyncio.Event
    _deferred: list[tuple[str, OrderUpdate]]
    _in_sync: bool
    _sleep: Sleep
    _supervisor_backoff: Backoff
    _resync_task: asyncio.Task[None] | None
    _resync_again: int | None
    _open_orders_lock: asyncio.Lock

    # provided by the other mixins
    _fail_unsent: Callable[[str], None]
    _cancel_queued: Callable[..., bool]
    _resubscribe: Callable[[], Awaitable[None]]
    _request: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]

    async def _connect_once(self) -> None:
        """One attempt: connect (ib_async syncs positions, open and completed orders, executions,
        account), reconcile our orders against that, resubscribe market data. Raises on failure."""
        ib = self.ib
        cfg = self.config
        link = self._link
        loop = asyncio.get_running_loop()
        self._lost.clear()
        link.ib_link_up = True  # a new session; a 1100 during its sync says otherwise
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
            link.state = LinkState.SYNCING
            # ids: above nextValidId, above every id ib_async saw, above every id we ever used;
            # and ib_async's request ids above all of those, so that no error is misattributed.
            self._ids.floor(ib.client.getReqId())
            ib.client.updateReqId(self._ids.next_id + 1)
            accounts = ib.client.getAccounts()
            if cfg.account and cfg.account not in accounts:
                raise ConnectionError(f"account {mask_account(cfg.account)} is not managed by this login "
                                      f"({', '.join(mask_account(a) for a in accounts)})")
            self._account = cfg.account or (accounts[0] if len(accounts) == 1 else "")
            self._end_sync()
            await self._resubscribe()
            if self._lost.is_set() or not ib.isConnected():
                raise ConnectionError("connection lost while syncing")
        except BaseException:
            if not self._lost.is_set() and ib.isConnected():
                ib.disconnect()
            link.lost()
            raise
        finally:
            self._in_sync = False
        link.state = LinkState.READY
        self.stats.connects += 1
        if self._lost_at is not None:
            self.stats.reconnect_seconds.append(loop.time() - self._lost_at)
            self._lost_at = None
        detail = f"{cfg.host}:{cfg.port} as client {cfg.client_id}, account {mask_account(self._account) or '?'}"
        self._refresh(f"connected to IB Gateway at {detail}" if self.stats.connects == 1 else
                      f"reconnected to IB Gateway at {detail} (reconnect {self.stats.connects - 1})")

    def raw_managedAccounts(self, accountsList: str) -> None:
        """IB named the login's accounts (the first message of a session): mask them in every log from now on."""
        remember_accounts(accountsList.split(","))

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
        self._link.announce(False, reason)
        if self._on_reconnect_failed is not None:
            try:
                self._on_reconnect_failed(attempt, reason, next_delay)
            except Exception:
                log.exception("on_reconnect_failed failed")

    def _on_socket_lost(self) -> None:
        """ib_async's disconnectedEvent (it can fire twice for one loss: idempotent)."""
        self._lost.set()
        if not self._link.socket_up:  # already lost, or closed by the engine
            return
        self._link.lost()
        if self._lost_at is None:
            self._lost_at = asyncio.get_running_loop().time()
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
        self._fail_unsent("the connection to IB Gateway was lost before it was sent")
        self._refresh("connection to IB Gateway lost; reconnecting")

    def _refresh(self, reason: str) -> None:
        """After any state change: announce it, wake the sender, release waiters."""
        link = self._link
        if not link.accepting:
            link.gen += 1
        link.announce(link.connected, reason)
        if link.accepting:
            link.ready.set()
            self._wake.set()

    # ---- IB status messages --------------------------------------------------------------

    def _on_status(self, code: int, text: str) -> bool:
        """IB's connection-level codes (326, 1100, 1101, 1102, 100); False for any other code."""
        link = self._link
        if code == 326:
            if self._refused is not None and not self._refused.done():
                self._refused.set_result(
                    f"client id {self.config.client_id} is already in use at IB Gateway (error 326): "
                    "another session with this client id? Backing off")
            return True
        if code == 1100:
            link.ib_link_up = False
            self._fail_unsent("IB Gateway lost its connection to IB's servers (1100) before it was sent")
            self._refresh(STATUS_TEXT[1100])
            return True
        if code in (1101, 1102):
            if link.in_session:
                self._start_resync(code)  # the link counts as up once the resync is done
            else:
                link.ib_link_up = True  # during connect: that sync is the resync
            return True
        if code == 100:
            self.stats.pacing_errors += 1
            if self.on_pacing_violation is not None:
                self.on_pacing_violation(text)
            self._throttle.slow_down()
            log.error("IB pacing violation (100): %s; sending at half rate for a while and re-reading "
                      "orders (the dropped message is unknown)", text)
            if link.in_session:
                self._start_resync(100)
            return True
        return False

    def _start_resync(self, code: int) -> None:
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_again = code
            return
        self._resync_task = asyncio.get_running_loop().create_task(self._resync(code), name=f"ibkr-resync-{code}")

    async def _resync(self, code: int) -> None:
        """IB's link came back (1101/1102) or a message was dropped (100): re-read orders and
        executions, report what changed, resubscribe market data if IB lost it."""
        ib = self.ib
        link = self._link
        if link.state is LinkState.READY:
            link.state = LinkState.RESYNCING
        self._refresh(f"re-reading orders after IB message {code}")
        restored = False
        failures = 0
        resubscribe = code == 1101
        try:
            while link.socket_up:
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
                except (ConnectionError, TimeoutError) as exc:
                    if not link.socket_up:
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
            if link.state is LinkState.RESYNCING:
                link.state = LinkState.READY
        if restored and code in (1101, 1102):
            link.ib_link_up = True
        if link.socket_up:
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
                    self._queue.append(Action("cancel", t))  # the cancel may have been lost with the socket
                continue
            if not t.acked:
                if not t.unknown_reported:
                    t.unknown_reported = True
                    self.stats.unknown_after_sync += 1
                    self._outbox.put(t.client_order_id, OrderUpdate(
                        t.client_order_id, OrderStatus.UNKNOWN, self.clock.now(), None,
                        "sent as the connection failed; IB Gateway has no trace of it (it may never have arrived)"))
                if t.cancel_requested and not self._cancel_queued(t):
                    self._queue.append(Action("cancel", t))  # settles it: cancelled, or 10147 (never arrived)
            else:
                log.error("order %s (permId %s) was live at IB but the gateway no longer reports it",
                          t.client_order_id, t.perm_id)
        self._in_sync = False
        deferred, self._deferred = self._deferred, []
        for coid, update in deferred:
            self._outbox.put(coid, update)

