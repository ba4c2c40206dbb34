"""Memory over many orders: RSS growth of the real order path (OMS, gate, paper venue, SQLite
store, audit trail) over 100,000 orders that fill, with persistence on.

Finished orders and old exec ids leave the order manager's memory (the store keeps them), so
RSS should flatten once the bounded caches are full. Prints RSS after a warm-up and at each
step, and the growth per 1,000 orders. Asserts nothing.

    python bench/memory_orders.py [--orders 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from brokers.paper import PaperBroker
from core.audit.journal import AuditLog
from core.audit.subscriber import AuditRecorder
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import PaperConfig, RiskConfig
from core.domain.model import OrderType, Quote, Side, TimeInForce
from core.execution.oms import OrderManager
from core.kernel.risk_view import BookView
from core.persistence.recorder import StoreRecorder
from core.persistence.store import Store
from core.portfolio.book import Portfolio
from core.risk.gate import OrderRequest, RiskGate

OPEN = datetime(2020, 1, 2, 14, 30, tzinfo=UTC)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(n_orders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "cockpit.sqlite")
        await store.open()
        clock = SimClock(OPEN)
        bus = Bus()
        broker = PaperBroker(store=store, clock=clock, bus=bus,
                             config=PaperConfig(slippage_bps=Decimal(0), latency_ms=0))
        portfolio = Portfolio(Decimal(10_000_000))
        audit = AuditLog(store, clock)
        await audit.load()
        StoreRecorder(store, bus, portfolio, clock)
        AuditRecorder(audit, bus, lambda: store.is_open)
        quote_ts: dict[str, datetime] = {}
        limits = RiskConfig(max_orders_per_minute_per_strategy=10**6, max_orders_per_minute_total=10**6,
                            duplicate_window_seconds=0.001, max_position_qty=10**9,
                            max_gross_exposure=Decimal(10**12), max_net_exposure=Decimal(10**12))
        oms = OrderManager(store=store, broker=broker, portfolio=portfolio, gate=RiskGate(limits), clock=clock,
                           bus=bus, instance_id="b",
                           view_factory=lambda o: BookView(clock=clock, portfolio=portfolio, oms=o,
                                                           quote_ts=quote_ts, day_open_equity=lambda: None))
        await oms.load()
        await broker.connect()
        price = Decimal(100)
        warm = min(20_000, n_orders // 5)
        base = None
        start = time.perf_counter()
        print(f"{'orders':>8} {'RSS MiB':>9} {'in memory':>10}")
        for i in range(1, n_orders + 1):
            now = OPEN + timedelta(milliseconds=10 * i)
            clock.advance_to(now)
            quote = Quote("AAPL", now, price - Decimal("0.01"), price + Decimal("0.01"), price, Decimal(10**9))
            oms.last_prices["AAPL"] = price
            quote_ts["AAPL"] = now
            bus.publish(quote)
            side = Side.BUY if i % 2 else Side.SELL
            oms.submit(OrderRequest("bench", "AAPL", side, Decimal(1), OrderType.MARKET), TimeInForce.DAY)
            await oms.send_pending()
            clock.advance_to(now + timedelta(milliseconds=1))
            bus.publish(Quote("AAPL", now + timedelta(milliseconds=1), quote.bid, quote.ask, price, Decimal(10**9)))
            if i % 500 == 0:
                await store.flush()
            if i == warm:
                gc.collect()
                base = rss_mib()
            if i % (n_orders // 10) == 0:
                gc.collect()
                print(f"{i:>8,} {rss_mib():>9.1f} {len(oms.orders):>10,}", flush=True)
        await store.flush()
        gc.collect()
        end = rss_mib()
        seconds = time.perf_counter() - start
        assert base is not None
        print(f"RSS growth from order {warm:,} to {n_orders:,}: {end - base:+.1f} MiB "
              f"({(end - base) * 1024 / ((n_orders - warm) / 1000):+.1f} KiB per 1,000 orders); "
              f"{n_orders / seconds:,.0f} orders/s with fills, store and audit on")
        fills = await store.fetchone("SELECT count(*) AS n FROM fills")
        print(f"fills in the store: {fills['n'] if fills else 0:,}")
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().orders))
