"""Backtests: the live engine (feed, strategies, risk gate, OMS, paper fills, book, store) run on
the replay's simulated clock into a fresh store, and what it did read back as a BacktestResult.

There is no second implementation: ``build_engine`` (cockpit/wiring.py) builds exactly the
engine `cockpit --no-ui` runs; only the settings around it differ (``backtest_settings``).
The figures are `cockpit metrics`' own (core/analytics/backtest.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from cockpit.readers import connect_readonly
from cockpit.state_lock import StateDirBusy, StateLock
from cockpit.wiring import build_engine, db_path
from core.analytics.backtest import BacktestFill, BacktestResult, build_result
from core.analytics.stored import ALLOCATIONS_SQL, FILLS_SQL, REPORTS_SQL, fill_records, report_rows
from core.config import ConfigError, FeedConfig, Settings
from core.config.checks import check_path
from core.domain.events import DailySummaryReady
from core.strategy import KINDS

__all__ = ["BacktestError", "BacktestInterrupted", "BacktestResult", "Progress", "backtest_settings",
           "run_backtest", "run_backtest_async"]

log = logging.getLogger("cockpit.backtest")

#: Called with the share of the replay done (0.0 .. 1.0, never decreasing; 1.0 at the end).
Progress = Callable[[float], None]
#: Strategy name -> parameter -> value (text from a command line, or a typed value).
Params = Mapping[str, Mapping[str, Any]]

ENGINE_LOGGER = "cockpit"
MAX_WARNINGS = 50
_PROGRESS_STEP = 0.002
_RUN_ID = "bt"  # the instance and account ids: fixed, so order and exec ids repeat run to run
_FILL_ROWS_SQL = ("SELECT exec_id, client_order_id, strategy, symbol, side, qty, price, commission, realized_pnl, ts,"
                  " kind FROM fills ORDER BY seq")


class BacktestError(Exception):
    """A backtest that cannot run as asked: one line naming the problem and the fix.

    ``usage`` is True for bad input (a strategy, a parameter, a date, the config: exit 2)."""

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


class BacktestInterrupted(Exception):
    """The run was stopped before the end of the replay (``stop`` set, or Ctrl-C in
    ``run_backtest``); the engine was shut down cleanly and no result is returned."""


def run_backtest(settings: Settings, *, strategies: Sequence[str] | None = None, start: date | None = None,
                 end: date | None = None, params: Params | None = None, store: Path | None = None,
                 progress: Progress | None = None, bar_cache: Path | None = None) -> BacktestResult:
    """Run one backtest of ``settings`` and return what it did.

    - ``strategies``: the configured strategies to run (None: those the config enables); the
      others are disabled. ``params``: ``{strategy: {param: value}}`` over the config's params,
      checked by the strategy's own params model. ``start`` / ``end``: the replay's first and
      last dates (``feed.start`` / ``feed.end``; None keeps the config's).
    - ``store``: the state dir to write the run into, which must not exist yet or be empty; it
      is kept (``cockpit metrics --state-dir STORE`` reads it). None: a temporary directory
      (``tempfile``, honouring TMPDIR), removed before this returns.
    - ``bar_cache``: a folder for the replay's parse cache (core/data/bar_cache.py) and its
      exchange-calendar table, shared by the runs that name it, so a file is parsed once for
      all of them (the walk-forward passes one in its scratch folder). None: the config's
      ``feed.bar_cache_dir``, which by default is inside the run's store (a throwaway store
      never finds an entry again). The cache never changes what a run does: an entry is keyed
      by the file's bytes and how it is read.

    Contract (the walk-forward pool calls this hundreds of times):

    - the same engine as `cockpit --no-ui --speed max` (``build_engine``): the same fills;
    - deterministic: the same arguments give an equal result (fixed order and exec ids);
    - callable in a worker process; returns a picklable value; prints nothing: the engine's
      log records go to ``result.warnings`` (WARNING and up, at most 50) and nowhere else
      while it runs; one backtest at a time per process (one asyncio loop each);
    - writes only inside ``store``, ``bar_cache`` or its own temporary directory: the config's state dir,
      control socket, log file, backups, alert sinks (Discord, email) and dead-man are not
      used; a path in the config cannot point it elsewhere. The data files are only read;
    - ``settings`` is not changed;
    - bad input raises ``BacktestError`` (one line; ``usage`` True), before anything is written;
    - Ctrl-C (SIGINT, in the main thread) stops the run after the event in hand, shuts the
      engine down cleanly (the store closed, a temporary one removed), then raises
      ``KeyboardInterrupt``.

    From a running event loop, await ``run_backtest_async`` instead.
    """
    async def interruptible() -> BacktestResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled = threading.current_thread() is threading.main_thread()
        if handled:
            loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            return await run_backtest_async(settings, strategies=strategies, start=start, end=end, params=params,
                                            store=store, progress=progress, stop=stop, bar_cache=bar_cache)
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGINT)

    try:
        return asyncio.run(interruptible())
    except BacktestInterrupted:
        raise KeyboardInterrupt from None


async def run_backtest_async(settings: Settings, *, strategies: Sequence[str] | None = None,
                             start: date | None = None, end: date | None = None, params: Params | None = None,
                             store: Path | None = None, progress: Progress | None = None,
                             stop: asyncio.Event | None = None, bar_cache: Path | None = None) -> BacktestResult:
    """``run_backtest`` on the caller's event loop (same arguments, same contract); setting
    ``stop`` ends the run early: after a clean shutdown it raises ``BacktestInterrupted``."""
    if store is None:
        # Checked before a directory exists: bad input writes nothing.
        backtest_settings(settings, Path(tempfile.gettempdir()), strategies=strategies, start=start, end=end,
                          params=params, bar_cache=bar_cache)
        with tempfile.TemporaryDirectory(prefix="cockpit-backtest-") as tmp:
            return await _run(settings, Path(tmp) / "state", strategies, start, end, params, progress, stop, bar_cache)
    state_dir = _fresh_dir(store)
    backtest_settings(settings, state_dir, strategies=strategies, start=start, end=end, params=params,
                      bar_cache=bar_cache)
    state_dir.mkdir(parents=True, exist_ok=True)
    return await _run(settings, state_dir, strategies, start, end, params, progress, stop, bar_cache)


def _fresh_dir(store: Path) -> Path:
    try:
        check_path("store", store)
        path = Path(store).expanduser().resolve()
    except (ValueError, OSError, RuntimeError) as exc:
        raise BacktestError(f"store: {exc}") from None
    if path.exists() and not path.is_dir():
        raise BacktestError(f"store {path} is a file: name a directory for the backtest's store")
    if path.is_dir() and any(path.iterdir()):
        raise BacktestError(f"store {path} is not empty: a backtest starts from a fresh store (name a new "
                            "directory, or remove that one)")
    return path


def backtest_settings(settings: Settings, state_dir: Path, *, strategies: Sequence[str] | None = None,
                      start: date | None = None, end: date | None = None, params: Params | None = None,
                      bar_cache: Path | None = None) -> Settings:
    """A copy of ``settings`` for a backtest into ``state_dir``: the replay as fast as it goes,
    between ``start`` and ``end``; only ``strategies`` enabled, with ``params`` over the config's;
    nothing that waits for an operator or writes outside the state dir (dead-man, backups); the
    parse cache in ``bar_cache`` when given (unless the config turns the cache off).
    BacktestError names what is wrong."""
    if settings.broker.kind != "paper" or settings.feed.kind != "replay":
        raise BacktestError(f"a backtest replays bar files through the paper broker: this config has broker.kind = "
                            f"{settings.broker.kind!r} and feed.kind = {settings.feed.kind!r} (use a config with "
                            "[broker] kind = \"paper\" and [feed] kind = \"replay\")")
    run = settings.model_copy(deep=True)
    run.engine.state_dir = state_dir
    feed: dict[str, Any] = {**run.feed.model_dump(), "speed": "max"}
    if start is not None:
        feed["start"] = start
    if end is not None:
        feed["end"] = end
    if bar_cache is not None:
        try:
            check_path("bar_cache", bar_cache)
            feed["bar_cache_dir"] = str(Path(bar_cache).expanduser().resolve())
        except (ValueError, OSError, RuntimeError) as exc:
            raise BacktestError(f"bar_cache: {exc}") from None
    try:
        run.feed = FeedConfig.model_validate(feed)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise BacktestError(f"--from/--to: {problem}") from None
    run.deadman.enabled = False  # presence is an operator's; a backtest has none to ask
    run.backup.every_hours = 0
    run.backup.at_session_close = False
    chosen = _chosen(run, strategies)
    given = {name: dict(values) for name, values in (params or {}).items()}
    for name in given:
        if name not in run.strategies:
            raise BacktestError(f"--param {name}.…: no strategy {name!r} in the config "
                                f"(configured: {', '.join(sorted(run.strategies)) or 'none'})")
        if name not in chosen:
            raise BacktestError(f"--param {name}.…: {name} does not run in this backtest (running: "
                                f"{', '.join(chosen)}); add --strategy {name}")
    for name, cfg in run.strategies.items():
        merged = {**cfg.params, **given.get(name, {})}
        if name in chosen:
            _check_params(name, cfg.kind, merged, set(given.get(name, {})))
        run.strategies[name] = cfg.model_copy(update={"enabled": name in chosen, "params": merged})
    return run


def _chosen(settings: Settings, strategies: Sequence[str] | None) -> list[str]:
    configured = settings.strategies
    if strategies is None:
        chosen = [n for n, cfg in configured.items() if cfg.enabled]
        if not chosen:
            raise BacktestError("no strategy is enabled in the config: pick one with --strategy NAME "
                                f"(configured: {', '.join(sorted(configured)) or 'none'})")
        return chosen
    unknown = [n for n in strategies if n not in configured]
    if unknown:
        raise BacktestError(f"--strategy {unknown[0]}: no such strategy in the config "
                            f"(configured: {', '.join(sorted(configured)) or 'none'})")
    if not strategies:
        raise BacktestError("no strategy to run: name at least one with --strategy NAME")
    return list(dict.fromkeys(strategies))


def _check_params(name: str, kind: str, values: dict[str, Any], given: set[str]) -> None:
    cls = KINDS.get(kind)
    if cls is None:
        raise BacktestError(f"strategies.{name}.kind: unknown strategy kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    try:
        cls.Params(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        where = f"--param {name}.{key}" if key in given else f"strategies.{name}.params" + (f".{key}" if key else "")
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(cls.Params.model_fields))
            raise BacktestError(f"{where}: {kind} has no parameter {key!r} (its parameters: {known})") from None
        msg = err["msg"].removeprefix("Value error, ")
        if key in given:
            where += f"={str(values[key])[:40]}"
        if not key:  # a check across parameters (fast < slow): name what was given
            where = "--param " + ", ".join(f"{name}.{k}={str(values[k])[:40]}" for k in sorted(given)) if given \
                else where
        raise BacktestError(f"{where}: {msg}"[:500]) from None


class _Collected(logging.Handler):
    """The engine's warnings during a run, kept instead of printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < MAX_WARNINGS:
            try:
                self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}"[:500])
            except Exception:  # a record that cannot be formatted is not worth a failed backtest
                self.dropped += 1
        else:
            self.dropped += 1


