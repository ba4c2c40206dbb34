"""The emergency unit's command against the IB Gateway simulator, with the engine SIGKILLed.

Real parts only: `cockpit ib-sim` and `cockpit --no-ui` (IBKR mode) as child processes on
127.0.0.1, orders through the engine's control socket, a SIGKILL, then the exact ExecStart of
deploy/systemd/cockpit-emergency.service (install paths rendered into tmp) with the variables
systemd gives an OnFailure= unit, and a local HTTP server standing in for Discord. The simulator's
account must end flat and the stand-in must have the alert that says so. On the way, the
Dockerfile's HEALTHCHECK command says healthy while the engine answers and unhealthy once it is
dead.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from brokers.ibsim.state import SimState, load_state
from cockpit.control.client import ApiRefused, ControlClient, NoEngine
from cockpit.halt_latch import read_latch
from tests.conftest import ROOT
from tests.deploy_files import exec_start, healthcheck, rendered
from tests.test_ibkr_sigkill import ready, start_sim, until
from tests.test_ibkr_wiring import ibkr_config

CLIENT_ID = 23
WEBHOOK_PATH = "/api/webhooks/424242/emergency-test-token"


class DiscordStandIn(ThreadingHTTPServer):
    """Answers every POST with 204, as Discord does, and keeps the JSON bodies."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{WEBHOOK_PATH}"

    def embeds(self) -> list[dict]:
        with self.lock:
            return [e for path, body in self.posts if path == WEBHOOK_PATH for e in body.get("embeds", [])]


class _Handler(BaseHTTPRequestHandler):
    server: DiscordStandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.posts.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def discord() -> Iterator[DiscordStandIn]:
    server = DiscordStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def sim_positions(state: SimState) -> dict[str, Decimal]:
    return {s: p.qty for s, p in state.positions.items() if p.qty}


def sim_working(state: SimState) -> list[str]:
    return [o.order_ref for o in state.orders.values() if o.working]


def test_emergency_unit_flattens_the_account_and_alerts_with_the_engine_sigkilled(
    clean_env: dict[str, str], tmp_path: Path, discord: DiscordStandIn
) -> None:
    sim, port = start_sim(tmp_path / "sim.json")
    config = ibkr_config(tmp_path, port, client_id=CLIENT_ID, reconnect=(0.02, 0.2), settle=0.2)
    state = tmp_path / "state"
    # What /etc/cockpit/cockpit.env gives both units: the alert secrets.
    env = {**clean_env, "COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": discord.url, "COCKPIT_ENGINE__FLUSH_INTERVAL_MS": "20"}
    engine: subprocess.Popen | None = None
    api = ControlClient(state / "control.sock", timeout=5)
    try:
        with (tmp_path / "engine.err").open("w") as err:
            engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        until(lambda: ready(api, engine), 30, "the engine connected and reconciled")

        def sim_state() -> SimState:
            st = load_state(tmp_path / "sim.json")
            assert st is not None
            return st

        def order(**body: str) -> bool:
            try:
                api.post("/orders", **body)
                return True
            except ApiRefused:  # no fresh quote yet: the gate says no, try again
                return False

        until(lambda: order(side="buy", symbol="AAPL", qty="7"), 15, "the AAPL buy accepted")
        until(lambda: order(side="sell", symbol="MSFT", qty="3"), 15, "the MSFT sell accepted")
        until(lambda: sim_positions(sim_state()) == {"AAPL": Decimal(7), "MSFT": Decimal(-3)}, 15,
              "the simulator holding AAPL 7 and MSFT -3")
        aapl = Decimal(sim_state().prices["AAPL"]["price"])
        until(lambda: order(side="buy", symbol="AAPL", qty="2", limit=str((aapl * Decimal("0.95")).quantize(
            Decimal("0.01")))), 15, "a resting AAPL limit accepted")
        until(lambda: len(sim_working(sim_state())) == 1, 15, "the resting order working at the simulator")

        health = rendered(healthcheck(), config, state)
        alive = subprocess.run(health, env=clean_env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert alive.returncode == 0 and "trading" in alive.stdout, alive

        engine.send_signal(signal.SIGKILL)
        assert engine.wait(10) == -signal.SIGKILL
        dead = subprocess.run(health, env=clean_env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert dead.returncode == 1 and "Traceback" not in dead.stderr, dead

        # systemd starts the emergency unit with the failed unit's name and result (systemd.exec(5)).
        monitor = {"MONITOR_UNIT": "cockpit.service", "MONITOR_SERVICE_RESULT": "watchdog",
                   "MONITOR_EXIT_CODE": "killed", "MONITOR_EXIT_STATUS": "KILL"}
        command = rendered(exec_start("cockpit-emergency.service"), config, state)
        done = subprocess.run(command, env={**env, **monitor}, cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
        assert "DONE: everything cancelled and flat" in done.stdout, done.stdout
        assert "alert: discord: delivered" in done.stdout and "alert: log: delivered" in done.stdout, done.stdout

        final = sim_state()
        assert sim_positions(final) == {} and sim_working(final) == []

        [alert] = [e for e in discord.embeds() if "Emergency flatten" in e["title"]]
        assert "everything cancelled and flat" in alert["title"]
        text = alert.get("description", "")
        assert "cockpit.service failed (watchdog, killed KILL): the engine is down" in text
        assert "1 open order(s) cancelled" in text
        assert "AAPL: flat, from 7" in text and "MSFT: flat, from -3" in text and "final positions: none" in text
        fields = {f["name"]: f["value"] for f in alert["fields"]}
        assert fields["trigger"] == "cockpit.service failed (watchdog, killed KILL)"
        assert fields["by"].startswith("direct-flatten:") and fields["exit code"] == "0"
        assert discord.url not in done.stdout + done.stderr  # the webhook's token is never printed

        db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
        try:
            stored = db.execute("SELECT a.kind, d.sink, d.status FROM alerts a JOIN alert_deliveries d "
                                "ON d.alert_id = a.id WHERE a.kind = 'flatten.direct' ORDER BY d.sink").fetchall()
            reason = db.execute("SELECT detail FROM audit WHERE kind = 'operator.flatten_direct'").fetchone()
        finally:
            db.close()
        assert stored == [("flatten.direct", "discord", "sent"), ("flatten.direct", "log", "sent")]
        assert reason is not None and "cockpit.service failed (watchdog, killed KILL)" in reason[0]

        # The operator's `systemctl start cockpit` afterwards: reconciled, but halted by the emergency.
        assert "next start: HALTED" in done.stdout
        latch = read_latch(state)
        assert latch is not None and latch.actor.startswith("direct-flatten:")
        with (tmp_path / "engine.err").open("a") as err:
            engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        until(lambda: engine.poll() is not None or _status(api) is not None, 30, "the engine started again")
        s = _status(api)
        assert s is not None and s["trading_state"] == "HALTED", (tmp_path / "engine.err").read_text()[-2000:]
        assert s["trading_reason"].startswith("operator halt by direct-flatten:") and "emergency flatten" in \
            s["trading_reason"]
        assert read_latch(state) is None
    finally:
        api.__exit__(None, None, None)
        if engine is not None and engine.poll() is None:
            engine.kill()
            engine.wait(10)
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
        for pipe in (sim.stdout, sim.stderr):
            if pipe is not None:
                pipe.close()


def _status(api: ControlClient) -> dict | None:
    try:
        return api.get("/status")
    except NoEngine:
        return None

