"""The `cockpit` command line.

`cockpit` runs the engine (the cockpit app in a terminal; `--no-ui` headless);
`positions|orders|fills|pnl`, `metrics`, `report daily` and `alerts` read the store without an engine
(`alerts test` sends a test alert, through a running engine or without one); `status`, `flatten`,
`halt`, ... drive a running engine through its control socket (cockpit/control_cli.py);
`backup [list]` and `restore` make, list and restore checked backups of the store
(cockpit/backup_cli.py); `paper reset` archives the paper account and starts a fresh one;
`backtest` runs the strategies over the replay on the same engine (cockpit/research/);
`walkforward` optimises a strategy's parameters window by window and judges the out-of-sample
result (cockpit/research/walkforward/).
Expected failures print one line, never a traceback: exit 2 for bad usage or config, 1 for other refusals.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config.toml"
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An expected failure: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="PATH", default=default,
                        help=f"config file (default: $COCKPIT_CONFIG or ./{DEFAULT_CONFIG})")
    parser.add_argument("--state-dir", metavar="DIR", default=default,
                        help="state directory (default: engine.state_dir from the config)")


def _reason(text: str) -> str:
    """A reason for the audit trail: one line of words, not empty."""
    text = text.strip()
    if not text or len(text) > 500 or any(c in text for c in "\n\r\0"):
        raise argparse.ArgumentTypeError("a reason is one line of 1-500 characters")
    return text


def _speed(text: str) -> float | str:
    from core.config import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="Terminal trading cockpit: runs the trading engine; subcommands read its state.",
    )
    _common(parser, suppress=False)
    parser.add_argument("--no-ui", action="store_true", help="run the engine headless (logs to stderr)")
    parser.add_argument("--override-preflight", metavar="REASON", type=_reason, default=None,
                        help="start a LIVE account although `cockpit preflight` fails (audited with REASON)")
    parser.add_argument("--speed", type=_speed, metavar="X",
                        help="replay pace: simulated seconds per wall second, or 'max'")
    parser.add_argument("--start-halted", action="store_true", default=None,
                        help="come up reconciled with the feeds on but trading HALTED (audited); `cockpit resume` trades")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the engine (same as no command)")
    _common(run, suppress=True)
    run.add_argument("--no-ui", action="store_true", default=argparse.SUPPRESS, help="run headless")
    run.add_argument("--override-preflight", metavar="REASON", type=_reason, default=argparse.SUPPRESS,
                     help="start a LIVE account although `cockpit preflight` fails (audited)")
    run.add_argument("--speed", type=_speed, metavar="X", default=argparse.SUPPRESS, help="replay pace")
    run.add_argument("--start-halted", action="store_true", default=argparse.SUPPRESS,
                     help="come up with trading HALTED (audited)")

    for name, helptext in (
        ("positions", "open positions with average cost and P&L"),
        ("orders", "orders, newest first"),
        ("fills", "fills, oldest first"),
        ("pnl", "realized, unrealized, commissions and net P&L"),
    ):
        p = sub.add_parser(name, help=helptext)
        _common(p, suppress=True)
        p.add_argument("--json", action="store_true", help="print JSON (money as decimal strings)")
        if name in ("orders", "fills"):
            p.add_argument("--limit", type=int, default=0, metavar="N", help="only the newest N (0 = all)")
        if name == "orders":
            p.add_argument("--open", action="store_true", help="only orders still working")
        if name == "positions":
            p.add_argument("--all", action="store_true", help="include flat positions")

    _analytics_parsers(sub)
    from cockpit.research.backtest_cli import add_backtest_parser

    add_backtest_parser(sub)

    from cockpit.alerts.cli import add_alerts_parser
    from cockpit.audit_cli import add_audit_parser
    from cockpit.backup_cli import add_backup_parsers
    from cockpit.control_cli import add_control_parsers

    add_control_parsers(sub, lambda p: _common(p, suppress=True))
    add_alerts_parser(sub, lambda p: _common(p, suppress=True))
    add_audit_parser(sub, configure=lambda p: _common(p, suppress=True))
    add_backup_parsers(sub, lambda p: _common(p, suppress=True))
    from cockpit.research.walkforward.cli import add_walkforward_parser

    add_walkforward_parser(sub, lambda p: _common(p, suppress=True))
    sim = sub.add_parser("ib-sim", help="run the IB Gateway simulator (rehearse IBKR mode without an account)",
                         add_help=False)
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="--port PORT [--state FILE] (see ib-sim --help)")

    from cockpit.watchdog.cli import add_watchdog_parser

    add_watchdog_parser(sub, lambda p: _common(p, suppress=True))
    book = sub.add_parser("runbook", help="print the runbook (what to do when something is wrong), as installed")
    book.add_argument("--path", action="store_true", help="print where the installed runbook is instead")
    _common(book, suppress=True)

    paper = sub.add_parser("paper", help="the paper broker's account")
    paper_sub = paper.add_subparsers(dest="paper_command", metavar="ACTION", required=True)
    reset = paper_sub.add_parser("reset", help="archive the paper account and start a fresh one")
    _common(reset, suppress=True)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _iso_date(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date (YYYY-MM-DD, e.g. 2008-11-28)") from None


def _analytics_parsers(sub: Any) -> None:
    """`metrics` and `report daily`: performance and the daily summaries, read from the store."""
    pre = sub.add_parser("preflight", help="the go-live checklist: PASS/FAIL with the fix for each (exit 1 on a FAIL)")
    pre.add_argument("--json", action="store_true", help="print JSON: ok, checks [{name, ok, detail, fix}], drill")
    pre.add_argument("--drill", action="store_true",
                     help="first run each risk check against the gate and record it (not while an engine runs)")
    _common(pre, suppress=True)
    m = sub.add_parser("metrics", help="performance: Sharpe, Sortino, drawdown, win rate ... (account and strategies)")
    _common(m, suppress=True)
    m.add_argument("--strategy", metavar="S", help="one strategy's figures (its name, or operator / external)")
    m.add_argument("--json", action="store_true", help="print JSON (ratios as numbers, money as decimal strings)")
    report = sub.add_parser("report", help="reports kept by the engine")
    report_sub = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    daily = report_sub.add_parser("daily", help="the daily P&L summary of each session close")
    _common(daily, suppress=True)
    daily.add_argument("--date", type=_iso_date, metavar="D", help="only this session (YYYY-MM-DD)")
    daily.add_argument("--json", action="store_true", help="print JSON: an array of days")


def main(argv: Sequence[str] | None = None) -> int:
    # Fills, cash and account ids are nobody else's business: every file this process creates
    # (store, WAL, logs, order-id state, the socket) is private to its user.
    os.umask(0o077)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ib-sim"]:  # its own argument parser, help included
        from brokers.ibsim.cli import main as ib_sim_main

        return ib_sim_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except CliError as exc:
        from cockpit.logs import stderr_is_journal

        # under systemd the journal keeps it as an error (sd-daemon priority 3), not as info
        print(f"{'<3>' if stderr_is_journal() else ''}cockpit: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("cockpit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cockpit status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command or "run"
    if command == "run":
        return _run(args)
    if command == "paper":
        return _paper_reset(args)
    if command == "watchdog":
        from cockpit.watchdog.cli import run_watchdog

        return run_watchdog(args, _settings(args))
    if command == "runbook":  # no config needed: it reads the package
        from cockpit.runbook import run_runbook

        return run_runbook(args)
    if command == "alerts":
        from cockpit.alerts.cli import AlertsCliError, run_alerts
        from cockpit.wiring import db_path

        settings = _settings(args)
        try:
            return run_alerts(args, settings, db_path(settings))
        except AlertsCliError as exc:
            raise CliError(str(exc), exc.code) from None
    if command == "audit":  # read-only: the readers' fast path to the store
        from cockpit.audit_cli import AuditCliError, run_audit

        try:
            return run_audit(args, _reader_settings(args).db)
        except AuditCliError as exc:
            raise CliError(str(exc), exc.code) from None
    if command in ("backup", "restore"):
        from cockpit.backup_cli import BackupCliError, run_backup

        settings = _settings(args)
        try:
            return run_backup(args, settings)
        except BackupCliError as exc:
            raise CliError(str(exc), exc.code) from None
    if command in ("metrics", "report"):
        return _analytics(command, args)
    if command == "walkforward":
        from cockpit.research.walkforward.cli import WalkforwardCliError, run_walkforward
        from cockpit.wiring import db_path

        settings = _settings(args)
        try:
            return run_walkforward(args, settings, db_path(settings))
        except WalkforwardCliError as exc:
            raise CliError(f"walkforward: {exc}", exc.code) from None
    if command == "backtest":
        from cockpit.research.backtest_cli import BacktestCliError, run_backtest_cli

        try:
            return run_backtest_cli(args, lambda: _settings(args))
        except BacktestCliError as exc:
            raise CliError(str(exc), exc.code) from None
    if command == "preflight":
        from cockpit.preflight.cli import PreflightError, run_preflight
        from cockpit.wiring import db_path

        settings = _settings(args)
        try:
            return run_preflight(args, settings, db_path(settings))
        except PreflightError as exc:
            raise CliError(str(exc), exc.code) from None
    from cockpit.control_cli import COMMANDS

    if command in COMMANDS:
        return _control(command, args)
    return _read(command, args)


def _control(command: str, args: argparse.Namespace) -> int:
    from cockpit.control_cli import ControlCliError, run_control

    if command == "flatten" and (args.direct or args.client_id is not None):
        from cockpit.direct_flatten import run_from_cli  # no engine: straight to IB Gateway

        try:
            return run_from_cli(args, lambda: _settings(args))
        except ControlCliError as exc:
            raise CliError(str(exc), exc.code) from None
    if command == "status":  # a reader: the fast path to the socket (cockpit/reader_config.py)
        socket = _reader_settings(args, needs_socket=True).socket
        assert socket is not None
    else:
        settings = _settings(args)
        socket = settings.state_dir / settings.api.socket
    try:
        return run_control(command, args, socket)
    except ControlCliError as exc:
        raise CliError(str(exc), exc.code) from None


def _settings(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    from core.config import ConfigError, load_config

    explicit = getattr(args, "config", None)
    path = _config_path(args)
    if not explicit and not os.environ.get("COCKPIT_CONFIG") and not path.is_file():
        raise CliError(
            f"no {DEFAULT_CONFIG} in {Path.cwd()}: pass --config PATH "
            "(the repository's config.toml is the default config)",
            EXIT_USAGE,
        )
    state_dir = getattr(args, "state_dir", None)
    try:
        return load_config(path, state_dir=Path(state_dir) if state_dir else None, overrides=overrides)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", EXIT_USAGE) from None


def _config_path(args: argparse.Namespace) -> Path:
    explicit = getattr(args, "config", None)
    return Path(explicit or os.environ.get("COCKPIT_CONFIG") or DEFAULT_CONFIG)


def _reader_settings(args: argparse.Namespace, *, needs_socket: bool = False) -> Any:
    """The state dir (and control socket) for a command that only reads: from the TOML alone when
    nothing could make that differ from the full load, else from the full validation (its errors)."""
    from cockpit.reader_config import ReaderSettings, reader_settings

    path = _config_path(args)
    state_dir = getattr(args, "state_dir", None)
    if path.is_file():
        fast = reader_settings(path, Path(state_dir) if state_dir else None, os.environ, needs_socket=needs_socket)
        if fast is not None:
            return fast
    settings = _settings(args)
    return ReaderSettings(settings.state_dir, settings.state_dir / settings.api.socket)


def _run(args: argparse.Namespace) -> int:
    from cockpit.logs import setup_from_settings
    from cockpit.state_lock import StateDirBusy
    from core.config import ConfigError
    from core.data.bar_files import BarFileError
    from core.persistence.disk_full import DiskFull, is_disk_full
    from core.persistence.store import MigrationRefused

    overrides = {"feed": {"speed": args.speed}} if getattr(args, "speed", None) is not None else None
    settings = _settings(args, overrides)
    start_halted = bool(getattr(args, "start_halted", False))
    if not getattr(args, "no_ui", False) and sys.stdout.isatty() and sys.stdin.isatty():
        return _run_tui(settings, args.override_preflight, start_halted)
    lcfg = settings.logging
    try:
        setup_from_settings(lcfg, settings.state_dir)
    except OSError as exc:
        raise CliError(f"cannot write the log file under state dir {settings.state_dir}: {exc.strerror}"
                       " (pass a writable --state-dir DIR)") from None
    # Without a terminal (systemd, docker, a pipe) `cockpit` runs headless too.
    from cockpit.headless import run_headless

    try:
        import asyncio

        return asyncio.run(run_headless(settings, args.override_preflight, start_halted))
    except (ConfigError, BarFileError) as exc:
        raise _refused(exc) from None
    except StateDirBusy as exc:
        raise CliError(str(exc)) from None
    except ConnectionError as exc:
        raise CliError(f"cannot connect to the broker: {exc} (is IB Gateway running and [ibkr] host/port "
                       "right? `cockpit ib-sim --port PORT` rehearses without an account)") from None
    except (DiskFull, MigrationRefused) as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:
        if is_disk_full(exc):
            raise CliError(str(DiskFull(settings.state_dir))) from None
        # Unexpected: the traceback goes to the log file, one line to the operator.
        import logging

        logging.getLogger("cockpit").exception("engine failed")
        log_file = settings.state_dir / lcfg.file
        raise CliError(f"engine failed: {type(exc).__name__}: {exc} (traceback in {log_file})") from None


def _refused(exc: Exception) -> CliError:
    """A config or data file that refuses to start: one line (exit 2), the data's worded as such."""
    from core.data.bar_files import BarFileError
    from core.data.feeds.replay import DataFileError

    word = "data error" if isinstance(exc, (BarFileError, DataFileError)) else "config error"
    return CliError(f"{word}: {' '.join(str(exc).split())}", EXIT_USAGE)


