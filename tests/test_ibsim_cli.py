"""The simulator's command line, as a real child process: it prints where it listens, serves
a real ib_async client, stops cleanly on SIGTERM with its state on disk, and refuses bad
arguments, a busy port and a foreign state file with one line instead of a traceback."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from ib_async import IB, MarketOrder, Stock

from brokers.ibsim.cli import main

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import IBLogGuard, status  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"^IB Gateway simulator listening on 127\.0\.0\.1:(\d+) \(server version 178, account (DU\d+)\)$")


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brokers.ibsim", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def listening_port(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    m = LISTENING.match(line)
    assert m, f"unexpected first line {line!r}"
    return int(m.group(1))


async def terminate(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, err.decode()


async def test_cli_serves_and_stops_on_sigterm_keeping_state(tmp_path: Path, ib_log: IBLogGuard) -> None:
    ib_log.allow("Peer closed connection")
    state = tmp_path / "sim-state.json"
    proc = await spawn("--port", "0", "--state", str(state), "--tick-interval", "0", "--seed", "5")
    try:
        port = await listening_port(proc)
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=11, timeout=5, raiseSyncErrors=True)
        try:
            [c] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            trade = ib.placeOrder(c, MarketOrder("BUY", 25, orderRef="cli-1"))
            await status(trade, "Filled")
        finally:
            ib.disconnect()
        code, err = await terminate(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0 and "Traceback" not in err
    saved = json.loads(state.read_text())
    assert [(o["order_ref"], o["status"]) for o in saved["orders"]] == [("cli-1", "Filled")]
    assert saved["positions"]["AAPL"]["qty"] == "25"

    # A new process on the same file is the same gateway.
    proc = await spawn("--port", "0", "--state", str(state), "--tick-interval", "0", "--seed", "5")
    try:
        port = await listening_port(proc)
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=11, timeout=5, raiseSyncErrors=True)
        try:
            assert [p.position for p in ib.positions()] == [25.0]
            assert [f.execution.orderRef for f in ib.fills()] == ["cli-1"]
        finally:
            ib.disconnect()
        code, err = await terminate(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0 and "Traceback" not in err


async def test_cli_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await spawn("--port", str(port))
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert err.decode().strip() == f"ib-sim: port {port} on 127.0.0.1 is already in use"
    assert out == b""


@pytest.mark.parametrize("argv", [[], ["--port", "abc"], ["--port", "70000"], ["--port", "1", "--host", "0.0.0.0"]])
def test_bad_arguments_print_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: cockpit ib-sim") and "Traceback" not in err


def test_foreign_state_file_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    assert main(["--port", "0", "--state", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ib-sim: state file {bad}: state schema None") and "\n" not in err
    assert main(["--port", "0", "--state", str(tmp_path / "missing-dir" / "s.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ib-sim: cannot write state file") and "\n" not in err