@contextmanager
def _quiet_engine() -> Iterator[_Collected]:
    """While the engine runs, its records reach only the collector (restored after)."""
    logger = logging.getLogger(ENGINE_LOGGER)
    collected = _Collected()
    saved = (logger.level, logger.propagate)
    logger.addHandler(collected)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield collected
    finally:
        logger.removeHandler(collected)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


class _Progress:
    """The replay's progress from the session closes it reaches (a subscriber to the bus)."""

    def __init__(self, report: Progress, first: datetime, last: datetime) -> None:
        self.report = report
        self.first = first
        self.span = max((last - first).total_seconds(), 1.0)
        self.shown = 0.0

    def on_summary(self, event: DailySummaryReady) -> None:
        done = min(max((event.summary.session_close - self.first).total_seconds() / self.span, 0.0), 1.0)
        if done - self.shown >= _PROGRESS_STEP:
            self.shown = done
            self.report(done)


async def _run(settings: Settings, state_dir: Path, strategies: Sequence[str] | None, start: date | None,
               end: date | None, params: Params | None, progress: Progress | None,
               stop: asyncio.Event | None, bar_cache: Path | None = None) -> BacktestResult:
    run = backtest_settings(settings, state_dir, strategies=strategies, start=start, end=end, params=params,
                            bar_cache=bar_cache)
    chosen = [n for n, cfg in run.strategies.items() if cfg.enabled]
    try:
        lock = StateLock(state_dir).__enter__()
    except (StateDirBusy, OSError) as exc:
        raise BacktestError(f"store {state_dir}: {exc}", usage=False) from None
    try:
        with _quiet_engine() as collected:
            try:
                engine = build_engine(run, new_id=lambda: _RUN_ID, alert_sinks=[], alerting=False)
            except ConfigError as exc:
                raise BacktestError(f"config error: {' '.join(str(exc).split())}") from None
            try:
                try:
                    await engine.start()
                except ConfigError as exc:  # a data file that cannot be replayed (DataFileError) too
                    raise BacktestError(" ".join(str(exc).split())) from None
                span = _replay_span(engine)
                if span is None:
                    raise BacktestError(f"no bars to replay between {run.feed.start or 'the first bar'} and "
                                        f"{run.feed.end or 'the last bar'}: check --from/--to against the data's dates")
                if progress is not None:
                    progress(0.0)
                    engine.bus.subscribe(DailySummaryReady, _Progress(progress, *span).on_summary, critical=False)
                watcher = asyncio.ensure_future(_stop_when(stop, engine)) if stop is not None else None
                try:
                    finished = await engine.run()
                finally:
                    if watcher is not None:
                        watcher.cancel()
                events = engine.read_model.snapshot(max_orders=0).events_processed
            finally:
                await engine.shutdown()
            if not finished:
                raise BacktestInterrupted(f"the backtest was stopped after {events:,} events, before the end "
                                          "of the replay")
        if progress is not None:
            progress(1.0)
        warnings = collected.lines + ([f"and {collected.dropped} more"] if collected.dropped else [])
        return _read_result(run, chosen, warnings, events)
    finally:
        lock.__exit__(None, None, None)


