"""`cockpit --no-ui` over the bundled 2008 bars as a real subprocess, then what the operator
reads back: `cockpit report daily` (one row per session, half days included), `cockpit
metrics`, the control API's read routes and the cockpit's metrics screen; and a run killed
with SIGKILL then resumed keeps exactly one row per session, equal to an uninterrupted run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from cockpit.control.inprocess import InProcessApi
from cockpit.wiring import build_engine
from core.config import load_config
from core.data.calendar import ExchangeSession
from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow
CMD = [sys.executable, "-m", "cockpit"]
PERFORMANCE_KEYS = {"sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "trades", "strategies"}
DAY_KEYS = {"date", "realized", "unrealized", "commissions", "net", "strategies"}


def env_for(end: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return {**env, "COCKPIT_FEED__END": end}


def cockpit(state: Path, *args: str, end: str = "2008-12-31") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args, "--config", str(CONFIG), "--state-dir", str(state)], env=env_for(end),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def replay(state: Path, end: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, "--config", str(CONFIG), "--state-dir", str(state), "--no-ui", "--speed", "max"],
                          env=env_for(end), cwd=ROOT, capture_output=True, text=True, timeout=180)


def read_json(state: Path, *args: str) -> object:
    out = cockpit(state, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def committed_days(state: Path) -> int:
    try:
        with closing(sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM daily_reports").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet


def cli(capsys: pytest.CaptureFixture[str], state: Path, *args: str) -> tuple[int, str, str]:
    """The same `cockpit` command in this process (its imports are warm: a subprocess costs ~1 s)."""
    from cockpit.cli import main

    capsys.readouterr()
    try:
        code = main([*args, "--config", str(CONFIG), "--state-dir", str(state)])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], state: Path, *args: str) -> object:
    code, out, err = cli(capsys, state, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def xnys_sessions(first: date, last: date) -> list[str]:
    table = ExchangeSession("XNYS").sessions(first, last)
    return sorted(date.fromordinal(o).isoformat() for o in table if first.toordinal() <= o <= last.toordinal())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("reference")
    done = replay(state, "2008-12-31")
    assert done.returncode == 0, done.stderr[-3000:]
    return state


def test_report_daily_has_one_row_per_session_half_days_included(reference: Path, capsys, clean_env) -> None:
    days = read_json(reference, "report", "daily")  # a real `cockpit report daily --json`
    assert isinstance(days, list)
    assert [d["date"] for d in days] == xnys_sessions(date(2008, 1, 1), date(2008, 12, 31))  # 253, each once
    assert all(DAY_KEYS <= set(d) for d in days)
    half = next(d for d in days if d["date"] == "2008-11-28")
    assert half["half_day"] and half["session_close"] == "2008-11-28T18:00:00+00:00"  # 13:00 New York
    assert sum(d["fills"] for d in days) == len(cli_json(capsys, reference, "fills"))
    assert days[-1]["equity_close"] == cli_json(capsys, reference, "pnl")["equity"]
    assert cli_json(capsys, reference, "report", "daily", "--date", "2008-11-28") == [half]
    assert cli_json(capsys, reference, "report", "daily", "--date", "2008-11-29") == []  # a Saturday
    code, out, _ = cli(capsys, reference, "report", "daily", "--date", "2008-10-10")
    assert code == 0 and "2008-10-10" in out and "rsi_reversion" in out and "Positions at the close" in out


def test_metrics_have_the_named_keys_for_the_account_and_each_strategy(reference: Path, capsys, clean_env) -> None:
    perf = read_json(reference, "metrics")  # a real `cockpit metrics --json`
    assert isinstance(perf, dict) and PERFORMANCE_KEYS <= set(perf)
    assert perf["source"] == "daily_reports" and perf["sessions"] == 253
    assert set(perf["strategies"]) == {"sma_cross", "rsi_reversion"}
    for figures in perf["strategies"].values():
        assert PERFORMANCE_KEYS - {"strategies"} <= set(figures)
    assert perf["trades"] == sum(s["trades"] for s in perf["strategies"].values()) > 10
    assert isinstance(perf["sharpe"], float) and 0 < perf["max_drawdown"] < 1
    one = cli_json(capsys, reference, "metrics", "--strategy", "sma_cross")
    assert one["scope"] == "sma_cross" and one["sharpe"] == perf["strategies"]["sma_cross"]["sharpe"]
    assert list(one["strategies"]) == ["sma_cross"]
    code, out, _ = cli(capsys, reference, "metrics")
    assert code == 0 and "Sharpe" in out and "sma_cross" in out


def test_cli_refusals_are_one_line(reference: Path, tmp_path: Path, capsys, clean_env) -> None:
    code, _, err = cli(capsys, reference, "report", "daily", "--date", "2008-13-01")
    assert code == 2 and err.startswith("usage:") and "is not a date" in err
    code, _, err = cli(capsys, reference, "metrics", "--strategy", "nope")
    assert code == 1 and err.strip().count("\n") == 0 and "known: rsi_reversion, sma_cross" in err
    for args in (("metrics",), ("report", "daily")):
        code, _, err = cli(capsys, tmp_path / "empty", *args)
        assert code == 1 and err.startswith("cockpit: no cockpit state at") and err.strip().count("\n") == 0, err


def test_each_reader_closes_its_connection(reference: Path, capsys, clean_env) -> None:
    """Closed by the command, not by the collector: a sqlite3 Connection sits in a cycle (its
    statement cache), so one left open lives until a collection, and one in the TUI's or the
    API's process holds a file descriptor that long."""
    import gc

    def open_connections() -> int:
        return sum(type(o) is sqlite3.Connection for o in gc.get_objects())

    collecting = gc.isenabled()
    gc.disable()
    try:
        before = open_connections()
        for args in (("metrics",), ("report", "daily", "--json"), ("positions", "--json"), ("orders",), ("fills",),
                     ("pnl", "--json"), ("metrics", "--strategy", "nope")):
            cli(capsys, reference, *args)
            assert open_connections() == before, args
    finally:
        if collecting:
            gc.enable()


