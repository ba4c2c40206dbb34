"""The CLI as a user meets it: exit codes, one-line errors, reads while an engine runs."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT


def cockpit(cmd: list[str], env: dict[str, str], *args: str, cwd: Path = ROOT,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          input=stdin)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_bad_argument_prints_usage(cockpit_cmd, clean_env) -> None:
    result = cockpit(cockpit_cmd, clean_env, "--speed", "fast")
    assert result.returncode == 2 and "usage:" in result.stderr and "speed must be" in result.stderr
    result = cockpit(cockpit_cmd, clean_env, "positons")
    assert result.returncode == 2 and "usage:" in result.stderr


def test_unknown_config_key_refuses_to_start(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.read_text().replace("max_order_qty", "max_order_qtyy"))
    result = cockpit(cockpit_cmd, clean_env, "--config", str(bad), "--no-ui", "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cockpit: config error: {bad}: unknown key 'risk.max_order_qtyy': remove it or check its spelling"
    ]
    no_traceback(result)


def test_bad_data_file_setting_refuses_cleanly(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = CONFIG.read_text().replace('symbol = "SPY"', 'symbol = "SPY"\ntz = "Mars/Olympus"')
    bad.write_text(text)
    result = cockpit(cockpit_cmd, clean_env, "--config", str(bad), "--no-ui", "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2 and "feed.files[SPY]: unknown time zone 'Mars/Olympus'" in result.stderr
    no_traceback(result)


def test_missing_default_config_says_what_to_do(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    result = cockpit(cockpit_cmd, clean_env, "positions", cwd=tmp_path)
    assert result.returncode == 2 and "pass --config PATH" in result.stderr
    no_traceback(result)


def test_read_commands_without_state(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    for what in ("positions", "orders", "fills", "pnl"):
        result = cockpit(cockpit_cmd, clean_env, what, "--config", str(CONFIG), "--state-dir", str(tmp_path))
        assert result.returncode == 1 and "no cockpit state" in result.stderr
        no_traceback(result)


def test_reads_while_an_engine_runs_and_one_engine_per_state_dir(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path)]
    engine = subprocess.Popen([*cockpit_cmd, *args, "--no-ui", "--speed", "3000000"], env=clean_env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert engine.stderr is not None
        for line in engine.stderr:  # wait for trading to begin
            if " cockpit.oms: fill " in line:
                break
        # Keep reading its stderr: a full pipe would block the engine before it writes positions.
        drain = threading.Thread(target=engine.stderr.read, daemon=True)
        drain.start()
        fills = cockpit(cockpit_cmd, clean_env, "fills", "--json", *args)
        assert fills.returncode == 0, fills.stderr
        assert isinstance(json.loads(fills.stdout), list)
        # --all: at this speed the account may be flat at the moment we look, which prints "no positions"
        table = cockpit(cockpit_cmd, clean_env, "positions", "--all", *args)
        assert table.returncode == 0 and "symbol" in table.stdout, table.stdout
        second = cockpit(cockpit_cmd, clean_env, *args, "--no-ui", "--speed", "max")
        assert second.returncode == 1 and "another cockpit engine" in second.stderr
        reset = cockpit(cockpit_cmd, clean_env, "paper", "reset", "--yes", *args)
        assert reset.returncode == 1 and "engine is running" in reset.stderr
    finally:
        engine.terminate()
        engine.wait(timeout=60)
    assert engine.returncode == 0


def test_paper_reset_confirms_archives_and_starts_fresh(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path)]
    env = {**clean_env, "COCKPIT_FEED__END": "2008-12-31"}
    assert cockpit(cockpit_cmd, env, *args, "--no-ui", "--speed", "max").returncode == 0
    traded = json.loads(cockpit(cockpit_cmd, env, "fills", "--json", *args).stdout)
    assert traded
    refused = cockpit(cockpit_cmd, env, "paper", "reset", *args, stdin="")
    assert refused.returncode == 1 and "confirmation" in refused.stderr  # no terminal, no --yes
    assert (tmp_path / "cockpit.sqlite").exists()
    done = cockpit(cockpit_cmd, env, "paper", "reset", "--yes", *args)
    assert done.returncode == 0 and "archived" in done.stdout
    archived = list((tmp_path / "archive").glob("reset-*/cockpit.sqlite"))
    assert len(archived) == 1  # nothing is lost
    assert not (tmp_path / "cockpit.sqlite").exists()
    assert cockpit(cockpit_cmd, env, *args, "--no-ui", "--speed", "max").returncode == 0
    pnl = json.loads(cockpit(cockpit_cmd, env, "pnl", "--json", *args).stdout)
    assert pnl["starting_cash"] == "100000"
    again = json.loads(cockpit(cockpit_cmd, env, "fills", "--json", *args).stdout)
    assert [f["price"] for f in again] == [f["price"] for f in traded]  # a fresh account replays from the start


@pytest.mark.parametrize("what", ["positions", "orders", "fills", "pnl"])
def test_every_subcommand_accepts_config_and_state_dir(cockpit_cmd, clean_env, what: str) -> None:
    result = cockpit(cockpit_cmd, clean_env, what, "--help")
    assert "--config PATH" in result.stdout and "--state-dir DIR" in result.stdout


def test_a_disabled_strategy_does_not_trade(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path)]
    env = {**clean_env, "COCKPIT_FEED__END": "2009-12-31", "COCKPIT_STRATEGIES__RSI_REVERSION__ENABLED": "false"}
    assert cockpit(cockpit_cmd, env, *args, "--no-ui", "--speed", "max").returncode == 0
    fills = json.loads(cockpit(cockpit_cmd, env, "fills", "--json", *args).stdout)
    assert fills and {f["strategy"] for f in fills} == {"sma_cross"}


def test_changing_the_replay_under_a_cursor_refuses_to_resume(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path)]
    env = {**clean_env, "COCKPIT_FEED__END": "2008-03-31"}
    assert cockpit(cockpit_cmd, env, *args, "--no-ui", "--speed", "max").returncode == 0
    changed = cockpit(cockpit_cmd, {**env, "COCKPIT_FEED__QUOTES_PER_BAR": "2"}, *args, "--no-ui", "--speed", "max")
    assert changed.returncode == 2 and "quotes_per_bar changed" in changed.stderr
    no_traceback(changed)
    extended = cockpit(cockpit_cmd, {**env, "COCKPIT_FEED__END": "2008-06-30"}, *args, "--no-ui", "--speed", "max")
    assert extended.returncode == 0 and "resuming replay after" in extended.stderr


def test_unreadable_inputs_end_in_one_line(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG)]
    (tmp_path / "cockpit.sqlite").write_text("not a database")
    result = cockpit(cockpit_cmd, clean_env, "fills", *args, "--state-dir", str(tmp_path))
    assert result.returncode == 1 and "cannot read" in result.stderr
    no_traceback(result)
    result = cockpit(cockpit_cmd, {**clean_env, "COCKPIT_FEED__FILES": "[1"}, "pnl", *args)
    assert result.returncode == 2 and "COCKPIT_" in result.stderr
    no_traceback(result)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cockpit(cockpit_cmd, clean_env, *args, "--state-dir", str(blocker / "sub"), "--no-ui")
    assert result.returncode == 1 and "writable --state-dir" in result.stderr
    no_traceback(result)


def test_synthetic_feed_runs_headless_and_stops_on_signal(cockpit_cmd, clean_env, tmp_path: Path) -> None:
    import signal

    config = tmp_path / "syn.toml"
    config.write_text('[feed]\nkind = "synthetic"\nsynthetic = { symbols = 5, rate = 2000, seed = 3 }\n')
    proc = subprocess.Popen([*cockpit_cmd, "--config", str(config), "--state-dir", str(tmp_path / "s"), "--no-ui"],
                            env=clean_env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "paper account" in line and "connected" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 0 and "stopped after" in rest
