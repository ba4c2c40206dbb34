"""Paths from the config stay inside the state dir, the engine removes only its own socket, and
the CLI client says in one line when an engine hangs or is not an engine (issue 11, first part)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cockpit.control.client import ControlClient, NoEngine
from core.config import ConfigError, load_config
from tests.conftest import CONFIG, ROOT


@pytest.mark.parametrize("key,value,why", [
    ("socket", "cockpit.sqlite", "engine's own files"),
    ("socket", "engine.lock", "engine's own files"),
    ("socket", "../victim.txt", "climbs out"),
    ("socket", "ABSOLUTE/elsewhere.sock", "outside the state dir"),
    ("socket", "", "empty"),
    ("socket", ".", "the state dir itself"),
    ("socket", "a\x00b", "NUL"),
    ("socket", "x" * 300, "bytes long"),
    ("socket", "logs/cockpit.log", "the log file"),
])
def test_bad_socket_paths_refuse_to_start(tmp_path: Path, clean_env, key: str, value: str, why: str) -> None:
    value = value.replace("ABSOLUTE", str(tmp_path / "elsewhere"))  # outside the state dir, inside the test's
    with pytest.raises(ConfigError, match=why):
        load_config(CONFIG, state_dir=tmp_path, overrides={"api": {key: value}})


@pytest.mark.parametrize("value,why", [
    ("", "empty"), (".", "the state dir itself"), ("cockpit.sqlite", "engine's own files"),
    ("ABSOLUTE/x.log", "outside the state dir"), ("../x.log", "climbs out"), ("a\x00.log", "NUL"),
])
def test_bad_log_paths_refuse_to_start(tmp_path: Path, clean_env, value: str, why: str) -> None:
    value = value.replace("ABSOLUTE", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match=why):
        load_config(CONFIG, state_dir=tmp_path, overrides={"logging": {"file": value}})


def test_the_socket_and_the_log_file_never_share_a_name(tmp_path: Path, clean_env) -> None:
    with pytest.raises(ConfigError, match="is logging.file too"):
        load_config(CONFIG, state_dir=tmp_path, overrides={"api": {"socket": "x.sock"}, "logging": {"file": "x.sock"}})


def test_a_file_at_the_socket_path_is_never_deleted(tmp_path: Path, clean_env) -> None:
    """Before: the engine unlinked whatever sat at api.socket. Now it refuses in one line."""
    state = tmp_path / "state"
    state.mkdir()
    precious = state / "notes.txt"
    precious.write_text("keep me")
    proc = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                           str(state), "--speed", "max"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**clean_env, "COCKPIT_API__SOCKET": "notes.txt"})
    assert proc.returncode != 0
    assert "is not a control socket" in proc.stderr and "Traceback" not in proc.stderr
    assert precious.read_text() == "keep me"


def _fake_engine(path: Path, answer: bytes | None) -> threading.Thread:
    """A Unix socket that answers ``answer`` to any request, or never (None)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        if answer is not None:
            conn.sendall(answer)
        else:
            conn.recv(1)  # hold the request until the client gives up and closes
        conn.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_hung_engine_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    thread = _fake_engine(path, None)
    with ControlClient(path, timeout=0.5) as client, pytest.raises(NoEngine, match="did not answer in 0.5 s"):
        client.get("/status")
    thread.join(5)


def test_a_reply_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    body = b"<html>not an engine</html>"
    thread = _fake_engine(path, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with ControlClient(path) as client, pytest.raises(NoEngine, match="not JSON"):
        client.get("/status")
    thread.join(5)


@pytest.mark.parametrize("value", ["nan", "inf", "1e-300", "-1", "1e9"])
def test_ib_sim_refuses_a_tick_interval_that_would_spin_or_never_tick(value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--tick-interval", value],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--tick-interval must be" in proc.stderr and "Traceback" not in proc.stderr


def test_an_empty_actor_is_refused_and_nothing_runs(tmp_path: Path, clean_env) -> None:
    """Before: {"actor": ""} on /halt answered 500 and the halt still ran."""
    import httpx

    from tests.test_control_cli import wait_until

    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(state)], cwd=ROOT, env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (state / "control.sock").exists())
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(state / "control.sock")), base_url="http://c") as c:
            for route in ("/halt", "/resume", "/flatten"):
                answer = c.post(route, json={"actor": ""})
                assert answer.status_code == 422 and "actor" in answer.json()["detail"], answer.text
            assert c.get("/status").json()["trading_state"] == "ACTIVE"
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_the_state_dir_and_its_files_are_private(tmp_path: Path, clean_env) -> None:
    import stat

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    proc = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                           str(state), "--speed", "max"], cwd=ROOT, env=clean_env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    loose = [str(p.relative_to(state)) for p in state.rglob("*")
             if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == [], loose  # the store, its WAL, the logs: none readable by others


@pytest.mark.parametrize("section,key,value", [
    ("paper", "starting_cash", "1e308"), ("paper", "starting_cash", "1e999999"),
    ("paper", "commission_per_share", "1e999999"), ("paper", "price_increment", "1e308"),
    ("paper", "price_increment", "1e-30"), ("deadman", "interval_seconds", 2**63 - 1),
    ("risk", "price_collar_pct", "1e999999"), ("risk", "max_order_qty", "Infinity"), ("risk", "daily_loss_limit", "NaN"),
    ("feed", "speed", "inf"), ("feed", "price_increment", "1e-30"), ("logging", "max_bytes", 10**30),
])
def test_numbers_beyond_a_sane_range_refuse_to_start(tmp_path: Path, clean_env, section: str, key: str, value) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(CONFIG, state_dir=tmp_path, overrides={section: {key: value}})
    assert key in str(refused.value) and "\n" not in str(refused.value).strip()


def test_a_strategy_notional_beyond_range_refuses_to_start(tmp_path: Path, clean_env) -> None:
    """Before: notional = "1e999999" made the engine spin at 100% CPU, deaf to SIGTERM."""
    from cockpit.wiring import build_engine

    config = tmp_path / "config.toml"
    text = CONFIG.read_text().replace('params = { fast = 10, slow = 30, notional = "10000" }',
                                      'params = { fast = 10, slow = 30, notional = "1e999999" }')
    assert "1e999999" in text
    config.write_text(text)
    settings = load_config(config, state_dir=tmp_path / "state")
    with pytest.raises(ConfigError, match="notional"):
        build_engine(settings)
