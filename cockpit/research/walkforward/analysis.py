"""The walk-forward: for each window, the grid in-sample, the best point out-of-sample.

Every in-sample job is handed to the executor at once (in window order); as soon as a window's
grid is complete its choice is made (the best objective; a tie goes to the earlier grid point,
so the choice never depends on which run finished first) and its out-of-sample run goes in.
The guard is checked on every outcome as well: an in-sample run whose feed held a bar of its
test window, or an out-of-sample run holding one after its window, stops the walk-forward
(``LookAheadError``): that would be a bug here, never a result.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cockpit.research.walkforward import stats
from cockpit.research.walkforward.data import FileSlice, SymbolData, all_sessions, cut, load_symbol
from cockpit.research.walkforward.executors import Executor
from cockpit.research.walkforward.grid import Grid, Point, as_params, parse_grid, point_dict
from cockpit.research.walkforward.runner import IN_SAMPLE, OUT_OF_SAMPLE, RunJob, RunOutcome
from cockpit.research.walkforward.verdict import Rules, Verdict, judge
from cockpit.research.walkforward.windows import (
    Duration,
    RunRange,
    Window,
    make_windows,
    run_range,
)
from core.config import Settings


class WalkforwardError(ValueError):
    """Input that cannot be walked forward (unknown strategy, no data in the range): one line."""


class LookAheadError(RuntimeError):
    """A run was handed a bar it must not see: a bug in the walk-forward, never a result."""


@dataclass(frozen=True, slots=True)
class Spec:
    strategy: str
    grid: str
    train: Duration
    test: Duration
    anchored: bool = False
    objective: str = "sharpe"
    first: date | None = None  # --from
    last: date | None = None  # --to
    warmup: int | None = None  # sessions; None: the strategy's own need (its largest over the grid)
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of the walk-forward, for a progress bar."""

    window: Window
    windows: int
    done: int  # runs of this window finished
    total: int  # runs of this window (the grid and the out-of-sample run)
    all_done: int
    all_total: int
    finished: WindowResult | None = None  # set when the window's out-of-sample run is in


@dataclass(frozen=True, slots=True)
class WindowResult:
    window: Window
    is_range: RunRange
    oos_range: RunRange
    chosen: int
    point: Point  # the chosen grid point
    scores: tuple[float | None, ...]  # the in-sample objective of every grid point
    is_outcome: RunOutcome
    oos_outcome: RunOutcome
    objective: str
    seconds: float  # from the window's first run handed in to its out-of-sample run done
    run_seconds: float  # the time its backtests took, summed

    @property
    def is_score(self) -> float | None:
        return self.scores[self.chosen]

    @property
    def oos_score(self) -> float | None:
        return stats.objective(self.objective, self.oos_outcome.days)

    @property
    def oos_net(self) -> float:
        days = self.oos_outcome.days
        return float(days[-1].close - days[0].open) if days else 0.0


