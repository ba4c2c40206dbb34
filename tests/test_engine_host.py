"""EngineHost: the one way the TUI and `cockpit --no-ui` start and stop an engine (real engine,
paper venue, bundled data, SQLite in a temp dir)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from cockpit.engine_host import EngineHost
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG


def make_host(tmp_path: Path, end: str = "2008-03-31") -> EngineHost:
    settings = load_config(CONFIG, state_dir=tmp_path, overrides={"feed": {"speed": "max", "end": end}})
    return EngineHost(build_engine(settings))


async def test_a_run_to_the_end_then_one_stop_flushes_and_closes(tmp_path: Path, clean_env) -> None:
    host = make_host(tmp_path)
    assert host.state == "starting"
    assert await host.run() is True
    assert host.state == "replay finished" and host.done.is_set()
    assert host.engine.store.is_open
    await host.stop()
    assert not host.engine.store.is_open
    assert not host.control.path.exists()  # the control socket is gone with the engine
    await host.stop()  # a second stop (the app's unmount after its quit) does nothing


async def test_stop_waits_for_the_run_and_survives_a_cancelled_caller(tmp_path: Path, clean_env) -> None:
    host = make_host(tmp_path, end="2017-12-31")
    run = asyncio.ensure_future(host.run())
    while host.state != "running":
        await asyncio.sleep(0)
    first = asyncio.ensure_future(host.stop())
    second = asyncio.ensure_future(host.stop())  # e.g. a SIGTERM while a quit is flushing
    await asyncio.sleep(0)
    first.cancel()  # Textual cancels its workers on the way out
    await second
    assert await run is False and host.state == "stopped"
    assert not host.engine.store.is_open  # the flush ran to the end despite the cancelled caller


async def test_stop_signals_reach_the_handler_and_are_released(tmp_path: Path, clean_env) -> None:
    host = make_host(tmp_path)
    got: list[signal.Signals] = []
    host.handle_signals((signal.SIGHUP,), got.append)
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0)
    assert got == [signal.SIGHUP]
    host.release_signals()
    assert asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP) is False  # none left behind
    await host.stop()  # never started: nothing to flush, and no hang
