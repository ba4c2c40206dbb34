"""The backtest API (cockpit/research/backtest.py) the walk-forward pool calls: the default
config's engine over a short window into a fresh store, deterministic, silent, writing only
where it is told, with `cockpit metrics`' own figures."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cockpit import readers
from cockpit.research.backtest import (
    BacktestError,
    BacktestInterrupted,
    backtest_settings,
    run_backtest,
    run_backtest_async,
)
from core.config import load_config
from tests.conftest import CONFIG

START, END = date(2008, 1, 1), date(2008, 9, 30)


@pytest.fixture
def settings(clean_env: dict[str, str], tmp_path: Path):
    # The config's own state dir must never be touched: point it at a place we can watch.
    return load_config(CONFIG, state_dir=tmp_path / "config-state")


def test_a_run_into_a_named_store_has_metrics_equal_to_cockpit_metrics(settings, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    before = settings.model_dump()
    seen: list[float] = []
    store = tmp_path / "run"
    with caplog.at_level(logging.INFO):
        result = run_backtest(settings, start=START, end=END, store=store, progress=seen.append)
    assert settings.model_dump() == before  # the caller's settings are not changed
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")  # prints nothing
    assert not [r for r in caplog.records if r.name.startswith("cockpit")]  # the engine's records stay inside
    assert not (tmp_path / "config-state").exists()
    assert "cockpit.sqlite" in {p.name for p in store.iterdir()}
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 10

    assert sorted(result.strategies) == ["rsi_reversion", "sma_cross"]
    assert result.fills and {f.strategy for f in result.fills} == {"rsi_reversion", "sma_cross"}
    assert all(START <= f.ts.date() <= END for f in result.fills)
    assert result.account.curve[0].ts.date() >= START and result.account.curve[-1].ts.date() <= END
    assert result.config["start"] == "2008-01-01" and result.config["end"] == "2008-09-30"
    assert result.config["strategies"]["sma_cross"]["params"] == {"fast": 10, "slow": 30, "notional": "10000"}

    # The same figures `cockpit metrics` reads from the store (exposure included).
    with readers.connect_readonly(store / "cockpit.sqlite") as conn:
        stored = readers.performance(conn, market_tz=settings.engine.market_tz)
    mine = result.metrics_json()
    for key, value in stored.items():
        if key in mine["account"]:
            assert mine["account"][key] == value, key
    for name, figures in stored["strategies"].items():
        assert {k: v for k, v in mine["strategies"][name].items() if k in figures} == figures
    # Each strategy's P&L adds up to the account's (one owner per fill in a backtest).
    pnl = sum((Decimal(m["pnl"]) for m in mine["strategies"].values()), Decimal(0))
    assert pnl == Decimal(mine["account"]["pnl"])
    assert 0 < mine["account"]["exposure"] <= 1 and 0 < mine["account"]["gross_exposure"] < 1


def test_runs_are_deterministic_picklable_and_leave_nothing_behind(settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    first = run_backtest(settings, start=START, end=END)
    second = run_backtest(settings, start=START, end=END)
    assert first == second
    assert [f.client_order_id for f in first.fills] == [f.client_order_id for f in second.fills]
    assert pickle.loads(pickle.dumps(first)) == first  # crosses a process pool
    assert list(scratch.iterdir()) == []  # the throwaway store is gone
    assert not (tmp_path / "config-state").exists()


def test_strategy_selection_params_and_dates(settings) -> None:
    only = run_backtest(settings, strategies=["sma_cross"], start=START, end=END)
    assert sorted(only.strategies) == ["sma_cross"] and {f.strategy for f in only.fills} == {"sma_cross"}
    faster = run_backtest(settings, strategies=["sma_cross"], start=START, end=END,
                          params={"sma_cross": {"fast": "5"}})
    assert faster.config["strategies"]["sma_cross"]["params"]["fast"] == 5
    assert [f.key() for f in faster.fills] != [f.key() for f in only.fills]
    later = run_backtest(settings, strategies=["sma_cross"], start=date(2008, 6, 1), end=END)
    assert later.fills and min(f.ts.date() for f in later.fills) >= date(2008, 6, 1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategies": ["nope"]}, "--strategy nope: no such strategy in the config (configured: rsi_reversion, sma_cross)"),
    ({"strategies": []}, "no strategy to run"),
    ({"params": {"sma_cross": {"fsat": 5}}}, "--param sma_cross.fsat: sma_cross has no parameter 'fsat' "
                                             "(its parameters: fast, notional, slow)"),
    ({"params": {"sma_cross": {"fast": "abc"}}}, "--param sma_cross.fast=abc: Input should be a valid integer"),
    ({"params": {"sma_cross": {"fast": 40}}}, "--param sma_cross.fast=40: fast (40) must be shorter than slow (30)"),
    ({"params": {"nope": {"fast": 4}}}, "--param nope.…: no strategy 'nope' in the config"),
    ({"strategies": ["rsi_reversion"], "params": {"sma_cross": {"fast": 4}}},
     "--param sma_cross.…: sma_cross does not run in this backtest (running: rsi_reversion); add --strategy sma_cross"),
    ({"start": date(2010, 1, 1), "end": date(2009, 1, 1)}, "--from/--to: start 2010-01-01 is after end 2009-01-01"),
])
def test_bad_input_is_one_line_and_writes_nothing(settings, tmp_path: Path, kwargs: dict, message: str) -> None:
    store = tmp_path / "run"
    with pytest.raises(BacktestError) as caught:
        run_backtest(settings, store=store, **kwargs)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert caught.value.usage
    assert not store.exists()


def test_a_store_must_be_fresh_and_dates_must_hold_bars(settings, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("mine")
    with pytest.raises(BacktestError, match="is not empty"):
        run_backtest(settings, store=used)
    assert (used / "x").read_text() == "mine"
    with pytest.raises(BacktestError, match="no bars to replay between 2030-01-01"):
        run_backtest(settings, start=date(2030, 1, 1), end=date(2030, 2, 1))


def test_settings_for_a_backtest_turn_off_what_waits_for_an_operator(settings, tmp_path: Path) -> None:
    run = backtest_settings(settings, tmp_path / "s", strategies=["rsi_reversion"])
    assert run.state_dir == tmp_path / "s" and run.feed.speed == "max"
    assert not run.deadman.enabled and run.backup.every_hours == 0 and not run.backup.at_session_close
    assert {n: c.enabled for n, c in run.strategies.items()} == {"sma_cross": False, "rsi_reversion": True}
    ibkr = settings.model_copy(deep=True)
    ibkr.broker.kind = "ibkr"
    with pytest.raises(BacktestError, match="replays bar files through the paper broker"):
        backtest_settings(ibkr, tmp_path / "s")


def test_ctrl_c_stops_the_run_cleanly_and_removes_the_throwaway_store(settings, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    sent: list[float] = []

    def interrupt(done: float) -> None:
        if done >= 0.3 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGINT)  # the real signal, as a terminal sends it

    with pytest.raises(KeyboardInterrupt):
        run_backtest(settings, start=START, end=END, progress=interrupt)
    assert sent and list(scratch.iterdir()) == []


async def test_a_stopped_run_leaves_a_closed_readable_store(settings, tmp_path: Path) -> None:
    stop = asyncio.Event()
    store = tmp_path / "run"
    with pytest.raises(BacktestInterrupted, match="stopped after"):
        await run_backtest_async(settings, start=START, end=END, store=store,
                                 progress=lambda done: stop.set() if done >= 0.5 else None, stop=stop)
    assert not (store / "cockpit.sqlite-wal").exists()  # closed: checkpointed
    with readers.connect_readonly(store / "cockpit.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        last = conn.execute("SELECT max(date) FROM daily_reports").fetchone()[0]
    assert "2008-04-01" < last < "2008-09-30"


def test_runs_that_share_a_bar_cache_parse_each_file_once_and_trade_the_same(settings, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import core.data.feeds.replay as replay

    parsed: list[str] = []
    real = replay.read_bar_file
    monkeypatch.setattr(replay, "read_bar_file", lambda path, *a, **k: parsed.append(Path(path).name) or real(path, *a, **k))
    cache = tmp_path / "shared-cache"
    alone = run_backtest(settings, start=START, end=END, store=tmp_path / "alone")  # the cache inside its store
    assert len(parsed) == len(settings.feed.files)
    parsed.clear()
    first = run_backtest(settings, start=START, end=END, store=tmp_path / "first", bar_cache=cache)
    assert len(parsed) == len(settings.feed.files)  # a new cache: each file parsed once
    parsed.clear()
    second = run_backtest(settings, start=START, end=END, bar_cache=cache)  # a throwaway store this time
    assert parsed == []  # every file from the shared cache
    assert [f.key() for f in first.fills] == [f.key() for f in second.fills] == [f.key() for f in alone.fills]
    assert first.metrics_json() == second.metrics_json()
    assert len(list(cache.glob("*.bars"))) == len(settings.feed.files)
    assert not (tmp_path / "first" / "cache").exists()  # the run wrote its cache where it was told
    assert not (tmp_path / "config-state").exists()
    with pytest.raises(BacktestError, match="bar_cache"):
        run_backtest(settings, start=START, end=END, bar_cache=Path("bad\x00name"))
