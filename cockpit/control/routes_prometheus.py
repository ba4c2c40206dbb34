"""Prometheus ``GET /metrics``: one private registry per engine, fed by the bus and the read model.

Counters (orders, fills, refusals, tick-to-order latency) follow the bus as a non-critical
subscriber: a handler is a dict increment, and what it raises never reaches the engine. Gauges
(equity, P&L, positions, broker, feed age, trading state, dead-man) are read from one read-model
snapshot per scrape, and the alert counters from the alert router's own stats, so nothing here
reaches into the engine. Both listeners (the Unix socket and TCP) share the engine's collector.

The collector is made when the control API starts (``registry_for``, no FastAPI needed), the
route when its app is built. A plain route, not ``app.mount``: a mount answers ``/metrics`` with a 307 to ``/metrics/`` and
would shadow ``/metrics/performance``.
"""

from __future__ import annotations

import re
import time
import weakref
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from core.control.read_model import CapitalView
from core.domain import events as ev
from core.domain.model import Bar, OrderStatus, Quote
from core.kernel.engine import Engine

if TYPE_CHECKING:
    from fastapi import APIRouter

#: tick-to-order buckets, seconds: 50 us .. 10 ms
LATENCY_BUCKETS = (50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3)
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
PENDING_MAX = 1000  # orders waiting to be timed (created by a strategy, not yet sent)

#: A refusal's free text -> its kind (a bounded label set); first match wins, the rest is "other".
REFUSAL_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("hold", r"^no new orders: "),
    ("halted", r"^trading HALTED "),
    ("feed_held", r"^held: the active feed "),
    ("break_blocked", r"blocked by a reconciliation break"),
    ("bad_input", r"^(quantity must|limit order needs)"),
    ("long_only", r" is long-only: "),
    ("reduce_only", r"(is reduce-only after a flatten|^trading REDUCING |^reduce_only: )"),
    ("symbol_not_allowed", r"is not in allowed_symbols"),
    ("max_order_qty", r"max_order_qty"),
    ("no_quote", r"^no quote for "),
    ("stale_quote", r"quote_max_age_seconds"),
    ("price_collar", r"price_collar_pct"),
    ("max_order_notional", r"max_order_notional"),
    ("max_position_qty", r"max_position_qty"),
    ("exposure", r"(max_gross_exposure|max_net_exposure)"),
    ("allocation", r"^allocation: "),
    ("order_rate", r"max_orders_per_minute"),
    ("duplicate", r"^duplicate of "),
))


def refusal_kind(reason: str) -> str:
    """The kind of a gate refusal, for a label that ``sum()`` makes sense over."""
    for kind, pattern in REFUSAL_KINDS:
        if pattern.search(reason):
            return kind
    return "other"


