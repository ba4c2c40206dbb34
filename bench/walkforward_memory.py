"""Memory of a walk-forward worker: RSS run over run while one process runs N backtests.

A pool worker of `cockpit walkforward` runs hundreds of backtests one after the other
(``runner.run_job``: the engine on cut bar files, a throwaway store each). Nothing of a run may
stay behind: this runs ``--runs`` (100) jobs of the walk-forward's own kind in this process (the
in-sample grid of one window of the default config, cycling through its points: 1 year of
5 symbols each) and prints the RSS after each run, and the growth from run 10 (the calendars,
imports and caches are warm by then) to the last. Asserts nothing.

    python bench/walkforward_memory.py [--runs 100] [--every 1]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from cockpit.research.walkforward.analysis import Spec, prepare
from cockpit.research.walkforward.data import cut
from cockpit.research.walkforward.grid import as_params
from cockpit.research.walkforward.runner import IN_SAMPLE, RunJob, run_job
from cockpit.research.walkforward.windows import parse_duration, run_range
from core.config import load_config
from core.strategy import KINDS

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--every", type=int, default=1, help="print every Nth run")
    args = ap.parse_args()
    settings = load_config(ROOT / "config.toml")
    spec = Spec("sma_cross", "fast=5..20:5 slow=20..60:10", parse_duration("1y", "--train"),
                parse_duration("6m", "--test"))
    prep = prepare(settings, spec)
    window = prep.windows[0]
    cfg = settings.strategies["sma_cross"]
    base = settings.model_copy(update={"strategies": {"sma_cross": cfg}})
    rng = run_range(prep.sessions, window.train_start, window.train_end, prep.warmup)
    slices = tuple(cut(d, rng.data_start, rng.end) for d in prep.data)
    model = KINDS[prep.kind].Params
    points = prep.grid.points
    print(f"{args.runs} backtests of sma_cross in one process: {rng.data_start} .. {rng.end} "
          f"({len(prep.data)} symbols, warm-up {prep.warmup} sessions), {len(points)} grid points in turn")
    print(f"{'run':>5} {'seconds':>8} {'RSS MiB':>8} {'delta':>7}")
    rss: list[float] = []
    started = time.perf_counter()
    for i in range(args.runs):
        p = i % len(points)
        job = RunJob(window.index, IN_SAMPLE, p, base, "sma_cross", {**cfg.params, **as_params(model, points[p])},
                     slices, rng)
        outcome = run_job(job)
        gc.collect()
        rss.append(rss_mib())
        if (i + 1) % args.every == 0 or i == 0:
            delta = rss[-1] - rss[-2] if len(rss) > 1 else 0.0
            print(f"{i + 1:>5} {outcome.seconds:>8.2f} {rss[-1]:>8.1f} {delta:>+7.1f}")
    base_at = min(9, len(rss) - 1)
    print(f"\nRSS after run 1: {rss[0]:.1f} MiB, after run {base_at + 1}: {rss[base_at]:.1f} MiB, after run "
          f"{len(rss)}: {rss[-1]:.1f} MiB; growth from run {base_at + 1} to {len(rss)}: {rss[-1] - rss[base_at]:+.1f} MiB "
          f"({(rss[-1] - rss[base_at]) / max(len(rss) - 1 - base_at, 1) * 1024:+.0f} KiB per run); "
          f"{time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    main()
