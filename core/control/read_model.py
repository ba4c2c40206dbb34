"""The one read model: what the TUI, the CLI and the API see of the engine.

The UI never reads engine objects while it draws: it asks the read model for a snapshot
(plain frozen values) at a bounded rate, so a tick storm costs one snapshot per frame, not per
tick. The read model follows the bus: ``version`` counts the events since start (a screen
redraws only when it moved), and it keeps what the engine itself lets go of: the most recent
orders, of this run and of earlier ones (loaded from the store at start).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.control.deadman import DeadmanView
from core.data.feeds.failover import FailoverFeed
from core.domain import events as ev
from core.domain.events import IntentRejected
from core.domain.model import Order, OrderStatus
from core.domain.serialize import money
from core.persistence.rows import order_from_row
from core.portfolio.book import Portfolio

if TYPE_CHECKING:
    from core.control.services import EngineServices

RECENT_ORDERS = 200  # orders the read model keeps for the orders pane (working ones always)


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_cost: Decimal
    last: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    unrealized_pct: Decimal | None
    realized_pnl: Decimal
    realized_today: Decimal


@dataclass(frozen=True, slots=True)
class OrderView:
    client_order_id: str
    strategy: str
    symbol: str
    side: str
    qty: Decimal
    filled_qty: Decimal
    order_type: str
    limit_price: Decimal | None
    status: OrderStatus
    created_at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class CapitalView:
    """One strategy's capital allocation: ``given`` as written ("50000", "25%"; None: none),
    ``allocation`` in money, ``used`` its gross exposure now (None: a symbol without a mark)."""

    strategy: str
    enabled: bool
    given: str | None
    allocation: Decimal | None
    used: Decimal | None
    remaining: Decimal | None
    used_pct: Decimal | None


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    taken_at: datetime  # engine clock (data time in a replay)
    mode: str  # PAPER or LIVE
    broker_kind: str
    broker_connected: bool
    feed: str
    last_event_at: datetime | None
    events_processed: int
    feed_age: float | None  # wall seconds since the feed last delivered
    cash: Decimal
    equity: Decimal
    realized: Decimal
    unrealized: Decimal
    commissions: Decimal
    positions: tuple[PositionView, ...]
    orders: tuple[OrderView, ...]
    rejections: tuple[IntentRejected, ...]
    day_pnl: Decimal
    max_drawdown: Decimal
    equity_curve: tuple[tuple[datetime, Decimal], ...]
    market_tz: tzinfo
    trading_state: str = "ACTIVE"
    trading_reason: str = ""
    deadman: DeadmanView | None = None
    strategies: tuple[tuple[str, bool], ...] = ()
    reduce_only_symbols: tuple[str, ...] = ()
    liquidation: dict[str, Any] | None = None
    broker_status: str = ""
    breaks: tuple[str, ...] = ()  # symbols with an unresolved reconciliation break
    hold: str | None = None  # why no new order passes right now (broker down, reconciling)
    # why no strategy order passes right now (the active feed is not live: IB delayed data)
    feed_hold: str | None = None
    feed_healthy: bool = True  # False while the feed is stale
    # (strategy, symbol) pairs quarantined this run: that strategy no longer trades that symbol
    quarantined: tuple[tuple[str, str], ...] = ()
    # every feed source (a live feed's primary and fallbacks): name, kind, active, healthy, reason ...
    feeds: tuple[dict[str, Any], ...] = ()
    capital: tuple[CapitalView, ...] = ()  # every strategy's allocation and how much of it is used
    equity_at_start: Decimal | None = None  # what percentage allocations are a share of

    @property
    def net(self) -> Decimal:
        return self.realized + self.unrealized - self.commissions


def position_views(portfolio: Portfolio, realized_at_day_open: dict[str, Decimal]) -> tuple[PositionView, ...]:
    views = []
    for p in sorted(portfolio.positions.values(), key=lambda p: p.symbol):
        if p.qty == 0 and p.realized_pnl == 0:
            continue
        cost = p.avg_cost * p.qty
        pct = (p.unrealized_pnl / abs(cost) * 100) if cost else None
        views.append(PositionView(p.symbol, p.qty, p.avg_cost, p.last_price, p.market_value,
                                  p.unrealized_pnl, pct, p.realized_pnl,
                                  p.realized_pnl - realized_at_day_open.get(p.symbol, Decimal(0))))
    return tuple(views)


def order_views(orders: list[Order], limit: int) -> tuple[OrderView, ...]:
    """Working orders first, then the most recent finished ones, at most ``limit``."""
    working = [o for o in orders if not o.status.is_terminal]
    done = [o for o in orders if o.status.is_terminal]
    picked = sorted(working, key=lambda o: o.created_at, reverse=True)
    picked += sorted(done, key=lambda o: o.updated_at or o.created_at, reverse=True)[: max(0, limit - len(picked))]
    return tuple(order_view(o) for o in picked[:limit])


def order_view(o: Order) -> OrderView:
    return OrderView(o.client_order_id, o.strategy, o.symbol, o.side.value, o.qty, o.filled_qty, o.order_type.value,
                     o.limit_price, o.status, o.created_at, o.reason)


class ReadModel:
    """Builds snapshots and status for every reader; the only reader of the engine's owners."""

    def __init__(self, engine: EngineServices) -> None:
        self._engine = engine
        self.version = 0
        self.recent: OrderedDict[str, Order] = OrderedDict()  # newest last
        self.rejections: deque[IntentRejected] = deque(maxlen=50)
        # strategy -> {symbol: error} it was quarantined for, from the bus (this run only: the
        # engine keeps a quarantine in memory, and a restart lifts it)
        self.quarantined: dict[str, dict[str, str]] = {}
        bus = engine.bus
        for event_type in _CHANGES:
            bus.subscribe(event_type, self._changed)
        bus.subscribe(ev.OrderChanged, self._on_order)
        bus.subscribe(IntentRejected, self._on_rejected)
        bus.subscribe(ev.StrategyQuarantined, self._on_quarantined)
        self.preflight: ev.PreflightDecided | None = None  # this run's go-live check at start (a LIVE account)
        bus.subscribe(ev.PreflightDecided, self._on_preflight)

    def _changed(self, _event: object) -> None:
        self.version += 1

    def _on_order(self, event: ev.OrderChanged) -> None:
        self.version += 1
        coid = event.order.client_order_id
        self.recent[coid] = event.order
        self.recent.move_to_end(coid)
        if len(self.recent) > RECENT_ORDERS:  # working orders come from the OMS in every snapshot
            self.recent.popitem(last=False)

    def _on_rejected(self, event: IntentRejected) -> None:
        self.version += 1
        self.rejections.append(event)

    def _on_preflight(self, event: ev.PreflightDecided) -> None:
        self.version += 1
        self.preflight = event

    def _on_quarantined(self, event: ev.StrategyQuarantined) -> None:
        self.version += 1
        if event.symbol is not None:  # without a symbol the strategy is disabled: ``enabled`` says so
            self.quarantined.setdefault(event.strategy, {})[event.symbol] = event.error

    async def load(self) -> None:
        """The last orders of earlier runs, so the orders pane does not start empty."""
        rows = await self._engine.store.fetchall(
            "SELECT * FROM orders ORDER BY updated_at DESC LIMIT ?", (RECENT_ORDERS,))
        for r in reversed(rows):
            order = order_from_row(r)
            self.recent.setdefault(order.client_order_id, order)

    # ---- what readers ask ----------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The engine has loaded its book and orders: snapshots and commands make sense."""
        return self._engine.oms is not None

    def snapshot(self, max_orders: int = 50) -> EngineSnapshot:
        e = self._engine
        pnl = e.portfolio.pnl()
        orders = dict(self.recent)
        if e.oms is not None:
            orders.update(e.oms.open_orders)  # live objects: the working ones as they are now
        controls = e.controls
        return EngineSnapshot(
            taken_at=e.clock.now(),
            mode="PAPER" if e.broker.kind == "paper" else "LIVE",
            broker_kind=e.broker.kind,
            broker_connected=e.broker.connected,
            feed=e.feed.name,
            last_event_at=e.cursor.ts if e.cursor else None,
            events_processed=e.events_processed,
            feed_age=(_loop_time() - e.last_batch_at) if e.last_batch_at is not None else None,
            cash=e.portfolio.cash,
            equity=e.portfolio.equity(),
            realized=pnl.realized,
            unrealized=pnl.unrealized,
            commissions=pnl.commissions,
            positions=position_views(e.portfolio, e.realized_at_day_open),
            orders=order_views(list(orders.values()), max_orders),
            rejections=tuple(self.rejections),
            day_pnl=e.equity.day_pnl,
            max_drawdown=e.equity.max_drawdown,
            equity_curve=tuple(e.equity.curve),
            market_tz=e.market_tz,
            trading_state=str(e.gate.state),
            trading_reason=e.gate.state_reason,
            deadman=e.deadman.view(),
            strategies=tuple((s.name, s.enabled) for s in e.strategies),
            reduce_only_symbols=tuple(sorted(e.gate.reduce_only_symbols)),
            liquidation=controls.liquidation.summary() if controls.liquidation is not None else None,
            broker_status=e.broker.status,
            breaks=tuple(e.reconciler.breaks),
            hold=e.gate.hold,
            feed_hold=e.gate.feed_hold,
            feed_healthy=self.feed_healthy(),
            feeds=self.feeds(),
            quarantined=tuple(sorted((name, sym) for name, syms in self.quarantined.items() for sym in syms)),
            capital=self.capital(),
            equity_at_start=e.gate.capital.equity_at_start,
        )

    def run_state(self) -> str:
        """``refused``: a LIVE start the go-live check refused, parked until its stop (nothing
        sent, no broker session); else ``running``."""
        return "refused" if self._engine.parked is not None else "running"

    def preflight_view(self) -> dict[str, Any] | None:
        """How this run's LIVE start went against the go-live check (None: a paper account)."""
        p = self.preflight
        if p is None:
            return None
        return {"outcome": p.outcome, "failing": list(p.failing), "actor": p.actor, "reason": p.reason}

    def stop_reason(self) -> tuple[str, bool]:
        """Why the run ended and whether it failed (``stopped before trading`` if it never ran):
        the host records a clean stop only for a run that did not fail."""
        return self._engine.stop_reason or ("stopped before trading", False)

    def live_account(self) -> bool:
        """The broker's account is real money (the go-live check must pass before it trades)."""
        return self._engine.broker.live_account

    def feed_healthy(self) -> bool:
        feed = self._engine.feed
        return bool(feed.healthy) if isinstance(feed, FailoverFeed) else self._engine.feed_healthy

    def feeds(self) -> tuple[dict[str, Any], ...]:
        """Each feed source, the active one marked; a replay is one source."""
        e = self._engine
        feed = e.feed
        if not isinstance(feed, FailoverFeed):
            return ({"name": feed.name, "kind": e.settings.feed.kind, "active": True, "healthy": e.feed_healthy,
                     "reason": "" if e.feed_healthy else "stale", "quarantined": 0, "passed": e.events_processed,
                     "last_good_at": None, "by_reason": {}, "delayed": False, "not_live": None},)
        return tuple({"name": v.name, "kind": v.kind, "active": v.active, "healthy": v.healthy, "reason": v.reason,
                      "quarantined": v.quarantined, "passed": v.passed,
                      "last_good_at": v.last_good.isoformat() if v.last_good else None, "by_reason": v.by_reason,
                      "delayed": v.not_live is not None, "not_live": v.not_live}
                     for v in feed.views())

    def capital(self) -> tuple[CapitalView, ...]:
        """Each strategy's allocation and the gross exposure it uses now (the gate's figure)."""
        e = self._engine
        if e.oms is None:
            return ()
        enabled = {s.name: s.enabled for s in e.strategies}
        return tuple(CapitalView(r.strategy, enabled.get(r.strategy, False), r.given, r.allocation, r.used,
                                 r.remaining, r.used_pct) for r in e.gate.capital.rows(e.oms.view))

    def allocation(self) -> dict[str, Any]:
        """What `cockpit allocation --json` and the status's ``allocation`` show: the equity at
        start, each strategy (allocation in money, as given, used, remaining, used %) and the
        enabled strategies no allocation covers."""
        e = self._engine
        capital = e.gate.capital
        rows = self.capital()
        return allocation_json(rows, capital.equity_at_start, capital.equity_source,
                               capital.uncovered(s.name for s in e.strategies if s.enabled))

    def breaks(self) -> list[dict[str, Any]]:
        return self._engine.reconciler.views()

    def last_reconcile(self) -> dict[str, Any] | None:
        last = self._engine.reconciler.last
        return last.as_dict() if last is not None else None

    def limits(self) -> dict[str, str]:
        return self._engine.gate.limits_dict()

    def strategies(self) -> list[dict[str, Any]]:
        """Each strategy; one quarantined for some symbols this run also has ``quarantined``
        (symbol -> the error), so that `cockpit strategy list --json` and the API show it."""
        rows = self._engine.controls.strategies()
        for row in rows:
            if row["name"] in self.quarantined:
                row["quarantined"] = dict(sorted(self.quarantined[row["name"]].items()))
        return rows

    def symbols(self) -> list[str]:
        return self._engine.controls.traded_symbols()

    @property
    def open_orders(self) -> int:
        oms = self._engine.oms
        return len(oms.open_orders) if oms is not None else 0

    def working_orders(self) -> list[OrderView]:
        oms = self._engine.oms
        return [order_view(o) for o in oms.open_orders.values()] if oms is not None else []

    def settings_summary(self) -> dict[str, Any]:
        s = self._engine.settings
        return {"feed_kind": s.feed.kind, "deadman": s.deadman.model_dump(mode="json")}

    def liquidation(self) -> dict[str, Any] | None:
        job = self._engine.controls.liquidation
        return job.summary() if job is not None else None


