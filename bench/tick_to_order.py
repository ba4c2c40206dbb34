"""Tick-to-order latency on the live path: paper, and IBKR with its write-ahead commit.

The engine runs in process with a scripted feed (one quote a batch, ``--gap-ms`` apart in wall
time) and a strategy that orders on a quote condition: long 1 on a quote whose ask is under the
level, flat on one whose bid is over it. The quotes go low, high, mid, low, high, mid ...: a
low quote makes a buy, a high one a sell, a mid one no order. On paper the venue sees each
quote first, so a high quote also fills the buy before the strategy sells ("fill + order"), a
mid one fills the sell, and a low quote carries only its order ("order"): both kinds of tick
are measured. Latency, with ``time.perf_counter_ns`` at the same points in every run:

- start: the feed hands the quote's batch to the engine (just before ``yield``);
- paper: the paper broker's ``place()`` is called (SQLite store, audit trail and alerts on, the
  INFO log to a file, as `cockpit` runs);
- ibkr: the order's write-ahead commit has been made and ``IbkrBroker.place()`` is called
  ("place"), and the adapter has handed the placeOrder message to the socket (ib_async's
  ``client.placeOrder`` returned: the bytes went to the transport; "socket"). The IB Gateway
  simulator (``cockpit ib-sim``) runs on 127.0.0.1 as a child process (``--sim inprocess``:
  on the engine's own loop); IB's pacing (45 messages per 1.1 s) sets the IBKR gap to 30 ms.

The window holds no await (on IBKR: unless the write-ahead finds a commit in flight, or the
order waits in the adapter's queue), so the loop thread's CPU time over it is printed too: what
the path costs without the waits a busy machine adds (other processes on the same cores), the
figure to compare trees by when the load is high (where the window does await, what else the
loop ran meanwhile is counted in).
The first ``WARM_UP`` quotes of each run are left out (the contract lookup, first allocations).
The GC runs as in `cockpit` (frozen after start; ``--gc on``: no freeze; ``--gc off``:
disabled); collections inside the measured window are counted and timed, with the number of
samples one fell into. Prints p50/p99/p99.9/max; asserts nothing.

    python bench/tick_to_order.py [--orders 5000] [--ibkr-orders 1500] [--only paper|ibkr]
                                  [--gap-ms 2] [--ibkr-gap-ms 30] [--durability process|power|both]
                                  [--sim child|inprocess] [--gc freeze|on|off] [--log file|off]
                                  [--tmpdir DIR] [--against TREE [--rounds N]]

``--against TREE`` measures this tree and another checkout of the project (the same bench
script, ``PYTHONPATH=TREE``), each run a child process, alternately (A B B A A B ...) for
``--rounds`` rounds, and prints both sides' figures over all rounds, with their ratio: on a
shared machine the load changes between runs, interleaving keeps the comparison fair.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # PYTHONPATH first: another tree of the project can be measured

from brokers.ibkr import IbkrConfig  # noqa: E402 - after the path
from brokers.ibkr.broker import IbkrBroker  # noqa: E402
from brokers.ibsim import IBGatewaySim  # noqa: E402
from brokers.paper import PaperBroker  # noqa: E402
from core.common.bus import Bus  # noqa: E402
from core.common.clock import Clock, LiveClock, SimClock  # noqa: E402
from core.config import DeadmanConfig, EngineConfig, RiskConfig, Settings  # noqa: E402
from core.domain.model import Bar, Order, Quote  # noqa: E402
from core.execution.broker import Broker  # noqa: E402
from core.kernel.engine import Engine  # noqa: E402
from core.persistence.store import Store  # noqa: E402
from core.strategy.base import Strategy  # noqa: E402

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
WARM_UP = 50
LEVEL = Decimal(100)
LISTENING = re.compile(r"listening on \S+:(\d+)")
SYMBOL = "AAPL"  # the simulator knows any US stock; paper does not care


class ScriptedFeed:
    """One quote a batch, under, over and at ``LEVEL`` in turn, ``gap`` seconds of wall time apart;
    each stamped (perf_counter_ns, and the thread's CPU time) as it is handed to the engine."""

    name = "scripted"

    def __init__(self, orders: int, gap: float, now: Callable[[int], datetime]) -> None:
        self.now = now  # the quote's time: engine time n on paper (a replay), the wall clock live
        self.symbols = [SYMBOL]
        self.quotes = orders * 3 // 2  # two orders every three quotes
        self.gap = gap
        self.sent_ns: list[int] = []
        self.sent_cpu_ns: list[int] = []  # the loop thread's CPU time at the same moment

    def load(self) -> None:
        pass

    def fingerprint(self) -> str:
        return "scripted"

    def bars_before(self, cursor: Any) -> list[Bar]:
        return []

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event) -> AsyncIterator[list[Quote]]:
        loop = asyncio.get_running_loop()
        due = loop.time()
        prices = (LEVEL - Decimal("0.05"), LEVEL + Decimal("0.05"), LEVEL)  # buy, sell, nothing
        spread = Decimal("0.01")
        for n in range(self.quotes):
            if self.gap:
                due += self.gap
                delay = due - loop.time()
                await asyncio.sleep(max(delay, 0))
            mid = prices[n % 3]
            quote = Quote(SYMBOL, self.now(n), mid - spread, mid + spread, mid, Decimal(1_000_000))
            self.sent_cpu_ns.append(time.thread_time_ns())
            self.sent_ns.append(time.perf_counter_ns())
            yield [quote]
            if stop.is_set():
                return