async def _stop_when(stop: asyncio.Event, engine: Any) -> None:
    await stop.wait()
    engine.request_stop()  # after the event in hand: the engine shuts down as after a finished replay


def _replay_span(engine: Any) -> tuple[datetime, datetime] | None:
    """The first and last bar the replay holds (None: it holds none)."""
    bars = [b for series in engine.feed.bars.values() for b in (series[:1] + series[-1:])]
    if not bars:
        return None
    return min(b.ts for b in bars), max(b.ts for b in bars)


def _read_result(run: Settings, chosen: list[str], warnings: list[str], events: int) -> BacktestResult:
    """What the run left in its store, as `cockpit metrics` would read it."""
    with closing(connect_readonly(db_path(run))) as conn:
        reports = report_rows(conn.execute(REPORTS_SQL))
        fills = fill_records(conn.execute(FILLS_SQL), conn.execute(ALLOCATIONS_SQL))
        rows = [_fill_row(r) for r in conn.execute(_FILL_ROWS_SQL)]
        acct = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM account")}
    starting_cash = Decimal(acct.get("starting_cash", str(run.paper.starting_cash)))
    return build_result(reports, fills, rows, starting_cash=starting_cash, strategies=chosen,
                        tz=ZoneInfo(run.engine.market_tz), risk_free_rate=run.metrics.risk_free_rate,
                        config=_config_used(run, chosen), events=events, warnings=warnings)


