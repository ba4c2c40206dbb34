"""One direct flatten against IB Gateway: read, confirm, cancel, close, wait, report.

The IB side of the command: its own ``IbkrBroker`` (pacing, unique order ids, orderRef
tracking, exactly-once executions), IB's answers turned into plain values for the plan
(``plan``), the rows for the audit trail (``audit_sink``), the outcome (``outcome``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cockpit.direct_flatten.audit_sink import ORDER_PREFIX, AuditSink, default_actor
from cockpit.direct_flatten.outcome import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_REFUSED,
    DirectFlattenResult,
    SymbolOutcome,
    finish,
    settled,
)
from cockpit.direct_flatten.plan import (
    CancelItem,
    CloseItem,
    Holding,
    NotConfirmed,
    Plan,
    Untradable,
    build_plan,
    close_items,
    qty_text,
    quantities,
    split_positions,
)
from core.common.clock import LiveClock
from core.config import Settings
from core.domain.model import Execution, Order, OrderStatus, OrderType, OrderUpdate, TimeInForce

log = logging.getLogger("cockpit.direct_flatten")

POLL_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.5)  # re-asking IB for open orders: quick first, then calmer


async def flatten_direct(settings: Settings, *, client_id: int | None = None,
                         confirm: Callable[[Plan], bool], out: Callable[[str], None],
                         wait_seconds: float = 30.0, reason: str | None = None,
                         actor: str | None = None, lock_held: bool = False) -> DirectFlattenResult:
    """Cancel every order and close every position at IB Gateway, with no engine.

    1. reads every client's open orders (``reqAllOpenOrders``) and the account's positions;
    2. prints the plan and asks ``confirm`` (the CLI's ``--yes`` skips the question);
    3. sends IB's global cancel and polls until IB shows no open order (at most ``wait_seconds``);
    4. re-reads the positions and closes each US stock position with market orders of at most
       ``risk.max_order_qty`` shares, together exactly the position (reduce-only by construction),
       each tagged ``direct-flatten-<UTC stamp>-<n>``;
    5. waits until every position is flat or every closing order is done (at most ``wait_seconds``),
       prints the outcome per symbol and the final positions, and disconnects.

    Exit code: 0 when IB shows no open order and no position at the end, 1 otherwise, 2 when
    refused (no confirmation, or the config's broker is not IBKR). ``lock_held``: the caller
    holds the state lock (the watchdog, so that no engine starts meanwhile): the audit rows
    are written under it.
    """
    if settings.broker.kind != "ibkr":
        return DirectFlattenResult(EXIT_REFUSED, error=(
            f"flatten --direct talks to IB Gateway, but this config's broker is {settings.broker.kind!r}: "
            "for the paper broker, run the engine's `cockpit flatten --all`"))
    from brokers.ibkr.broker import IbkrBroker

    cfg = settings.ibkr
    updates: dict[str, Any] = {}
    if client_id is not None:
        updates["client_id"] = client_id
    if cfg.id_state_file is not None:
        updates["id_state_file"] = settings.resolve(cfg.id_state_file)
    cfg = cfg.model_copy(update=updates)
    where = f"IB Gateway {cfg.host}:{cfg.port} as client {cfg.client_id}"

    clock = LiveClock()
    audit = AuditSink(settings.state_dir, actor or default_actor(), out, lock_held=lock_held)
    run = _Run(settings, cfg, out, wait_seconds, audit, reason, clock)
    broker = IbkrBroker(cfg, clock)
    broker.set_report_handler(run.on_report)
    run.broker = broker
    await run.audit.open()
    try:
        try:
            await broker.connect()
        except ConnectionError as exc:
            return run.fail(_connect_error(str(exc), cfg.client_id))
        except RuntimeError as exc:  # e.g. an unreadable ibkr.id_state_file
            return run.fail(f"cannot connect to {where}: {exc}")
        try:
            return await run.execute(where, confirm)
        except (ConnectionError, TimeoutError) as exc:
            return run.fail(f"IB Gateway stopped answering ({exc or type(exc).__name__}): the flatten may be "
                            "incomplete; run `cockpit flatten --all --direct` again once it is back")
    finally:
        await broker.disconnect()
        await run.audit.close()
        run.result.audit = run.audit.status


def _connect_error(text: str, client_id: int) -> str:
    if "326" in text:
        return (f"client id {client_id} is already in use at IB Gateway (error 326; the hung engine's session?): "
                f"run again with --client-id N, an id no other session uses")
    return f"cannot flatten: {text}"


class _Run:
    """One direct flatten: its state, the broker's reports, the audit rows."""

    def __init__(self, settings: Settings, cfg: Any, out: Callable[[str], None], wait_seconds: float,
                 audit: AuditSink, reason: str | None, clock: LiveClock) -> None:
        self.settings = settings
        self.cfg = cfg
        self.out = out
        self.wait_seconds = wait_seconds
        self.reason = reason
        self.audit = audit
        self.clock = clock
        self.broker: Any = None
        self.result = DirectFlattenResult(EXIT_FAIL)
        self.orders: dict[str, Order] = {}  # ours, by client order id
        self.filled: dict[str, Decimal] = {}
        self.done: dict[str, str | None] = {}  # client order id -> reason if rejected/cancelled, None if filled
        self.account = ""
        self._changed = asyncio.Event()

    def fail(self, message: str) -> DirectFlattenResult:
        self.result.exit_code = EXIT_FAIL
        self.result.error = message
        return self.result

    # -- broker reports, on the loop --
    def on_report(self, report: Execution | OrderUpdate) -> None:
        coid = report.client_order_id
        order = self.orders.get(coid)
        if order is None:
            return  # an earlier session's execution, replayed by the connect's sync
        if isinstance(report, Execution):
            self.filled[coid] = self.filled.get(coid, Decimal(0)) + report.qty
            self.audit.fill(report)
            if self.filled[coid] >= order.qty:
                self.done.setdefault(coid, None)
        elif report.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
            why = report.reason or str(report.status).lower()
            self.done.setdefault(coid, f"{coid} {str(report.status).lower()}: {why}")
            self.audit.order_ended(report, why, rejected=report.status is OrderStatus.REJECTED)
        self._changed.set()

    def _poke(self, *_: Any) -> None:
        self._changed.set()

    # -- reading IB, into plain values --
    def _holdings(self) -> list[Holding]:
        from brokers.ibkr import convert

        ib = self.broker.ib
        out = []
        for p in ib.positions(self.account) if self.account else ib.positions():
            c = p.contract
            out.append(Holding(symbol=convert.contract_symbol(c), sec_type=c.secType or "", currency=c.currency or "",
                               qty=convert.dec(p.position), con_id=c.conId,
                               avg_cost=convert.dec(p.avgCost) if convert.usable(p.avgCost) else None))
        return out

    def _stock_positions(self) -> tuple[dict[str, Holding], list[Untradable]]:
        return split_positions(self._holdings())

    def _marks(self) -> dict[int, Decimal]:
        """IB's last mark of each contract held, where it has a usable one."""
        from brokers.ibkr import convert

        marks: dict[int, Decimal] = {}
        for item in self.broker.ib.portfolio(self.account):
            if convert.usable(item.marketPrice) and item.marketPrice > 0:
                marks.setdefault(item.contract.conId, convert.dec(item.marketPrice))
        return marks

    async def _open_orders(self) -> list[CancelItem]:
        from ib_async import OrderStatus as IBOrderStatus

        from brokers.ibkr import convert

        # every client's working orders (the adapter's open_orders() knows only this client id's)
        trades = await asyncio.wait_for(self.broker.ib.reqAllOpenOrdersAsync(), self.cfg.connect_timeout)
        seen: dict[int, CancelItem] = {}
        for t in trades:
            o = t.order
            if t.orderStatus.status in IBOrderStatus.DoneStates:  # a push that arrived during the request
                continue
            key = o.permId or id(t)
            seen[key] = CancelItem(
                client_id=o.clientId, order_id=o.orderId, perm_id=o.permId, order_ref=o.orderRef or "",
                symbol=convert.contract_symbol(t.contract), action=o.action, qty=convert.dec(o.totalQuantity),
                order_type=o.orderType,
                limit_price=convert.dec(o.lmtPrice) if o.orderType == "LMT" and convert.usable(o.lmtPrice) else None)
        return list(seen.values())

    async def _fresh_positions(self) -> None:
        await asyncio.wait_for(self.broker.ib.reqPositionsAsync(), self.cfg.connect_timeout)

    # -- the steps --
    async def execute(self, where: str, confirm: Callable[[Plan], bool]) -> DirectFlattenResult:
        out = self.out
        self.account = (await self.broker.account()).extra.get("account", "")
        if self.account:
            from brokers.ibkr.redact import mask_account

            where += f", account {mask_account(self.account)}"  # printed and audited: never the raw id
        out(f"connected to {where}")
        cancels = await self._open_orders()
        await self._fresh_positions()
        max_qty = self.settings.risk.max_order_qty
        plan = build_plan(where, cancels, self._holdings(), self._marks(), max_qty)
        self.result.plan = plan
        if plan.empty:
            out("nothing to do: IB Gateway shows no open orders and no positions")
            self.audit.command(self.reason, before={"open_orders": 0, "positions": {}}, after="nothing to do",
                               gateway=where)
            self.result.exit_code = EXIT_OK
            return self.result
        for line in plan.lines():
            out(line)
        try:
            # in a thread: the operator may read the plan for a while; the IB session stays served
            if not await asyncio.to_thread(confirm, plan):
                raise NotConfirmed("not confirmed: nothing was cancelled or sent")
        except NotConfirmed as exc:
            self.result.exit_code, self.result.error = EXIT_REFUSED, str(exc)
            return self.result

        self.audit.command(self.reason,
                           before={"open_orders": len(cancels), "positions": {c.symbol: c.position for c in plan.closes}},
                           after="cancel all, then close every stock position at market", gateway=where,
                           untradable=[u.line() for u in plan.untradable])
        # 1. cancel everything, every client's
        self.broker.cancel_all()
        for c in cancels:
            self.audit.cancel_requested(c)
        await self.audit.flush()
        out("global cancel sent; waiting for IB to show no open orders")
        still_open = await self._wait_no_open_orders()
        self.result.still_open = still_open
        if still_open:
            out(f"NOT CANCELLED after {self.wait_seconds:g}s: {len(still_open)} order(s) still open at IB:")
            for c in still_open:
                out(f"  {c.line()}")
        else:
            out("all orders cancelled: IB shows no open orders")
        self.audit.cancels_done(still_open)

        # 2. close what is there now (fills may have landed before the cancels did)
        await self._fresh_positions()
        stocks, _ = self._stock_positions()
        now = quantities(stocks)
        outcomes = {s: SymbolOutcome(s, q) for s, q in now.items()}
        self.result.outcomes = outcomes
        if now != {c.symbol: c.position for c in plan.closes}:
            out("positions changed since the plan: closing " +
                (", ".join(f"{s} {qty_text(q)}" for s, q in now.items()) or "nothing"))
        self._send_closes(close_items(stocks, self._marks(), max_qty), outcomes)
        await self.audit.flush()
        if outcomes:
            await self._wait_flat(outcomes)
        await self._fresh_positions()
        final_stocks, other = self._stock_positions()
        final = quantities(final_stocks)
        finish(outcomes, final, self.filled, self.done, self.wait_seconds)
        self.result.final_positions = {**final, **{u.symbol: u.position for u in other}}

        # 3. say what happened
        if outcomes:
            out("result per symbol:")
            for o in outcomes.values():
                out(f"  {o.line()}")
        for s, q in final.items():
            if s not in outcomes:
                out(f"  {s}: NOT FLAT: position {qty_text(q)} appeared after the plan (not closed)")
        for u in other:
            out(f"  NOT closed (not a US stock): {u.line()}")
        out("final positions: " + (", ".join(f"{s} {qty_text(q)}" for s, q in self.result.final_positions.items())
                                   or "none"))
        ok = not still_open and not self.result.final_positions
        self.result.exit_code = EXIT_OK if ok else EXIT_FAIL
        out("DONE: everything cancelled and flat" if ok else "NOT DONE: see above; IB Gateway still holds "
            "open orders or positions")
        self.audit.done(ok, still_open, self.result.final_positions, {s: o.line() for s, o in outcomes.items()})
        return self.result

    def _send_closes(self, closes: tuple[CloseItem, ...], outcomes: dict[str, SymbolOutcome]) -> None:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        n = 0
        for close in closes:
            for qty in close.chunks:
                n += 1
                coid = f"{ORDER_PREFIX}-{stamp}-{n}"
                order = Order(client_order_id=coid, strategy=ORDER_PREFIX, symbol=close.symbol, side=close.side,
                              qty=qty, order_type=OrderType.MARKET, tif=TimeInForce.DAY, limit_price=None,
                              created_at=self.clock.now(), status=OrderStatus.SUBMITTED)
                self.orders[coid] = order
                outcomes[close.symbol].orders.append(coid)
                self.audit.order_sent(coid, close, qty)
                self.out(f"  sent {coid}: {close.side} {qty_text(qty)} {close.symbol} at market")
                self.broker.place(order)  # a refusal comes back at once through on_report

    async def _wait_no_open_orders(self) -> list[CancelItem]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        step = 0
        while True:
            left = await self._open_orders()
            if not left or loop.time() >= deadline:
                return left
            await asyncio.sleep(min(POLL_SECONDS[min(step, len(POLL_SECONDS) - 1)], max(0.0, deadline - loop.time())))
            step += 1

    async def _wait_flat(self, outcomes: dict[str, SymbolOutcome]) -> None:
        """Until each symbol is flat at IB, or all its orders are done; at most ``wait_seconds``."""
        ib = self.broker.ib
        ib.positionEvent += self._poke
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        try:
            while True:
                self._changed.clear()
                stocks, _ = self._stock_positions()
                left = deadline - loop.time()
                if settled(quantities(stocks), outcomes, self.done) or left <= 0:
                    return
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    return
        finally:
            ib.positionEvent -= self._poke