class LevelTrader(Strategy):
    """Long 1 while the ask is under ``LEVEL``, flat while the bid is over it."""

    def __init__(self) -> None:
        super().__init__("level", [SYMBOL], {})

    def on_quote(self, quote: Quote) -> None:
        if quote.ask < LEVEL:
            self.target_position(SYMBOL, 1)
        elif quote.bid > LEVEL:
            self.target_position(SYMBOL, 0)


@dataclass
class GcWatch:
    """Collections inside the measured window: (start ns, end ns, generation)."""

    spans: list[tuple[int, int, int]] = field(default_factory=list)
    _start: int = 0
    active: bool = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            self.spans.append((self._start, time.perf_counter_ns(), info["generation"]))

    def summary(self, windows: list[tuple[int, int]]) -> str:
        if not self.spans:
            return "GC: no collection in the window"
        by_gen = {g: [e - s for s, e, gen in self.spans if gen == g] for g in (0, 1, 2)}
        parts = [f"gen{g} x{len(v)} max {max(v) / 1000:.0f} us" for g, v in by_gen.items() if v]
        hit = sum(1 for a, b in windows if any(s < b and e > a for s, e, _ in self.spans))
        return f"GC: {', '.join(parts)}; {hit} samples had a collection inside"


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# With --dump (a child of --against): every reported series, by "<run>: <label>", written as JSON at the end.
DUMP: dict[str, list[float]] | None = None
SECTION = [""]


def report(label: str, values_us: list[float]) -> None:
    if DUMP is not None:
        DUMP.setdefault(f"{SECTION[0]}: {label}", []).extend(values_us)
    v = sorted(values_us)
    if not v:
        print(f"  {label:<32} no samples")
        return
    print(f"  {label:<32} n={len(v):5d}  p50 {percentile(v, 0.5):8.1f}  p99 {percentile(v, 0.99):8.1f}  "
          f"p99.9 {percentile(v, 0.999):8.1f}  max {v[-1]:8.1f} us")


def settings_for(state: Path, durability: str | None) -> Settings:
    engine: dict[str, Any] = {"state_dir": state}
    if durability is not None:
        engine["order_durability"] = durability
    return Settings(engine=EngineConfig(**engine), deadman=DeadmanConfig(enabled=False),
                    risk=RiskConfig(max_orders_per_minute_per_strategy=100_000, max_orders_per_minute_total=100_000,
                                    duplicate_window_seconds=0.01,  # buy, sell, buy: 2 gaps apart live
                                    daily_loss_limit=Decimal(10**9)))  # each round trip pays $2 commission


