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
import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing itself is not imported on the readers' and --help's path
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
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


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, by its rule: ``$COLUMNS`` when a positive number,
    else the terminal's width on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return columns


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter with the width it would find (``_columns``) without importing
    shutil, and through it the compression modules, which every parser's first argument did
    (argparse makes a formatter per argument), in every command's start."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is ``_Formatter``'s unless told otherwise; its subparsers
    (``add_subparsers`` makes them of its own class) too."""

    def __init__(self, *args: Any, formatter_class: Any = _Formatter, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


#: Every subcommand in the order of `cockpit --help`, with its one-line help, and the function
#: that adds it (with the others it adds) to the subparsers: only the one a command line names is
#: built (``_LazyCommands``), so a reader imports no other command's module and builds no other
#: parser. tests/test_cli_lazy.py checks that this gives the same parser as building them all.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "run the engine (same as no command)", "run"),
    ("positions", "open positions with average cost and P&L", "readers"),
    ("orders", "orders, newest first", "readers"),
    ("fills", "fills, oldest first", "readers"),
    ("pnl", "realized, unrealized, commissions and net P&L", "readers"),
    ("preflight", "the go-live checklist: PASS/FAIL with the fix for each (exit 1 on a FAIL)", "analytics"),
    ("metrics", "performance: Sharpe, Sortino, drawdown, win rate ... (account and strategies)", "analytics"),
    ("report", "reports kept by the engine", "analytics"),
    ("backtest", "run the config's strategies over the replay on the live engine: figures, equity chart, "
                 "optional trades/fills CSV and HTML report", "backtest"),
    ("status", "the running engine: trading state, broker, feeds, strategies, dead-man, limits", "control"),
    ("flatten", "cancel orders and close positions: one symbol, or --all (emergency liquidation)", "control"),
    ("cancel-all", "cancel every working order", "control"),
    ("halt", "stop all new orders (cancels still pass); working orders stay", "control"),
    ("resume", "leave HALTED/REDUCING: trade again (also confirms presence)", "control"),
    ("strategy", "list, enable or disable strategies", "control"),
    ("risk", "show or set risk limits (a change is persisted)", "control"),
    ("allocation", "show or set the capital each strategy may use (a change is persisted)", "control"),
    ("position", "override the engine's position for a symbol (when the book is known wrong)", "control"),
    ("order", "a manual order, through the risk gate like any other", "control"),
    ("confirm", "confirm presence to the dead-man switch", "control"),
    ("breaks", "reconciliation breaks: where the engine's book and the broker's differ", "control"),
    ("reconcile", "compare the engine's book with the broker's now", "control"),
    ("resolve", "settle a reconciliation break and unblock its symbol", "control"),
    ("alerts", "recent and undelivered alerts (`alerts test`: send a test alert)", "alerts"),
    ("audit", "check or export the audit log", "audit"),
    ("backup", "back the store up now, checked (`backup list`: the backups there are)", "backup"),
    ("restore", "replace the store with a backup (no engine may run; the store is archived)", "backup"),
    ("walkforward", "optimise a grid in-sample, test the choice out-of-sample, window by window: does it hold up?",
     "walkforward"),
    ("ib-sim", "run the IB Gateway simulator (rehearse IBKR mode without an account)", "ib-sim"),
    ("watchdog", "the process watchdog (docker): flattens and alerts when the engine dies or hangs; --check: is one "
                 "running", "watchdog"),
    ("runbook", "print the runbook (what to do when something is wrong), as installed", "runbook"),
    ("paper", "the paper broker's account", "paper"),
)


class _LazyCommands(argparse._SubParsersAction):  # type: ignore[type-arg]  # argparse's generic is private
    """Subparsers that are built when named: ``--help`` lists every command from ``_COMMANDS``
    (the same lines, in the same order), and parsing a command builds its group first.
    A builder's ``add_parser`` for a listed name fills that name's place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._builders: dict[str, Callable[[Any], None]] = {}

    def add_lazy(self, name: str, help: str, build: Callable[[Any], None]) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._name_parser_map[name] = None  # a place in the choices, in order (invalid-choice messages)
        self._builders[name] = build

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name not in self._name_parser_map or self._name_parser_map[name] is not None:
            return super().add_parser(name, **kwargs)
        if kwargs.get("prog") is None:
            kwargs["prog"] = f"{self._prog_prefix} {name}"
        kwargs.pop("help", None)  # listed already, from _COMMANDS
        parser = self._parser_class(**kwargs)
        self._name_parser_map[name] = parser
        return parser

    def build(self, name: str) -> None:
        """Build ``name``'s group of subparsers (once)."""
        build = self._builders.get(name)
        if build is None or self._name_parser_map.get(name) is not None:
            return
        build(self)
        for built in [n for n, b in self._builders.items() if b is build]:
            del self._builders[built]

    def build_all(self) -> None:
        for name in list(self._builders):
            self.build(name)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and isinstance(values[0], str):
            self.build(values[0])
        super().__call__(parser, namespace, values, option_string)


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run the engine (same as no command)")
    _common(run, suppress=True)
    run.add_argument("--no-ui", action="store_true", default=argparse.SUPPRESS, help="run headless")
    run.add_argument("--override-preflight", metavar="REASON", type=_reason, default=argparse.SUPPRESS,
                     help="start a LIVE account although `cockpit preflight` fails (audited)")
    run.add_argument("--speed", type=_speed, metavar="X", default=argparse.SUPPRESS, help="replay pace")
    run.add_argument("--start-halted", action="store_true", default=argparse.SUPPRESS,
                     help="come up with trading HALTED (audited)")


