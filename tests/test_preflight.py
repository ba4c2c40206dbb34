"""`cockpit preflight`: a fresh paper state lists exactly what is missing; each item turns PASS
when the thing it asks for is done (real runs: a headless paper replay, the drill, a test alert
to a local Discord stand-in, a backup); a LIVE account refuses to start unless overridden."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cockpit.preflight.checks import Context, no_unresolved_break, pacing, paper_sessions
from core.config import load_config
from tests.conftest import CONFIG, ROOT
from tests.test_deploy_emergency import discord  # noqa: F401  (the fixture: a local Discord stand-in)

FRESH_FAILS = ["paper traded", "every risk check exercised", "alert sinks tested", "walk-forward report per strategy",
               "capital allocation per strategy", "dead-man and watchdog", "backup recent and restorable"]


def cockpit(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def preflight(env: dict[str, str], config: Path, state: Path, *extra: str) -> tuple[int, dict]:
    out = cockpit(env, "preflight", "--json", "--config", str(config), "--state-dir", str(state), *extra)
    return out.returncode, json.loads(out.stdout)


def failing(report: dict) -> list[str]:
    return [c["name"] for c in report["checks"] if not c["ok"]]


def test_a_fresh_paper_state_lists_exactly_what_is_missing(tmp_path: Path, clean_env: dict[str, str]) -> None:
    code, report = preflight(clean_env, CONFIG, tmp_path / "state")
    assert code == 1 and report["ok"] is False
    names = [c["name"] for c in report["checks"]]
    assert set(FRESH_FAILS) <= set(names)
    assert failing(report) == [n for n in names if n in FRESH_FAILS]  # the runbook is shipped; nothing else fails
    assert all(c["fix"] for c in report["checks"] if not c["ok"])  # every FAIL says what to do
    walk = next(c for c in report["checks"] if c["name"] == "walk-forward report per strategy")
    assert walk["detail"].startswith("no walk-forward report")
    text = cockpit(clean_env, "preflight", "--config", str(CONFIG), "--state-dir", str(tmp_path / "state"))
    assert text.returncode == 1 and "FAIL  paper traded" in text.stdout
    assert text.stdout.rstrip().endswith(f"preflight: FAIL ({len(FRESH_FAILS)} of {len(names)} checks)")


def test_each_item_turns_pass_when_done(tmp_path: Path, clean_env: dict[str, str], discord) -> None:  # noqa: F811
    config = tmp_path / "config.toml"  # the default config, with allocations and a (local) Discord
    config.write_text(CONFIG.read_text() + f"""
[allocation]
sma_cross = "40%"
rsi_reversion = "40%"