def test_a_sigkill_mid_run_then_resume_leaves_exactly_one_row_per_session(reference: Path, tmp_path: Path) -> None:
    state, end = tmp_path / "killed", "2008-06-30"
    # Paced (about 70 simulated days a wall second) so that it is surely still running when killed.
    proc = subprocess.Popen([*CMD, "--config", str(CONFIG), "--state-dir", str(state), "--no-ui", "--speed", "6000000"],
                            env=env_for(end), cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        # the alert log sink's line for each fill (a replay this fast folds the daily summaries' alerts)
        if "[fill]" in line and committed_days(state) >= 20:  # well into the run
            proc.send_signal(signal.SIGKILL)
            break
    proc.stderr.read()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert 20 <= committed_days(state) < 124  # killed mid-run, with days in the store already
    resumed = replay(state, end)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = replay(state, end)  # nothing left to replay: the last day is in already
    assert again.returncode == 0 and "[daily.summary]" not in again.stderr
    with closing(sqlite3.connect(state / "cockpit.sqlite")) as conn:
        rows = conn.execute("SELECT date, equity_close, net, summary FROM daily_reports ORDER BY date").fetchall()
    # Read-only, and closed here: the shared reference is copied by the next tests, and a connection
    # left to the collector (it is in a cycle) deletes the WAL whenever it is collected, mid-copy too.
    with closing(sqlite3.connect(f"file:{reference / 'cockpit.sqlite'}?mode=ro", uri=True)) as conn:
        ref = {r[0]: r[1:] for r in conn.execute("SELECT date, equity_close, net, summary FROM daily_reports")}
    assert [r[0] for r in rows] == xnys_sessions(date(2008, 1, 1), date(2008, 6, 30))
    for day, equity_close, net, summary in rows:
        assert (equity_close, net) == ref[day][:2], day  # the same day as the run never interrupted
        assert json.loads(summary)["fills"] == json.loads(ref[day][2])["fills"], day
    starts = [json.loads(r[3])["engine_starts"] for r in rows]
    assert sum(starts) == 2 and starts[0] == 1  # the first run's first day, and the day the resume began in


async def test_the_api_answers_the_same_as_the_cli(reference: Path, tmp_path: Path, capsys, clean_env) -> None:
    state = tmp_path / "copy"
    shutil.copytree(reference, state)
    engine = build_engine(load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max",
                                                                                     "end": "2008-12-31"}}))
    await engine.start()
    try:
        api = InProcessApi(engine, peer={"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()})
        perf = await api.request("GET", "/metrics/performance")
        assert perf.status == 200 and PERFORMANCE_KEYS <= set(perf.body) and perf.body["sessions"] == 253
        assert perf.body == cli_json(capsys, reference, "metrics")
        one = await api.request("GET", "/metrics/performance", params={"strategy": "rsi_reversion"})
        assert one.status == 200 and one.body["scope"] == "rsi_reversion"
        unknown = await api.request("GET", "/metrics/performance", params={"strategy": "nope"})
        assert unknown.status == 404 and "known: rsi_reversion" in unknown.detail
        day = await api.request("GET", "/reports/daily", params={"date": "2008-11-28"})
        assert day.status == 200 and [d["date"] for d in day.body] == ["2008-11-28"] and DAY_KEYS <= set(day.body[0])
        assert len((await api.request("GET", "/reports/daily")).body) == 253
        bad = await api.request("GET", "/reports/daily", params={"date": "yesterday"})
        assert bad.status == 422 and "date" in bad.detail and "\n" not in bad.detail
    finally:
        await engine.shutdown()


async def test_the_metrics_screen_shows_the_figures_and_the_last_days(reference: Path, tmp_path: Path,
                                                                      clean_env) -> None:
    from cockpit.tui.alerts import AlertBuffer
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.screens.metrics import DAYS_SHOWN, MetricsScreen
    from cockpit.tui.widgets.fixed_table import FixedTable

    state = tmp_path / "copy"
    shutil.copytree(reference, state)
    settings = load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max", "end": "2008-12-31"}})
    app = CockpitApp(build_engine(settings), AlertBuffer())
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MetricsScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        metrics = screen.query_one("#metrics-table").query_one(FixedTable)
        labels = [metrics.cell(i, 0) for i in range(metrics.row_count)]
        assert "Sharpe" in labels and "win rate" in labels
        assert [c.label for c in metrics.columns][1:] == ["account", "rsi_reversion", "sma_cross"]
        daily = screen.query_one("#metrics-daily", FixedTable)
        assert daily.row_count == DAYS_SHOWN and daily.cell(0, 0) == "2008-12-31"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, MetricsScreen)