def _add_readers(sub: Any) -> None:
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


def _add_backtest(sub: Any) -> None:
    from cockpit.research.backtest_cli import add_backtest_parser

    add_backtest_parser(sub)


def _add_control(sub: Any) -> None:
    from cockpit.control_cli import add_control_parsers

    add_control_parsers(sub, lambda p: _common(p, suppress=True))


def _add_alerts(sub: Any) -> None:
    from cockpit.alerts.cli import add_alerts_parser

    add_alerts_parser(sub, lambda p: _common(p, suppress=True))


def _add_audit(sub: Any) -> None:
    from cockpit.audit_cli import add_audit_parser

    add_audit_parser(sub, configure=lambda p: _common(p, suppress=True))


def _add_backup(sub: Any) -> None:
    from cockpit.backup_cli import add_backup_parsers

    add_backup_parsers(sub, lambda p: _common(p, suppress=True))


def _add_walkforward(sub: Any) -> None:
    from cockpit.research.walkforward.cli import add_walkforward_parser

    add_walkforward_parser(sub, lambda p: _common(p, suppress=True))


def _add_ib_sim(sub: Any) -> None:
    sim = sub.add_parser("ib-sim", help="run the IB Gateway simulator (rehearse IBKR mode without an account)",
                         add_help=False)
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="--port PORT [--state FILE] (see ib-sim --help)")


def _add_watchdog(sub: Any) -> None:
    from cockpit.watchdog.cli import add_watchdog_parser

    add_watchdog_parser(sub, lambda p: _common(p, suppress=True))


def _add_runbook(sub: Any) -> None:
    book = sub.add_parser("runbook", help="print the runbook (what to do when something is wrong), as installed")
    book.add_argument("--path", action="store_true", help="print where the installed runbook is instead")
    _common(book, suppress=True)


def _add_paper(sub: Any) -> None:
    paper = sub.add_parser("paper", help="the paper broker's account")
    paper_sub = paper.add_subparsers(dest="paper_command", metavar="ACTION", required=True)
    reset = paper_sub.add_parser("reset", help="archive the paper account and start a fresh one")
    _common(reset, suppress=True)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")


_BUILDERS: dict[str, Callable[[Any], None]] = {}  # filled below, once the functions exist
_CONTROL = frozenset(name for name, _, group in _COMMANDS if group == "control")


def build_parser(*, lazy: bool = True) -> argparse.ArgumentParser:
    """The whole command line. ``lazy`` (the default): a subcommand's own parser is built only
    when a command line names it; ``lazy=False`` builds every one now (the same parser)."""
    parser = _Parser(
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
    parser.register("action", "lazy_parsers", _LazyCommands)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action="lazy_parsers")
    assert isinstance(sub, _LazyCommands)
    if not lazy:
        done: list[Callable[[Any], None]] = []
        for _name, _help, group in _COMMANDS:
            build = _BUILDERS[group]
            if build not in done:
                build(sub)
                done.append(build)
        return parser
    for name, helptext, group in _COMMANDS:
        sub.add_lazy(name, helptext, _BUILDERS[group])
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


_BUILDERS.update(run=_add_run, readers=_add_readers, analytics=_analytics_parsers, backtest=_add_backtest,
                 control=_add_control, alerts=_add_alerts, audit=_add_audit, backup=_add_backup,
                 walkforward=_add_walkforward, paper=_add_paper)
