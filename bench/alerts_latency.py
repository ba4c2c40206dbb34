"""Tick-to-order latency with every alert sink on, against no sinks: does alerting cost the engine?

The engine (paper venue, SQLite store, audit trail, the real order path) trades one symbol, one
quote a batch, a strategy that flips long 1 / flat on every quote, so every quote places an
order and fills the last one (a fill alert each). Latency: from the moment the feed hands a
quote to the engine to the moment the order it caused reaches the venue (SUBMITTED).

"all sinks": the log sink (to a file), the TUI pane's buffer, Discord (a stand-in on 127.0.0.1,
in a thread of its own as a remote server would be, answering 204 after ``--discord-delay-ms``)
and email (aiosmtpd on 127.0.0.1, its own thread), every kind routed to each, no digests, no
rate limits: the most alert traffic the router can make. Runs interleave A B A B so both see the
same machine; the GC is off inside each run. Prints p50 / p99 of each and their ratio. Asserts
nothing.

    python bench/alerts_latency.py [--runs 8] [--quotes 400] [--discord-delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from brokers.paper import PaperBroker
from cockpit.alerts.discord import DiscordSink
from cockpit.alerts.email import EmailSink
from cockpit.alerts.log_sink import LogSink
from cockpit.alerts.tui_sink import AlertBuffer, TuiSink
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import AlertsConfig, DeadmanConfig, EngineConfig, PaperConfig, RiskConfig, Settings
from core.domain.events import OrderChanged
from core.domain.model import Bar, OrderStatus, Quote
from core.kernel.engine import Engine
from core.persistence.store import Store
from core.strategy.base import Strategy

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
WARM_UP = 20  # quotes left out of each run's figures
SINKS = ("log", "tui", "discord", "email")


class TimedFeed:
    """One quote per batch, each stamped with the moment it was handed to the engine."""

    name = "timed"

    def __init__(self, quotes: int) -> None:
        self.symbols = ["AAA"]
        self.quotes = quotes
        self.sent_at: list[float] = []

    def load(self) -> None:
        pass

    def fingerprint(self) -> str:
        return "timed"

    def bars_before(self, cursor: Any) -> list[Bar]:
        return []

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event) -> AsyncIterator[list[Quote]]:
        for n in range(self.quotes):
            price = Decimal(100) + Decimal(n % 7) / 10
            quote = Quote("AAA", T0 + timedelta(seconds=10 * n), price - Decimal("0.01"), price + Decimal("0.01"),
                          price, Decimal(1_000_000))
            self.sent_at.append(time.perf_counter())
            yield [quote]


class Flipper(Strategy):
    """Long 1, flat, long 1 ...: every quote fills the last order (a fill alert) and places one."""

    def __init__(self) -> None:
        super().__init__("flip", ["AAA"], {})
        self.n = 0

    def on_quote(self, quote: Quote) -> None:
        self.n += 1
        self.target_position("AAA", Decimal(self.n % 2))


class SlowDiscord:
    """A Discord stand-in: HTTP/1.1 keep-alive on 127.0.0.1, 204 after ``delay`` seconds, served
    by a loop in a thread of its own (a remote server does not share the engine's loop)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.posts = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                self.posts += 1
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(self) -> str:
        self.thread.start()
        self.ready.wait(10)
        return f"http://127.0.0.1:{self.port}/api/webhooks/1/bench"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Inbox:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 Message accepted for delivery"


class EphemeralController(Controller):
    """aiosmtpd's Controller on port 0 (it learns the port before its self-test)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(state: Path, quotes: int, sinks: list[Any]) -> tuple[list[float], int]:
    """Microseconds from each quote to the order it caused, sent to the venue; and the alerts raised."""
    routes = {name: {"kinds": ["*"]} for name in SINKS}
    settings = Settings(
        engine=EngineConfig(state_dir=state), deadman=DeadmanConfig(enabled=False),
        risk=RiskConfig(max_orders_per_minute_per_strategy=100_000, max_orders_per_minute_total=100_000),
        alerts=AlertsConfig(routes=routes, dedupe_window_seconds=0, drain_seconds=1,
                            rate_per_minute={name: 0 for name in SINKS}))  # 0: no cap
    clock, bus, store = SimClock(), Bus(), Store(state / "cockpit.sqlite")
    feed = TimedFeed(quotes)
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=PaperConfig(latency_ms=0, slippage_bps=Decimal(0)),
                         market_tz="America/New_York", new_id=lambda: "lat")
    # The alerts' timers on the real wall clock (timeouts, rate limits, backoff), as in production.
    engine = Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=feed,
                    strategies=[Flipper()], alert_sinks=sinks, new_id=lambda: "lat")
    sent: dict[int, float] = {}

    def on_order(event: OrderChanged) -> None:
        if event.order.status is OrderStatus.SUBMITTED:
            sent[len(feed.sent_at) - 1] = time.perf_counter()

    bus.subscribe(OrderChanged, on_order)
    await engine.start()
    gc.collect()
    gc.disable()
    try:
        await engine.run()
    finally:
        gc.enable()
    alerts = engine.alerts.stats.alerts
    await engine.shutdown()
    return [(sent[i] - feed.sent_at[i]) * 1e6 for i in sorted(sent) if i >= WARM_UP], alerts


async def main(runs: int, quotes: int, discord_delay: float) -> None:
    with tempfile.TemporaryDirectory(prefix="alerts-latency-") as tmp:
        root = Path(tmp)
        handler = logging.FileHandler(root / "cockpit.log")
        logging.getLogger().addHandler(handler)  # the log sink writes a file, as the engine's log does
        logging.getLogger().setLevel(logging.INFO)
        discord = SlowDiscord(discord_delay)
        url = discord.start()
        inbox = Inbox()
        smtp = EphemeralController(inbox, hostname="127.0.0.1", port=0)
        smtp.start()
        pooled: dict[str, list[float]] = {"none": [], "all": []}
        raised = {"none": 0, "all": 0}
        try:
            for run in range(runs):
                for label in ("none", "all") if run % 2 == 0 else ("all", "none"):
                    sinks: list[Any] = []
                    if label == "all":
                        sinks = [LogSink(), TuiSink(AlertBuffer()), DiscordSink(url, timeout_seconds=5.0),
                                 EmailSink("127.0.0.1", smtp.port, tls="none", sender="cockpit@example.org",
                                           to=["trader@example.org"], timeout_seconds=5.0)]
                    lat, alerts = await one_run(root / f"{label}{run}", quotes, sinks)
                    pooled[label] += lat
                    raised[label] += alerts
        finally:
            smtp.stop()
            discord.stop()
            logging.getLogger().removeHandler(handler)
            handler.close()
    print(f"tick-to-order latency, {runs} interleaved runs of {quotes} quotes each ({WARM_UP} warm-up left out), "
          f"Discord stand-in answering 204 after {discord_delay * 1000:.0f} ms")
    for label in ("none", "all"):
        values = pooled[label]
        print(f"  {label:>4} sinks: n={len(values):5d}  p50 {statistics.median(values):8.1f} us  "
              f"p99 {percentile(values, 0.99):8.1f} us  (alerts raised: {raised[label]})")
    p50 = statistics.median(pooled["all"]) / statistics.median(pooled["none"])
    p99 = percentile(pooled["all"], 0.99) / percentile(pooled["none"], 0.99)
    print(f"  ratio all/none: p50 {p50:.3f}  p99 {p99:.3f}")
    print(f"  delivered: Discord stand-in {discord.posts} posts, SMTP server {inbox.messages} messages")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per side, interleaved (default 8)")
    parser.add_argument("--quotes", type=int, default=400, help="quotes per run (default 400)")
    parser.add_argument("--discord-delay-ms", type=float, default=20.0, help="the stand-in's answer delay")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.quotes, args.discord_delay_ms / 1000))
