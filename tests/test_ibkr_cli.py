"""The IBKR rehearsal a new user runs, all in real processes: `cockpit ib-sim`, then
`cockpit --no-ui` on an IBKR config, driven by the CLI. The simulator is SIGKILLed and
restarted on its state file: the engine reconnects, reconciles and trades on."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_control_cli import wait_until
from tests.test_ibkr_wiring import ibkr_config

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def start_sim(state: Path, port: int = 0) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", str(port), "--state", str(state),
                             "--tick-interval", "0.1", "--seed", "3"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = LISTENING.search(line)
    assert m, f"ib-sim said {line!r}: {proc.stderr.read() if proc.poll() is not None else ''}"
    return proc, int(m.group(1))


def write_config(tmp_path: Path, port: int) -> Path:
    return ibkr_config(tmp_path, port, client_id=21, reconnect=(0.05, 0.5), settle=0.2, name="ibkr.toml")


@pytest.fixture
def rig(clean_env: dict[str, str], tmp_path: Path):
    sim, port = start_sim(tmp_path / "sim.json")
    config = write_config(tmp_path, port)
    engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=clean_env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs = {"sim": sim, "engine": engine}
    sock = tmp_path / "state" / "control.sock"
    wait_until(lambda: sock.exists() or engine.poll() is not None)
    assert engine.poll() is None, engine.stderr.read() if engine.stderr else ""
    yield clean_env, config, procs, port, tmp_path
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def cli(env: dict[str, str], config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(config)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def status(env: dict[str, str], config: Path) -> dict:
    r = cli(env, config, "status", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def test_rehearse_ibkr_mode_through_a_gateway_restart(rig) -> None:
    env, config, procs, port, tmp_path = rig
    s = status(env, config)
    assert s["broker"]["kind"] == "ibkr" and s["broker"]["connected"] is True
    assert s["mode"] == "LIVE" and s["symbols"] == ["AAPL", "MSFT"] and s["breaks"] == []
    assert s["feeds"][0]["kind"] == "ibkr"
    wait_until(lambda: status(env, config)["feeds"][0]["events"] > 0)  # IB quotes flow

    bought = cli(env, config, "order", "buy", "AAPL", "10")
    assert bought.returncode == 0, bought.stderr
    wait_until(lambda: any(p["symbol"] == "AAPL" and float(p["qty"]) == 10 for p in status(env, config)["positions"]))

    procs["sim"].send_signal(signal.SIGKILL)  # the gateway dies without a word
    procs["sim"].wait(timeout=10)
    wait_until(lambda: status(env, config)["broker"]["connected"] is False)
    down = status(env, config)
    assert down["hold"] and "disconnected" in down["hold"]
    refused = cli(env, config, "order", "buy", "AAPL", "1")
    assert refused.returncode == 1 and "no new orders" in refused.stderr and "Traceback" not in refused.stderr

    procs["sim"], _ = start_sim(tmp_path / "sim.json", port)  # back, with its account from the state file
    wait_until(lambda: (s := status(env, config))["broker"]["connected"] and s["hold"] is None
               and s["last_reconcile"]["reason"] == "reconnect")
    after = status(env, config)
    assert after["breaks"] == [], after["breaks"]
    assert cli(env, config, "breaks").stdout.splitlines()[1].startswith("no breaks")
    sold = cli(env, config, "order", "sell", "AAPL", "10")
    assert sold.returncode == 0, sold.stderr
    wait_until(lambda: not any(p["symbol"] == "AAPL" for p in status(env, config)["positions"]))

    procs["engine"].send_signal(signal.SIGTERM)
    assert procs["engine"].wait(timeout=30) == 0
    verify = subprocess.run([sys.executable, "-m", "cockpit", "audit", "verify", "--config", str(config)], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    log = (tmp_path / "state" / "logs" / "cockpit.log").read_text()
    assert "ib_async.Decoder" not in log, [line for line in log.splitlines() if "Decoder" in line]
    assert "Traceback" not in log
