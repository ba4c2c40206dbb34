"""A paper fill's bookkeeping follows the order its quote makes (core/kernel/driver.py, oms.py).

The quote fills a working order at the venue; the book and the order change at once, so the
strategy that the quote reaches next sees the fill. The events saying so (the order filled, the
fill applied) are held on the bus until the order the strategy made has reached the broker, and
always before the next quote is handed in. A strategy with an ``on_fill`` hook still sees its
fill before its quote hook. The figures (equity samples, stored rows) are pinned by
tests/test_replay_same_store.py and tests/test_backtest_parity.py; this file pins the order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.paper import PaperBroker
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import DeadmanConfig, EngineConfig, Settings
from core.domain.events import FillApplied, OrderChanged
from core.domain.model import Bar, Execution, Order, Quote
from core.kernel.engine import Engine
from core.persistence.store import Store
from core.strategy.base import Strategy

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
LEVEL = Decimal(100)


class Quotes:
    """Low, high, low, high ... one quote a batch, ten seconds of engine time apart."""

    name = "quotes"
    symbols = ["AAPL"]

    def __init__(self, n: int, log: list[str]) -> None:
        self.n, self.log = n, log

    def load(self) -> None:
        pass

    def fingerprint(self) -> str:
        return "quotes"

    def bars_before(self, cursor: Any) -> list[Bar]:
        return []

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event) -> AsyncIterator[list[Quote]]:
        for i in range(self.n):
            mid = LEVEL - Decimal("0.05") if i % 2 == 0 else LEVEL + Decimal("0.05")
            self.log.append(f"quote {i}")
            yield [Quote("AAPL", T0 + timedelta(seconds=10 * i), mid - Decimal("0.01"), mid + Decimal("0.01"), mid,
                         Decimal(1_000_000))]


class Flipper(Strategy):
    """Long 1 on a low quote, flat on a high one; says what its book shows when it decides."""

    def __init__(self, log: list[str]) -> None:
        super().__init__("flip", ["AAPL"], {})
        self.log = log

    def on_quote(self, quote: Quote) -> None:
        self.log.append(f"hook: position {self.position('AAPL')}")
        self.target_position("AAPL", 1 if quote.ask < LEVEL else 0)


class FillWatcher(Flipper):
    """The same, with an on_fill hook (a subscriber of the fills on the bus)."""

    def on_fill(self, fill: Execution) -> None:
        self.log.append(f"on_fill {fill.side}")


async def _run(tmp_path: Path, kind: type[Flipper]) -> tuple[list[str], list[tuple[Decimal, Decimal]]]:
    log: list[str] = []
    strategy = kind(log)
    settings = Settings(engine=EngineConfig(state_dir=tmp_path), deadman=DeadmanConfig(enabled=False))
    clock, bus, store = SimClock(), Bus(), Store(tmp_path / "cockpit.sqlite")
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=settings.paper, new_id=lambda: "test")
    engine = Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=Quotes(5, log),
                    strategies=[strategy], new_id=lambda: "test")
    place = broker.place

    def placing(order: Order) -> None:
        log.append(f"place {order.side}")
        place(order)

    broker.place = placing  # type: ignore[method-assign]
    equities: list[tuple[Decimal, Decimal]] = []  # (at the venue's fill, as the event says)
    at_fill: list[Decimal] = []

    def after_venue(q: Quote) -> None:  # subscribed after the paper venue: runs right after its fills
        at_fill.append(engine.portfolio.equity())

    def on_fill(e: FillApplied) -> None:
        log.append(f"FillApplied {e.fill.side}")
        assert e.equity is not None
        equities.append((at_fill[-1], e.equity))

    def on_order(e: OrderChanged) -> None:
        log.append(f"OrderChanged {e.order.side} {e.order.status}")

    await engine.start()
    bus.subscribe(Quote, after_venue)
    bus.subscribe(FillApplied, on_fill)
    bus.subscribe(OrderChanged, on_order)
    try:
        await engine.run()
    finally:
        await engine.shutdown()
    return log, equities


def _from_quote(log: list[str], i: int) -> list[str]:
    start = log.index(f"quote {i}")
    end = log.index(f"quote {i + 1}") if f"quote {i + 1}" in log else len(log)
    return log[start:end]


async def test_the_fill_is_booked_before_the_hook_and_its_events_follow_the_order_it_makes(tmp_path: Path) -> None:
    log, equities = await _run(tmp_path, Flipper)
    # Quote 1 (high) fills the buy quote 0 made, the strategy sees it and sells; the buy's events
    # follow the sell to the broker, before quote 2 comes in.
    assert _from_quote(log, 1) == [
        "quote 1", "OrderChanged BUY ACCEPTED", "hook: position 1", "place SELL",
        "OrderChanged BUY FILLED", "FillApplied BUY", "OrderChanged SELL NEW", "OrderChanged SELL SUBMITTED",
    ]
    # The equity the event carries is the book's when the venue filled, not after the quote's mark.
    assert equities and all(venue == carried for venue, carried in equities)


async def test_a_fill_that_makes_no_order_is_handed_out_before_the_next_quote(tmp_path: Path) -> None:
    log, _ = await _run(tmp_path, Flipper)
    last = _from_quote(log, 4)  # quote 4 (low) buys; the run ends with quote 4's events all out
    assert last[-2:] == ["OrderChanged BUY NEW", "OrderChanged BUY SUBMITTED"]
    two = _from_quote(log, 2)  # quote 2 fills the sell of quote 1, then buys again
    assert two.index("hook: position 0") < two.index("place BUY") < two.index("FillApplied SELL")


async def test_a_strategy_with_an_on_fill_hook_sees_its_fill_before_its_quote_hook(tmp_path: Path) -> None:
    log, _ = await _run(tmp_path, FillWatcher)
    one = _from_quote(log, 1)
    assert one[:5] == ["quote 1", "OrderChanged BUY ACCEPTED", "OrderChanged BUY FILLED", "on_fill BUY",
                       "FillApplied BUY"]
    assert one.index("hook: position 1") < one.index("place SELL")