@dataclass(frozen=True, slots=True)
class Result:
    spec: Spec
    settings: Settings
    kind: str
    grid: Grid
    sessions: tuple[date, date]
    warmup: int
    windows: tuple[WindowResult, ...]
    stitched: stats.Stitched
    wfe: float | None
    stability: stats.Stability
    verdict: Verdict
    executor: str
    seconds: float
    created_at: datetime

    @property
    def latest_params(self) -> dict[str, Any]:
        """The last window's choice: what the walk-forward would trade next."""
        return point_dict(self.grid.points[self.windows[-1].chosen])


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ``prepare`` checked and loaded: the walk-forward needs nothing else to run."""

    kind: str
    grid: Grid
    data: tuple[SymbolData, ...]
    windows: tuple[Window, ...]
    warmup: int
    sessions: tuple[date, ...]


def prepare(settings: Settings, spec: Spec) -> Prepared:
    """Everything checked before a single backtest runs (bad input costs no time)."""
    from cockpit.wiring import resolve_data_path
    from core.data.bar_files import BarFileError
    from core.strategy import KINDS

    cfg = settings.strategies.get(spec.strategy)
    if cfg is None:
        known = ", ".join(sorted(settings.strategies)) or "none"
        raise WalkforwardError(f"--strategy {spec.strategy!r}: no such strategy in the config (configured: {known})")
    cls = KINDS.get(cfg.kind)
    if cls is None:
        raise WalkforwardError(f"strategies.{spec.strategy}.kind {cfg.kind!r} is not a known strategy kind "
                               f"(known: {', '.join(sorted(KINDS))})")
    if settings.feed.kind != "replay" or not settings.feed.files:
        raise WalkforwardError(f"a walk-forward replays history: the config's feed is {settings.feed.kind!r}; use a "
                               "config with [feed] kind = \"replay\" and [[feed.files]] (the default config.toml)")
    if spec.objective not in stats.OBJECTIVES:
        raise WalkforwardError(f"--objective {spec.objective!r}: one of {', '.join(stats.OBJECTIVES)}")
    first = spec.first or settings.feed.start
    last = spec.last or settings.feed.end
    if first is not None and last is not None and first > last:
        raise WalkforwardError(f"--from {first} is after --to {last}")
    grid = parse_grid(spec.grid, cls.Params, cfg.params)
    symbols = cfg.symbols or [f.symbol for f in settings.feed.files]
    specs = [f for f in settings.feed.files if f.symbol in symbols]
    missing = sorted(set(symbols) - {f.symbol for f in specs})
    if missing:
        raise WalkforwardError(f"strategies.{spec.strategy}.symbols: {', '.join(missing)} not in [[feed.files]]")
    data = []
    for f in specs:
        try:
            data.append(load_symbol(f, resolve_data_path(settings, f.path)))
        except (BarFileError, ValueError, OSError) as exc:
            raise WalkforwardError(f"feed.files[{f.symbol}]: {' '.join(str(exc).split())}") from None
    sessions = all_sessions(data)
    in_range = [d for d in sessions if (first is None or d >= first) and (last is None or d <= last)]
    if not in_range:
        raise WalkforwardError(f"no bar of {', '.join(symbols)} between {first or 'the start'} and "
                               f"{last or 'the end'}: check --from/--to")
    # Windows count from the dates asked for (2008-01-01, not the first session on 2008-01-02), within the data.
    windows = make_windows(first if first is not None else in_range[0],
                           last if last is not None and last <= in_range[-1] else in_range[-1],
                           spec.train, spec.test, spec.anchored)
    warmup = spec.warmup if spec.warmup is not None else max(
        cls.warmup_bars(cls.Params(**{**cfg.params, **as_params(cls.Params, p)})) for p in grid.points)
    return Prepared(cfg.kind, grid, tuple(data), tuple(windows), warmup, tuple(sessions))


def walk_forward(settings: Settings, spec: Spec, executor: Executor,
                 progress: Callable[[Progress], None] | None = None, prepared: Prepared | None = None) -> Result:
    started = time.perf_counter()
    prep = prepared or prepare(settings, spec)
    grid, windows, warmup, sessions = prep.grid, prep.windows, prep.warmup, prep.sessions
    from core.strategy import KINDS

    model = KINDS[prep.kind].Params
    cfg = settings.strategies[spec.strategy]
    base = settings.model_copy(update={"strategies": {spec.strategy: cfg}})
    params = [{**cfg.params, **as_params(model, p)} for p in grid.points]
    ranges = {w.index: (run_range(sessions, w.train_start, w.train_end, warmup),
                        run_range(sessions, w.test_start, w.test_end, warmup)) for w in windows}
    cuts: dict[tuple[int, str], tuple[FileSlice, ...]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="cockpit-walkforward-"))
    try:
        return _walk(settings, spec, executor, progress, prep, base, params, ranges, cuts, scratch, started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _walk(settings: Settings, spec: Spec, executor: Executor, progress: Callable[[Progress], None] | None,
          prep: Prepared, base: Settings, params: list[dict[str, Any]], ranges: dict[int, tuple[RunRange, RunRange]],
          cuts: dict[tuple[int, str], tuple[FileSlice, ...]], scratch: Path, started: float) -> Result:
    grid, windows, warmup, sessions = prep.grid, prep.windows, prep.warmup, prep.sessions

    def job(w: Window, phase: str, point: int) -> RunJob:
        rng = ranges[w.index][0 if phase == IN_SAMPLE else 1]
        slices = cuts.get((w.index, phase))
        if slices is None:
            slices = cuts[(w.index, phase)] = tuple(cut(d, rng.data_start, rng.end) for d in prep.data)
        return RunJob(w.index, phase, point, base, spec.strategy, params[point], slices, rng, str(scratch))

    per_window = len(grid.points) + 1
    all_total = per_window * len(windows)
    outcomes: dict[tuple[int, str, int], RunOutcome] = {}
    done_in: dict[int, int] = {w.index: 0 for w in windows}
    first_in: dict[int, float] = {}
    finished: dict[int, WindowResult] = {}
    pending: dict[Any, RunJob] = {}
    by_index = {w.index: w for w in windows}
    # Jobs go in a few at a time, in window order, a window's out-of-sample run first: windows
    # finish one after the other (a progress bar and a time per window that mean something).
    waiting: deque[tuple[Window, str, int]] = deque((w, IN_SAMPLE, p) for w in windows for p in range(len(grid.points)))
    in_flight = max(1, 2 * executor.capacity)

    def top_up() -> None:
        while waiting and len(pending) < in_flight:
            w, phase, point = waiting.popleft()
            first_in.setdefault(w.index, time.perf_counter())
            j = job(w, phase, point)
            pending[executor.submit(j)] = j

    top_up()
    all_done = 0
    while pending:
        done, _rest = executor.wait(list(pending))
        for handle in sorted(done, key=lambda h: pending[h].key):
            j = pending.pop(handle)
            outcome = executor.result(handle)
            w = by_index[j.window]
            _check_guard(w, j, outcome)
            outcomes[j.key] = outcome
            done_in[w.index] += 1
            all_done += 1
            result = None
            if j.phase == IN_SAMPLE and done_in[w.index] == len(grid.points):
                scores = tuple(stats.objective(spec.objective, outcomes[(w.index, IN_SAMPLE, p)].days)
                               for p in range(len(grid.points)))
                best = max(range(len(scores)), key=lambda p: (stats.rank_key(scores[p]), -p))
                waiting.appendleft((w, OUT_OF_SAMPLE, best))
            elif j.phase == OUT_OF_SAMPLE:
                result = _window_result(w, ranges[w.index], outcomes, grid, j.point, spec.objective,
                                        time.perf_counter() - first_in[w.index])
                finished[w.index] = result
                for p in range(len(grid.points)):  # keep the chosen run only: memory stays flat
                    if p != j.point:
                        outcomes.pop((w.index, IN_SAMPLE, p), None)
                cuts.pop((w.index, IN_SAMPLE), None)
                cuts.pop((w.index, OUT_OF_SAMPLE), None)
            if progress is not None:
                progress(Progress(w, len(windows), done_in[w.index], per_window, all_done, all_total, result))
        top_up()
    return _summarise(settings, spec, prep.kind, grid, (sessions[0], sessions[-1]), warmup,
                      [finished[w.index] for w in windows], executor.name, time.perf_counter() - started)


def _check_guard(w: Window, j: RunJob, o: RunOutcome) -> None:
    if j.phase == IN_SAMPLE and o.held_last is not None and o.held_last >= w.test_start:
        raise LookAheadError(f"window {w.index}: an in-sample run held a bar of {o.held_last}, inside its test "
                             f"window (from {w.test_start})")
    if j.phase == OUT_OF_SAMPLE and o.held_last is not None and o.held_last > w.test_end:
        raise LookAheadError(f"window {w.index}: its out-of-sample run held a bar of {o.held_last}, after the "
                             f"window's end ({w.test_end})")


def _window_result(w: Window, ranges: tuple[RunRange, RunRange], outcomes: dict[tuple[int, str, int], RunOutcome],
                   grid: Grid, chosen: int, objective: str, seconds: float) -> WindowResult:
    ins = [outcomes[(w.index, IN_SAMPLE, p)] for p in range(len(grid.points))]
    oos = outcomes[(w.index, OUT_OF_SAMPLE, chosen)]
    scores = tuple(stats.objective(objective, o.days) for o in ins)
    return WindowResult(w, ranges[0], ranges[1], chosen, grid.points[chosen], scores, ins[chosen], oos, objective, seconds,
                        sum(o.seconds for o in ins) + oos.seconds)


def _summarise(settings: Settings, spec: Spec, kind: str, grid: Grid, sessions: tuple[date, date], warmup: int,
               windows: Sequence[WindowResult], executor: str, seconds: float) -> Result:
    start_equity = settings.paper.starting_cash
    closed = [t for w in windows for t in w.oos_outcome.closed]
    open_trades = sum(w.oos_outcome.open_trades for w in windows)
    stitched = stats.stitched_figures([w.oos_outcome.days for w in windows], closed, open_trades, start_equity)
    wfe = stats.efficiency(stitched.returns.annual_return,
                           [stats.run_annual_return(w.is_outcome.days) for w in windows])
    stab = stats.stability([grid.index_of(grid.points[w.chosen]) for w in windows], [w.chosen for w in windows])
    positive = sum(1 for w in windows if w.oos_net > 0)
    verdict = judge(sharpe=stitched.returns.sharpe, t_stat=stitched.t_stat, wfe=wfe, positive=positive,
                    windows=len(windows), stable_steps=stab.same + stab.neighbouring, stable_pairs=stab.pairs,
                    trades=stitched.trades.trades + open_trades, rules=spec.rules)
    return Result(spec, settings, kind, grid, sessions, warmup, tuple(windows), stitched, wfe, stab, verdict,
                  executor, seconds, datetime.now(UTC))

