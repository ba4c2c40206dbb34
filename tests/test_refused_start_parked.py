"""A LIVE start the go-live check refuses, with ``[engine] on_refused_start = "wait"`` (docker's
compose sets it): the engine does not exit into docker's restart loop. Real parts: `cockpit
ib-sim` with a U-account on loopback, `cockpit --no-ui` as a child process, `cockpit status
--json` over its control socket, a local HTTP server standing in for Discord.

- it stays up PARKED: `cockpit status` shows run_state "refused" and the failing checks, no
  order reaches the simulator (a command is refused), its broker session is closed;
- exactly one preflight.refused alert;
- SIGTERM ends it with exit 0 and a clean stop in its run record (the watchdog leaves it alone);
- ``exit`` (the default) still exits 2 at once; a bad value is a config error naming the key.

Waits poll the other processes with deadlines; nothing sleeps for a timer.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cockpit.control.client import ApiRefused, ControlClient
from cockpit.run_record import read_run
from tests.conftest import ROOT
from tests.test_deploy_emergency import DiscordStandIn, discord  # noqa: F401  (the fixture)
from tests.test_feed_failover_ib import start_sim
from tests.test_ibkr_wiring import ibkr_config
from tests.test_watchdog import sim_state, wait_for

pytestmark = pytest.mark.slow


def _cockpit(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cockpit", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _status(env: dict[str, str], config: Path) -> dict[str, Any] | None:
    out = _cockpit(env, "status", "--json", "--config", str(config))
    return json.loads(out.stdout) if out.returncode == 0 else None


def _audit_kinds(state: Path, like: str) -> list[str]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT kind FROM audit WHERE kind LIKE ? ORDER BY seq", (like,))]
    finally:
        db.close()


def test_a_refused_live_start_parks_until_sigterm_then_stops_clean(tmp_path: Path, clean_env: dict[str, str],
                                                                   discord: DiscordStandIn) -> None:  # noqa: F811
    sim, port = start_sim(tmp_path / "sim.json", "--account", "U1234567")
    env = {**clean_env, "COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": discord.url,
           "COCKPIT_ENGINE__ON_REFUSED_START": "wait"}
    state = tmp_path / "state"
    engine: subprocess.Popen[str] | None = None
    try:
        config = ibkr_config(tmp_path, port, client_id=53, name="live.toml")
        with (tmp_path / "engine.log").open("w") as log:
            engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                      cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, text=True)

        def parked() -> dict[str, Any] | None:
            assert engine is not None and engine.poll() is None, (tmp_path / "engine.log").read_text()[-3000:]
            s = _status(env, config)
            return s if s is not None and s["run_state"] == "refused" else None

        s = wait_for(parked, "`cockpit status` saying the run is refused", timeout=90)
        assert s["preflight"]["outcome"] == "refused" and "paper traded" in s["preflight"]["failing"], s
        assert s["mode"] == "LIVE" and s["broker"]["connected"] is False, s  # its session at the gateway closed
        assert s["hold"].startswith("parked: the go-live check refused this LIVE start"), s
        human = _cockpit(env, "status", "--config", str(config))
        assert human.returncode == 0, human.stderr  # the container's health check passes (compose.yaml says why)
        assert human.stdout.startswith("run       REFUSED: the go-live check fails (") and "paper traded" in human.stdout

        # Nothing reaches the broker: a command is refused, and the simulator never saw an order.
        with pytest.raises(ApiRefused, match="the engine is parked"):
            ControlClient(state / "control.sock", timeout=5).post("/orders", side="buy", symbol="AAPL", qty="1")
        assert sim_state(tmp_path).orders == {}
        record = read_run(state)
        assert record is not None and record.pid == engine.pid and not record.traded

        # One alert, delivered before the status said refused (the router drained, then stopped).
        [alert] = [e for e in discord.embeds() if "LIVE start" in e["title"]]
        assert alert["title"] == "CRITICAL · LIVE start REFUSED: the go-live check fails"
        assert [e for e in discord.embeds() if "DISCONNECTED" in e["title"]] == []  # its own disconnect: no alert

        engine.send_signal(signal.SIGTERM)
        assert engine.wait(30) == 0, (tmp_path / "engine.log").read_text()[-3000:]
        record = read_run(state)
        assert record is not None and record.clean_stop and not record.died_trading, record
        assert "parked (the go-live check refused this LIVE start" in record.reason, record
        assert len([e for e in discord.embeds() if "LIVE start" in e["title"]]) == 1
        assert _audit_kinds(state, "preflight.%") == ["preflight.refused"]
        assert sim_state(tmp_path).orders == {}
    finally:
        if engine is not None and engine.poll() is None:
            engine.kill()
            engine.wait(10)
        sim.terminate()
        sim.wait(timeout=30)


def test_exit_is_the_default_and_a_bad_value_is_a_config_error(tmp_path: Path, clean_env: dict[str, str]) -> None:
    sim, port = start_sim(tmp_path / "sim.json", "--account", "U1234567")
    try:
        config = ibkr_config(tmp_path, port, client_id=54, name="live.toml")
        refused = _cockpit({**clean_env, "COCKPIT_ENGINE__ON_REFUSED_START": "exit"}, "--no-ui", "--config",
                           str(config), timeout=90)
        assert refused.returncode == 2 and "refusing to trade a LIVE account" in refused.stderr, refused.stderr
        bad = _cockpit({**clean_env, "COCKPIT_ENGINE__ON_REFUSED_START": "park"}, "--no-ui", "--config", str(config))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert "engine.on_refused_start (env COCKPIT_ENGINE__ON_REFUSED_START): Input should be 'exit' or 'wait'" \
            in bad.stderr, bad.stderr
    finally:
        sim.terminate()
        sim.wait(timeout=30)
