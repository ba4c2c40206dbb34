"""A real engine core (store on disk, simulated clock, paper broker, OMS) for unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from brokers.paper import PaperBroker
from core.audit.journal import AuditLog
from core.audit.subscriber import AuditRecorder
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import PaperConfig, RiskConfig
from core.domain.model import Bar, OrderType, Quote, Side, TimeInForce
from core.execution.oms import OrderManager
from core.kernel.risk_view import BookView
from core.persistence.recorder import StoreRecorder
from core.persistence.store import Store
from core.portfolio.book import Portfolio
from core.risk.gate import OrderRequest, RiskGate

# 2020-01-02 14:30 UTC is 09:30 New York: a session open.
OPEN = datetime(2020, 1, 2, 14, 30, tzinfo=timezone.utc)


# These tests are about the venue: resting limits far from the market must reach it. The
# collar itself is tested in test_risk_gate.py.
PAPER_TEST_LIMITS = RiskConfig(price_collar_pct=Decimal(100))


@dataclass
class Rig:
    store: Store
    clock: SimClock
    bus: Bus
    broker: PaperBroker
    oms: OrderManager
    portfolio: Portfolio
    quote_ts: dict[str, datetime]

    def quote(self, symbol: str, price: str, at: datetime, volume: str | None = "1000000") -> Quote:
        p = Decimal(price)
        q = Quote(symbol, at, p - Decimal("0.01"), p + Decimal("0.01"), p, Decimal(volume) if volume else None)
        self.clock.advance_to(at)
        self.oms.last_prices[symbol] = p
        self.quote_ts[symbol] = at
        self.bus.publish(q)
        return q

    def bar(self, symbol: str, start: datetime, end: datetime, price: str) -> None:
        p = Decimal(price)
        self.clock.advance_to(end)
        self.bus.publish(Bar(symbol, start, end, p, p, p, p, Decimal(1000000)))

    async def order(self, side: Side, qty: int, symbol: str = "AAPL", limit: str | None = None,
                    tif: TimeInForce = TimeInForce.DAY):
        order = self.oms.submit(
            OrderRequest("test", symbol, side, Decimal(qty),
                         OrderType.LIMIT if limit else OrderType.MARKET, Decimal(limit) if limit else None),
            tif,
        )
        await self.oms.send_pending()
        return order


async def make_rig(state: Path, *, clock: SimClock | None = None, paper: PaperConfig | None = None,
                   risk: RiskConfig | None = None) -> Rig:
    store = Store(state / "cockpit.sqlite")
    await store.open()
    clock = clock or SimClock(OPEN - timedelta(minutes=1))
    bus = Bus()
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=paper or PaperConfig(slippage_bps=Decimal(0)))
    portfolio = Portfolio(Decimal(100000))
    audit = AuditLog(store, clock)
    await audit.load()
    StoreRecorder(store, bus, portfolio, clock)  # the store and the audit trail follow the bus
    AuditRecorder(audit, bus, lambda: store.is_open)
    quote_ts: dict[str, datetime] = {}
    oms = OrderManager(store=store, broker=broker, portfolio=portfolio, gate=RiskGate(risk or PAPER_TEST_LIMITS),
                       clock=clock, bus=bus, instance_id="t",
                       view_factory=lambda o: BookView(clock=clock, portfolio=portfolio, oms=o, quote_ts=quote_ts,
                                                       day_open_equity=lambda: None))
    await oms.load()
    await broker.connect()
    await oms.recover()
    return Rig(store, clock, bus, broker, oms, portfolio, quote_ts)