_BUILDERS.update({"ib-sim": _add_ib_sim, "watchdog": _add_watchdog, "runbook": _add_runbook})


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
        from cockpit.alerts.cli import AlertsCliError, run_alerts, show_alerts

        try:
            if getattr(args, "alerts_command", None) != "test":  # a reader: the fast path to the store
                return show_alerts(args, _reader_settings(args).db)
            from cockpit.wiring import db_path

            settings = _settings(args)
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
    if command in _CONTROL:  # cockpit.control_cli.COMMANDS (tests/test_cli_lazy.py)
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


def _metrics_settings(args: argparse.Namespace) -> Any:
    """What `metrics` reads of the config: from the TOML alone when that gives what the full load
    would (cockpit/reader_config.py), else from the full validation (its errors)."""
    from types import SimpleNamespace

    from cockpit.reader_config import metrics_settings
    from core.persistence.files import DB_FILENAME

    path = _config_path(args)
    state_dir = getattr(args, "state_dir", None)
    if path.is_file():
        fast = metrics_settings(path, Path(state_dir) if state_dir else None, os.environ)
        if fast is not None:
            return SimpleNamespace(db=fast.db, risk_free_rate=fast.risk_free_rate, market_tz=fast.market_tz,
                                   allocation={}, strategies=fast.strategies)
    from cockpit.capital_reader import allocation_args

    settings = _settings(args)
    return SimpleNamespace(db=settings.state_dir / DB_FILENAME, risk_free_rate=settings.metrics.risk_free_rate,
                           market_tz=settings.engine.market_tz, **allocation_args(settings))


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
        import sqlite3

        if isinstance(exc, sqlite3.DatabaseError):  # a damaged store: the runbook's "store will not open"
            raise CliError(f"the store in {settings.state_dir} cannot be read ({exc}): restore it from a backup "
                           f"(`cockpit backup list`, then `cockpit restore BACKUP`; `cockpit runbook`, section 7)"
                           ) from None
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
    import sqlite3

    from cockpit import readers

    db = _reader_settings(args).db
    try:
        conn = readers.connect_readonly(db)
        try:  # closed here, not by the collector: a Connection is in a cycle (its statement cache)
            if command == "positions":
                data: Any = readers.positions(conn, include_flat=args.all)
            elif command == "orders":
                data = readers.orders(conn, only_open=args.open, limit=args.limit)
            elif command == "fills":
                data = readers.fills(conn, limit=args.limit)
            else:
                data = readers.pnl(conn)
        finally:
            conn.close()
    except readers.NoState as exc:
        raise CliError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CliError(f"cannot read {db}: {exc} (is it a cockpit state dir? has the engine started once?)") from None
    if args.json:
        from cockpit.json_out import dumps

        print(dumps(data))  # json.dumps(data, indent=2), faster
    else:
        from cockpit.tables import render

        render(command, data)
    return EXIT_OK


def _analytics(command: str, args: argparse.Namespace) -> int:
    """`metrics` / `report daily` from the store, no engine needed (WAL: safe while one runs)."""
    import sqlite3

    from cockpit import readers

    if command == "metrics":  # its figures depend on [metrics], [allocation] and [strategies]
        metrics = _metrics_settings(args)
        db = metrics.db
    else:
        db = _reader_settings(args).db
    import gc

    collecting = gc.isenabled()
    if command == "metrics":  # one read: no collection pass over what it builds (enabled again after)
        gc.disable()
    try:
        conn = readers.connect_readonly(db)
        try:  # closed here (see _read)
            if command == "metrics":
                data: Any = readers.performance(conn, strategy=args.strategy, risk_free_rate=metrics.risk_free_rate,
                                                market_tz=metrics.market_tz, allocation=metrics.allocation,
                                                strategies=metrics.strategies)
            else:
                data = readers.daily_reports(conn, args.date)
        finally:
            conn.close()
    except readers.NoState as exc:
        raise CliError(str(exc)) from None
    except readers.UnknownStrategy as exc:
        raise CliError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CliError(f"cannot read {db}: {exc} (is it a cockpit state dir? has the engine started once?)") from None
    finally:
        if collecting:
            gc.enable()
    if args.json:
        from cockpit.json_out import dumps

        print(dumps(data))  # json.dumps(data, indent=2), faster
        return EXIT_OK
    from cockpit import tables

    if command == "metrics":
        tables.render_metrics(data)
    else:
        tables.render_daily(data, args.date)
    return EXIT_OK


def _paper_reset(args: argparse.Namespace) -> int:
    import shutil
    from datetime import datetime, timezone

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
