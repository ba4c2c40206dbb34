"""Reconciliation: the engine's book against the broker's, at connect, after every reconnect
and every few minutes, for any broker.

Compared: positions per symbol, open orders (by client order id) and the day's executions.

- A broker execution the engine never booked is not a break: it is a fill the engine missed
  (made while it was blind) and is applied once, by exec id, like any other report.
- Every other difference is a *break*. A difference must still be there ``settle_seconds``
  later (a fill or an acknowledgement in flight is not a break). A break is shown (status
  bar, ``cockpit breaks``, ``/status``), logged as an error (the alerts pane), audited, and
  the risk gate refuses new orders for its symbol until the operator resolves it: accept
  the broker's view, adopt the broker's unknown orders, or flatten. Only the operator clears
  a break, even one whose difference went away by itself: a book that disagreed once
  deserves a look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.common.bus import Bus
from core.common.clock import Clock
from core.config import Settings
from core.domain import text
from core.domain.events import BreakFound, MissedFillFound, ReconcilePassed
from core.domain.model import ZERO, BrokerPosition, Execution, Order, OrderStatus
from core.execution.broker import Broker
from core.execution.oms import OrderManager
from core.persistence.store import Store
from core.portfolio.book import Portfolio
from core.risk.gate import RiskGate


class ReconcileHost(Protocol):
    """What a reconciliation pass reads and asks of the engine (the kernel provides it)."""

    settings: Settings
    store: Store
    broker: Broker
    oms: OrderManager | None
    portfolio: Portfolio
    gate: RiskGate
    bus: Bus
    clock: Clock
    wall_clock: Clock
    market_tz: ZoneInfo

    @property
    def shutting_down(self) -> bool: ...

    async def commit(self) -> None: ...

log = logging.getLogger("cockpit.reconcile")


# Engine orders the broker must know: sent, and not settled.
_AT_BROKER = frozenset({OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED,
                        OrderStatus.PENDING_CANCEL, OrderStatus.UNKNOWN})


class DiffKind(StrEnum):
    POSITION = "position"  # quantities differ
    UNKNOWN_ORDER = "unknown_order"  # open at the broker, not open in the engine
    MISSING_ORDER = "missing_order"  # open in the engine, the broker has no such open order
    MISSING_EXECUTION = "missing_execution"  # booked by the engine today, the broker has no such execution


@dataclass(frozen=True, slots=True)
class Difference:
    symbol: str
    kind: DiffKind
    key: str  # the symbol, the client order id or the exec id
    engine: str  # what the engine says
    broker: str  # what the broker says

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.symbol, self.kind, self.key)

    def __str__(self) -> str:
        what = "" if self.kind is DiffKind.POSITION else f" {self.key}"
        return f"{self.kind}{what}: engine {self.engine}, broker {self.broker}"

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "kind": str(self.kind), "key": self.key, "engine": self.engine,
                "broker": self.broker}


@dataclass(frozen=True, slots=True)
class BrokerBook:
    positions: dict[str, BrokerPosition]
    open_orders: dict[str, Order]
    executions: list[Execution]


@dataclass(frozen=True, slots=True)
class EngineBook:
    positions: dict[str, Decimal]
    open_orders: dict[str, Order]
    execs_today: dict[str, str]  # exec id -> symbol, the fills booked since the day began


def compare(engine: EngineBook, broker: BrokerBook) -> list[Difference]:
    """Every difference between the two books (pure: no I/O), sorted by symbol and kind."""
    out: list[Difference] = []
    for symbol in sorted(set(engine.positions) | set(broker.positions)):
        mine = engine.positions.get(symbol, ZERO)
        bp = broker.positions.get(symbol)
        theirs = bp.qty if bp is not None else ZERO
        if mine != theirs:
            out.append(Difference(symbol, DiffKind.POSITION, symbol, text.qty(mine),
                                  text.qty(theirs) + (f" @ {bp.avg_cost}" if bp is not None and theirs else "")))
    for coid, order in broker.open_orders.items():
        if coid not in engine.open_orders:
            out.append(Difference(order.symbol, DiffKind.UNKNOWN_ORDER, coid, "no such open order",
                                  f"{order.side} {text.qty(order.remaining)} {order.order_type}"
                                  + (f" @ {order.limit_price}" if order.limit_price is not None else "")))
    for coid, order in engine.open_orders.items():
        if order.status in _AT_BROKER and coid not in broker.open_orders:
            out.append(Difference(order.symbol, DiffKind.MISSING_ORDER, coid,
                                  f"{order.status} {order.side} {text.qty(order.remaining)}", "no such open order"))
    broker_execs = {e.exec_id for e in broker.executions}
    for eid in sorted(set(engine.execs_today) - broker_execs):
        out.append(Difference(engine.execs_today[eid], DiffKind.MISSING_EXECUTION, eid, "booked",
                              "no such execution today"))
    return sorted(out, key=lambda d: (d.symbol, d.kind, d.key))


@dataclass(slots=True)
class Break:
    """The differences found for one symbol, kept until the operator resolves them."""

    symbol: str
    found_at: datetime
    differences: list[Difference]
    present: bool = True  # still seen by the latest pass
    last_seen_at: datetime | None = None

    def summary(self) -> str:
        return "; ".join(str(d) for d in self.differences)

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "found_at": self.found_at.isoformat(), "present": self.present,
                "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
                "differences": [d.as_dict() for d in self.differences]}


@dataclass(slots=True)
class PassResult:
    reason: str
    at: datetime
    skipped: str | None = None  # why the pass did not compare (broker not connected)
    missed_fills: int = 0
    differences: list[Difference] = field(default_factory=list)
    new_breaks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "at": self.at.isoformat(), "skipped": self.skipped,
                "missed_fills": self.missed_fills, "differences": [d.as_dict() for d in self.differences],
                "new_breaks": self.new_breaks}

    def __str__(self) -> str:
        if self.skipped:
            return f"reconcile ({self.reason}) skipped: {self.skipped}"
        if not self.differences:
            return f"reconcile ({self.reason}): books agree" + (
                f" ({self.missed_fills} missed fill(s) applied)" if self.missed_fills else "")
        return f"reconcile ({self.reason}): {len(self.differences)} difference(s); " + "; ".join(
            f"{d.symbol} {d}" for d in self.differences)


class Reconciler:
    """Runs passes for an engine and keeps its breaks; the gate blocks their symbols."""

    def __init__(self, engine: ReconcileHost) -> None:
        self.engine = engine
        self.breaks: dict[str, Break] = {}
        self.last: PassResult | None = None
        self.passes = 0
        # Engine fills the operator accepted the broker's view of (a MISSING_EXECUTION): the
        # booked row stays in history, and is no longer a difference (for this run).
        self.accepted_execs: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def settle_seconds(self) -> float:
        return self.engine.settings.reconcile.settle_seconds

    async def idle(self) -> None:
        """Until no pass is running (shutdown waits here before closing the store)."""
        async with self._lock:
            return

    async def run(self, reason: str) -> PassResult:
        """One pass: apply missed fills, compare, confirm after the settle time, record breaks."""
        async with self._lock:
            result = await self._run(reason)
        self.last = result
        self.passes += 1
        level = logging.WARNING if result.differences else logging.INFO
        log.log(level, "%s", result)
        return result

    async def _run(self, reason: str) -> PassResult:
        engine = self.engine
        now = engine.wall_clock.now()  # when the pass ran, for people: wall time, never replay time
        if not engine.store.is_open or engine.shutting_down:
            return PassResult(reason, now, skipped="the engine is stopping")
        if not getattr(engine.broker, "accepting", engine.broker.connected):
            return PassResult(reason, now, skipped=f"broker not connected ({engine.broker.status})")
        try:
            first, missed = await self._differences()
            if first and self.settle_seconds > 0:
                await asyncio.sleep(self.settle_seconds)  # in flight is not a break: look again
                again, missed2 = await self._differences()
                missed += missed2
                seen_first = set(first)  # the same difference, values included, both times
                first = [d for d in again if d in seen_first]
        except (ConnectionError, TimeoutError, OSError) as exc:
            return PassResult(reason, now, skipped=f"broker went away or did not answer during the pass: {exc!r}")
        result = PassResult(reason, engine.wall_clock.now(), missed_fills=missed, differences=first)
        self._record(result)
        engine.bus.publish(ReconcilePassed(reason, len(first), missed, tuple(result.new_breaks), result.at))
        await engine.commit()
        return result

    async def _differences(self) -> tuple[list[Difference], int]:
        engine = self.engine
        oms = engine.oms
        assert oms is not None
        day_start = self._day_start()
        await engine.commit()
        engine_execs = await engine.store.fetchall(
            # a coarse bound in SQL (text order of ISO times); the exact one below, in Python
            # adjustment fills (overrides, accepted breaks) were never at the broker: not compared
            "SELECT exec_id, symbol, ts FROM fills WHERE ts >= ? AND kind = 'trade'",
            ((day_start - timedelta(days=1)).astimezone(UTC).isoformat(),))
        broker_positions = {p.symbol: p for p in await engine.broker.positions()}
        broker_orders = {o.client_order_id: o for o in await engine.broker.open_orders()}
        broker_execs = await engine.broker.executions_since(day_start - timedelta(microseconds=1))
        busy = engine.broker.in_flight_symbols()  # a fill or an order on its way is not a difference
        missed = 0
        for ex in await oms.unseen(broker_execs):
            if ex.symbol not in busy:
                missed += 1
                log.warning("reconcile: applying fill %s (%s %s %s) the engine never booked",
                            ex.exec_id, ex.side, ex.qty, ex.symbol)
                engine.bus.publish(MissedFillFound(ex))
                oms.on_report(ex)
        book = EngineBook(
            positions={s: p.qty for s, p in engine.portfolio.positions.items() if p.qty},
            open_orders=dict(oms.open_orders),
            execs_today={r["exec_id"]: r["symbol"] for r in engine_execs
                         if datetime.fromisoformat(r["ts"]) >= day_start and r["exec_id"] not in self.accepted_execs},
        )
        diffs = compare(book, BrokerBook(broker_positions, broker_orders, broker_execs))
        return [d for d in diffs if d.symbol not in busy], missed

    def _day_start(self) -> datetime:
        """The start of the engine's exchange day (the day's executions are compared)."""
        tz = self.engine.market_tz
        local = self.engine.clock.now().astimezone(tz)
        return datetime.combine(local.date(), time(0), tz)

    def _record(self, result: PassResult) -> None:
        engine = self.engine
        by_symbol: dict[str, list[Difference]] = {}
        for d in result.differences:
            by_symbol.setdefault(d.symbol, []).append(d)
        for symbol, known in self.breaks.items():
            known.present = symbol in by_symbol
        for symbol, diffs in by_symbol.items():
            brk = self.breaks.get(symbol)
            if brk is None:
                brk = self.breaks[symbol] = Break(symbol, result.at, diffs)
                result.new_breaks.append(symbol)
                engine.gate.block_symbol(symbol, f"reconciliation break: {brk.summary()}")
                engine.bus.publish(BreakFound(symbol, brk.summary(), result.reason, tuple(d.as_dict() for d in diffs)))
                log.error("RECONCILIATION BREAK %s: %s; new orders for %s are blocked until resolved "
                          "(key b, or `cockpit resolve %s accept|adopt|flatten`)", symbol, brk.summary(), symbol,
                          symbol)
            else:
                brk.differences = _merge(brk.differences, diffs)
                brk.present = True
            brk.last_seen_at = result.at

    def clear(self, symbol: str) -> Break | None:
        brk = self.breaks.pop(symbol, None)
        self.engine.gate.unblock_symbol(symbol)
        return brk

    def views(self) -> list[dict[str, Any]]:
        return [b.as_dict() for b in sorted(self.breaks.values(), key=lambda b: b.symbol)]


def _merge(old: Iterable[Difference], new: Iterable[Difference]) -> list[Difference]:
    by_ident = {d.ident: d for d in old}
    by_ident.update({d.ident: d for d in new})
    return sorted(by_ident.values(), key=lambda d: (d.kind, d.key))

