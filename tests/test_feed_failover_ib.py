"""Feed failover with real parts: two `cockpit ib-sim` processes over TCP and a headless engine.

The primary (the broker's own session, simulator A) is made to send crossed quotes
(SIGUSR1 toggles A's quote fault): the engine fails over to the fallback (a data-only
session to simulator B), fails back once A is clean for ``failback_seconds``, and fails over
again when A is SIGKILLed. `cockpit status --json` shows which feed is active and why; the
audit trail has each switch and the quarantine episode.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.test_control_cli import wait_until
from tests.test_ibkr_cli import LISTENING, cli, status
from tests.test_ibkr_wiring import ibkr_config


def start_sim(state: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--state", str(state),
                             "--tick-interval", "0.05", "--seed", "3", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = LISTENING.search(line)
    assert m, f"ib-sim said {line!r}"
    return proc, int(m.group(1))


def failover_config(tmp_path: Path, primary: int, fallback: int) -> Path:
    extra = f"""
[feed.quality]
fail_count = 5
fail_window_seconds = 5
[[feed.fallbacks]]
kind = "ibkr"
name = "gateway-b"
port = {fallback}
client_id = 32
stale_seconds = 3
"""
    path = ibkr_config(tmp_path, primary, client_id=31, reconnect=(0.05, 0.5), settle=0.2, extra=extra)
    text = path.read_text().replace('symbols = ["AAPL", "MSFT"]\n',
                                    'symbols = ["AAPL", "MSFT"]\nstale_seconds = 3\nfailback_seconds = 1\n')
    path.write_text(text)
    return path


def feeds(env: dict[str, str], config: Path) -> dict[str, dict]:
    return {f["name"]: f for f in status(env, config)["feeds"]}


def active(env: dict[str, str], config: Path) -> str:
    return next(name for name, f in feeds(env, config).items() if f["active"])


def wait_for_active(env: dict[str, str], config: Path, name: str, timeout: float) -> None:
    try:
        wait_until(lambda: active(env, config) == name, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{name} never became the active feed: {feeds(env, config)}") from None


def test_failover_to_a_second_gateway_and_back(clean_env: dict[str, str], tmp_path: Path) -> None:
    sim_a, port_a = start_sim(tmp_path / "a.json", "--quote-fault-on-usr1", "crossed")
    sim_b, port_b = start_sim(tmp_path / "b.json")
    config = failover_config(tmp_path, port_a, port_b)
    err = (tmp_path / "engine.err").open("w")  # a file, never a pipe nobody drains
    engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)],
                              env=clean_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    procs = [engine, sim_a, sim_b]
    try:
        sock = tmp_path / "state" / "control.sock"
        wait_until(lambda: sock.exists() or engine.poll() is not None)
        assert engine.poll() is None, (tmp_path / "engine.err").read_text()
        wait_until(lambda: all(f["healthy"] and f["passed"] > 0 for f in feeds(clean_env, config).values()))
        f = feeds(clean_env, config)
        assert set(f) == {"ibkr", "gateway-b"} and f["ibkr"]["active"] and not f["gateway-b"]["active"]
        assert f["ibkr"]["kind"] == f["gateway-b"]["kind"] == "ibkr"

        sim_a.send_signal(signal.SIGUSR1)  # A's quotes go crossed
        wait_for_active(clean_env, config, "gateway-b", 20)
        f = feeds(clean_env, config)
        assert not f["ibkr"]["healthy"] and "failed the quality gate" in f["ibkr"]["reason"]
        assert f["ibkr"]["quarantined"] >= 5
        text = cli(clean_env, config, "status").stdout
        assert "gateway-b (ibkr) ACTIVE" in text and "UNHEALTHY" in text

        sim_a.send_signal(signal.SIGUSR1)  # clean again: back on the primary after failback_seconds
        wait_for_active(clean_env, config, "ibkr", 30)

        sim_a.send_signal(signal.SIGKILL)  # the primary gateway dies (the broker's session with it)
        sim_a.wait(timeout=10)
        wait_for_active(clean_env, config, "gateway-b", 20)
        assert feeds(clean_env, config)["ibkr"]["reason"] == "its connection is down"
        before = feeds(clean_env, config)["gateway-b"]["events"]
        wait_until(lambda: feeds(clean_env, config)["gateway-b"]["events"] > before)  # prices still flow
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    db = sqlite3.connect(tmp_path / "state" / "cockpit.sqlite")
    rows = db.execute("SELECT kind, subject, detail FROM audit WHERE kind LIKE 'feed.%' OR kind = 'data.quarantine' "
                      "ORDER BY seq").fetchall()
    db.close()
    switches = [r[:2] for r in rows if r[0].startswith("feed.fail")]
    assert switches == [("feed.failover", "gateway-b"), ("feed.failback", "ibkr"), ("feed.failover", "gateway-b")], rows
    assert any(kind == "data.quarantine" for kind, *_ in rows)
