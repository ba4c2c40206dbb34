"""One backtest of a walk-forward: a job in, its daily equity and trades out.

This is the one place that knows how a backtest is run (the adapter): the rest of the
walk-forward sees only ``RunJob`` and ``RunOutcome``. A job is self-contained (settings, the
strategy's params, the cut bar files as bytes) so that any executor can run it anywhere: in
this process, in a pool worker, on a Dask worker on another machine.

The backtest itself is ``cockpit.research.backtest.run_backtest``: the engine `cockpit --no-ui`
runs, on the replay's simulated clock, into a fresh store in a temporary folder (never the
user's state dir). Warm-up: the run starts ``warmup`` sessions before the window, so the
strategy has its history and holds at the window's first session what its rules say (as if it
had been running); only the window's sessions count: the equity from the close before its first
session, the trades closed in it, those still open at its end. Those warm-up sessions are the
past of the window (the train window's end, for a test window), never its future.

What a worker keeps between runs: the exchange calendars (process-wide in core.data.calendar),
the cut files on disk, written once per worker and window, and the bar reader's parse cache
(``bar_cache``): in the walk-forward's scratch folder when this machine has it, so every
worker of a local pool parses a window's files once for the whole grid; else the worker's own.
"""

from __future__ import annotations

import atexit
import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cockpit.research.walkforward.data import FileSlice, write_slices
from cockpit.research.walkforward.windows import RunRange
from core.analytics.returns import EquityDay
from core.analytics.trades import Trade
from core.config import Settings

IN_SAMPLE, OUT_OF_SAMPLE = "is", "oos"


@dataclass(frozen=True, slots=True)
class RunJob:
    window: int
    phase: str  # IN_SAMPLE or OUT_OF_SAMPLE
    point: int  # the grid point's index
    settings: Settings  # the user's settings, with only the strategy under test
    strategy: str
    params: Mapping[str, Any]  # the configured params with the grid point's values
    slices: tuple[FileSlice, ...]
    range: RunRange
    scratch: str = ""  # the walk-forward's scratch folder (where this machine has it)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.window, self.phase, self.point)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    key: tuple[int, str, int]
    days: tuple[EquityDay, ...]  # one per trading session: equity at the previous close and at this one
    closed: tuple[Trade, ...]
    open_trades: int
    seconds: float
    held_first: date | None  # the earliest and latest bar dates the run's feed held (the guard's evidence)
    held_last: date | None
    warmup_bars: int  # bars replayed to warm the strategy up (no order possible)
    max_rss_kib: int = 0
    pid: int = field(default=0)


class _Worker:
    """Per process: a throwaway folder for the cut files (named by their digest, so a window's
    grid reuses them and the bar reader's parse cache finds them again).

    It lives under the walk-forward's own scratch folder when this machine has it (this process,
    a local pool, a local cluster): the walk-forward removes that folder when it ends, even if a
    worker was killed. A remote worker makes its own, removed when the process exits."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        base = Path(scratch) if scratch and Path(scratch).is_dir() else None
        self.root = Path(tempfile.mkdtemp(prefix="cockpit-walkforward-", dir=base))
        # The parse cache, shared by this machine's workers (an entry is written to a temporary
        # name and renamed: two workers writing the same one never tear it).
        self.bar_cache = (base if base is not None else self.root) / "bar-cache"
        self.runs = 0
        if base is None:
            atexit.register(shutil.rmtree, self.root, True)
            from multiprocessing.util import Finalize

            Finalize(None, shutil.rmtree, (self.root, True), exitpriority=10)  # a pool worker's exit skips atexit


_worker: _Worker | None = None
#: The engine's loggers while a job runs (the data files' warnings repeat for every grid point).
_QUIET = (("cockpit", logging.WARNING), ("cockpit.data", logging.ERROR), ("cockpit.feed", logging.ERROR))


@contextmanager
def _quiet() -> Iterator[None]:
    """The levels above while a job runs, the caller's again after (an in-process executor's
    caller keeps its own logging)."""
    loggers = [(logging.getLogger(name), level) for name, level in _QUIET]
    saved = [logger.level for logger, _ in loggers]
    for logger, level in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for (logger, _), level in zip(loggers, saved, strict=True):
            logger.setLevel(level)


def _this_worker(scratch: str) -> _Worker:
    global _worker
    if _worker is None or _worker.scratch != scratch or not _worker.root.is_dir():
        _worker = _Worker(scratch)
    return _worker


def run_job(job: RunJob) -> RunOutcome:
    """Run one job in this process (what every executor calls)."""
    worker = _this_worker(job.scratch)
    worker.runs += 1
    files = write_slices(job.slices, worker.root / "data")
    started = time.perf_counter()
    with _quiet():
        days, closed, open_trades = _backtest(job, files)
    held = (min(s.first for s in job.slices if s.first), max(s.last for s in job.slices if s.last)) \
        if any(s.first for s in job.slices) else (None, None)
    warmup = sum(s.rows_before(job.range.trade_start) for s in job.slices)
    return RunOutcome(job.key, days, closed, open_trades, time.perf_counter() - started, held[0], held[1], warmup,
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, os.getpid())


def run_settings(job: RunJob, files: list[Path]) -> Settings:
    """The job's settings: its cut files instead of the configured ones, and only its strategy's allocation."""
    s = job.settings
    return s.model_copy(update={
        "feed": s.feed.model_copy(update={
            "files": [sl.spec.model_copy(update={"path": str(p)}) for sl, p in zip(job.slices, files, strict=True)],
        }),
        "allocation": {k: v for k, v in s.allocation.items() if k == job.strategy},
    })


def _backtest(job: RunJob, files: list[Path]) -> tuple[tuple[EquityDay, ...], tuple[Trade, ...], int]:
    """The adapter: one backtest through cockpit.research.backtest.run_backtest (the live engine
    on the replay's clock in a throwaway store), from the first warm-up session; only the
    window's own sessions count (its daily equity, the trades that closed in it, those open at
    its end)."""
    from cockpit.research.backtest import run_backtest

    rng = job.range
    result = run_backtest(run_settings(job, files), strategies=[job.strategy], start=rng.data_start, end=rng.end,
                          params={job.strategy: dict(job.params)}, bar_cache=_this_worker(job.scratch).bar_cache)
    scope = result.strategies[job.strategy]
    tz = ZoneInfo(job.settings.engine.market_tz)
    days = tuple(d for d in scope.days if d.day >= rng.trade_start)
    closed = tuple(t for t in result.trades if t.owner == job.strategy and t.closed_at is not None
                   and t.closed_at.astimezone(tz).date() >= rng.trade_start)
    still_open = sum(1 for t in result.open_trades if t.owner == job.strategy)
    return days, closed, still_open