class EngineCollector(Collector):
    """Everything ``/metrics`` shows of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.read_model = engine.read_model
        self.alerts = engine.alerts
        self.orders: dict[tuple[str, str], int] = {}
        self.fills: dict[tuple[str, str, str], int] = {}
        self.refusals: dict[str, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._tick_at = 0.0
        self._pending: OrderedDict[str, float] = OrderedDict()
        bus = engine.bus
        bus.subscribe(Quote, self._on_tick, critical=False, every=False)  # times only ticks that lead to orders
        bus.subscribe(Bar, self._on_tick, critical=False)
        bus.subscribe(ev.OrderChanged, self._on_order, critical=False)
        bus.subscribe(ev.FillApplied, self._on_fill, critical=False)
        bus.subscribe(ev.IntentRejected, self._on_refusal, critical=False)

    # ---- the bus (on the engine's loop: keep these cheap) ------------------------------

    def _on_tick(self, _event: object) -> None:
        self._tick_at = time.perf_counter()

    def _on_order(self, event: ev.OrderChanged) -> None:
        order = event.order
        if event.previous is None:
            if event.source == "strategy" and not event.adopted:  # caused by the market data in hand
                self._pending[order.client_order_id] = self._tick_at
                if len(self._pending) > PENDING_MAX:
                    self._pending.popitem(last=False)
        elif order.status is OrderStatus.SUBMITTED:
            key = (order.strategy, order.side.value)
            self.orders[key] = self.orders.get(key, 0) + 1
            tick_at = self._pending.pop(order.client_order_id, None)
            if tick_at:
                seconds = time.perf_counter() - tick_at
                self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self.latency_sum += seconds

    def _on_fill(self, event: ev.FillApplied) -> None:
        key = (event.strategy, event.fill.side.value, event.kind)
        self.fills[key] = self.fills.get(key, 0) + 1

    def _on_refusal(self, event: ev.IntentRejected) -> None:
        kind = refusal_kind(event.reason)
        self.refusals[kind] = self.refusals.get(kind, 0) + 1

    # ---- a scrape ---------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        return []  # collected only at a scrape (the registry does not call collect() to learn names)

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._gauges()
        yield from self._alert_counters()

    def _counters(self) -> Iterator[Metric]:
        orders = CounterMetricFamily("cockpit_orders_submitted", "Orders handed to the broker, by strategy and side.",
                                     labels=("strategy", "side"))
        for (strategy, side), n in sorted(self.orders.items()):
            orders.add_metric((strategy, side), n)
        fills = CounterMetricFamily("cockpit_fills", "Fills booked (trades and adjustment fills), by owner and side.",
                                    labels=("strategy", "side", "kind"))
        for labels, n in sorted(self.fills.items()):
            fills.add_metric(labels, n)
        refusals = CounterMetricFamily("cockpit_gate_refusals", "Order intents the risk gate refused, by the "
                                       "reason's kind.", labels=("reason",))
        for kind, n in sorted(self.refusals.items()):
            refusals.add_metric((kind,), n)
        latency = HistogramMetricFamily("cockpit_tick_to_order_seconds", "From the quote or bar in hand to the "
                                        "order it caused handed to the broker.")
        cumulative, rows = 0, []
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self.buckets, strict=True):
            cumulative += n
            rows.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        latency.add_metric((), rows, self.latency_sum)
        yield from (orders, fills, refusals, latency)

    def _gauges(self) -> Iterator[Metric]:
        model = self.read_model
        if not model.ready:
            return
        snap = model.snapshot(max_orders=0)

        def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=tuple(labels or ()))
            family.add_metric(tuple((labels or {}).values()), value)
            return family

        yield gauge("cockpit_equity_dollars", "Account equity (cash and marked positions).", float(snap.equity))
        yield gauge("cockpit_cash_dollars", "Account cash.", float(snap.cash))
        yield gauge("cockpit_day_pnl_dollars", "Equity change since the exchange day opened.", float(snap.day_pnl))
        yield gauge("cockpit_realized_pnl_dollars", "Realized P&L (before commissions).", float(snap.realized))
        yield gauge("cockpit_unrealized_pnl_dollars", "Unrealized P&L of the open positions.", float(snap.unrealized))
        positions = GaugeMetricFamily("cockpit_position_shares", "Signed position per symbol.", labels=("symbol",))
        value = GaugeMetricFamily("cockpit_position_market_value_dollars", "Marked value per symbol.",
                                  labels=("symbol",))
        for p in snap.positions:
            if p.qty != 0:
                positions.add_metric((p.symbol,), float(p.qty))
                value.add_metric((p.symbol,), float(p.market_value))
        yield positions
        yield value
        yield gauge("cockpit_broker_connected", "1 while the broker is connected.", float(snap.broker_connected),
                    {"broker": snap.broker_kind})
        age = GaugeMetricFamily("cockpit_feed_last_tick_age_seconds", "Wall seconds since the feed last delivered "
                                "(absent before its first batch).", labels=("feed",))
        if snap.feed_age is not None:
            age.add_metric((snap.feed,), snap.feed_age)
        yield age
        yield gauge("cockpit_feed_healthy", "1 unless the feed is stale.", float(snap.feed_healthy),
                    {"feed": snap.feed})
        yield from _feed_sources(snap.feeds)
        state = GaugeMetricFamily("cockpit_trading_state", "1 for the trading state the gate is in, 0 for the others.",
                                  labels=("state",))
        for name in TRADING_STATES:
            state.add_metric((name,), float(snap.trading_state == name))
        yield state
        dm = snap.deadman
        left = GaugeMetricFamily("cockpit_deadman_seconds_left", "Seconds until the dead-man fires (absent while it "
                                 "is not armed).")
        if dm is not None and dm.armed and dm.seconds_left is not None:
            left.add_metric((), float(dm.seconds_left))
        yield left
        yield from _capital_gauges(snap.capital)
        yield gauge("cockpit_open_orders", "Working orders.", float(model.open_orders))
        yield CounterMetricFamily("cockpit_events_processed", "Quotes and bars the engine processed.",
                                  value=snap.events_processed)

    def _alert_counters(self) -> Iterator[Metric]:
        stats = self.alerts.stats
        sent = CounterMetricFamily("cockpit_alerts_sent", "Alerts a sink accepted.", labels=("sink",))
        failed = CounterMetricFamily("cockpit_alerts_failed", "Delivery attempts that failed (retried or not).",
                                     labels=("sink",))
        lost = CounterMetricFamily("cockpit_alerts_undelivered", "Alerts given up on (kept in the store).",
                                   labels=("sink",))
        for sink, lane in sorted(stats.sinks.items()):
            sent.add_metric((sink,), lane.sent)
            failed.add_metric((sink,), lane.failed_tries)
            lost.add_metric((sink,), lane.undelivered)
        yield from (sent, failed, lost)
        yield CounterMetricFamily("cockpit_alerts", "Alerts the router raised.", value=stats.alerts)


def _capital_gauges(rows: tuple[CapitalView, ...]) -> Iterator[Metric]:
    """Per strategy: its allocation (absent without one) and the gross exposure it uses (absent
    while a symbol it holds has no mark)."""
    allocation = GaugeMetricFamily("cockpit_strategy_allocation_dollars", "Capital allocated to the strategy "
                                   "([allocation]; absent for a strategy without one).", labels=("strategy",))
    used = GaugeMetricFamily("cockpit_strategy_allocation_used_dollars", "The strategy's gross exposure, worst case "
                             "with its working orders, valued at the marks (what its allocation limits).",
                             labels=("strategy",))
    for r in rows:
        if r.allocation is not None:
            allocation.add_metric((r.strategy,), float(r.allocation))
        if r.used is not None:
            used.add_metric((r.strategy,), float(r.used))
    yield allocation
    yield used


_registries: weakref.WeakKeyDictionary[Engine, CollectorRegistry] = weakref.WeakKeyDictionary()


def registry_for(engine: Engine) -> CollectorRegistry:
    """The engine's private registry (one per engine, shared by its listeners; built on first use,
    which subscribes its collector to the bus)."""
    registry = _registries.get(engine)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(EngineCollector(engine))
        _registries[engine] = registry
    return registry


def prometheus_router(engine: Engine) -> APIRouter:
    from fastapi import APIRouter
    from fastapi.responses import Response

    router = APIRouter()
    registry = registry_for(engine)

    # response_model=None: the return annotation names a class this module imports only here
    @router.get("/metrics", response_class=Response, response_model=None,
                responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _feed_sources(feeds: tuple[dict[str, Any], ...]) -> Iterator[Metric]:
    """Each feed source (primary and fallbacks): active, healthy, and its quality gate's refusals."""
    active = GaugeMetricFamily("cockpit_feed_source_active", "1 for the feed source the engine reads now.",
                               labels=("feed", "kind"))
    healthy = GaugeMetricFamily("cockpit_feed_source_healthy", "1 while the feed source is fresh and passes the "
                                "quality gate.", labels=("feed", "kind"))
    refused = CounterMetricFamily("cockpit_feed_quarantined", "Items the feed's quality gate quarantined (a gap "
                                  "is flagged and kept), by check.", labels=("feed", "reason"))
    for f in feeds:
        active.add_metric((f["name"], f["kind"]), float(f["active"]))
        healthy.add_metric((f["name"], f["kind"]), float(f["healthy"]))
        for reason, n in sorted(f.get("by_reason", {}).items()):
            refused.add_metric((f["name"], reason), float(n))
    yield active
    yield healthy
    yield refused
