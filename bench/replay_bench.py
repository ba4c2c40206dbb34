"""Replay throughput: our engine's full path vs backtrader, same strategy, same files.

Run from the repo root:

    python bench/replay_bench.py                 # figures + table
    python bench/replay_bench.py --profile       # ... plus a cProfile of ours (minute file, q=4)
    python bench/replay_bench.py --help

It prints figures and asserts nothing about speed. See bench/README.md for what is
measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/replay_bench.py` puts bench/ first, not the repo
    sys.path.insert(0, str(REPO))

from cockpit.wiring import build_engine, db_path  # noqa: E402
from core.config import Settings  # noqa: E402
from core.data.bar_files import bundled_path  # noqa: E402

SMA_FAST, SMA_SLOW, NOTIONAL = 10, 30, 10000
SYMBOL = "BENCH"


@dataclass(frozen=True)
class Dataset:
    key: str
    bundled: str  # relative to core/data/bundled
    tz: str
    bar_time: str
    bar_seconds: int | None
    calendar: str | None
    # backtrader GenericCSVData column layout for the same file
    bt_kwargs: dict = field(default_factory=dict)
    bt_intraday: bool = False


DATASETS = [
    Dataset(
        key="ORCL daily",
        bundled="daily/ORCL_1995-2014_yahoo.csv",
        tz="America/New_York", bar_time="end", bar_seconds=None, calendar="XNYS",
        # Date,Open,High,Low,Close,Adj Close,Volume   e.g. 1995-01-03,2.179012,...,36301200
        bt_kwargs=dict(dtformat="%Y-%m-%d", datetime=0, time=-1, open=1, high=2, low=3, close=4,
                       volume=6, openinterest=-1),
    ),
    Dataset(
        key="FESX 1-min",
        bundled="intraday/backtrader_2006-01-02-volume-min-001.txt",
        tz="Europe/Berlin", bar_time="end", bar_seconds=60, calendar=None,
        # header Date,Open,High,Low,Close,Volume,OpenInterest (no Time), but rows are
        # 2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0  (CRLF)
        bt_kwargs=dict(dtformat="%Y-%m-%d", tmformat="%H:%M:%S", datetime=0, time=1, open=2, high=3,
                       low=4, close=5, volume=6, openinterest=7),
        bt_intraday=True,
    ),
]


# --------------------------------------------------------------------------- logging


class _Once(logging.Filter):
    """Show each distinct warning once (the bar reader repeats its header repair per load)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg in self.seen:
            return False
        self.seen.add(msg)
        return True


def setup_logging() -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  [log] %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Once())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


# --------------------------------------------------------------------------- ours


def make_settings(ds: Dataset, quotes_per_bar: int, state_dir: Path) -> Settings:
    return Settings(
        engine={"state_dir": str(state_dir), "instance_name": "bench"},
        broker={"kind": "paper"},
        feed={
            "kind": "replay",
            "speed": "max",
            "start": None,
            "end": None,
            "quotes_per_bar": quotes_per_bar,
            "files": [{
                "symbol": SYMBOL, "path": f"bundled:{ds.bundled}", "tz": ds.tz, "bar_time": ds.bar_time,
                "bar_seconds": ds.bar_seconds, "calendar": ds.calendar,
            }],
        },
        strategies={
            "sma_cross": {
                "kind": "sma_cross", "enabled": True, "symbols": [SYMBOL],
                "params": {"fast": SMA_FAST, "slow": SMA_SLOW, "notional": str(NOTIONAL)},
            },
        },
        logging={"level": "WARNING"},
    )


@dataclass
class OursRun:
    start_s: float
    run_s: float
    shutdown_s: float
    bars: int
    events: int
    orders_mem: int
    orders_db: int
    order_status: dict[str, int]
    fills_db: int
    paper_execs_db: int
    risk_rejects_db: int
    net_pnl: str
    pragmas: dict[str, object]
    commits: int
    rows_written: int

    @property
    def full_s(self) -> float:
        return self.start_s + self.run_s + self.shutdown_s


