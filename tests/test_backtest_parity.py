"""Parity: the default config through the backtest (``run_backtest``, what `cockpit backtest`
runs, here in this process) and through `cockpit --no-ui --speed max` (a child process, at the
same time), each on its own state dir, books exactly the same fills, and the backtest's figures
are `cockpit metrics`' figures of the headless run's store. Both replay 2008 to mid-2010
(``COCKPIT_FEED__END``, the crash and the recovery: both strategies trade a few hundred times),
to keep the test short; the whole 2008-2014 replay takes ~3x as long and agrees as well."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from cockpit import readers
from cockpit.research.backtest import run_backtest
from core.config import load_config
from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow
CMD = [sys.executable, "-m", "cockpit"]
FILL_KEY_SQL = "SELECT ts, symbol, side, qty, price, commission, strategy FROM fills ORDER BY seq"


def fills_of(state: Path) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)) as conn:
        return [tuple(r) for r in conn.execute(FILL_KEY_SQL)]


def test_backtest_and_headless_replay_book_identical_fills(tmp_path: Path, clean_env: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**clean_env, "PYTHONPATH": str(ROOT), "COCKPIT_FEED__END": "2010-06-30"}
    live, store = tmp_path / "headless", tmp_path / "backtest"
    headless = subprocess.Popen([*CMD, "--config", str(CONFIG), "--state-dir", str(live), "--no-ui", "--speed", "max"],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        monkeypatch.setenv("COCKPIT_FEED__END", env["COCKPIT_FEED__END"])  # the same config, read the same way
        result = run_backtest(load_config(CONFIG), store=store)
    finally:
        _, live_err = headless.communicate(timeout=240)
    assert headless.returncode == 0, live_err[-2000:]
    assert "replay finished" in live_err

    mine, theirs = fills_of(store), fills_of(live)
    assert len(mine) > 200 and {f[6] for f in mine} == {"sma_cross", "rsi_reversion"}
    assert mine == theirs

    assert [f.key() for f in result.fills] == theirs  # the result's own fills are the store's

    # The backtest's figures are `cockpit metrics` of the headless run, for the account and each strategy.
    data = result.metrics_json()
    with closing(readers.connect_readonly(live / "cockpit.sqlite")) as conn:
        metrics = readers.performance(conn)
    for key in ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "trades",
                "exposure", "pnl", "sessions"):
        assert data["account"][key] == metrics[key], key
        for name in ("sma_cross", "rsi_reversion"):
            assert data["strategies"][name][key] == metrics["strategies"][name][key], (name, key)
