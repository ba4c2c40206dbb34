"""`cockpit backtest`: the config's strategies on the live engine over the replay, the figures
per strategy and for the account, an equity chart, and on request the round trips, the fills
and an HTML report as files. The run itself is ``run_backtest`` (cockpit/research/backtest.py).

Bad input (a strategy, a parameter, a date, an output path, the config) is one line and exit 2,
checked before the run starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class BacktestCliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def add_backtest_parser(sub: Any) -> None:
    p = sub.add_parser("backtest", help="run the config's strategies over the replay on the live engine: "
                                        "figures, equity chart, optional trades/fills CSV and HTML report")
    p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                   help="config file (default: $COCKPIT_CONFIG or ./config.toml)")
    p.add_argument("--strategy", metavar="S", action="append", dest="strategies",
                   help="run this configured strategy (repeat for more; default: those the config enables)")
    p.add_argument("--from", metavar="D", dest="start", help="first date of the replay (YYYY-MM-DD; default feed.start)")
    p.add_argument("--to", metavar="D", dest="end", help="last date of the replay (YYYY-MM-DD; default feed.end)")
    p.add_argument("--param", metavar="S.K=V", action="append", dest="params", default=[],
                   help="a strategy parameter over the config's, e.g. sma_cross.fast=5 (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON: per-strategy and account figures, the config used")
    p.add_argument("--trades", metavar="FILE.csv", help="write the round trips (closed, then open) as CSV")
    p.add_argument("--fills", metavar="FILE.csv", help="write every fill as CSV")
    p.add_argument("--report", metavar="FILE.html", help="write an HTML report: equity, drawdown, monthly returns, trades")
    p.add_argument("--store", metavar="DIR", help="keep the run's store in DIR (new or empty; default: a temporary "
                                                 "one); `cockpit metrics --state-dir DIR` reads it")
    p.add_argument("--no-chart", action="store_true", help="leave the equity chart out of the text output")


def parse_date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BacktestCliError(f"{option} {text[:40]!r}: not a date (YYYY-MM-DD, e.g. 2008-11-28)") from None


def parse_params(items: list[str]) -> dict[str, dict[str, str]]:
    """``["sma_cross.fast=5", ...]`` as ``{"sma_cross": {"fast": "5"}}`` (the values are checked
    by the strategy's params model, which reads numbers and booleans from text)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if not sep or not dot or not name or not param or "." in param:
            raise BacktestCliError(f"--param {item[:80]!r}: write STRATEGY.KEY=VALUE, e.g. sma_cross.fast=5")
        if param in out.get(name, {}):
            raise BacktestCliError(f"--param {name}.{param} is given twice: keep one")
        out.setdefault(name, {})[param] = value.strip()
    return out


def run_backtest_cli(args: argparse.Namespace, load_settings: Callable[[], Any]) -> int:
    from cockpit.research.backtest import BacktestError, run_backtest
    from cockpit.research.export import OutputError, checked_output

    start, end = parse_date("--from", args.start), parse_date("--to", args.end)
    params = parse_params(args.params)
    try:
        outputs = {opt: checked_output(f"--{opt}", getattr(args, opt), suffixes)
                   for opt, suffixes in (("trades", (".csv",)), ("fills", (".csv",)), ("report", (".html", ".htm")))
                   if getattr(args, opt)}
    except OutputError as exc:
        raise BacktestCliError(str(exc)) from None
    settings = load_settings()
    store = Path(args.store) if args.store else None
    started = time.monotonic()
    try:
        with _progress_bar(enabled=not args.json and sys.stderr.isatty()) as progress:
            result = run_backtest(settings, strategies=args.strategies, start=start, end=end, params=params,
                                  store=store, progress=progress)
    except BacktestError as exc:
        raise BacktestCliError(str(exc), EXIT_USAGE if exc.usage else EXIT_FAIL) from None
    elapsed = time.monotonic() - started
    source = str(settings.config_path) if settings.config_path else "config"
    written = _write_outputs(result, outputs, source)
    if args.json:
        print(json.dumps(_json(result, elapsed, store, written), indent=2))
        return EXIT_OK
    from cockpit.research.terminal import render

    render(result, source=source, elapsed=elapsed, store=str(store.resolve()) if store else None, out=sys.stdout,
           chart=not args.no_chart)
    for what, path in written.items():
        print(f"{what}: {path}")
    if result.warnings:
        print(f"cockpit: {len(result.warnings)} warning(s) from the run, first: {result.warnings[0]}", file=sys.stderr)
    return EXIT_OK


def _write_outputs(result: Any, outputs: dict[str, Path], source: str) -> dict[str, str]:
    from cockpit.research.export import OutputError, fills_csv, trades_csv, write_text
    from cockpit.research.report import render_report

    makers: dict[str, Callable[[], str]] = {"trades": lambda: trades_csv(result), "fills": lambda: fills_csv(result),
                                            "report": lambda: render_report(result, source=source)}
    written = {}
    for opt, path in outputs.items():
        try:
            write_text(f"--{opt}", path, makers[opt]())
        except OutputError as exc:
            raise BacktestCliError(str(exc), EXIT_FAIL) from None
        written[opt] = str(path)
    return written


def _json(result: Any, elapsed: float, store: Path | None, written: dict[str, str]) -> dict[str, Any]:
    days = result.account.days
    return {
        "first_day": days[0].day.isoformat() if days else None, "last_day": days[-1].day.isoformat() if days else None,
        "events": result.events, "elapsed_seconds": round(elapsed, 3),
        **result.metrics_json(),
        "fills": len(result.fills), "open_trades": len(result.open_trades),
        "config": result.config, "store": str(store.resolve()) if store else None, "files": written,
        "warnings": list(result.warnings),
    }


class _progress_bar:
    """A rich progress bar on stderr while the replay runs (a terminal only; None otherwise)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Callable[[float], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("backtest"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        task = self._bar.add_task("backtest", total=1.0)
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
