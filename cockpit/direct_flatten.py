"""`cockpit flatten --all --direct`: emergency liquidation straight at IB Gateway, no engine.

What the process watchdog runs when the engine is dead (or hung). It connects with its own
``IbkrBroker`` (pacing, unique order ids, orderRef tracking, exactly-once executions), then:

1. reads every client's open orders (``reqAllOpenOrders``) and the account's positions;
2. prints the plan and asks ``confirm`` (the CLI's ``--yes`` skips the question);
3. sends IB's global cancel and polls until IB shows no open order (at most ``wait_seconds``);
4. re-reads the positions and closes each US stock position with market orders of at most
   ``risk.max_order_qty`` shares, together exactly the position (reduce-only by construction),
   each tagged ``direct-flatten-<UTC stamp>-<n>``;
5. waits until every position is flat or every closing order is done (at most ``wait_seconds``),
   prints the outcome per symbol and the final positions, and disconnects.

Exit code: 0 when IB shows no open order and no position at the end, 1 otherwise, 2 when
refused (no confirmation, or the config's broker is not IBKR).

Audit: when the state dir's store exists and its lock is free, the command, the cancels, the
orders sent, the rejections and the fills become rows of the engine's hash-chained audit log.
When an engine holds the lock (alive but hung), the store is left alone and that is said.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from core.audit import journal as kinds
from core.config import Settings
from core.domain.model import Execution, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

log = logging.getLogger("cockpit.direct_flatten")

UTC = timezone.utc
EXIT_OK, EXIT_FAIL, EXIT_REFUSED = 0, 1, 2
ORDER_PREFIX = "direct-flatten"
POLL_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.5)  # re-asking IB for open orders: quick first, then calmer


class NotConfirmed(Exception):
    """``confirm`` refused: nothing was cancelled or sent. The message says why."""


@dataclass(frozen=True, slots=True)
class CancelItem:
    """An order open at IB, of any API client."""

    client_id: int
    order_id: int
    perm_id: int
    order_ref: str
    symbol: str
    action: str
    qty: Decimal
    order_type: str
    limit_price: Decimal | None

    @property
    def name(self) -> str:
        return self.order_ref or f"ib-perm-{self.perm_id}"

    def line(self) -> str:
        price = f" {_qty(self.limit_price)}" if self.limit_price is not None else ""
        return (f"{self.action} {_qty(self.qty)} {self.symbol} {self.order_type}{price} "
                f"(client {self.client_id}, permId {self.perm_id}, ref {self.order_ref or '-'})")


@dataclass(frozen=True, slots=True)
class CloseItem:
    """A US stock position and the market orders that close it."""

    symbol: str
    position: Decimal
    chunks: tuple[Decimal, ...]
    notional: Decimal | None
    price_source: str

    @property
    def side(self) -> Side:
        return Side.SELL if self.position > 0 else Side.BUY

    def line(self) -> str:
        kind = "long" if self.position > 0 else "short"
        about = f", about {self.notional:,.2f} USD at {self.price_source}" if self.notional is not None else ""
        split = f", in {len(self.chunks)} orders of at most {_qty(max(self.chunks))}" if len(self.chunks) > 1 else ""
        return f"{self.side} {_qty(abs(self.position))} {self.symbol} at market ({kind} {_qty(self.position)}{about}{split})"


@dataclass(frozen=True, slots=True)
class Untradable:
    """A position this command does not close (not a US stock on SMART): left for the operator."""

    symbol: str
    sec_type: str
    position: Decimal
    reason: str

    def line(self) -> str:
        return f"{self.symbol} {self.sec_type} {_qty(self.position)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Plan:
    where: str
    cancels: tuple[CancelItem, ...]
    closes: tuple[CloseItem, ...]
    untradable: tuple[Untradable, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.cancels or self.closes or self.untradable)

    def lines(self) -> list[str]:
        out = [f"DIRECT FLATTEN ALL at {self.where}:"]
        if self.cancels:
            out.append(f"  cancel {len(self.cancels)} open order(s) (IB global cancel: every client's orders):")
            out += [f"    {c.line()}" for c in self.cancels]
        else:
            out.append("  no open orders (a global cancel is sent anyway)")
        if self.closes:
            out.append(f"  close {len(self.closes)} position(s) with market orders:")
            out += [f"    {c.line()}" for c in self.closes]
            total = sum((c.notional for c in self.closes if c.notional is not None), Decimal(0))
            out.append(f"  notional about {total:,.2f} USD")
        else:
            out.append("  no stock positions to close")
        if self.untradable:
            out.append("  NOT closed by this command (close them in TWS):")
            out += [f"    {u.line()}" for u in self.untradable]
        return out


@dataclass(slots=True)
class SymbolOutcome:
    symbol: str
    start_qty: Decimal
    orders: list[str] = field(default_factory=list)
    filled: Decimal = Decimal(0)
    final_qty: Decimal = Decimal(0)
    reasons: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return self.final_qty == 0

    def line(self) -> str:
        outcome = "flat" if self.flat else f"NOT FLAT (position {_qty(self.final_qty)})"
        text = (f"{self.symbol}: {outcome}, from {_qty(self.start_qty)}, {len(self.orders)} order(s) "
                f"{', '.join(self.orders) or '-'}, filled {_qty(self.filled)}")
        return text + (f"; {'; '.join(self.reasons)}" if self.reasons and not self.flat else "")


@dataclass(slots=True)
class DirectFlattenResult:
    exit_code: int
    error: str | None = None  # one line: why nothing (or not everything) could be done
    plan: Plan | None = None
    still_open: list[CancelItem] = field(default_factory=list)
    outcomes: dict[str, SymbolOutcome] = field(default_factory=dict)
    final_positions: dict[str, Decimal] = field(default_factory=dict)
    audit: str = ""

    @property
    def flat(self) -> bool:
        return self.exit_code == EXIT_OK


def _qty(q: Decimal) -> str:
    return format(q.normalize(), "f") if q == q.to_integral_value() else format(q, "f")


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{ORDER_PREFIX}:{user}@{socket.gethostname()}"


def chunks_of(qty: Decimal, max_qty: Decimal) -> tuple[Decimal, ...]:
    """``qty`` (> 0) as orders of at most ``max_qty`` that add up to exactly ``qty``."""
    out: list[Decimal] = []
    left = qty
    while left > 0:
        part = min(left, max_qty)
        out.append(part)
        left -= part
    return tuple(out)


# ---- the audit trail (optional, never in the way) -------------------------------------------------

class _Audit:
    """Rows in the engine's audit log, if the store exists and no engine holds the state dir."""

    def __init__(self, settings: Settings, actor: str, out: Callable[[str], None]) -> None:
        self.settings = settings
        self.actor = actor
        self.out = out
        self.status = ""
        self._lock: Any = None
        self._store: Any = None
        self._log: Any = None
        self.rows = 0

    async def open(self) -> None:
        from core.audit.journal import AuditLog
        from core.common.clock import LiveClock
        from core.persistence.store import DB_FILENAME, Store

        from cockpit.state_lock import StateDirBusy, StateLock

        state_dir = self.settings.state_dir
        db = state_dir / DB_FILENAME
        if not db.exists():
            self._say(f"audit: no state store at {db}: no audit rows written")
            return
        lock = StateLock(state_dir)
        try:
            lock.__enter__()
        except StateDirBusy:
            self._say(f"audit: NOT written: an engine holds the state dir {state_dir} (alive but hung?); "
                      "its store was left alone")
            return
        except OSError as exc:
            self._say(f"audit: NOT written: cannot take the state lock in {state_dir}: {exc}")
            return
        self._lock = lock
        store = Store(db)
        try:
            await store.open()
            audit_log = AuditLog(store, LiveClock())
            await audit_log.load()
        except Exception as exc:
            self._say(f"audit: NOT written: cannot open {db}: {exc}")
            await self._close_quietly(store)
            self._release()
            return
        self._store, self._log = store, audit_log

    def record(self, kind: str, **detail: Any) -> None:
        if self._log is not None:
            detail.setdefault("actor", self.actor)
            self._log.record(kind, **detail)
            self.rows += 1

    def operator(self, action: str, **detail: Any) -> None:
        if self._log is not None:
            self._log.operator(action, actor=self.actor, **detail)
            self.rows += 1

    async def flush(self) -> None:
        if self._store is None:
            return
        try:
            await self._store.flush()
        except Exception as exc:
            self._say(f"audit: writing failed ({exc}); later rows are not written")
            await self._close_quietly(self._store)
            self._store = self._log = None
            self._release()

    async def close(self) -> None:
        if self._store is not None:
            await self.flush()
        if self._store is not None:
            db = self._store.path
            await self._close_quietly(self._store)
            self._store = self._log = None
            if self.rows:
                self._say(f"audit: {self.rows} row(s) written to {db}")
        self._release()

    async def _close_quietly(self, store: Any) -> None:
        try:
            await store.close()
        except Exception as exc:
            self._say(f"audit: closing the store failed: {exc}")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def _say(self, text: str) -> None:
        self.status = text
        self.out(text)