def _fill_row(r: sqlite3.Row) -> BacktestFill:
    return BacktestFill(ts=datetime.fromisoformat(r["ts"]), exec_id=r["exec_id"], client_order_id=r["client_order_id"],
                        strategy=r["strategy"], symbol=r["symbol"], side=r["side"], qty=Decimal(r["qty"]),
                        price=Decimal(r["price"]), commission=Decimal(r["commission"]),
                        realized=Decimal(r["realized_pnl"]), kind=r["kind"] or "trade")


def _config_used(run: Settings, chosen: list[str]) -> dict[str, Any]:
    """What ran, as JSON: enough to run it again and to tell two runs apart."""
    strategies = {}
    for name in chosen:
        cfg = run.strategies[name]
        model = KINDS[cfg.kind].Params(**cfg.params)
        strategies[name] = {"kind": cfg.kind, "symbols": list(cfg.symbols) or [f.symbol for f in run.feed.files],
                            "params": model.model_dump(mode="json")}
    return {
        "strategies": strategies,
        "start": run.feed.start.isoformat() if run.feed.start else None,
        "end": run.feed.end.isoformat() if run.feed.end else None,
        "symbols": [f.symbol for f in run.feed.files],
        "quotes_per_bar": run.feed.quotes_per_bar,
        "paper": run.paper.model_dump(mode="json"),
        "risk": run.risk.model_dump(mode="json"),
        "allocation": {k: v.given for k, v in run.allocation.items()},
        "config_path": str(run.config_path) if run.config_path else None,
    }
