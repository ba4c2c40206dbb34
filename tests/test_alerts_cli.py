"""`cockpit alerts [--json]` and `cockpit alerts test [--sink NAME]` as a user runs them: real
child processes on a real state dir, with and without a running engine."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from cockpit.alerts.log_sink import LogSink
from cockpit.wiring import build_engine
from core.alerts.model import Alert
from core.alerts.sink import SinkError
from core.config import load_config
from tests.conftest import CONFIG, ROOT
from tests.test_control_cli import wait_until


def cockpit(env: dict[str, str], state: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(CONFIG), "--state-dir", str(state)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


class Unauthorized:
    """A sink the far side refuses for good (a revoked webhook)."""

    name = "webhook"

    async def send(self, alert: Alert) -> None:
        raise SinkError("401 unauthorized: the webhook was revoked", permanent=True)

    async def close(self) -> None:
        pass


async def test_undelivered_alerts_of_an_engine_run_are_listed(tmp_path: Path, clean_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    settings = load_config(CONFIG, state_dir=state, overrides={
        "feed": {"speed": "max", "end": "2008-02-29"},
        "alerts": {"routes": {"webhook": {"kinds": ["fill"], "min_severity": "info"}}}})
    engine = build_engine(settings, alert_sinks=[LogSink(), Unauthorized()])
    await engine.start()
    await engine.run()
    await engine.shutdown()

    shown = cockpit(clean_env, state, "alerts", "--json", "--limit", "500")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    lost = data["undelivered"]
    assert lost and all(a["sink"] == "webhook" and a["kind"] == "fill" for a in lost)
    assert lost[0]["reason"] == "refused for good: 401 unauthorized: the webhook was revoked"
    fills = [a for a in data["recent"] if a["kind"] == "fill"]
    assert len(fills) == len(lost)  # every fill: delivered to the log, undelivered to the webhook
    assert {(d["sink"], d["status"]) for d in fills[0]["deliveries"]} == {("log", "sent"), ("webhook", "undelivered")}
    assert {a["kind"] for a in data["recent"]} >= {"engine.started", "engine.stopped"}

    text = cockpit(clean_env, state, "alerts")
    assert text.returncode == 0
    assert f"UNDELIVERED ({len(lost)}):" in text.stdout and "webhook" in text.stdout
    assert "refused for good: 401 unauthorized" in text.stdout


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The real CLI (cockpit.cli.main) in a child process, with one more sink registered in the
# factory the way the Discord and email sinks are: it posts to a loopback port nobody listens on.
WITH_A_DEAD_SINK = textwrap.dedent("""
    import asyncio, os, sys
    from cockpit.alerts import factory
    from core.alerts.sink import SinkError

    class Webhook:
        name = "webhook"
        async def send(self, alert):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
            except OSError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                raise SinkError(f"cannot reach 127.0.0.1:{sys.argv[1]}: {why}") from None
            writer.close()
        async def close(self):
            pass

    factory.BUILDERS["webhook"] = lambda settings: Webhook()
    from cockpit.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def test_alerts_test_without_an_engine_prints_each_sink_and_fails_on_a_dead_one(
        tmp_path: Path, clean_env: dict[str, str]) -> None:
    state, port = tmp_path / "state", _closed_port()
    out = subprocess.run([sys.executable, "-c", WITH_A_DEAD_SINK, str(port), "alerts", "test", "--config", str(CONFIG),
                          "--state-dir", str(state)], cwd=ROOT, env=clean_env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stdout.splitlines() == ["log: delivered",
                                       f"webhook: failed: cannot reach 127.0.0.1:{port}: Connection refused"]
    assert "Traceback" not in out.stderr
    # Recorded in the store either way; the log sink's test line is in the engine's log file.
    tests = {t["sink"]: t for t in json.loads(cockpit(clean_env, state, "alerts", "--json").stdout)["tests"]}
    assert tests["log"]["last_status"] == "sent" and tests["log"]["last_delivered_at"]
    assert tests["webhook"]["last_status"] == "undelivered" and tests["webhook"]["last_delivered_at"] is None
    assert "Connection refused" in tests["webhook"]["last_reason"]
    assert "[test] test alert from cockpit alerts test" in (state / "logs" / "cockpit.log").read_text()

    only = subprocess.run([sys.executable, "-c", WITH_A_DEAD_SINK, str(port), "alerts", "test", "--sink", "log",
                           "--config", str(CONFIG), "--state-dir", str(state)], cwd=ROOT, env=clean_env,
                          capture_output=True, text=True, timeout=60)
    assert (only.returncode, only.stdout) == (0, "log: delivered\n")
    unknown = cockpit(clean_env, state, "alerts", "test", "--sink", "discord")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("cockpit: no alert sink 'discord' is configured (configured: log; a sink with "
                                      "no settings is off)")


def test_alerts_test_goes_through_a_running_engine(tmp_path: Path, clean_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--speed", "1", "--config", str(CONFIG),
                               "--state-dir", str(state)], cwd=ROOT, env=clean_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (state / "control.sock").exists(), timeout=30)
        out = cockpit(clean_env, state, "alerts", "test", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"results": [{"sink": "log", "delivered": True, "reason": None}]}
        refused = cockpit(clean_env, state, "alerts", "test", "--sink", "nope")
        assert refused.returncode == 2 and "no alert sink 'nope' in this engine" in refused.stderr
        # Committed at once (the replay at speed 1 may not flush for hours): readable while it runs.
        tests = json.loads(cockpit(clean_env, state, "alerts", "--json").stdout)["tests"]
        assert [(t["sink"], t["last_status"]) for t in tests] == [("log", "sent")]
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)
    assert engine.returncode == 0
    log = (state / "logs" / "cockpit.log").read_text()
    assert "[test] test alert from uid" in log and "via socket: cli:" in log