# ---- the command ---------------------------------------------------------------------------------

async def flatten_direct(settings: Settings, *, client_id: int | None = None,
                         confirm: Callable[[Plan], bool], out: Callable[[str], None],
                         wait_seconds: float = 30.0, reason: str | None = None,
                         actor: str | None = None) -> DirectFlattenResult:
    """Cancel every order and close every position at IB Gateway, with no engine. See the module doc."""
    if settings.broker.kind != "ibkr":
        return DirectFlattenResult(EXIT_REFUSED, error=(
            f"flatten --direct talks to IB Gateway, but this config's broker is {settings.broker.kind!r}: "
            "for the paper broker, run the engine's `cockpit flatten --all`"))
    from brokers.ibkr.broker import IbkrBroker
    from core.common.clock import LiveClock

    cfg = settings.ibkr
    updates: dict[str, Any] = {}
    if client_id is not None:
        updates["client_id"] = client_id
    if cfg.id_state_file is not None:
        updates["id_state_file"] = settings.resolve(cfg.id_state_file)
    cfg = cfg.model_copy(update=updates)
    where = f"IB Gateway {cfg.host}:{cfg.port} as client {cfg.client_id}"

    run = _Run(settings, cfg, out, wait_seconds, actor or default_actor(), reason)
    broker = IbkrBroker(cfg, LiveClock())
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
                 actor: str, reason: str | None) -> None:
        self.settings = settings
        self.cfg = cfg
        self.out = out
        self.wait_seconds = wait_seconds
        self.actor = actor
        self.reason = reason
        self.audit = _Audit(settings, actor, out)
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
            self.audit.record(kinds.ORDER_FILL, subject=coid, exec_id=report.exec_id, symbol=report.symbol,
                              side=report.side, qty=report.qty, price=report.price, commission=report.commission,
                              actor="broker")
            if self.filled[coid] >= order.qty:
                self.done.setdefault(coid, None)
        elif report.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
            why = report.reason or str(report.status).lower()
            self.done.setdefault(coid, f"{coid} {str(report.status).lower()}: {why}")
            kind = kinds.ORDER_REJECTED if report.status is OrderStatus.REJECTED else kinds.ORDER_CANCELLED
            self.audit.record(kind, subject=coid, reason=why, actor="broker")
        self._changed.set()

    def _poke(self, *_: Any) -> None:
        self._changed.set()

    # -- reading IB --
    def _stock_positions(self) -> tuple[dict[str, Decimal], list[Untradable], dict[str, Any]]:
        from brokers.ibkr import convert

        ib = self.broker.ib
        stocks: dict[str, Decimal] = {}
        by_symbol: dict[str, Any] = {}
        other: list[Untradable] = []
        for p in ib.positions(self.account) if self.account else ib.positions():
            qty = convert.dec(p.position)
            if not qty:
                continue
            c = p.contract
            symbol = convert.contract_symbol(c)
            if c.secType != "STK" or (c.currency or "USD") != "USD":
                other.append(Untradable(symbol, c.secType or "?", qty,
                                        "not a US stock in USD: this command only trades stocks on SMART"))
            elif symbol in by_symbol:  # an order by symbol could hit either: close neither
                twin = by_symbol[symbol]
                other.append(Untradable(symbol, c.secType, qty, "two stock positions under one symbol: ambiguous"))
                if twin is not None:
                    other.append(Untradable(symbol, twin.secType, stocks.pop(symbol),
                                            "two stock positions under one symbol: ambiguous"))
                    by_symbol[symbol] = None
            else:
                stocks[symbol] = qty
                by_symbol[symbol] = c
        return stocks, other, {s: c for s, c in by_symbol.items() if c is not None}

    def _mark(self, contract: Any, avg_cost: Decimal | None) -> tuple[Decimal | None, str]:
        from brokers.ibkr import convert

        for item in self.broker.ib.portfolio(self.account):
            if item.contract.conId == contract.conId and convert.usable(item.marketPrice) and item.marketPrice > 0:
                return convert.dec(item.marketPrice), "the last mark"
        return avg_cost, "average cost"

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
            where += f", account {self.account}"
        out(f"connected to {where}")
        cancels = await self._open_orders()
        await self._fresh_positions()
        stocks, other, contracts = self._stock_positions()
        plan = Plan(where, tuple(cancels), self._closes(stocks, contracts), tuple(other))
        self.result.plan = plan
        if plan.empty:
            out("nothing to do: IB Gateway shows no open orders and no positions")
            self.audit.operator("flatten_direct", reason=self.reason, before={"open_orders": 0, "positions": {}},
                                after="nothing to do", gateway=where)
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

        self.audit.operator("flatten_direct", reason=self.reason,
                            before={"open_orders": len(cancels), "positions": {s: q for s, q in stocks.items()}},
                            after="cancel all, then close every stock position at market", gateway=where,
                            untradable=[u.line() for u in other])
        # 1. cancel everything, every client's
        self.broker.cancel_all()
        for c in cancels:
            self.audit.record("order.cancel_requested", subject=c.name, via="reqGlobalCancel", client_id=c.client_id,
                              perm_id=c.perm_id, symbol=c.symbol, side=c.action, qty=c.qty)
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
        self.audit.record("cancel_all.done", subject="reqGlobalCancel", still_open=[c.name for c in still_open])

        # 2. close what is there now (fills may have landed before the cancels did)
        await self._fresh_positions()
        stocks, other, contracts = self._stock_positions()
        outcomes = {s: SymbolOutcome(s, q) for s, q in stocks.items()}
        self.result.outcomes = outcomes
        if stocks != {c.symbol: c.position for c in plan.closes}:
            out("positions changed since the plan: closing " +
                (", ".join(f"{s} {_qty(q)}" for s, q in stocks.items()) or "nothing"))
        self._send_closes(self._closes(stocks, contracts), outcomes)
        await self.audit.flush()
        if outcomes:
            await self._wait_flat(outcomes)
        await self._fresh_positions()
        final, other, _ = self._stock_positions()
        for s, o in outcomes.items():
            o.final_qty = final.get(s, Decimal(0))
            o.filled = sum((self.filled.get(c, Decimal(0)) for c in o.orders), Decimal(0))
            working = [c for c in o.orders if c not in self.done]
            o.reasons = [r for c in o.orders if (r := self.done.get(c))]
            if working and not o.flat:
                o.reasons.append(f"still working at IB after {self.wait_seconds:g}s (not cancelled): "
                                 + ", ".join(working))
            elif not o.flat and not o.reasons:
                o.reasons.append("the orders filled but IB still shows a position")
        self.result.final_positions = {**final, **{u.symbol: u.position for u in other}}

        # 3. say what happened
        if outcomes:
            out("result per symbol:")
            for o in outcomes.values():
                out(f"  {o.line()}")
        for s, q in final.items():
            if s not in outcomes:
                out(f"  {s}: NOT FLAT: position {_qty(q)} appeared after the plan (not closed)")
        for u in other:
            out(f"  NOT closed (not a US stock): {u.line()}")
        out("final positions: " + (", ".join(f"{s} {_qty(q)}" for s, q in self.result.final_positions.items())
                                   or "none"))
        ok = not still_open and not self.result.final_positions
        self.result.exit_code = EXIT_OK if ok else EXIT_FAIL
        out("DONE: everything cancelled and flat" if ok else "NOT DONE: see above; IB Gateway still holds "
            "open orders or positions")
        self.audit.record("flatten_direct.done", subject=ORDER_PREFIX, flat=ok, still_open=[c.name for c in still_open],
                          final_positions=self.result.final_positions,
                          symbols={s: o.line() for s, o in outcomes.items()})
        return self.result

    def _closes(self, stocks: dict[str, Decimal], contracts: dict[str, Any]) -> tuple[CloseItem, ...]:
        from brokers.ibkr import convert

        max_qty = self.settings.risk.max_order_qty
        items = []
        avg = {convert.contract_symbol(p.contract): convert.dec(p.avgCost) for p in self.broker.ib.positions(self.account)
               if convert.usable(p.avgCost)}
        for symbol in sorted(stocks):
            qty = stocks[symbol]
            price, source = self._mark(contracts[symbol], avg.get(symbol))
            notional = (abs(qty) * price).quantize(Decimal("0.01")) if price is not None else None
            items.append(CloseItem(symbol, qty, chunks_of(abs(qty), max_qty), notional, source))
        return tuple(items)

    def _send_closes(self, closes: tuple[CloseItem, ...], outcomes: dict[str, SymbolOutcome]) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        n = 0
        for close in closes:
            for qty in close.chunks:
                n += 1
                coid = f"{ORDER_PREFIX}-{stamp}-{n}"
                order = Order(client_order_id=coid, strategy=ORDER_PREFIX, symbol=close.symbol, side=close.side,
                              qty=qty, order_type=OrderType.MARKET, tif=TimeInForce.DAY, limit_price=None,
                              created_at=datetime.now(UTC), status=OrderStatus.SUBMITTED)
                self.orders[coid] = order
                outcomes[close.symbol].orders.append(coid)
                self.audit.record(kinds.ORDER_SENT, subject=coid, broker="ibkr", symbol=close.symbol,
                                  side=close.side, qty=qty, type=OrderType.MARKET, position=close.position)
                self.out(f"  sent {coid}: {close.side} {_qty(qty)} {close.symbol} at market")
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
                stocks, _, _ = self._stock_positions()
                # a symbol is settled when IB shows it flat, or when its orders are done and one failed
                settled = all(
                    not stocks.get(s) or (all(c in self.done for c in o.orders) and any(self.done[c] for c in o.orders))
                    for s, o in outcomes.items())
                left = deadline - loop.time()
                if settled or left <= 0:
                    return
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    return
        finally:
            ib.positionEvent -= self._poke


