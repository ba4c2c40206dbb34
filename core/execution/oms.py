"""The order manager: ids, write-ahead persistence, routing, fill tracking.

- Client order ids are ``<instance>-<seq>``; the sequence is persisted with the order,
  so ids stay unique across restarts.
- An order is committed to the store before the broker sees it (``send_pending``), unless the
  broker's own records are in the same store (paper): they then commit together.
- The order leaves first, its bookkeeping follows: the gate checks it, the broker gets it, and
  then its events (OrderChanged new, then submitted) reach the subscribers. The new order's event
  is held on the bus (``Bus.hold``) from ``submit`` until the broker has it (or until anything
  else is published, or the OMS changes an order: every subscriber sees the events in the order
  they happened, and each order as it was at its event). A write-ahead commit hands them out
  first: the order's row and its audit rows go with it.
- What a venue reports while the run loop dispatches an event (``defer_reports``: the paper
  venue's acks and fills, made by the quote itself) changes the book, the order and the open-order
  index at once, so the strategies and the gate that the same event reaches next see it; the
  events saying so are held on the bus too, and handed out once that event's orders left
  (``send_pending``) or before the run loop takes the next event (core/kernel/driver.py): the
  bookkeeping of a fill (the store's rows, the audit trail, the daily report, alerts) is not on
  the way of the order the same quote makes. The bus keeps every event in its place.
- A fill reported twice (same exec id) is applied once.
- Status changes go through the state machine; an illegal one is refused and logged.
- Every change is published on the bus (OrderChanged, FillApplied, IntentRejected); the
  store and the audit trail record them as subscribers. The OMS itself writes only its id
  counter and flushes before sending (write-ahead).
- The OMS is the one writer of the open orders, so it also keeps what the risk gate asks of
  them on every order: each symbol's open orders and their unfilled (buy, sell) quantity,
  updated when an order opens, fills or ends (``working_qty`` is a lookup, not a sum over
  every open order). The figure is summed again over that symbol's open orders, in the
  order they opened, at each change: it is the very Decimal a full recount gives.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from core.common.bus import Bus
from core.common.clock import Clock
from core.common.step_log import StepLog
from core.domain import text
from core.domain.events import EngineError, FillApplied, IntentRejected, OrderChanged
from core.domain.model import EXTERNAL, ZERO, Execution, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from core.domain.order_states import IllegalTransition, check_transition
from core.execution.broker import Broker, Report
from core.persistence.recorder import PUT_ACCOUNT
from core.persistence.rows import order_from_row
from core.persistence.store import Store
from core.portfolio.book import Portfolio
from core.risk.gate import OrderRequest, RiskGate, RiskView

log = logging.getLogger("cockpit.oms")

SEEN_EXECS_KEPT = 20_000  # exec ids kept in memory: a broker re-reports only recent ones (the store has all)
FINISHED_ORDERS_KEPT = 1_000  # finished orders kept for late reports (a fill after a cancel)


class _Worded(tuple[Callable[[Decimal], str], Decimal]):
    """A log argument worded when the line is written (after the loop step), not when it is noted:
    ``_Worded((word, value))``. A tuple, so that making one on a fill's path runs no Python code."""

    __slots__ = ()

    def __str__(self) -> str:
        return self[0](self[1])


_ORDER_LINE = "order %s %s %s %s %s%s (%s)"


