"""A LIVE account's start against the go-live check raises a critical alert through the engine's
alert router: refused (exit 2) and started with --override-preflight, each one alert at a local
Discord stand-in, against `cockpit ib-sim` with a live account id; a pass raises none."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cockpit.control.client import ControlClient, NoEngine
from core.alerts.from_events import alerts_for
from core.alerts.lane import Route
from core.alerts.model import Severity
from core.config import AlertsConfig
from core.domain.events import PreflightDecided
from tests.conftest import ROOT
from tests.test_deploy_emergency import DiscordStandIn, discord  # noqa: F401  (the fixture)
from tests.test_feed_failover_ib import start_sim
from tests.test_ibkr_wiring import ibkr_config
from tests.test_watchdog import wait_for

T0 = datetime(2026, 12, 2, 15, tzinfo=UTC)


def test_refused_and_override_are_critical_and_reach_discord_and_email_by_default() -> None:
    assert alerts_for(PreflightDecided("pass", (), "engine"), T0) == []
    [refused] = alerts_for(PreflightDecided("refused", ("paper traded", "alert sinks tested"), "engine"), T0)
    assert refused.kind == "preflight.refused" and refused.severity is Severity.CRITICAL
    assert "paper traded, alert sinks tested" in refused.text and "--override-preflight" in refused.text
    [override] = alerts_for(PreflightDecided("override", ("paper traded",), "cli:ops@box", "known gaps"), T0)
    assert override.kind == "preflight.override" and override.severity is Severity.CRITICAL
    assert "override by cli:ops@box: known gaps" in override.text and ("by", "cli:ops@box") in override.fields
    routes = AlertsConfig().routes
    for sink in ("discord", "email", "log", "tui"):
        assert Route(routes[sink]).accepts(refused) and Route(routes[sink]).accepts(override), sink


def _titles(state: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in db.execute("SELECT kind, severity FROM alerts WHERE kind LIKE 'preflight.%' "
                                             "ORDER BY rowid")]
    finally:
        db.close()


def test_a_live_start_refused_or_overridden_alerts(tmp_path: Path, clean_env: dict[str, str],
                                                   discord: DiscordStandIn) -> None:  # noqa: F811
    sim, port = start_sim(tmp_path / "sim.json", "--account", "U1234567")
    env = {**clean_env, "COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": discord.url}
    try:
        config = ibkr_config(tmp_path, port, client_id=52, name="live.toml")
        refused = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=90)
        assert refused.returncode == 2 and "refusing to trade a LIVE account" in refused.stderr, refused.stderr
        [alert] = [e for e in discord.embeds() if "LIVE start" in e["title"]]  # delivered before the exit
        assert alert["title"] == "CRITICAL · LIVE start REFUSED: the go-live check fails"
        assert "paper traded" in {f["name"]: f["value"] for f in alert["fields"]}["failing"]
        assert _titles(tmp_path / "state") == [("preflight.refused", "critical")]

        engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config),
                                   "--override-preflight", "rehearsal against the simulator"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            api = ControlClient(tmp_path / "state" / "control.sock", timeout=5)

            def up() -> bool:
                assert engine.poll() is None
                try:
                    return bool(api.get("/status"))
                except NoEngine:
                    return False

            wait_for(up, "the live engine started with the override")
            [alert] = wait_for(lambda: [e for e in discord.embeds() if "OVERRIDES" in e["title"]], "the alert")
            assert alert["title"] == "CRITICAL · LIVE start OVERRIDES the go-live check"
            fields = {f["name"]: f["value"] for f in alert["fields"]}
            assert fields["by"].startswith("cli:") and fields["reason"] == "rehearsal against the simulator"
        finally:
            engine.send_signal(signal.SIGTERM)
            assert engine.wait(30) == 0
        assert _titles(tmp_path / "state") == [("preflight.refused", "critical"), ("preflight.override", "critical")]
    finally:
        sim.terminate()
        sim.wait(timeout=30)