def _run_tui(settings: Any, override_preflight: str | None = None, start_halted: bool = False) -> int:
    from cockpit.state_lock import StateDirBusy
    from cockpit.tui.run import run_tui
    from core.config import ConfigError
    from core.data.bar_files import BarFileError
    from core.persistence.disk_full import DiskFull, is_disk_full
    from core.persistence.store import MigrationRefused

    try:
        return run_tui(settings, override_preflight, start_halted)
    except (ConfigError, BarFileError) as exc:
        raise _refused(exc) from None
    except (StateDirBusy, DiskFull, MigrationRefused) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        if is_disk_full(exc):
            raise CliError(str(DiskFull(settings.state_dir))) from None
        raise CliError(f"cannot write under state dir {settings.state_dir}: {exc}") from None


def _read(command: str, args: argparse.Namespace) -> int:
    from cockpit import readers

    db = _reader_settings(args).db
    try:
        conn = readers.connect_readonly(db)
        with conn:
            if command == "positions":
                data: Any = readers.positions(conn, include_flat=args.all)
            elif command == "orders":
                data = readers.orders(conn, only_open=args.open, limit=args.limit)
            elif command == "fills":
                data = readers.fills(conn, limit=args.limit)
            else:
                data = readers.pnl(conn)
    except readers.NoState as exc:
        raise CliError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CliError(f"cannot read {db}: {exc} (is it a cockpit state dir? has the engine started once?)") from None
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        from cockpit.tables import render

        render(command, data)
    return EXIT_OK