class _OmsLog(StepLog):
    """The OMS's step log, whose "order ..." line for a new order is noted once the broker has the
    order (``say_orders``), not on its way there: the step's first note schedules the write (an
    asyncio ``call_soon``), work the order need not wait for. Every other line the OMS notes or
    writes, and every flush, says the waiting ones first: the log keeps the order things happened in."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self._orders: list[Order] = []

    def order(self, order: Order) -> None:
        """The line of a new order, to be noted by the next ``say_orders`` (or any other line)."""
        self._orders.append(order)

    def say_orders(self) -> None:
        orders = self._orders
        if not orders:
            return
        self._orders = []
        for o in orders:  # fields an order never changes: the line says what it said when the order was made
            super().info(_ORDER_LINE, o.client_order_id, o.side, o.qty, o.symbol, o.order_type,
                         f" @ {o.limit_price}" if o.limit_price is not None else "", o.strategy)

    def info(self, msg: str, *args: Any) -> None:
        if self._orders:
            self.say_orders()
        super().info(msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        if self._orders:
            self.say_orders()
        super().warning(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        if self._orders:
            self.say_orders()
        super().error(msg, *args)

    def flush(self) -> None:
        if self._orders:
            self.say_orders()
        super().flush()


class OrderManager:
    def __init__(
        self,
        *,
        store: Store,
        broker: Broker,
        portfolio: Portfolio,
        gate: RiskGate,
        clock: Clock,
        bus: Bus,
        instance_id: str,
        view_factory: Callable[[OrderManager], RiskView],
    ) -> None:
        self.store = store
        self.broker = broker
        self.portfolio = portfolio
        self.gate = gate
        self.clock = clock
        self.bus = bus
        self._held = bus.held()  # the bus's held events (tested before an order changes: no call)
        self.instance_id = instance_id
        self.last_refusal: str | None = None
        # INFO lines (each order, each fill) are written after the loop step: an order does not wait
        # for the log file (core/common/step_log.py); warnings and errors go at once, in order.
        self.log = _OmsLog(log)
        # Open orders and the most recent finished ones (late reports still find them); older
        # finished orders and exec ids leave memory: the store keeps them.
        self.orders: dict[str, Order] = {}
        self._finished: deque[str] = deque()
        self.open_orders: dict[str, Order] = {}
        # The same open orders by symbol, and their unfilled (buy, sell) per symbol: written only
        # by _opened, _closed and _refilled, next to every change of open_orders or a filled_qty.
        self._open_by_symbol: dict[str, dict[str, Order]] = {}
        self._working: dict[str, tuple[Decimal, Decimal]] = {}
        self.last_prices = portfolio.marks.price  # the book's marks (one home): what the gate collars against
        self._seen_execs: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._next_seq = 1
        self._to_send: list[Order] = []
        self._placing: Order | None = None  # the order in broker.place() right now
        # Set by the run loop while it dispatches an event (core/kernel/driver.py): the events of the
        # changes made meanwhile are held on the bus (``_emit``) rather than handed out at once.
        self.defer_reports = False
        self._adjustments = 0
        self._lost_reported: set[str] = set()  # our orders with fills but no row in memory (see _check_lost)
        self._checks: set[asyncio.Task[None]] = set()
        self._committing: asyncio.Task[None] | None = None  # a commit of broker reports (see _commit_soon)
        self._commit_again = False
        self.view = view_factory(self)  # what the gate checks orders against (it may keep our live views)
        broker.set_report_handler(self.on_report)

    # ---- state loading -------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild open orders, seen fills and per-strategy positions from the store."""
        row = await self.store.fetchone("SELECT value FROM account WHERE key = 'next_order_seq'")
        self._next_seq = int(row["value"]) if row else 1
        for r in await self.store.fetchall(
            "SELECT * FROM orders WHERE status NOT IN ('FILLED', 'CANCELLED', 'REJECTED')"
        ):
            order = order_from_row(r)
            self.orders[order.client_order_id] = order
            self._opened(order)
        allocated: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for r in await self.store.fetchall("SELECT exec_id, owner, qty FROM fill_allocations"):
            allocated[r["exec_id"]].append((r["owner"], Decimal(r["qty"])))
        owners = self.portfolio.owner_positions
        owners.clear()
        for r in await self.store.fetchall("SELECT exec_id, strategy, symbol, side, qty FROM fills ORDER BY seq"):
            self._remember_exec(r["exec_id"])
            # Fills written before owners were recorded belong to the order's strategy.
            shares = allocated.get(r["exec_id"]) or [(r["strategy"], Decimal(r["qty"]) * Side(r["side"]).sign)]
            for owner, qty in shares:
                owners[(owner, r["symbol"])] += qty
        for key in [k for k, q in owners.items() if q == ZERO]:
            del owners[key]

    async def recover(self) -> None:
        """After a (re)start: ids above the broker's, settle orders that never left, apply fills we missed."""
        self._keep_ids_above(self.broker.client_order_ids())
        broker_open = {o.client_order_id for o in await self.broker.open_orders()}
        for order in list(self.open_orders.values()):
            if order.status is OrderStatus.NEW and order.client_order_id not in broker_open:
                self._set_status(order, OrderStatus.REJECTED, "never sent: engine stopped before sending")
        missed = await self.unseen(await self.broker.executions_since(None))
        for execution in missed:
            self.log.warning("applying fill %s missed while stopped", execution.exec_id)
            self.on_report(execution)

    def _own_seq(self, client_order_id: str) -> int | None:
        """The sequence number of one of this engine's client order ids (``<instance>-<seq>``), else None."""
        head, _, seq = client_order_id.rpartition("-")
        return int(seq) if head == self.instance_id and seq.isdigit() else None

    def _keep_ids_above(self, known: Iterable[str]) -> None:
        """Continue above the highest of our ids the broker knows. The store's counter is behind it
        only when the store lost commits the broker saw (a power cut with order_durability =
        "process", or a backup restored): reusing an id would tie IB's old order to a new one."""
        highest = max((seq for seq in map(self._own_seq, known) if seq is not None), default=0)
        if highest < self._next_seq:
            return
        message = (f"the broker knows order {self.instance_id}-{highest} but the store's id counter was at "
                   f"{self._next_seq}: the store lost its last commits (a power cut with [engine] order_durability "
                   f"= \"process\", or a restored backup); new order ids continue at {highest + 1}")
        self.log.error("%s", message)
        self.bus.publish(EngineError("oms", message))
        self._next_seq = highest + 1
        self.store.put(_SEQ_KEY, PUT_ACCOUNT, self._seq_row)

    def has_seen(self, exec_id: str) -> bool:
        """Seen recently (in memory); ``unseen`` also asks the store for older ones."""
        return exec_id in self._seen_execs

    async def unseen(self, executions: list[Execution]) -> list[Execution]:
        """The executions the book has never applied: memory first, then the store."""
        maybe = [e for e in executions if e.exec_id not in self._seen_execs]
        if not maybe:
            return []
        known: set[str] = set()
        await self._load_orders_of(maybe)
        ids = [e.exec_id for e in maybe]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = await self.store.fetchall(
                f"SELECT exec_id FROM fills WHERE exec_id IN ({','.join('?' * len(chunk))})", tuple(chunk))
            known.update(r["exec_id"] for r in rows)
        return [e for e in maybe if e.exec_id not in known]

    async def _load_orders_of(self, executions: list[Execution]) -> None:
        """Orders these executions belong to that memory no longer holds (finished before a
        restart, or long ago): read back from the store, so a late fill keeps its strategy."""
        missing = sorted({e.client_order_id for e in executions if e.client_order_id
                          and e.client_order_id not in self.orders})
        for i in range(0, len(missing), 500):
            chunk = missing[i:i + 500]
            for r in await self.store.fetchall(
                    f"SELECT * FROM orders WHERE client_order_id IN ({','.join('?' * len(chunk))})", tuple(chunk)):
                order = order_from_row(r)
                self.orders.setdefault(order.client_order_id, order)
                if order.status.is_terminal:
                    self._forget_finished(order)

    def _check_lost(self, client_order_id: str) -> None:
        """A fill for one of this engine's own ids that memory does not hold: if the store has no row
        of it either, its row was lost (a power cut with order_durability = "process", or a restored
        backup). Its fills are booked under 'external' (the strategy is unknown), so the strategy that
        sent it does not count them: an error and an alert, once per order, for the operator to check.
        The store is asked off the report's path; an order merely gone from memory is not flagged."""
        if client_order_id in self._lost_reported or self._own_seq(client_order_id) is None:
            return
        self._lost_reported.add(client_order_id)
        try:
            task = asyncio.get_running_loop().create_task(self._flag_if_lost(client_order_id))
        except RuntimeError:  # no loop (a synchronous caller): nothing can be asked
            return
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _flag_if_lost(self, client_order_id: str) -> None:
        try:
            row = await self.store.fetchone("SELECT 1 FROM orders WHERE client_order_id = ?", (client_order_id,))
        except Exception as exc:  # the store closed meanwhile: the warning in the log stays
            self.log.warning("could not look order %s up in the store: %r", client_order_id, exc)
            return
        if row is not None:
            return
        message = (f"order {client_order_id} was sent by this engine and filled at the broker, but the store has no "
                   f"row of it (its last commits were lost: a power cut with [engine] order_durability = \"process\", "
                   f"or a restored backup): its fills are booked under '{EXTERNAL}', and the strategy that sent it does "
                   f"not count them; check its position (`cockpit positions`, `cockpit metrics`)")
        self.log.error("%s", message)
        self.bus.publish(EngineError("oms", message))

    def _remember_exec(self, exec_id: str) -> None:
        if exec_id in self._seen_execs:
            return
        self._seen_execs.add(exec_id)
        self._seen_order.append(exec_id)
        while len(self._seen_order) > SEEN_EXECS_KEPT:
            self._seen_execs.discard(self._seen_order.popleft())

    def _forget_finished(self, order: Order) -> None:
        self._finished.append(order.client_order_id)
        while len(self._finished) > FINISHED_ORDERS_KEPT:
            old = self.orders.get(self._finished.popleft())
            if old is not None and old.status.is_terminal:
                del self.orders[old.client_order_id]

    # ---- reconciliation resolutions -----------------------------------------------------

    def adopt(self, order: Order, *, strategy: str = "adopted") -> Order:
        """Take an order the broker has open but the engine did not (a resolved break) into
        the book, so its fills and cancels are tracked like any other."""
        known = self.orders.get(order.client_order_id)
        if known is not None and not known.status.is_terminal:
            return known
        now = self.clock.now()
        adopted = Order(
            client_order_id=order.client_order_id, strategy=strategy, symbol=order.symbol, side=order.side,
            qty=order.qty, order_type=order.order_type, tif=order.tif, limit_price=order.limit_price,
            created_at=order.created_at, updated_at=now, status=order.status, filled_qty=order.filled_qty,
            avg_fill_price=order.avg_fill_price, broker_order_id=order.broker_order_id,
            reason="adopted from the broker by the operator",
        )
        self.orders[adopted.client_order_id] = adopted
        self._opened(adopted)
        self.bus.publish(OrderChanged(adopted, previous=None, reason=adopted.reason, source="operator", adopted=True))
        return adopted

    def settle_missing(self, client_order_id: str, reason: str) -> bool:
        """An open order the broker has no trace of, declared cancelled by the operator."""
        order = self.open_orders.get(client_order_id)
        if order is None:
            return False
        return self._set_status(order, OrderStatus.CANCELLED, reason)

    # ---- orders in -----------------------------------------------------------------

    def submit(self, req: OrderRequest, tif: TimeInForce = TimeInForce.DAY) -> Order | None:
        """Gate ``req``; if it passes, create the order and queue it to be persisted and sent."""
        reason = self.gate.check(req, self.view)
        now = self.clock.now()
        if reason is not None:
            self.reject_intent(req, reason)
            return None
        order = Order(
            client_order_id=f"{self.instance_id}-{self._next_seq}",
            strategy=req.strategy,
            symbol=req.symbol,
            side=req.side,
            qty=req.qty,
            order_type=req.order_type,
            tif=tif,
            limit_price=req.limit_price if req.order_type is OrderType.LIMIT else None,
            created_at=now,
            updated_at=now,
        )
        self._next_seq += 1
        self.store.put(_SEQ_KEY, PUT_ACCOUNT, self._seq_row)  # the row is made at the flush, from the counter then
        self.orders[order.client_order_id] = order
        self._opened(order)
        self._to_send.append(order)
        self.log.order(order)  # its line is noted once the broker has it (send_pending), or before any other
        # Handed out once the broker has it (send_pending), or before anything published meanwhile.
        self.bus.hold_new(OrderChanged, order, previous=None, source=req.source, reduce_only=req.reduce_only)
        return order

    def _seq_row(self) -> tuple[str, str]:
        return ("next_order_seq", str(self._next_seq))

    def reject_intent(self, req: OrderRequest, reason: str) -> None:
        now = self.clock.now()
        self.last_refusal = reason
        self.log.warning("refused %s %s %s (%s): %s", req.side, text.qty(req.qty), req.symbol, req.strategy, reason)
        self.bus.publish(IntentRejected(now, req.strategy, req.symbol, req.side, req.qty, reason, req.source,
                                        req.order_type, req.limit_price))

    @property
    def has_unsent(self) -> bool:
        return bool(self._to_send)

    def unsent(self) -> list[Order]:
        """The queue of orders made and not yet sent, as a live list (the run loop's hot path holds
        on to it and tests its truth after every event: no call). Only the OMS changes it."""
        return self._to_send

    def _take_unsent(self) -> list[Order]:
        batch = self._to_send.copy()  # the same list object stays the queue (``unsent``)
        self._to_send.clear()
        return batch

    def reject_unsent(self, reason: str) -> int:
        """Queued orders that never left are REJECTED with ``reason`` (a refused start: none may go
        out on its way down); returns how many."""
        batch = self._take_unsent()
        rejected = 0
        for order in batch:
            if order.status is OrderStatus.NEW:
                self._set_status(order, OrderStatus.REJECTED, reason)
                rejected += 1
        self.bus.release()
        return rejected

    async def send_pending(self) -> None:
        """Commit queued orders, then hand them to the broker (write-ahead).

        A broker whose records live in our own store transactions (paper) needs no commit
        first: order and venue record become durable together, so after a crash either
        both exist or the event that made the order is replayed.
        """
        if not self._to_send:
            return
        bus = self.bus
        if not self.broker.records_in_engine_store:
            bus.release()  # the new orders' rows (and audit rows) go with the write-ahead commit
            try:
                await self.store.write_ahead()
            except BaseException:
                self.log.say_orders()  # the orders made, in the log before whatever says why none left
                raise
        batch = self._take_unsent()
        try:
            for order in batch:
                if order.status is not OrderStatus.NEW:
                    continue  # cancelled before it left
                self._placing = order
                try:
                    self.broker.place(order)  # the order leaves first; its bookkeeping follows
                finally:
                    self._placing = None
                if order.status is OrderStatus.NEW:  # a report during place() marked it sent already
                    self._set_status(order, OrderStatus.SUBMITTED, broker=self.broker.kind)
        finally:
            self.log.say_orders()
            bus.release()

    def cancel(self, client_order_id: str) -> bool:
        order = self.open_orders.get(client_order_id)
        if order is None:
            return False
        if order.status is OrderStatus.NEW:
            return self._set_status(order, OrderStatus.CANCELLED, "cancelled before sending")
        if order.status is OrderStatus.PENDING_CANCEL:
            return True
        if order.status is not OrderStatus.UNKNOWN and not self._set_status(order, OrderStatus.PENDING_CANCEL):
            return False
        self.broker.cancel(client_order_id)  # an UNKNOWN order may be live: ask anyway
        return True

    # ---- broker reports ------------------------------------------------------------

    def on_report(self, report: Report) -> None:
        if self._held:
            self.bus.release()  # the subscribers see each order as it was at its event
        placing = self._placing
        if placing is not None and placing.status is OrderStatus.NEW:
            # A report while the broker takes the order (a refusal in place()): sent first, as it was.
            self._set_status(placing, OrderStatus.SUBMITTED, broker=self.broker.kind)
        if isinstance(report, Execution):
            self._on_execution(report)
        else:
            self._on_update(report)
        if not self.broker.records_in_engine_store:
            self._commit_soon()

    def _commit_soon(self) -> None:
        """A broker's report (a fill, a status) is committed in the background right away, not with the
        next batch's flush: the next order's write-ahead then has little to carry but the order itself.
        One commit at a time; reports that come meanwhile go with one more."""
        if self._committing is not None:
            self._commit_again = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next flush takes them
            return
        self._committing = loop.create_task(self._commit_reports())

    async def _commit_reports(self) -> None:
        try:
            while True:
                self._commit_again = False
                if not self.store.is_open or self.store.failed is not None:
                    return  # closing, or failed: the store says so at the next write
                try:
                    await self.store.flush()
                except Exception:  # kept by the store (Store.failed): the engine's next commit raises it
                    return
                if not self._commit_again:
                    return
        finally:
            self._committing = None

    def _on_update(self, update: OrderUpdate) -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            self.log.warning("update for unknown order %s: %s", update.client_order_id, update.status)
            return
        if update.broker_order_id:
            order.broker_order_id = update.broker_order_id
        if order.status is update.status:
            return
        self._set_status(order, update.status, update.reason)

    def _on_execution(self, ex: Execution) -> None:
        if ex.exec_id in self._seen_execs:
            self.log.info("fill %s reported again: ignored", ex.exec_id)
            return
        order = self.orders.get(ex.client_order_id)
        if order is None:
            # A fill for an order this engine never made (manual at the broker): still book it.
            self.log.warning("fill %s for unknown order %s: booked under %r", ex.exec_id, ex.client_order_id, EXTERNAL)
            owner = EXTERNAL
            self._check_lost(ex.client_order_id)
        else:
            owner = order.strategy
        event = self._book(ex, owner, kind="trade", actor="broker", reason=None)
        if order is not None:
            prev_value = (order.avg_fill_price or ZERO) * order.filled_qty
            order.filled_qty += ex.qty
            order.avg_fill_price = (prev_value + ex.price * ex.qty) / order.filled_qty
            self._refilled(order)
            if order.filled_qty > order.qty:
                self.log.error("order %s overfilled: %s of %s", order.client_order_id, order.filled_qty, order.qty)
            target = OrderStatus.FILLED if order.filled_qty >= order.qty else OrderStatus.PARTIALLY_FILLED
            if order.status.is_terminal:
                # A fill after a cancel/reject: the book takes it; the status stays terminal.
                self.log.warning("fill on %s order %s", order.status, order.client_order_id)
                self._emit(OrderChanged(order, previous=order.status))
            else:
                self._set_status(order, target)
        self._emit(event)  # after the order's own state: a subscriber never sees it half done

    def book_adjustment(self, symbol: str, signed_qty: Decimal, price: Decimal, *, owner: str, actor: str,
                        reason: str) -> FillApplied:
        """Book a fill nobody traded: an operator override or an accepted break, at ``price``
        (the stated or the broker's average cost), no commission. It goes through the same
        path as a trade, so cash, P&L and the strategies' books follow it."""
        self._adjustments += 1
        now = self.clock.now()
        ex = Execution(  # a random part: a replay's clock repeats after a restart, the counter restarts
            exec_id=f"adj-{self.instance_id}-{secrets.token_hex(6)}-{self._adjustments}",
            client_order_id="", symbol=symbol, side=Side.BUY if signed_qty > 0 else Side.SELL,
            qty=abs(signed_qty), price=price, commission=ZERO, ts=now,
        )
        event = self._book(ex, owner, kind="adjustment", actor=actor, reason=reason)
        self.bus.publish(event)
        return event

    def _book(self, ex: Execution, owner: str, *, kind: str, actor: str, reason: str | None) -> FillApplied:
        """The one place a fill reaches the book: allocated to owners and applied; the caller
        publishes the event (the store and the audit trail record it from there)."""
        self._remember_exec(ex.exec_id)
        allocation = self.portfolio.allocate(owner, ex.symbol, ex.qty * ex.side.sign)
        realized = self.portfolio.apply_fill(ex, allocation)
        equity = self.portfolio.equity()  # as it is now: the event may be handed out after the next mark
        self.log.info("%s %s %s %s %s @ %s comm %s (%s)", "fill" if kind == "trade" else kind, ex.exec_id, ex.side,
                      _Worded((text.qty, ex.qty)), ex.symbol, ex.price, _Worded((text.money, ex.commission)),
                      ex.client_order_id or reason)
        return FillApplied(ex, owner, realized, allocation, kind, actor, reason, equity)

    # ---- helpers -------------------------------------------------------------------

    def _set_status(self, order: Order, status: OrderStatus, reason: str | None = None, *,
                    broker: str | None = None) -> bool:
        """Move ``order`` to ``status``; False (and an error log) if the state machine refuses."""
        if self._held:
            self.bus.release()  # before the order changes: its held event says what it was
        try:
            check_transition(order.client_order_id, order.status, status)
        except IllegalTransition as exc:
            self.log.error("%s (refused)", exc)
            return False
        previous = order.status
        order.status = status
        if reason:
            order.reason = reason
        order.updated_at = self.clock.now()
        if status.is_terminal:
            self._closed(order)
            self._forget_finished(order)
        if status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
            self.log.info("order %s %s%s", order.client_order_id, status, f": {reason}" if reason else "")
        if self.defer_reports:  # made when handed out: before this order changes again (see above)
            self.bus.hold_new(OrderChanged, order, previous=previous, reason=reason, broker=broker)
        else:
            self.bus.publish(OrderChanged(order, previous=previous, reason=reason, broker=broker))
        return True

    def _emit(self, event: object) -> None:
        """Publish ``event``, or hold it while the run loop dispatches an event (``defer_reports``):
        either way every subscriber sees it in its place among the others (core/common/bus.py)."""
        if self.defer_reports:
            self.bus.hold(event)
        else:
            self.bus.publish(event)

    # ---- the open orders' index (the one writer: the three methods below) ---------------

    def _opened(self, order: Order) -> None:
        coid = order.client_order_id
        self.open_orders[coid] = order
        by_symbol = self._open_by_symbol.get(order.symbol)
        if by_symbol is None:
            by_symbol = self._open_by_symbol[order.symbol] = {}
        by_symbol[coid] = order
        self._recount(order.symbol, by_symbol)

    def _closed(self, order: Order) -> None:
        coid = order.client_order_id
        if self.open_orders.pop(coid, None) is None:
            return
        by_symbol = self._open_by_symbol.get(order.symbol)
        if by_symbol is not None:
            by_symbol.pop(coid, None)
            if not by_symbol:
                del self._open_by_symbol[order.symbol]
                self._working.pop(order.symbol, None)
                return
            self._recount(order.symbol, by_symbol)

    def _refilled(self, order: Order) -> None:
        """``order``'s filled quantity changed: its symbol's working figure follows, if it is open."""
        by_symbol = self._open_by_symbol.get(order.symbol)
        if by_symbol is not None and order.client_order_id in by_symbol:
            self._recount(order.symbol, by_symbol)

    def _recount(self, symbol: str, by_symbol: dict[str, Order]) -> None:
        """The sum a recount over every open order gives: the same orders, in the same order, from ZERO."""
        buy = sell = ZERO
        for o in by_symbol.values():
            if o.side is Side.BUY:
                buy += o.remaining
            else:
                sell += o.remaining
        self._working[symbol] = (buy, sell)

    def working_qty(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Unfilled quantity of open orders in ``symbol``: (buys, sells), kept as they change."""
        return self._working.get(symbol, _NONE_WORKING)

    def working_symbols(self) -> Iterable[str]:
        """Every symbol with an open order (a live view: do not change orders while iterating)."""
        return self._open_by_symbol.keys()

    def working_signed(self, strategy: str, symbol: str) -> Decimal:
        total = ZERO
        for o in self._open_by_symbol.get(symbol, _NO_ORDERS).values():
            if o.strategy == strategy:
                total += o.signed_remaining
        return total

    def open_orders_of(self, strategy: str, symbol: str) -> list[Order]:
        return [o for o in self._open_by_symbol.get(symbol, _NO_ORDERS).values() if o.strategy == strategy]

    def open_orders_in(self, symbol: str) -> Iterable[Order]:
        """The open orders of ``symbol``, in the order they opened (a live view)."""
        return self._open_by_symbol.get(symbol, _NO_ORDERS).values()


_NONE_WORKING = (ZERO, ZERO)
_SEQ_KEY = ("account", "next_order_seq")
_NO_ORDERS: dict[str, Order] = {}