def allocation_json(rows: tuple[CapitalView, ...], equity_at_start: Decimal | None, source: str,
                    uncovered: list[str]) -> dict[str, Any]:
    """The allocation report as JSON: money as exact decimal strings, None where unknown."""
    def m(value: Decimal | None) -> str | None:
        return None if value is None else money(value)

    return {
        "equity_at_start": m(equity_at_start),
        "equity_source": source or None,
        "strategies": {r.strategy: {"enabled": r.enabled, "allocation": m(r.allocation), "given": r.given,
                                    "used": m(r.used), "remaining": m(r.remaining),
                                    "used_pct": None if r.used_pct is None else float(round(r.used_pct, 2))}
                       for r in rows},
        "uncovered": uncovered,
    }


_CHANGES: tuple[type, ...] = (
    ev.AllocationChanged, ev.AllocationsStarted,
    ev.FillApplied, ev.TradingStateChanged, ev.SettingChanged, ev.BrokerConnectionChanged, ev.HoldChanged,
    ev.ReconcilePassed, ev.BreakFound, ev.BreakResolved, ev.DeadmanChanged, ev.LiquidationFinished,
    ev.CommandHandled, ev.EngineError, ev.FeedHealthChanged, ev.FeedSwitched, ev.DataQualityIssue,
    ev.FeedHoldChanged,
)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()