def timed_place(broker: Broker, feed: ScriptedFeed, stamps: dict[str, int], quote_of: dict[str, int],
                cpu: dict[str, int] | None = None) -> None:
    """Stamp the moment the engine calls ``broker.place(order)``, and the quote it is handling;
    with ``cpu``, the loop thread's CPU time too (the CPU the path took, without the waits a
    busy machine adds: meaningful where the window holds no await, i.e. on paper)."""
    place = broker.place

    def wrapped(order: Order) -> None:
        stamps[order.client_order_id] = time.perf_counter_ns()
        if cpu is not None:
            cpu[order.client_order_id] = time.thread_time_ns()
        quote_of[order.client_order_id] = len(feed.sent_ns) - 1
        place(order)

    broker.place = wrapped  # type: ignore[method-assign]


def gc_mode(mode: str) -> None:
    gc.enable()
    if mode == "off":
        gc.disable()
    elif mode == "freeze":
        gc.collect()
        gc.freeze()  # as cockpit/gc_policy.py does once the engine is up


def samples(feed: ScriptedFeed, stamps: dict[str, int], quote_of: dict[str, int], *, cpu: bool = False,
            kind: int | None = None) -> tuple[list[float], list[tuple[int, int]]]:
    """From the quote that made each order to ``stamps``' moment, in us; and the windows in ns.
    ``kind``: only orders made by quotes ``n % 3 == kind`` (0: order only, 1: fill + order on paper)."""
    starts = feed.sent_cpu_ns if cpu else feed.sent_ns
    out, windows = [], []
    for coid, end in stamps.items():
        i = quote_of[coid]
        if i < WARM_UP or (kind is not None and i % 3 != kind):
            continue
        out.append((end - starts[i]) / 1000)
        windows.append((starts[i], end))
    return out, windows


async def paper_run(state: Path, orders: int, gap: float, gc_policy: str, durability: str | None) -> None:
    settings = settings_for(state, durability)
    clock, bus, store = SimClock(), Bus(), Store(state / "cockpit.sqlite")
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=settings.paper, new_id=lambda: "bench")
    feed = ScriptedFeed(orders, gap, lambda n: T0 + timedelta(seconds=10 * n))
    engine = Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=feed,
                    strategies=[LevelTrader()], new_id=lambda: "bench")
    stamps: dict[str, int] = {}
    quote_of: dict[str, int] = {}
    cpu: dict[str, int] = {}
    timed_place(broker, feed, stamps, quote_of, cpu)
    watch = GcWatch()
    gc.callbacks.append(watch)
    await engine.start()
    gc_mode(gc_policy)
    watch.active = True
    try:
        await engine.run()
    finally:
        watch.active = False
        gc.callbacks.remove(watch)
        gc.enable()
    await engine.shutdown()
    SECTION[0] = "paper"
    print(f"paper (SimClock, paper venue {settings.paper.latency_ms} ms latency), {len(stamps)} orders, "
          f"{feed.quotes} quotes {gap * 1000:g} ms apart:")
    for kind, label in ((0, "order"), (1, "fill + order")):
        report(f"{label}: quote -> place()", samples(feed, stamps, quote_of, kind=kind)[0])
        report(f"{label}: the same, loop CPU", samples(feed, cpu, quote_of, cpu=True, kind=kind)[0])
    values, windows = samples(feed, stamps, quote_of)
    report("all: quote -> place()", values)
    print(f"  {watch.summary(windows)}; store commits {store.commits}")


async def start_sim(mode: str, tmp: Path) -> tuple[int, Callable[[], Any]]:
    if mode == "inprocess":
        sim = IBGatewaySim(None, seed=3, pacing_limit=50)
        port = await sim.start()
        return port, sim.stop
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--tick-interval", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))})
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    found = LISTENING.search(line)
    if not found:
        proc.kill()
        raise SystemExit(f"the simulator did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")

    async def stop() -> None:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)

    return int(found.group(1)), stop