# ---- the command line ------------------------------------------------------------------------------

def run_from_cli(args: argparse.Namespace, load_settings: Callable[[], Settings]) -> int:
    """``cockpit flatten --all --direct [--client-id N] [--yes] [--wait S] [--reason TEXT]``.

    Raises ControlCliError (printed as one line by the CLI) for usage errors and failures.
    """
    from cockpit.control_cli import ControlCliError

    if not args.direct:
        raise ControlCliError("--client-id goes with --direct: `cockpit flatten --all --direct --client-id N`", 2)
    if not args.all:
        raise ControlCliError(f"--direct flattens everything: use `cockpit flatten --all --direct` "
                              f"(one symbol goes through the engine: `cockpit flatten {args.symbol}`)", 2)
    for flag, given in (("--json", args.json), ("--no-wait", args.no_wait)):
        if given:
            raise ControlCliError(f"{flag} is not available with --direct", 2)
    if args.wait <= 0:
        raise ControlCliError("--wait must be a positive number of seconds", 2)
    settings = load_settings()
    if settings.broker.kind == "ibkr":  # (anything else is refused at once, and should leave no log dir behind)
        _log_to_file(settings)

    def out(text: str) -> None:
        print(text, flush=True)

    def confirm(plan: Plan) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed("refusing without confirmation: no terminal to ask on; pass --yes")
        return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")

    result = asyncio.run(flatten_direct(settings, client_id=args.client_id, confirm=confirm, out=out,
                                        wait_seconds=args.wait, reason=args.reason))
    if result.error:
        raise ControlCliError(result.error, result.exit_code)
    return result.exit_code


def _log_to_file(settings: Settings) -> None:
    """ib_async's and the adapter's log lines go to the engine's log file, not over the summary."""
    from cockpit.logs import setup_logging

    lcfg = settings.logging
    try:
        setup_logging(lcfg.level, settings.state_dir / lcfg.file, lcfg.max_bytes, lcfg.backups, stderr=False)
    except OSError:
        setup_logging("ERROR", None)  # no writable log file: only errors, on stderr