async def _drive(engine, want_pragmas: bool) -> tuple[float, float, float, dict[str, object]]:
    pragmas: dict[str, object] = {}
    t0 = time.perf_counter()
    await engine.start()
    t1 = time.perf_counter()
    if want_pragmas:  # read back what the store set; not counted in any figure
        for name in ("synchronous", "journal_mode"):
            row = await engine.store.fetchone(f"PRAGMA {name}")
            pragmas[name] = row[0] if row else None
    t1b = time.perf_counter()
    await engine.run()
    t2 = time.perf_counter()
    await engine.shutdown()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1b, t3 - t2, pragmas


def run_ours(ds: Dataset, quotes_per_bar: int, tmp_root: str | None, want_pragmas: bool = False,
             profiler: cProfile.Profile | None = None) -> OursRun:
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-", dir=tmp_root) as tmp:
        state = Path(tmp) / "state"
        settings = make_settings(ds, quotes_per_bar, state)
        engine = build_engine(settings)
        if profiler is not None:
            profiler.enable()
        try:
            start_s, run_s, shutdown_s, pragmas = asyncio.run(_drive(engine, want_pragmas))
        finally:
            if profiler is not None:
                profiler.disable()
        bars = sum(len(b) for b in engine.feed.bars.values())
        con = sqlite3.connect(db_path(settings))
        try:
            orders_db = con.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
            status = dict(con.execute("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"))
            fills_db = con.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
            execs_db = con.execute("SELECT COUNT(*) FROM paper_executions").fetchone()[0]
            rejects_db = con.execute("SELECT COUNT(*) FROM risk_events").fetchone()[0]
        finally:
            con.close()
        pnl = engine.portfolio.pnl()
        return OursRun(
            start_s=start_s, run_s=run_s, shutdown_s=shutdown_s, bars=bars, events=engine.events_processed,
            orders_mem=len(engine.oms.orders) if engine.oms else 0, orders_db=orders_db, order_status=status,
            fills_db=fills_db, paper_execs_db=execs_db, risk_rejects_db=rejects_db,
            net_pnl=f"{pnl.net:.2f}", pragmas=pragmas,
            commits=engine.store.commits, rows_written=engine.store.rows_written,
        )


# --------------------------------------------------------------------------- backtrader


def bt_strategy_class(bt):
    class BtSmaCross(bt.Strategy):
        """Long int(notional/close) while SMA(fast) > SMA(slow), flat otherwise; acts on changes only."""

        params = dict(fast=SMA_FAST, slow=SMA_SLOW, notional=float(NOTIONAL))

        def __init__(self):
            self.sma_fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            self.sma_slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.long = None
            self.orders_sent = 0
            self.orders_completed = 0
            self.orders_failed = 0
            self.trades_closed = 0
            self.bars_seen = 0

        def next(self):
            self.bars_seen += 1
            long = self.sma_fast[0] > self.sma_slow[0]
            if long == self.long:
                return
            self.long = long
            target = int(self.p.notional / self.data.close[0]) if long else 0
            if self.order_target_size(target=target) is not None:
                self.orders_sent += 1

        def notify_order(self, order):
            if order.status == order.Completed:
                self.orders_completed += 1
            elif order.status in (order.Canceled, order.Margin, order.Rejected, order.Expired):
                self.orders_failed += 1

        def notify_trade(self, trade):
            if trade.isclosed:
                self.trades_closed += 1

    return BtSmaCross


@dataclass
class BtRun:
    seconds: float
    bars: int
    orders_sent: int
    orders_completed: int
    orders_failed: int
    trades_closed: int
    final_value: float