async def ibkr_run(state: Path, orders: int, gap: float, gc_policy: str, sim_mode: str, durability: str | None) -> None:
    port, stop_sim = await start_sim(sim_mode, state.parent)
    try:
        settings = settings_for(state, durability)
        clock: Clock = LiveClock()
        config = IbkrConfig(port=port, client_id=1, restart_window="", id_state_file=state / "ibkr_order_ids.json")
        engine_ref: list[Engine] = []
        broker = IbkrBroker(config, clock, on_connection_change=lambda up, why: engine_ref[0].broker_connection_changed(
            up, why) if engine_ref else None)
        bus = Bus()
        feed = ScriptedFeed(orders, gap, lambda n: clock.now())
        store = Store(state / "cockpit.sqlite")
        engine = Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=feed,
                        strategies=[LevelTrader()], new_id=lambda: "bench")
        engine_ref.append(engine)
        placed: dict[str, int] = {}
        sent: dict[str, int] = {}
        placed_cpu: dict[str, int] = {}
        sent_cpu: dict[str, int] = {}
        quote_of: dict[str, int] = {}
        timed_place(broker, feed, placed, quote_of, placed_cpu)
        watch = GcWatch()
        gc.callbacks.append(watch)
        await engine.start()
        client = broker.ib.client
        send = client.placeOrder

        def timed_send(order_id: int, contract: Any, order: Any) -> None:
            send(order_id, contract, order)
            sent[order.orderRef] = time.perf_counter_ns()
            sent_cpu[order.orderRef] = time.thread_time_ns()

        client.placeOrder = timed_send  # type: ignore[method-assign]
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[(await store.fetchone("PRAGMA synchronous"))[0]]
        gc_mode(gc_policy)
        watch.active = True
        try:
            await engine.run()
        finally:
            watch.active = False
            gc.callbacks.remove(watch)
            gc.enable()
        await engine.shutdown()
    finally:
        await stop_sim()
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        filled = conn.execute("SELECT count(*) FROM orders WHERE status = 'FILLED'").fetchone()[0]
        made = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    SECTION[0] = f"ibkr {durability or 'default'}"
    print(f"ibkr (LiveClock, IB Gateway simulator {sim_mode}, order_durability {durability or 'default'}, "
          f"synchronous={sync}), {feed.quotes} quotes {gap * 1000:g} ms apart: {made} orders, {filled} filled")
    values, windows = samples(feed, placed, quote_of)
    report("quote -> place() (committed)", values)
    report("quote -> place(), loop CPU", samples(feed, placed_cpu, quote_of, cpu=True)[0])
    values, windows = samples(feed, sent, quote_of)
    report("quote -> socket", values)
    report("quote -> socket, loop CPU", samples(feed, sent_cpu, quote_of, cpu=True)[0])
    print(f"  {watch.summary(windows)}; store commits {store.commits}")


