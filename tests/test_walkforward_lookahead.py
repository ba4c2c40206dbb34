"""The look-ahead guard: no in-sample run of a walk-forward can see a bar of its test window.

A strategy that peeks (tests/walkforward_peeker.py: it reads ahead of the clock through its
feed, the engine's feed files and the data files on disk, and trades on tomorrow's close) is
walked forward on real bars. Every run leaves what it saw and what it could reach: each window's
in-sample runs reached nothing past the train window's last day, its out-of-sample run nothing
past its test window, and the warm-up of the out-of-sample run lies before the test window. The
same peeker in a plain backtest of the full file, stopped at the train window's end, does reach
the test window: without the cut files a walk-forward would leak it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from cockpit.research.walkforward.analysis import Spec, walk_forward
from cockpit.research.walkforward.executors import SerialExecutor
from cockpit.research.walkforward.report import report_json
from cockpit.research.walkforward.windows import parse_duration
from core.config import load_config
from core.strategy import KINDS
from tests.walkforward_peeker import Peeker


def config(tmp: Path, logs: Path) -> Path:
    path = tmp / "peek.toml"
    path.write_text(f"""
[engine]
state_dir = "{tmp / 'state'}"
[feed]
start = 2010-01-01
end = 2010-12-31
[[feed.files]]
symbol = "SPY"
path = "bundled:daily/SPY_2007-2017_yahoo.csv"
[strategies.peek]
kind = "peeker"
symbols = ["SPY"]
params = {{ log_dir = "{logs}", horizon = 1, notional = "20000" }}
""")
    return path


def records(logs: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(logs.glob("*.json"))]


def test_no_in_sample_run_reaches_a_bar_of_its_test_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            clean_env: dict[str, str]) -> None:
    monkeypatch.setitem(KINDS, "peeker", Peeker)
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = load_config(config(tmp_path, logs))
    spec = Spec("peek", "horizon=1..2:1", parse_duration("6m", "--train"), parse_duration("3m", "--test"),
                warmup=5)
    report = report_json(walk_forward(settings, spec, SerialExecutor()))
    seen = records(logs)
    assert len(seen) == len(report["windows"]) * 3 == 6  # 2 grid points in-sample + 1 out-of-sample, per window
    for r in seen:  # nothing beyond the last bar it was handed, by any route
        assert r["reachable_last"] == r["last_seen"], r
    for w in report["windows"]:
        train_end, test_start, test_end = (date.fromisoformat(w["train"][1]), date.fromisoformat(w["test"][0]),
                                           date.fromisoformat(w["test"][1]))
        ins = [r for r in seen if r["first_seen"] == w["warmup_from"]["is"]
               and date.fromisoformat(r["last_seen"]) <= train_end]
        assert sorted(r["horizon"] for r in ins) == [1, 2], (w, seen)
        for r in ins:
            assert date.fromisoformat(r["reachable_last"]) < test_start
            assert date.fromisoformat(r["last_seen"]) > train_end - timedelta(days=7)  # the train window to its end
        oos = [r for r in seen if r["first_seen"] == w["warmup_from"]["oos"]]
        assert len(oos) == 1 and oos[0]["horizon"] == w["params"]["horizon"]
        assert date.fromisoformat(oos[0]["first_seen"]) < test_start  # warmed up on the past ...
        assert date.fromisoformat(oos[0]["reachable_last"]) <= test_end  # ... and saw nothing after its window
    # It is a real peeker: inside the train window, where it can see tomorrow, it is uncannily good.
    assert all(w["is_objective"] is not None and w["is_objective"] > 3 for w in report["windows"])


def test_without_the_cut_files_the_same_peeker_reaches_the_test_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        clean_env: dict[str, str]) -> None:
    from cockpit.research.backtest import run_backtest

    monkeypatch.setitem(KINDS, "peeker", Peeker)
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = load_config(config(tmp_path, logs))
    run_backtest(settings, strategies=["peek"], start=date(2010, 1, 1), end=date(2010, 6, 30))
    (r,) = records(logs)
    assert r["last_seen"] <= "2010-06-30" < r["reachable_last"]  # the whole file was in reach
