"""`cockpit walkforward` as a user runs it: the real command in a subprocess writes the report
into the state dir's store (the go-live check then passes for that strategy), an HTML page and
JSON; the text ends with the verdict. Bad input is one line and exit 2 before any backtest;
an engine running on the state dir refuses the store (one writer), --no-store runs anyway."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cockpit.cli import main
from cockpit.preflight.checks import WALKFORWARD_TABLE, Context, walkforward_reports
from cockpit.research.walkforward import storage
from cockpit.state_lock import StateLock
from core.config import load_config
from tests.conftest import ROOT

GRID = "fast=5,10 slow=20"


def write_config(tmp: Path) -> Path:
    path = tmp / "small.toml"
    path.write_text(f"""
[engine]
state_dir = "{tmp / 'state'}"
[feed]
start = 2010-01-01
end = 2010-12-31
[[feed.files]]
symbol = "SPY"
path = "bundled:daily/SPY_2007-2017_yahoo.csv"
[[feed.files]]
symbol = "ORCL"
path = "bundled:daily/ORCL_1995-2014_yahoo.csv"
[strategies.sma]
kind = "sma_cross"
params = {{ fast = 10, slow = 30, notional = "20000" }}
""")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_stores_a_report_the_go_live_check_reads(tmp_path: Path, clean_env: dict[str, str]) -> None:
    config = write_config(tmp_path)
    state = tmp_path / "state"
    html = tmp_path / "wf.html"
    scratch = tmp_path / "tmp"  # every throwaway store and cut file goes here (TMPDIR), and is gone after
    scratch.mkdir()
    run = subprocess.run([sys.executable, "-m", "cockpit", "walkforward", "--strategy", "sma", "--grid", GRID,
                          "--train", "6m", "--test", "3m", "--workers", "2", "--html", str(html),
                          "--config", str(config)], cwd=ROOT, env={**clean_env, "TMPDIR": str(scratch)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    lines = run.stdout.splitlines()
    assert list(scratch.iterdir()) == []
    assert lines[-1].startswith("HOLDS UP out of sample: " if run.returncode == 0 else "DOES NOT HOLD UP out of sample: ")
    assert any(line.startswith("  1  2010-01-01..2010-06-30  2010-07-01..2010-09-30") for line in lines), run.stdout
    assert "t-stat of the mean daily return" in run.stdout and "walk-forward efficiency" in run.stdout
    assert f"({WALKFORWARD_TABLE} id 1)" in run.stdout
    assert run.stderr.count("window  1/2") == 1 and "window  2/2" in run.stderr  # a line per window, with its time
    with closing(sqlite3.connect(state / "cockpit.sqlite")) as conn:
        strategy, params, sharpe, verdict, body = conn.execute(
            f"SELECT strategy, params, oos_sharpe, verdict, report FROM {WALKFORWARD_TABLE}").fetchone()
    report = json.loads(body)
    assert strategy == "sma" and json.loads(params) == report["params"] and verdict == lines[-1]
    assert sharpe == report["stitched"]["sharpe"] and set(json.loads(params)) == {"fast", "slow"}
    page = html.read_text()
    assert "<svg" in page and "Stitched out-of-sample equity" in page and verdict.split(":")[0] in page

    settings = load_config(config)
    conn = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    with closing(conn):
        check = walkforward_reports(Context(settings, conn, datetime.now(UTC)))
    assert check.ok == (run.returncode == 0), check  # a report that does not hold up is a FAIL to go live
    assert f"sma {report['created_at'][:10]} fast=" in check.detail and "OOS Sharpe" in check.detail
    if not check.ok:
        assert "does not hold up" in check.detail and "rework sma" in check.fix
    assert storage.stored_reports(state / "cockpit.sqlite")[0]["strategy"] == "sma"


@pytest.mark.parametrize(("args", "words"), [
    (["--strategy", "nope", "--grid", GRID], "--strategy 'nope': no such strategy in the config (configured: sma)"),
    (["--strategy", "sma", "--grid", "fats=5..10:5"], "has no parameter 'fats' (it has: fast, slow, notional)"),
    (["--strategy", "sma", "--grid", "fast=5..10"], "a range needs a step"),
    (["--strategy", "sma", "--grid", GRID, "--train", "2 years"], "--train '2 years': write a duration such as 2y"),
    (["--strategy", "sma", "--grid", GRID, "--train", "2y"], "do not fit in 2010-01-01 .. 2010-12-31"),
    (["--strategy", "sma", "--grid", GRID, "--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "pick one"),
    (["--strategy", "sma", "--grid", GRID, "--from", "2011-01-01", "--to", "2010-01-01"], "is after --to"),
    (["--strategy", "sma", "--grid", GRID, "--html", "/nonexistent-folder/x.html"], "no folder /nonexistent-folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, clean_env: dict[str, str],
                                          capsys: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    config = write_config(tmp_path)
    code, out, err = cli(capsys, "walkforward", *args, "--test", "3m", "--config", str(config))
    assert code == 2, err
    assert words in err and err.count("\n") == 1 and err.startswith("cockpit: walkforward: ") and out == ""


def test_an_engine_on_the_state_dir_refuses_the_store(tmp_path: Path, clean_env: dict[str, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    state = tmp_path / "state"
    args = ["walkforward", "--strategy", "sma", "--grid", "fast=5 slow=20", "--train", "9m", "--test", "3m",
            "--workers", "1", "--config", str(config)]
    with StateLock(state):  # what a running engine holds
        code, out, err = cli(capsys, *args)
        assert code == 1 and out == "" and "an engine is running on" in err and "--no-store" in err
        code, out, err = cli(capsys, *args, "--no-store", "--json")
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["stored_id"] is None and report["verdict"]["holds"] == (code == 0)
    assert len(report["windows"]) == 1 and report["windows"][0]["test"] == ["2010-10-01", "2010-12-31"]
    assert not (state / "cockpit.sqlite").exists()