def _analytics(command: str, args: argparse.Namespace) -> int:
    """`metrics` / `report daily` from the store, no engine needed (WAL: safe while one runs)."""
    from cockpit import readers

    if command == "metrics":  # its figures depend on [metrics], [allocation] and [strategies]: the full load
        from core.persistence.files import DB_FILENAME

        settings = _settings(args)
        db = settings.state_dir / DB_FILENAME
    else:
        db = _reader_settings(args).db
    try:
        conn = readers.connect_readonly(db)
        with conn:
            if command == "metrics":
                from cockpit.capital_reader import allocation_args

                data: Any = readers.performance(conn, strategy=args.strategy,
                                                risk_free_rate=settings.metrics.risk_free_rate,
                                                market_tz=settings.engine.market_tz, **allocation_args(settings))
            else:
                data = readers.daily_reports(conn, args.date)
    except readers.NoState as exc:
        raise CliError(str(exc)) from None
    except readers.UnknownStrategy as exc:
        raise CliError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CliError(f"cannot read {db}: {exc} (is it a cockpit state dir? has the engine started once?)") from None
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    from cockpit import tables

    if command == "metrics":
        tables.render_metrics(data)
    else:
        tables.render_daily(data, args.date)
    return EXIT_OK


def _paper_reset(args: argparse.Namespace) -> int:
    import shutil

    from cockpit.state_lock import is_locked
    from cockpit.wiring import db_path

    settings = _settings(args)
    db = db_path(settings)
    if is_locked(settings.state_dir):
        raise CliError(f"an engine is running on {settings.state_dir}: stop it before resetting the paper account")
    if not db.exists():
        print(f"no paper account at {settings.state_dir}: the next `cockpit` run starts a fresh one")
        return EXIT_OK
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    archive = settings.state_dir / "archive" / f"reset-{stamp}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("paper reset needs confirmation: run it in a terminal or pass --yes")
        answer = input(
            f"Reset the paper account in {settings.state_dir}? Its orders, fills, positions and cash move to "
            f"{archive} and the next run starts with {settings.paper.starting_cash} cash. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("paper reset cancelled; nothing changed")
            return EXIT_FAIL
    archive.mkdir(parents=True, exist_ok=False)
    for suffix in ("", "-wal", "-shm"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            shutil.move(str(part), archive / part.name)
    print(f"paper account reset: old state archived in {archive}; the next run starts fresh "
          f"with {settings.paper.starting_cash} cash")
    return EXIT_OK
