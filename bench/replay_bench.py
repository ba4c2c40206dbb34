"""Replay throughput: our engine's full path vs backtrader and NautilusTrader, interleaved.

Run from the repo root:

    python bench/replay_bench.py                     # 5 rounds, both files, every side
    python bench/replay_bench.py --rounds 9 --only fesx
    python bench/replay_bench.py --profile orcl      # ... plus a cProfile of one of our runs
    python bench/replay_bench.py --help

Each round runs every side once on each file (ours at 1 and 4 quotes per bar, backtrader,
NautilusTrader), in an order that is reversed every other round, so a machine that gets
busier or quieter during the bench weighs on every side alike. It prints the medians of
the full run (including the file load) and of the run only, the ratios of ours to each
peer on the same figure, and the wall time of a whole ``cockpit --no-ui --speed max``
process on the ORCL file. It asserts nothing about speed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for entry in (str(REPO), str(REPO / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from replay_peers.common import DATASETS, NOTIONAL, SMA_FAST, SMA_SLOW, Dataset, Timed  # noqa: E402
from replay_peers.ours import HAS_BAR_CACHE, run_ours  # noqa: E402


class _Once(logging.Filter):
    """Show each distinct warning once (a file's header repair is logged at every load)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()[:60]
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


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_info() -> list[str]:
    cpu = platform.processor() or "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = None
    lines = [f"usable CPUs: {usable}   cpu: {cpu}",
             f"python {sys.version.split()[0]} on {platform.platform()}; sqlite {sqlite3.sqlite_version}"]
    env = sorted(k for k in os.environ if k.upper().startswith("COCKPIT_"))
    if env:
        lines.append(f"WARNING: COCKPIT_* variables are set and override the bench's settings: {env}")
    return lines


# --------------------------------------------------------------------------- whole process


def whole_process_config(tmp: Path, cache_dir: Path) -> Path:
    """A config.toml with the ORCL file and the SMA strategy, as a user would write it."""
    cache = f'bar_cache_dir = "{cache_dir}"\n' if HAS_BAR_CACHE else ""
    text = (
        "[feed]\nkind = \"replay\"\nquotes_per_bar = 4\n" + cache
        + "[[feed.files]]\nsymbol = \"ORCL\"\npath = \"bundled:daily/ORCL_1995-2014_yahoo.csv\"\n"
        + "[strategies.sma_cross]\nkind = \"sma_cross\"\nsymbols = [\"ORCL\"]\n"
        + f"params = {{ fast = {SMA_FAST}, slow = {SMA_SLOW}, notional = \"{NOTIONAL}\" }}\n"
    )
    path = tmp / "whole-process.toml"
    path.write_text(text)
    return path


def run_whole_process(config: Path, tmp: Path) -> Timed:
    """``python -m cockpit --config X --state-dir NEW --no-ui --speed max``, wall time."""
    with tempfile.TemporaryDirectory(prefix="proc-", dir=tmp) as state:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
        env["PYTHONPATH"] = str(REPO)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cockpit", "--config", str(config), "--state-dir", state,
                               "--no-ui", "--speed", "max"], env=env, cwd=tmp, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"cockpit --no-ui failed ({done.returncode}): {done.stderr[-2000:]}")
        con = sqlite3.connect(Path(state) / "cockpit.sqlite")
        try:
            orders = con.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
            fills = con.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        finally:
            con.close()
    return Timed("whole process", secs, secs, 5036, orders, fills)


# --------------------------------------------------------------------------- reporting


def rate(bars: int, seconds: float) -> str:
    return f"{bars / seconds:,.0f}" if seconds > 0 else "n/a"


def median(runs: list[Timed], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))


def report(results: dict[tuple[str, str], list[Timed]], datasets: list[Dataset], sides: list[str],
           peers: list[str], ours_sides: list[str]) -> None:
    print()
    print("=== medians: bars/s (seconds) ===")
    head = ["dataset", "side", "bars", "full run incl. load", "run only", "traded (first timed run)"]
    rows = []
    for ds in datasets:
        for side in sides:
            runs = results.get((ds.key, side))
            if not runs:
                continue
            full, run = median(runs, "full_s"), median(runs, "run_s")
            rows.append([ds.title, side, f"{runs[0].bars:,}", f"{rate(runs[0].bars, full)} ({full:.3f}s)",
                         f"{rate(runs[0].bars, run)} ({run:.3f}s)", runs[0].detail[:90]])
    print_table(head, rows)
    if not peers:
        return
    print()
    print("=== ratios of the medians: ours / peer, like with like (full / full, run only / run only) ===")
    head = ["dataset", "ours"] + [f"/{p} {what}" for p in peers for what in ("full", "run")]
    rows = []
    for ds in datasets:
        for ours in ours_sides:
            mine = results.get((ds.key, ours))
            if not mine:
                continue
            cells = [ds.title, ours]
            for p in peers:
                theirs = results.get((ds.key, p))
                for attr in ("full_s", "run_s"):
                    cells.append(f"{median(theirs, attr) / median(mine, attr):.2f}x" if theirs else "n/a")
            rows.append(cells)
    print_table(head, rows)


