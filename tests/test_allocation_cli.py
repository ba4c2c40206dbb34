"""Capital allocation from the command line, with real processes: a headless run in which a
strategy reaches its allocation (the refusal audited, `cockpit metrics` showing it), a config
error at load, and `cockpit allocation` show / set against a running engine over its real Unix
socket (refusals exit 1 with the reason and change nothing; the change is audited with the
actor the server decides, shown by `cockpit status`, and survives a restart)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_allocation_config import allocated_config
from tests.test_control_cli import wait_until


def cli(env: dict[str, str], config: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(config), "--state-dir", str(state)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    return lines[0]


def test_a_headless_run_refuses_past_the_allocation_and_audits_it(tmp_path: Path, clean_env) -> None:
    config = allocated_config(tmp_path, "sma_cross = 15000")
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_FEED__END": "2008-06-30"}
    ok(cli(env, config, state, "--no-ui", "--speed", "max"))
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        reasons = [json.loads(d)["reason"] for (d,) in conn.execute(
            "SELECT detail FROM audit WHERE kind = 'gate.refuse' AND actor = 'strategy'")]
    mine = [r for r in reasons if r.startswith("allocation: sma_cross gross exposure ")]
    assert mine and all(" would exceed its allocation 15,000.00 (now " in r for r in mine)
    assert not [r for r in reasons if r.startswith("allocation: rsi_reversion")]  # it has none

    perf = json.loads(ok(cli(env, config, state, "metrics", "--json")))
    sma = perf["allocation"]["strategies"]["sma_cross"]
    assert sma["allocation"] == "15000" and float(sma["used"]) <= 15000
    assert perf["allocation"]["uncovered"] == ["rsi_reversion"]
    table = ok(cli(env, config, state, "metrics"))
    assert "allocation used" in table and "15,000.00" in table


def test_a_bad_allocation_refuses_to_start_with_one_line(tmp_path: Path, clean_env) -> None:
    config = allocated_config(tmp_path, 'sma_crosss = "10%"')
    result = cli(clean_env, config, tmp_path / "state", "--no-ui")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cockpit: config error: {config}: allocation.sma_crosss: no strategy named 'sma_crosss' (strategies: "
        "rsi_reversion, sma_cross); remove the key or check its spelling")


@pytest.fixture
def running(clean_env: dict[str, str], tmp_path: Path):
    """A headless engine with allocations, replaying one day per second; restartable."""
    config = allocated_config(tmp_path, 'sma_cross = 30000\nrsi_reversion = "25%"')
    env = {**clean_env, "COCKPIT_DEADMAN__INTERVAL_SECONDS": "3600"}
    state = tmp_path / "state"
    procs: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        sock = state / "control.sock"
        proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config), "--state-dir",
                                 str(state)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        wait_until(lambda: (sock.exists() and cli(env, config, state, "status").returncode == 0)
                   or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return proc

    yield env, config, state, start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def test_show_and_set_through_the_control_socket(running) -> None:
    env, config, state, start = running
    engine = start()
    shown = json.loads(ok(cli(env, config, state, "allocation", "--json")))
    assert shown["equity_at_start"] == "100000" and shown["uncovered"] == []
    assert {n: (r["allocation"], r["given"]) for n, r in shown["strategies"].items()} == {
        "sma_cross": ("30000", "30000"), "rsi_reversion": ("25000", "25%")}
    table = ok(cli(env, config, state, "allocation"))
    assert "equity at start 100,000.00 (the paper account's equity)" in table
    assert "sma_cross" in table and "30,000.00" in table and "25%" in table

    for value, why in (("-5", "'-5' is negative"), ("NaN", "'NaN' is not a finite amount"),
                       ("80000", "= 105,000.00 is beyond the equity at start (the paper account's equity) 100,000.00")):
        line = refused(cli(env, config, state, "allocation", "set", "sma_cross", value))
        assert why in line and line.endswith("the allocation stays 30,000.00")
    line = refused(cli(env, config, state, "allocation", "set", "nope", "1000"))
    assert line == "cockpit: allocation: no strategy named 'nope' (known: sma_cross, rsi_reversion)"
    usage = cli(env, config, state, "allocation", "set", "sma_cross")
    assert usage.returncode == 2 and "needs STRATEGY and VALUE" in usage.stderr
    assert json.loads(ok(cli(env, config, state, "allocation", "--json"))) == shown  # nothing changed

    done = ok(cli(env, config, state, "allocation", "set", "sma_cross", "40%", "--reason", "room to grow"))
    assert done.strip() == "allocation.sma_cross: 30000 -> 40% (40,000.00) (persisted)"
    status = json.loads(ok(cli(env, config, state, "status", "--json")))
    sma = status["allocation"]["strategies"]["sma_cross"]
    assert (sma["allocation"], sma["given"]) == ("40000", "40%")
    assert "allocation sma_cross " in ok(cli(env, config, state, "status"))
    ok(cli(env, config, state, "allocation", "set", "rsi_reversion", "none"))

    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=60) == 0
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        rows = [(a, json.loads(d)) for a, d in conn.execute(
            "SELECT actor, detail FROM audit WHERE kind = 'operator.allocation_set' ORDER BY seq")]
    ran = [(a, d) for a, d in rows if "refused" not in d]
    assert [(d["before"], d["after"]) for _, d in ran] == [("30000", "40%"), ("25%", None)]
    actor, detail = ran[0]
    assert actor.startswith("uid ") and " via socket: cli:" in actor and detail["reason"] == "room to grow"
    assert len(rows) - len(ran) == 4  # every refusal is audited too

    start()  # the run-time changes beat the config after a restart
    again = json.loads(ok(cli(env, config, state, "allocation", "--json")))
    assert again["strategies"]["sma_cross"]["given"] == "40%"
    assert again["strategies"]["rsi_reversion"]["allocation"] is None
    assert again["uncovered"] == ["rsi_reversion"]
