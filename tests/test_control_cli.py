"""Operator commands from the CLI against a real headless engine, over its real Unix socket."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT


def cli(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(CONFIG),
                           "--state-dir", str(state)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def status(env: dict[str, str], state: Path) -> dict:
    return json.loads(ok(cli(env, state, "status", "--json")))


def wait_until(predicate, timeout: float = 30.0) -> None:
    """Poll a separate engine process until it reaches a state (it runs on its own clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the engine never got there")


@pytest.fixture
def engine(clean_env: dict[str, str], tmp_path: Path):
    """A headless engine replaying one day per second (it trades within seconds and runs for minutes)."""
    env = {**clean_env, "COCKPIT_DEADMAN__INTERVAL_SECONDS": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    sock = tmp_path / "control.sock"
    wait_until(lambda: sock.exists() or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    yield env, tmp_path, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=60)


def test_status_and_socket_mode(engine) -> None:
    env, state, _ = engine
    mode = stat.S_IMODE((state / "control.sock").stat().st_mode)
    assert mode == 0o600
    s = status(env, state)
    assert s["trading_state"] == "ACTIVE"
    assert s["broker"] == {"kind": "paper", "connected": True, "status": "connected"}
    assert s["breaks"] == [] and s["hold"] is None
    assert s["last_reconcile"]["reason"] == "connect" and s["last_reconcile"]["differences"] == []
    assert {"name", "kind", "events"} <= set(s["feeds"][0])
    assert {x["name"] for x in s["strategies"]} == {"sma_cross", "rsi_reversion"}
    assert set(s["symbols"]) == {"AAPL", "NVDA", "ORCL", "SPY", "YHOO"}
    assert s["deadman"]["armed"] is True and 0 < s["deadman"]["seconds_left"] <= 3600
    assert s["risk"]["max_order_qty"] == "10000"
    text = ok(cli(env, state, "status"))
    assert "trading   ACTIVE" in text and "dead-man  armed" in text


def test_halt_refuses_orders_resume_allows_them(engine) -> None:
    env, state, _ = engine
    assert "HALTED" in ok(cli(env, state, "halt", "--reason", "lunch"))
    refused = cli(env, state, "order", "buy", "AAPL", "10")
    assert refused.returncode == 1 and "HALTED" in refused.stderr and "Traceback" not in refused.stderr
    ok(cli(env, state, "resume"))
    assert status(env, state)["trading_state"] == "ACTIVE"
    placed = ok(cli(env, state, "order", "buy", "AAPL", "10", "--json"))
    assert json.loads(placed)["order_id"]


def test_risk_limits_set_refuse_and_persist_across_restart(engine) -> None:
    env, state, proc = engine
    ok(cli(env, state, "risk", "set", "max_order_qty", "5", "--reason", "tighten"))
    refused = cli(env, state, "order", "buy", "AAPL", "10")
    assert refused.returncode == 1 and "max_order_qty" in refused.stderr
    bad = cli(env, state, "risk", "set", "max_order_qty", "lots")
    assert bad.returncode == 1 and "max_order_qty" in bad.stderr and "Traceback" not in bad.stderr
    unknown = cli(env, state, "risk", "set", "max_order_qtyy", "5")
    assert unknown.returncode == 1 and "unknown risk limit" in unknown.stderr
    ok(cli(env, state, "strategy", "disable", "sma_cross"))
    assert json.loads(ok(cli(env, state, "strategy", "list", "--json")))[0] == {
        "name": "sma_cross", "enabled": False, "symbols": ["AAPL", "NVDA", "ORCL", "SPY", "YHOO"], "may_short": False}
    proc.terminate()
    assert proc.wait(timeout=60) == 0
    gone = cli(env, state, "status")
    assert gone.returncode == 1 and "no cockpit engine is running" in gone.stderr
    again = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                              str(state)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (state / "control.sock").exists())
        s = status(env, state)
        assert s["risk"]["max_order_qty"] == "5"
        assert {x["name"]: x["enabled"] for x in s["strategies"]}["sma_cross"] is False
    finally:
        again.terminate()
        again.wait(timeout=60)


def test_position_override_needs_a_reason_and_is_audited(engine) -> None:
    env, state, _ = engine
    missing = cli(env, state, "position", "set", "AAPL", "100", "--avg-cost", "20")
    assert missing.returncode == 2 and "--reason" in missing.stderr
    out = ok(cli(env, state, "position", "set", "AAPL", "100", "--avg-cost", "20", "--reason", "broker statement",
                 "--yes"))
    assert "-> 100 @ 20" in out
    no_tty = cli(env, state, "position", "set", "AAPL", "0", "--avg-cost", "0", "--reason", "x")
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr


def test_paper_reconciliation_break_blocks_the_symbol_until_accepted(engine) -> None:
    """The paper venue is a broker too: a book made wrong by an override is a break."""
    env, state, _ = engine
    venue_qty = {p["symbol"]: p["qty"] for p in status(env, state)["positions"]}.get("ORCL", "0")
    wrong = str(int(float(venue_qty)) + 7)
    ok(cli(env, state, "position", "set", "ORCL", wrong, "--avg-cost", "20", "--reason", "misread", "--yes"))
    found = cli(env, state, "reconcile")
    assert found.returncode == 1 and "ORCL" in found.stdout and "position" in found.stdout, found.stdout
    assert [b["symbol"] for b in status(env, state)["breaks"]] == ["ORCL"]
    assert "BREAKS    ORCL" in ok(cli(env, state, "status"))
    refused = cli(env, state, "order", "buy", "ORCL", "1")
    assert refused.returncode == 1 and "reconciliation break" in refused.stderr
    listing = ok(cli(env, state, "breaks"))
    assert f"engine {wrong}, broker" in listing
    no_tty = cli(env, state, "resolve", "ORCL", "accept")
    assert no_tty.returncode == 2 and "RESOLVE the ORCL break by ACCEPT" in no_tty.stdout
    resolved = cli(env, state, "resolve", "ORCL", "accept", "--reason", "venue is right", "--yes", "--json")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert json.loads(resolved.stdout)["resolved"] is True
    assert status(env, state)["breaks"] == []
    ok(cli(env, state, "reconcile"))
    missing = cli(env, state, "resolve", "ORCL", "accept", "--yes")
    assert missing.returncode == 1 and "no reconciliation break on ORCL" in missing.stderr


def test_flatten_all_halts_cancels_and_closes_every_position(engine) -> None:
    env, state, _ = engine
    for name in ("sma_cross", "rsi_reversion"):  # the book moves only by the orders below
        ok(cli(env, state, "strategy", "disable", name))
    spy = int(D({p["symbol"]: p["qty"] for p in status(env, state)["positions"]}.get("SPY", "0")))
    ok(cli(env, state, "order", "buy", "AAPL", "100"))
    ok(cli(env, state, "order", "sell", "SPY", str(spy + 20)))  # a short of 20: flatten buys it back
    wait_until(lambda: D({p["symbol"]: p["qty"] for p in status(env, state)["positions"]}.get("SPY", "0")) == -20
               and "AAPL" in {p["symbol"] for p in status(env, state)["positions"]})
    preview = cli(env, state, "flatten", "--all")
    assert preview.returncode == 2 and "FLATTEN ALL" in preview.stdout and "BUY 20 SPY" in preview.stdout
    result = cli(env, state, "flatten", "--all", "--yes", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["job"]["done"] and all(p["outcome"] == "flat" for p in report["job"]["symbols"].values())
    s = status(env, state)
    assert s["trading_state"] == "HALTED" and s["positions"] == [] and s["open_orders"] == 0


def test_confirm_and_cancel_all(engine) -> None:
    env, state, _ = engine
    out = json.loads(ok(cli(env, state, "confirm", "--json")))
    assert out["phase"] == "armed" and out["seconds_left"] > 3590
    assert "cancel requested" in ok(cli(env, state, "cancel-all", "--yes"))
    no_tty = cli(env, state, "cancel-all")
    assert no_tty.returncode == 2 and "pass --yes" in no_tty.stderr


def test_tcp_listener_needs_the_bearer_token_and_bad_input_is_a_4xx(clean_env: dict[str, str], tmp_path: Path) -> None:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "t0ken-for-tests-only-123"
    env = {**clean_env, "COCKPIT_API__TCP_PORT": str(port), "COCKPIT_API_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (tmp_path / "control.sock").exists())
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/status").status_code == 401
        assert httpx.get(f"{url}/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/status", headers=auth).json()["trading_state"] == "ACTIVE"
        bad = httpx.post(f"{url}/orders", headers=auth, json={"side": "buy", "symbol": "AAPL"})
        assert bad.status_code == 422 and "qty" in bad.json()["detail"]
        nonsense = httpx.post(f"{url}/orders", headers=auth, json={"side": "hold", "symbol": "AAPL", "qty": "x"})
        assert nonsense.status_code == 409 and "side must be buy or sell" in nonsense.json()["detail"]
        worse = httpx.post(f"{url}/risk", headers=auth, json={"key": "max_order_qty", "value": "-3"})
        assert worse.status_code == 409 and "max_order_qty" in worse.json()["detail"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    verify = cli(env, tmp_path, "audit", "verify")
    assert verify.returncode == 0 and "chain intact" in verify.stdout
