"""The engine speaks systemd's notify protocol itself (issue 13): a real Unix datagram socket
stands in for systemd. `cockpit --no-ui` as a child process says READY when trading starts,
pings WATCHDOG at half of WATCHDOG_USEC with its trading state, and STOPPING on the way out;
a blocked event loop sends no pings."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cockpit.systemd_notify import Notifier
from tests.conftest import CONFIG, ROOT


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def _drain(sock: socket.socket, until: float, stop_on: str | None = None) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    while time.monotonic() < until:
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            continue
        got.append((time.monotonic(), data))
        if stop_on and stop_on in data:
            break
    return got


def test_a_headless_engine_says_ready_pings_the_watchdog_and_says_stopping(tmp_path: Path, clean_env) -> None:
    sock = _listen(tmp_path / "notify.sock")
    env = {**clean_env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(tmp_path / "state"), "--speed", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = _drain(sock, time.monotonic() + 60, stop_on="READY=1")
        assert first and "READY=1" in first[-1][1] and "STATUS=running, trading ACTIVE" in first[-1][1], first
        pings = [t for t, m in _drain(sock, time.monotonic() + 3.2) if "WATCHDOG=1" in m]
        assert len(pings) >= 5, pings  # every 0.5 s (half of 1 s) for 3.2 s
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        # never as late as the watchdog period itself (what systemd kills for); a loaded 2-core
        # runner may delay one ping by a few hundred ms, which a 0.4 s period could not absorb
        assert max(gaps) < 1.0, gaps
        proc.send_signal(signal.SIGTERM)
        last = _drain(sock, time.monotonic() + 60, stop_on="STOPPING=1")
        assert last and "STOPPING=1" in last[-1][1], last
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


async def test_a_blocked_loop_sends_no_pings(tmp_path: Path) -> None:
    """A reader thread stamps each datagram as it arrives: none while the loop is stuck (a
    pinger on a thread of its own would keep pinging and hide a hung engine from systemd)."""
    import threading

    sock = _listen(tmp_path / "notify.sock")
    arrived: list[float] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                if b"WATCHDOG=1" in sock.recv(4096):
                    arrived.append(time.monotonic())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "100000"})
    task = asyncio.ensure_future(notifier.watchdog(lambda: "running, trading ACTIVE"))
    try:
        await asyncio.sleep(0.3)  # pings every 0.05 s while the loop is free
        blocked_from = time.monotonic()
        time.sleep(0.6)  # the engine's loop stuck: no coroutine runs
        blocked_to = time.monotonic()
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        notifier.close()
        done.set()
        reader.join(timeout=5)
        sock.close()
    assert sum(t < blocked_from for t in arrived) >= 3 and sum(t > blocked_to for t in arrived) >= 3, arrived
    assert not [t for t in arrived if blocked_from + 0.05 < t < blocked_to], (arrived, blocked_from, blocked_to)


def test_without_notify_socket_nothing_is_sent_and_watchdog_pid_is_respected() -> None:
    assert not Notifier.from_env({}).enabled
    other = Notifier.from_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.address == "\0x" and other.watchdog_seconds is None  # the pings are another process's job
    Notifier.from_env({}).send("READY=1")  # no socket: nothing, no error