def run_bt(bt, ds: Dataset) -> BtRun:
    cerebro = bt.Cerebro()  # defaults: preload=True, runonce=True
    kwargs = dict(ds.bt_kwargs)
    if ds.bt_intraday:
        kwargs.update(timeframe=bt.TimeFrame.Minutes, compression=1)
    data = bt.feeds.GenericCSVData(dataname=str(bundled_path(ds.bundled)), headers=True, separator=",", **kwargs)
    cerebro.adddata(data)
    cerebro.addstrategy(bt_strategy_class(bt))
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True)
    t0 = time.perf_counter()
    strats = cerebro.run(stdstats=False)  # loading (preload) happens inside run()
    secs = time.perf_counter() - t0
    s = strats[0]
    return BtRun(secs, len(s.data), s.orders_sent, s.orders_completed, s.orders_failed, s.trades_closed,
                 cerebro.broker.getvalue())


# --------------------------------------------------------------------------- reporting


def machine_info(tmp_root: str | None) -> list[str]:
    lines = []
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    cpu = platform.processor() or ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines.append(f"nproc (usable CPUs): {affinity}   os.cpu_count(): {os.cpu_count()}   cpu: {cpu or '?'}")
    lines.append(f"python: {sys.version.split()[0]} ({platform.python_implementation()}) on {platform.platform()}")
    lines.append(f"sqlite3 library: {sqlite3.sqlite_version}")
    try:
        la = os.getloadavg()
        lines.append(f"load average at start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    except OSError:
        pass
    root = Path(tmp_root or tempfile.gettempdir()).resolve()
    fs = "?"
    try:
        best = ""
        for ln in Path("/proc/mounts").read_text().splitlines():
            parts = ln.split()
            mnt, kind = parts[1], parts[2]
            if (str(root) == mnt or str(root).startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fs = mnt, f"{kind} (mounted at {mnt})"
    except OSError:
        pass
    lines.append(f"state dirs under: {root}  filesystem: {fs}")
    env = sorted(k for k in os.environ if k.upper().startswith("COCKPIT_"))
    if env:
        lines.append(f"WARNING: COCKPIT_* environment variables are set and override the bench settings: {env}")
    return lines


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def summarize(label: str, values: list[float]) -> str:
    return f"{label} best {min(values):.3f}s  median {statistics.median(values):.3f}s"


def print_ours(ds: Dataset, q: int, runs: list[OursRun], cold: OursRun) -> dict[str, float]:
    r0 = runs[0]
    full = [r.full_s for r in runs]
    run_only = [r.run_s for r in runs]
    starts = [r.start_s for r in runs]
    shut = [r.shutdown_s for r in runs]
    best_full, best_run = min(full), min(run_only)
    med_full, med_run = statistics.median(full), statistics.median(run_only)
    print(f"  quotes_per_bar={q}: {r0.bars} bars -> {r0.events} events "
          f"({r0.events / r0.bars:.0f} per bar), {len(runs)} timed runs (+1 cold run not counted)")
    print(f"    full  start+run+shutdown: best {best_full:.3f}s  median {med_full:.3f}s"
          f"  -> bars/s best {fmt_rate(r0.bars / best_full)}  median {fmt_rate(r0.bars / med_full)}"
          f"   events/s best {fmt_rate(r0.events / best_full)}  median {fmt_rate(r0.events / med_full)}")
    print(f"    run() only:               best {best_run:.3f}s  median {med_run:.3f}s"
          f"  -> bars/s best {fmt_rate(r0.bars / best_run)}  median {fmt_rate(r0.bars / med_run)}"
          f"   events/s best {fmt_rate(r0.events / best_run)}  median {fmt_rate(r0.events / med_run)}")
    print(f"    phases (median): start {statistics.median(starts):.3f}s (incl. file load)"
          f"  run {med_run:.3f}s  shutdown {statistics.median(shut):.3f}s"
          f"   | cold first run: full {cold.full_s:.3f}s (start {cold.start_s:.3f}s)")
    status = ", ".join(f"{k} {v}" for k, v in r0.order_status.items())
    print(f"    traded: orders {r0.orders_db} in store ({r0.orders_mem} in oms) [{status}]; "
          f"fills {r0.fills_db} (paper executions {r0.paper_execs_db}); risk rejects {r0.risk_rejects_db}; "
          f"net P&L {r0.net_pnl}")
    print(f"    store: {r0.commits} commits, {r0.rows_written} rows written "
          f"({r0.commits / max(r0.orders_db, 1):.2f} commits per order)")
    varied = {(r.orders_db, r.fills_db) for r in runs}
    if len(varied) > 1:
        print(f"    NOTE: order/fill counts differ between runs: {sorted(varied)}")
    return {"full": r0.bars / best_full, "run": r0.bars / best_run,
            "full_med": r0.bars / med_full, "run_med": r0.bars / med_run}


def print_bt(runs: list[BtRun]) -> dict[str, float]:
    r0 = runs[0]
    secs = [r.seconds for r in runs]
    best, med = min(secs), statistics.median(secs)
    print(f"  backtrader: {r0.bars} bars, cerebro.run(stdstats=False) incl. CSV load, {len(runs)} timed runs"
          f" (+1 cold run not counted)")
    print(f"    best {best:.3f}s  median {med:.3f}s  -> bars/s best {fmt_rate(r0.bars / best)}"
          f"  median {fmt_rate(r0.bars / med)}")
    print(f"    traded: orders sent {r0.orders_sent}, completed {r0.orders_completed}, "
          f"failed {r0.orders_failed}; round-trip trades closed {r0.trades_closed}; "
          f"final value {r0.final_value:,.2f}")
    return {"full": r0.bars / best, "full_med": r0.bars / med}


def profile_minute(tmp_root: str | None, top: int) -> None:
    ds = DATASETS[1]
    print()
    print(f"=== cProfile: ours, {ds.key} ({ds.bundled}), quotes_per_bar=4, start+run+shutdown ===")
    print("(main thread only: SQLite work runs in aiosqlite's worker thread and shows up here as time")
    print(" the loop spends waiting in select/epoll)")
    run_ours(ds, 4, tmp_root)  # warm imports and caches
    prof = cProfile.Profile()
    r = run_ours(ds, 4, tmp_root, profiler=prof)
    print(f"profiled run: full {r.full_s:.3f}s (run {r.run_s:.3f}s) under the profiler; "
          f"{r.orders_db} orders, {r.fills_db} fills")
    for sort in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats(sort).print_stats(top)
        text = buf.getvalue()
        text = text.replace(str(REPO) + "/", "").replace(sys.prefix + "/lib/python3.11/site-packages/", "")
        print(f"--- top {top} by {sort} ---")
        print(text[text.find("   ncalls"):].rstrip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case for the minute file (default 3)")
    ap.add_argument("--daily-repeats", type=int, default=7, help="timed runs per case for the daily file (default 7)")
    ap.add_argument("--quotes", type=int, nargs="+", default=[1, 4], choices=[1, 2, 4],
                    help="quotes_per_bar values for ours (default 1 4)")
    ap.add_argument("--only", choices=[d.key.split()[0].lower() for d in DATASETS] + ["all"], default="all",
                    help="run one dataset only (orcl or fesx)")
    ap.add_argument("--no-backtrader", action="store_true", help="skip the backtrader side")
    ap.add_argument("--profile", action="store_true", help="also cProfile ours on the minute file at q=4")
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument("--tmpdir", default=None, help="where fresh state dirs are made (default: system temp)")
    args = ap.parse_args()
    setup_logging()

    print("=== replay throughput: cockpit engine (full path) vs backtrader ===")
    for ln in machine_info(args.tmpdir):
        print(ln)
    print(f"strategy: SMA cross fast={SMA_FAST} slow={SMA_SLOW}, long int({NOTIONAL}/close) when fast>slow, "
          "flat otherwise (orders only on a change of state)")
    print("ours: build_engine() -> start() -> run() -> shutdown(); replay speed 'max'; paper broker "
          "(defaults: latency 50 ms, slippage 1 bp, $0.005/sh min $1); risk gate and OMS on; SQLite store ON "
          "(fresh temp state dir per run; flush_interval_ms 50; every order commits before it is sent)")

    bt = None
    if not args.no_backtrader:
        try:
            import backtrader as bt
        except ImportError as exc:
            print(f"backtrader: NOT INSTALLED ({exc}); reporting ours only")
            bt = None
        else:
            print(f"backtrader {bt.__version__}: GenericCSVData, Cerebro defaults (preload=True, runonce=True), "
                  "cerebro.run(stdstats=False), setcommission(0.005/share fixed), cash 100000, market orders "
                  "via order_target_size (fill at next bar's open)")

    datasets = DATASETS if args.only == "all" else [d for d in DATASETS if d.key.lower().startswith(args.only)]
    table = []
    pragmas_noted = None
    for ds in datasets:
        n = args.daily_repeats if ds.calendar else args.repeats
        print()
        print(f"--- {ds.key}: core/data/bundled/{ds.bundled} (tz {ds.tz}, bar_time {ds.bar_time}, "
              f"calendar {ds.calendar}, bar_seconds {ds.bar_seconds}) ---")
        row = {"dataset": ds.key}
        for q in args.quotes:
            cold = run_ours(ds, q, args.tmpdir, want_pragmas=pragmas_noted is None)
            if pragmas_noted is None:
                pragmas_noted = cold.pragmas
                sync_names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
                sync = pragmas_noted.get("synchronous")
                print(f"  SQLite as opened by core/store.py (read back live): synchronous={sync_names.get(sync, sync)}"
                      f" ({sync}), journal_mode={pragmas_noted.get('journal_mode')}")
            runs = [run_ours(ds, q, args.tmpdir) for _ in range(n)]
            rates = print_ours(ds, q, runs, cold)
            row["bars"] = runs[0].bars
            row[f"q{q}"] = rates
        if bt is not None:
            run_bt(bt, ds)  # cold run: imports, strptime caches
            bt_runs = [run_bt(bt, ds) for _ in range(n)]
            row["bt"] = print_bt(bt_runs)
            row["bt_bars"] = bt_runs[0].bars
        table.append(row)

    print()
    print("=== summary: bars/s from the best run (full path for ours = start+run+shutdown incl. file load; "
          "backtrader = cerebro.run incl. CSV load) ===")
    qs = args.quotes
    head = ["dataset", "bars"] + [f"ours q={q}" for q in qs] + ["backtrader"] + [f"ours q={q}/bt" for q in qs]
    _print_table(head, _summary_rows(table, qs, "full"))
    print()
    print("same, ours run() only (excludes start: store open, file load, calendar; and shutdown):")
    _print_table(head, _summary_rows(table, qs, "run"))
    print()
    print("medians (full path / backtrader):")
    for row in table:
        bt_med = row.get("bt", {}).get("full_med")
        parts = [f"ours q={q} {fmt_rate(row[f'q{q}']['full_med'])} bars/s" for q in qs]
        parts.append(f"backtrader {fmt_rate(bt_med)} bars/s" if bt_med else "backtrader n/a")
        if bt_med:
            parts += [f"q={q}/bt {row[f'q{q}']['full_med'] / bt_med:.2f}x" for q in qs]
        print(f"  {row['dataset']}: " + ", ".join(parts))
    for row in table:
        if "bt_bars" in row and row["bt_bars"] != row["bars"]:
            print(f"NOTE {row['dataset']}: backtrader saw {row['bt_bars']} bars, ours {row['bars']}")

    if args.profile:
        profile_minute(args.tmpdir, args.profile_top)
    return 0


def _summary_rows(table: list[dict], qs: list[int], phase: str) -> list[list[str]]:
    """One row per dataset: our bars/s for ``phase`` ("full" or "run"), backtrader's, the ratios."""
    rows = []
    for row in table:
        bt_rate = row.get("bt", {}).get("full")
        cells = [row["dataset"], f"{row['bars']:,}"]
        cells += [fmt_rate(row[f"q{q}"][phase]) for q in qs]
        cells.append(fmt_rate(bt_rate) if bt_rate else "n/a")
        cells += [f"{row[f'q{q}'][phase] / bt_rate:.2f}x" if bt_rate else "n/a" for q in qs]
        rows.append(cells)
    return rows


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=False))))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))))


if __name__ == "__main__":
    raise SystemExit(main())
