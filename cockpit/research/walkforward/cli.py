"""`cockpit walkforward`: the command line over cockpit/research/walkforward/analysis.py.

Exit codes: 0 the strategy holds up out of sample, 1 it does not (or the run failed), 2 bad
input (one line naming the option and the fix, before any backtest runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the parser is built for every command; readers must not import pydantic
    from core.config import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class WalkforwardCliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date (YYYY-MM-DD, e.g. 2010-01-01)") from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{value} is out of range (0..100000)")
    return value


def add_walkforward_parser(sub: Any, configure: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "walkforward", help="optimise a grid in-sample, test the choice out-of-sample, window by window: does it hold up?",
        description="For each window: run every grid point on the train window, run the best one on the test window "
                    "that follows; stitch the test windows' equity and judge it. Exit 0: holds up out of sample, "
                    "1: does not, 2: bad input.")
    p.add_argument("--strategy", required=True, metavar="S", help="a strategy of the config ([strategies.S])")
    p.add_argument("--grid", required=True, metavar="SPEC",
                   help='parameters to try: "name=lo..hi:step ..." (e.g. "fast=5..20:5 slow=20..60:10"); name=v or '
                        "name=a,b,c too; the other params stay as configured")
    p.add_argument("--train", default="2y", metavar="DUR", help="train window: 2y, 18m, 250d, 1y6m (default 2y)")
    p.add_argument("--test", default="6m", metavar="DUR", help="test window, and the step between windows (default 6m)")
    p.add_argument("--anchored", action="store_true", help="every train window starts at --from (expanding)")
    p.add_argument("--objective", default="sharpe", choices=("sharpe", "sortino", "net"),
                   help="what the grid is ranked by in-sample (default sharpe)")
    p.add_argument("--from", dest="first", type=_date, metavar="D", help="first date (default feed.start)")
    p.add_argument("--to", dest="last", type=_date, metavar="D", help="last date (default feed.end)")
    p.add_argument("--warmup", type=_count, metavar="N",
                   help="sessions replayed before each run with trading off (default: what the strategy needs)")
    p.add_argument("--workers", type=_count, metavar="N", help="processes (default: the machine's cores; 1 = serial)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the backtests on an existing Dask scheduler (tcp://host:8786; needs cockpit[cluster])")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", type=Path, metavar="PATH", help="also write the report as an HTML page with the equity curve")
    p.add_argument("--no-store", action="store_true", help="do not store the report in the state dir")
    configure(p)


def run_walkforward(args: argparse.Namespace, settings: Settings, db: Path, out: TextIO | None = None,
                    err: TextIO | None = None) -> int:
    from cockpit.research.walkforward import storage
    from cockpit.research.walkforward.analysis import LookAheadError, Spec, WalkforwardError, prepare, walk_forward
    from cockpit.research.walkforward.executors import ExecutorError, make_executor
    from cockpit.research.walkforward.grid import GridError
    from cockpit.research.walkforward.html import write_html
    from cockpit.research.walkforward.progress import ProgressBar
    from cockpit.research.walkforward.report import render_text, report_json
    from cockpit.research.walkforward.windows import WindowError, parse_duration

    out = out or sys.stdout
    err = err or sys.stderr
    if args.workers is not None and args.cluster:
        raise WalkforwardCliError("--workers and --cluster: pick one (the cluster's workers are its own)", EXIT_USAGE)
    if args.workers == 0:
        raise WalkforwardCliError("--workers 0: at least 1 (1 runs the backtests in this process)", EXIT_USAGE)
    if args.html is not None and not args.html.parent.is_dir():
        raise WalkforwardCliError(f"--html {args.html}: no folder {args.html.parent}", EXIT_USAGE)
    try:
        spec = Spec(args.strategy, args.grid, parse_duration(args.train, "--train"), parse_duration(args.test, "--test"),
                    args.anchored, args.objective, args.first, args.last, args.warmup)
        prepared = prepare(settings, spec)  # every input checked before the first backtest
    except (GridError, WindowError, WalkforwardError) as exc:
        raise WalkforwardCliError(str(exc), EXIT_USAGE) from None
    if not args.no_store and storage.engine_running(settings.state_dir):
        raise WalkforwardCliError(storage.busy_message(settings.state_dir))
    try:
        executor = make_executor(args.workers, args.cluster)
    except ExecutorError as exc:
        raise WalkforwardCliError(str(exc), EXIT_USAGE if "pip install" in str(exc) else EXIT_FAIL) from None
    bar = ProgressBar(err)
    try:
        result = walk_forward(settings, spec, executor, bar.update, prepared)
    except LookAheadError as exc:
        raise WalkforwardCliError(f"look-ahead guard: {exc}") from None
    finally:
        bar.close()
        executor.close()
    report = report_json(result)
    stored = None
    if not args.no_store:
        try:
            stored = storage.store_report(settings.state_dir, db, report)
        except storage.StoreBusy as exc:
            print(f"cockpit: walkforward: not stored: {exc}", file=err)
    if args.html is not None:
        write_html(report, args.html)
    if args.json:
        print(json.dumps({**report, "stored_id": stored}, indent=2), file=out)
    else:
        notes = []
        if stored is not None:
            notes.append(f"  report stored in {db} ({storage.TABLE} id {stored})")
        if args.html is not None:
            notes.append(f"  HTML report: {args.html}")
        render_text(report, out, notes)
    return EXIT_OK if report["verdict"]["holds"] else EXIT_FAIL