[alerts.discord]
webhook_url = "{discord.url}"
""")
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_FEED__START": "2010-01-04", "COCKPIT_FEED__END": "2010-03-31"}
    run = cockpit(env, "--no-ui", "--speed", "max", "--config", str(config), "--state-dir", str(state))
    assert run.returncode == 0, run.stderr
    code, report = preflight(env, config, state)
    assert "capital allocation per strategy" not in failing(report)
    paper = next(c for c in report["checks"] if c["name"] == "paper traded")  # a replay is history, not paper trading
    assert not paper["ok"] and "0 session(s) on this state; 61 replayed session(s) do not count" in paper["detail"], paper
    assert "backup recent and restorable" not in failing(report)  # the session-close backups
    assert "every risk check exercised" in failing(report)

    code, report = preflight(env, config, state, "--drill")
    assert all(d["refused"] for d in report["drill"]) and {d["check"] for d in report["drill"]} >= {
        "max_order_qty", "price_collar_pct", "daily_loss_limit", "duplicate_window_seconds", "allocation"}
    assert "every risk check exercised" not in failing(report)

    assert "alert sinks tested" in failing(report)
    sent = cockpit(env, "alerts", "test", "--sink", "discord", "--config", str(config), "--state-dir", str(state))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    code, report = preflight(env, config, state)
    assert failing(report) == ["paper traded", "walk-forward report per strategy", "dead-man and watchdog"]
    code, report = preflight({**env, "WATCHDOG_USEC": "30000000"}, config, state)
    assert failing(report) == ["paper traded", "walk-forward report per strategy"]  # under systemd's watchdog
    verify = cockpit(env, "audit", "verify", "--config", str(config), "--state-dir", str(state))
    assert verify.returncode == 0, verify.stdout + verify.stderr  # the drill's rows are in the chain


def _db(tmp_path: Path, rows: list[tuple[str, str, dict]]) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "audit.sqlite")
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts TEXT, kind TEXT, subject TEXT, detail TEXT)")
    conn.execute("CREATE TABLE daily_reports (date TEXT, summary TEXT)")
    for i, (kind, subject, detail) in enumerate(rows, start=1):
        conn.execute("INSERT INTO audit VALUES (?,?,?,?,?)", (i, f"2026-11-{i:02d}T20:00:00+00:00", kind, subject,
                                                              json.dumps(detail)))
    return conn


def test_a_break_counts_until_resolved(tmp_path: Path) -> None:
    settings = load_config(CONFIG)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    conn = _db(tmp_path, [("reconcile.break", "AAPL", {}), ("operator.resolve", "AAPL", {"after": "break stays"})])
    result = no_unresolved_break(Context(settings, conn, now))
    assert not result.ok and "AAPL" in result.detail and "cockpit resolve AAPL" in result.fix
    conn.execute("INSERT INTO audit VALUES (3, '2026-11-03', 'operator.resolve', 'AAPL', ?)",
                 (json.dumps({"after": "resolved"}),))
    assert no_unresolved_break(Context(settings, conn, now)).ok
    conn.execute("INSERT INTO audit VALUES (4, '2026-11-04', 'reconcile.break', 'AAPL', '{}')")
    assert not no_unresolved_break(Context(settings, conn, now)).ok  # a new break after the resolve


def test_only_sessions_reported_on_the_live_clock_count_as_paper_traded(tmp_path: Path) -> None:
    settings = load_config(CONFIG, overrides={"preflight": {"min_paper_sessions": 3}})
    conn = sqlite3.connect(tmp_path / "reports.sqlite")
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE daily_reports (date TEXT, written_at TEXT)")
    conn.executemany("INSERT INTO daily_reports VALUES (?, ?)", [
        ("2008-01-02", "2026-11-20T10:00:00+00:00"),  # a replay of history, written today
        ("2026-11-27", "2026-11-27T21:00:10+00:00"),  # at the close
        ("2026-11-28", "2026-11-30T13:30:00+00:00"),  # at the next start, the engine down at the close
    ])
    now = datetime(2026, 12, 1, tzinfo=UTC)
    result = paper_sessions(Context(settings, conn, now))
    assert not result.ok and result.detail.startswith("2 session(s) on this state (2026-11-27 .. 2026-11-28); 1 "
                                                      "replayed session(s) do not count"), result.detail
    assert "on the live clock" in result.fix
    conn.execute("INSERT INTO daily_reports VALUES ('2026-11-30', '2026-11-30T21:00:00+00:00')")
    assert paper_sessions(Context(settings, conn, now)).ok


def test_a_delayed_ib_fallback_fails_the_go_live_check(tmp_path: Path) -> None:
    from cockpit.preflight.checks import live_prices

    feed = {"kind": "ibkr", "symbols": ["AAPL"], "fallbacks": [{"kind": "ibkr", "name": "late", "port": 4012,
                                                                "market_data_type": 3}]}
    settings = load_config(CONFIG, overrides={"broker": {"kind": "ibkr"}, "feed": feed})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    result = live_prices(Context(settings, None, now))
    assert not result.ok and "late (market_data_type 3)" in result.detail and "market_data_type = 1" in result.fix
    feed["fallbacks"][0]["market_data_type"] = 1
    settings = load_config(CONFIG, overrides={"broker": {"kind": "ibkr"}, "feed": feed})
    assert live_prices(Context(settings, None, now)).ok
    assert live_prices(Context(load_config(CONFIG), None, now)).ok  # paper: no real orders


def test_a_pacing_violation_in_the_recent_sessions_fails(tmp_path: Path) -> None:
    settings = load_config(CONFIG)
    conn = _db(tmp_path, [("broker.pacing", "ibkr", {"message": "Max rate of messages per second"})])
    conn.executemany("INSERT INTO daily_reports VALUES (?, '{}')", [(f"2026-11-{d:02d}",) for d in range(1, 4)])
    result = pacing(Context(settings, conn, datetime(2026, 12, 1, tzinfo=UTC)))
    assert not result.ok and "1 pacing violation" in result.detail


@pytest.mark.parametrize("account", ["U1234567"])
def test_a_live_account_refuses_to_start_unless_overridden(tmp_path: Path, clean_env: dict[str, str],
                                                           account: str) -> None:
    from tests.test_feed_failover_ib import start_sim
    from tests.test_ibkr_wiring import ibkr_config

    sim, port = start_sim(tmp_path / "sim.json", "--account", account)
    try:
        config = ibkr_config(tmp_path, port, client_id=51, name="live.toml")
        refused = cockpit(clean_env, "--no-ui", "--config", str(config), timeout=60)
        assert refused.returncode == 2
        line = refused.stderr.strip().splitlines()[-1]
        assert "refusing to trade a LIVE account: the go-live check fails" in line and "--override-preflight" in line
        db = sqlite3.connect(tmp_path / "state" / "cockpit.sqlite")
        assert db.execute("SELECT count(*) FROM audit WHERE kind = 'preflight.refused'").fetchone()[0] == 1
        db.close()
        engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config),
                                   "--override-preflight", "drill: rehearsal against the simulator"],
                                  cwd=ROOT, env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from tests.test_control_cli import wait_until

            sock = tmp_path / "state" / "control.sock"
            wait_until(lambda: sock.exists() or engine.poll() is not None)
            assert engine.poll() is None
        finally:
            engine.terminate()
            engine.wait(timeout=30)
        db = sqlite3.connect(tmp_path / "state" / "cockpit.sqlite")
        actor, detail = db.execute("SELECT actor, detail FROM audit WHERE kind = 'preflight.override'").fetchone()
        db.close()
        assert actor.startswith("cli:") and "drill: rehearsal" in detail and "paper traded" in detail
    finally:
        sim.terminate()
        sim.wait(timeout=30)