def profile_one(ds: Dataset, quotes: int, tmp: Path, cache_dir: Path, top: int) -> None:
    print()
    print(f"=== cProfile: ours, {ds.title}, quotes_per_bar={quotes}, build+start+run+shutdown (warm cache) ===")
    print("(main thread only: SQLite work runs on aiosqlite's thread and shows here as the loop waiting)")
    prof = cProfile.Profile()
    r = run_ours(ds, quotes, tmp, cache_dir, profiler=prof)
    print(f"profiled run: full {r.full_s:.3f}s, run {r.run_s:.3f}s (under the profiler)")
    for sort in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(top)
        text = buf.getvalue().replace(str(REPO) + "/", "")
        print(f"--- top {top} by {sort} ---")
        print(text[text.find("   ncalls"):].rstrip())


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5), after one untimed warm-up")
    ap.add_argument("--only", choices=[d.key for d in DATASETS], help="one file only")
    ap.add_argument("--quotes", type=int, nargs="+", default=[1, 4], choices=[1, 2, 4],
                    help="quotes_per_bar for ours (default 1 4)")
    ap.add_argument("--no-backtrader", action="store_true")
    ap.add_argument("--no-nautilus", action="store_true")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process cockpit runs")
    ap.add_argument("--no-backtest-side", action="store_true",
                    help="skip 'ours bt q=4': the engine as `cockpit backtest` configures it (no alert router, "
                         "dead-man or backups)")
    ap.add_argument("--profile", choices=[d.key for d in DATASETS], help="also cProfile one of our runs (q=4)")
    ap.add_argument("--profile-top", type=int, default=30)
    ap.add_argument("--tmpdir", default=None, help="where state dirs and the bar cache go (default: system temp)")
    args = ap.parse_args()
    setup_logging()

    print("=== replay throughput: cockpit (full path) vs backtrader vs NautilusTrader, interleaved ===")
    for ln in machine_info():
        print(ln)
    print(f"load average at start: {load_average()}")
    print(f"strategy: SMA({SMA_FAST}/{SMA_SLOW}) cross on closes, long int({NOTIONAL}/close) when fast > slow, "
          "flat otherwise, orders on a change of state only")

    runners: dict[str, Callable[[Dataset], Timed]] = {}
    datasets = [d for d in DATASETS if args.only in (None, d.key)]
    tmp_ctx = tempfile.TemporaryDirectory(prefix="replay-bench-", dir=args.tmpdir)
    tmp = Path(tmp_ctx.name)
    cache_dir = tmp / "bar-cache"
    ours_sides = [f"ours q={q}" for q in args.quotes]
    for q, side in zip(args.quotes, ours_sides, strict=True):
        runners[side] = lambda ds, q=q: run_ours(ds, q, tmp, cache_dir)
    if not args.no_backtest_side:
        ours_sides.append("ours bt q=4")
        runners["ours bt q=4"] = lambda ds: run_ours(ds, 4, tmp, cache_dir, backtest=True)
    peers: list[str] = []
    if not args.no_backtrader:
        try:
            import backtrader as bt
        except ImportError as exc:
            print(f"backtrader: not installed ({exc}); `pip install backtrader==1.9.78.123`")
        else:
            from replay_peers.backtrader_peer import run_backtrader

            print(f"backtrader {bt.__version__}: GenericCSVData, preload+runonce, stdstats off, fills at next open")
            runners["backtrader"] = lambda ds: run_backtrader(bt, ds)
            peers.append("backtrader")
    if not args.no_nautilus:
        try:
            import nautilus_trader
        except ImportError as exc:
            print(f"nautilus_trader: not installed ({exc}); `pip install nautilus_trader==1.221.0`")
        else:
            from replay_peers.nautilus_peer import run_nautilus

            print(f"nautilus_trader {nautilus_trader.__version__}: BacktestEngine, Python strategy with its "
                  "SimpleMovingAverage, bar execution, fills at the signal bar's close")
            runners["nautilus"] = run_nautilus
            peers.append("nautilus")
    sides = list(runners)
    print(f"ours: build_engine + start (store, migrations, file load) + run + shutdown; paper broker, risk gate, "
          f"OMS, SQLite (WAL), audit trail, daily reports, alerts ('ours bt': as `cockpit backtest`, no alerts); "
          f"bar cache: "
          f"{'in one folder for the bench (warm after the first run)' if HAS_BAR_CACHE else 'none (parses every run)'}")

    # Warm-up: imports, the exchange calendar, our bar cache (this run pays for parsing).
    print()
    print("warm-up round (not counted):")
    for ds in datasets:
        for side in sides:
            r = runners[side](ds)
            print(f"  {ds.title:<11} {side:<11} full {r.full_s:7.3f}s  run {r.run_s:7.3f}s   {r.detail[:100]}")

    process_config = whole_process_config(tmp, cache_dir)
    whole: list[Timed] = []
    if not args.no_process:
        run_whole_process(process_config, tmp)  # warm: the page cache, the bytecode
    results: dict[tuple[str, str], list[Timed]] = defaultdict(list)
    print()
    print(f"{args.rounds} timed rounds, each side once per file and round, the order reversed every other round:")
    for n in range(args.rounds):
        order = sides if n % 2 == 0 else sides[::-1]
        for ds in datasets:
            for side in order:
                gc.collect()
                results[(ds.key, side)].append(runners[side](ds))
        if not args.no_process:
            whole.append(run_whole_process(process_config, tmp))
        print(f"  round {n + 1}/{args.rounds} done (load average {load_average()})", flush=True)

    report(results, datasets, sides, peers, ours_sides)
    if whole:
        secs = [w.full_s for w in whole]
        print()
        print(f"whole process: `cockpit --no-ui --speed max` on the ORCL file (q=4, SMA, fresh state dir, "
              f"{'warm bar cache' if HAS_BAR_CACHE else 'no bar cache'}): median {statistics.median(secs):.3f}s, "
              f"best {min(secs):.3f}s over {len(secs)} runs; {whole[0].orders} orders, {whole[0].fills} fills")
    if args.profile:
        profile_one(next(d for d in DATASETS if d.key == args.profile), 4, tmp, cache_dir, args.profile_top)
    print()
    print(f"load average at end: {load_average()}")
    tmp_ctx.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
