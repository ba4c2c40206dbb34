"""The command line built lazily (only the subcommand named) is the parser built whole.

`cockpit --help` lists every command from ``cockpit.cli._COMMANDS``; a command's own parser is
built when a command line names it. These tests build both ways and compare what a user sees:
the top-level help, every subcommand's help (nested ones too), the choices in order, what a
command line parses to, and the errors of bad ones.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from cockpit import cli
from tests.conftest import ROOT


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every parser under ``parser`` by its prog (``cockpit audit verify``), built."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if isinstance(action, cli._LazyCommands):
                action.build_all()
            for child in action.choices.values():
                out[child.prog] = child
                out.update(_subparsers(child))
    return out


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, str, object]:
    out, err = io.StringIO(), io.StringIO()
    result: object = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = vars(parser.parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return out.getvalue(), err.getvalue(), result


def test_the_help_and_every_subcommand_are_the_same_built_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    lazy, whole = cli.build_parser(), cli.build_parser(lazy=False)
    assert lazy.format_help() == whole.format_help()
    assert lazy.format_usage() == whole.format_usage()
    lazy_sub = next(a for a in lazy._actions if isinstance(a, cli._LazyCommands))
    whole_sub = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    assert list(lazy_sub.choices) == list(whole_sub.choices) == [name for name, _, _ in cli._COMMANDS]
    assert [(a.dest, a.help) for a in lazy_sub._choices_actions] == [(a.dest, a.help)
                                                                      for a in whole_sub._choices_actions]
    lazy_all, whole_all = _subparsers(lazy), _subparsers(whole)
    assert list(lazy_all) == list(whole_all) and len(whole_all) > 30
    for prog, parser in whole_all.items():
        assert lazy_all[prog].format_help() == parser.format_help(), prog
    # built now, the lazy parser lists the same pseudo-actions (nothing added twice)
    assert [(a.dest, a.help) for a in lazy_sub._choices_actions] == [(a.dest, a.help)
                                                                      for a in whole_sub._choices_actions]


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["positions", "--json"], ["--config", "x.toml", "orders", "--open", "--limit", "5"],
    ["fills", "--limit", "x"], ["pnl", "--bogus"], ["positons"], ["metrics", "--strategy", "s", "--json"],
    ["report", "daily", "--date", "2008-13-01"], ["report"], ["status", "--json"], ["flatten", "--all", "--yes"],
    ["flatten"], ["risk", "set", "max_order_qty", "5"], ["audit", "verify"], ["audit", "export", "--since", "2h"],
    ["audit"], ["backup", "list", "--json"], ["restore", "--help"], ["alerts", "test", "--sink", "log"],
    ["alerts", "--limit", "3"], ["paper", "reset", "--yes"], ["paper"], ["ib-sim", "--port", "1"],
    ["run", "--no-ui", "--speed", "max"], ["--speed", "fast"], ["walkforward", "--help"], ["backtest", "--json"],
    ["preflight", "--drill"], ["positions", "--help"], ["order", "buy", "AAPL", "1", "--limit", "2"],
])
def test_a_command_line_parses_the_same(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert _run(cli.build_parser(), argv) == _run(cli.build_parser(lazy=False), argv)


def test_the_control_commands_are_control_clis() -> None:
    from cockpit.control_cli import COMMANDS

    assert cli._CONTROL == set(COMMANDS)


def test_help_and_a_reader_import_no_other_command() -> None:
    code = (
        "import sys, cockpit.cli as c; p = c.build_parser(); p.format_help();"
        "p.parse_args(['positions', '--json']);"
        "bad = sorted(m for m in sys.modules if m.startswith(('cockpit.', 'core.', 'brokers.')) and m not in"
        " ('cockpit.cli',));"
        "assert not bad, bad;"
        "assert 'typing' not in sys.modules and 'json' not in sys.modules and 'sqlite3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