def machine() -> str:
    load = os.getloadavg()
    return (f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
            f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def logs_like_cockpit(mode: str, root: Path) -> str:
    """``file``: the engine's INFO log to a file (as the cockpit app logs: no stderr); ``off``: errors only."""
    if mode == "off":
        logging.basicConfig(level=getattr(logging, os.environ.get("BENCH_LOG", "ERROR")))
        return "log: errors only"
    from cockpit.logs import setup_logging

    setup_logging("INFO", root / "cockpit.log", stderr=False)
    return "log: INFO to a file, as cockpit"


async def main(args: argparse.Namespace) -> None:
    durabilities: list[str | None]
    if args.durability == "default":
        durabilities = [None]
    elif args.durability == "both":
        durabilities = ["process", "power"]
    else:
        durabilities = [args.durability]
    with tempfile.TemporaryDirectory(prefix="tick-to-order-", dir=args.tmpdir) as tmp:
        root = Path(tmp)
        logs = logs_like_cockpit(args.log, root)
        print(f"tick-to-order ({machine()}), GC {args.gc}, {logs}, warm-up {WARM_UP} orders left out")
        if args.only in (None, "paper"):
            await paper_run(root / "paper", args.orders, args.gap_ms / 1000, args.gc, None)
        if args.only in (None, "ibkr"):
            for i, durability in enumerate(durabilities):
                await ibkr_run(root / f"ibkr{i}", args.ibkr_orders, args.ibkr_gap_ms / 1000, args.gc, args.sim,
                               durability)


def against(args: argparse.Namespace, argv: list[str]) -> None:
    """Run this bench on this tree and on ``args.against`` alternately, each a child process, and
    print both sides' figures over all rounds."""
    other = Path(args.against).resolve()
    if not (other / "core").is_dir():
        raise SystemExit(f"--against {other}: not a checkout of the project (no core/ in it)")
    trees = {"A": ROOT, "B": other}
    child_argv: list[str] = []
    skip = False
    for a in argv:  # the same options, without --against / --rounds
        if skip:
            skip = False
            continue
        if a in ("--against", "--rounds"):
            skip = True
            continue
        if a.startswith(("--against=", "--rounds=")):
            continue
        child_argv.append(a)
    series: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    print(f"tick-to-order, interleaved: A = {ROOT}, B = {other}; {args.rounds} rounds ({machine()})")
    with tempfile.TemporaryDirectory(prefix="tick-to-order-ab-", dir=args.tmpdir) as tmp:
        for r in range(args.rounds):
            for side in ("AB", "BA", "BA", "AB")[r % 4]:
                dump = Path(tmp) / f"{side}{r}.json"
                env = {**os.environ, "PYTHONPATH": str(trees[side])}
                done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *child_argv, "--dump", str(dump)],
                                      env=env, capture_output=True, text=True)
                head = (done.stdout.splitlines() or ["(no output)"])[0]
                load = os.getloadavg()
                print(f"  round {r + 1} {side}: exit {done.returncode}, load {load[0]:.2f}  ({head[:110]})")
                if done.returncode != 0:
                    print(done.stdout[-2000:], done.stderr[-3000:], sep="\n")
                    raise SystemExit(f"the run of {trees[side]} failed")
                for key, values in json.loads(dump.read_text()).items():
                    series[side].setdefault(key, []).extend(values)
    print(f"over all rounds (us; load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    for key in series["A"]:
        a, b = sorted(series["A"][key]), sorted(series["B"].get(key, []))
        if not a or not b:
            continue
        print(f"  {key}")
        for side, v in (("A", a), ("B", b)):
            print(f"    {side} n={len(v):6d}  p50 {percentile(v, 0.5):8.1f}  p99 {percentile(v, 0.99):8.1f}  "
                  f"p99.9 {percentile(v, 0.999):8.1f}  max {v[-1]:9.1f}")
        print(f"    A/B  p50 {percentile(a, 0.5) / percentile(b, 0.5):.3f}  p99 {percentile(a, 0.99) / percentile(b, 0.99):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000, help="paper: orders (default 5000)")
    parser.add_argument("--ibkr-orders", type=int, default=1500, help="ibkr: orders per run (default 1500)")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="paper: wall ms between quotes (0: flat out)")
    parser.add_argument("--ibkr-gap-ms", type=float, default=30.0,
                        help="ibkr: wall ms between quotes (IB's pacing allows about 41 orders/s)")
    parser.add_argument("--only", choices=["paper", "ibkr"], default=None)
    parser.add_argument("--durability", choices=["default", "process", "power", "both"], default="default",
                        help="[engine] order_durability for the IBKR run(s) (default: the config's default)")
    parser.add_argument("--sim", choices=["child", "inprocess"], default="child")
    parser.add_argument("--gc", choices=["freeze", "on", "off"], default="freeze")
    parser.add_argument("--log", choices=["file", "off"], default="file",
                        help="file: INFO to a log file in the temp dir, as cockpit logs (default); off: errors only")
    parser.add_argument("--tmpdir", default=None, help="where the state dirs go (fsync cost depends on the disk)")
    parser.add_argument("--against", metavar="TREE", default=None,
                        help="also measure another checkout of the project, interleaved with this one")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: rounds, each runs both trees")
    parser.add_argument("--dump", metavar="FILE", default=None, help=argparse.SUPPRESS)  # a child of --against
    parsed = parser.parse_args()
    if parsed.against:
        against(parsed, sys.argv[1:])
    else:
        if parsed.dump:
            DUMP = {}
        asyncio.run(main(parsed))
        if DUMP is not None:
            Path(parsed.dump).write_text(json.dumps(DUMP))
