"""`cockpit --start-halted` and `[engine] start_halted = true`, headless through the CLI: the
engine comes up (paper, the replay running: its feed on) with trading HALTED as if the operator
had pressed halt, audited with who asked; `cockpit status` shows it; orders are refused until
`cockpit resume`. And the cockpit app: the same halt, lifted with its halt/resume key."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cockpit.control.client import ControlClient, NoEngine
from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # polling another process


class Cli:
    def __init__(self, env: dict[str, str], config: Path, state: Path, log: Path) -> None:
        self.env, self.config, self.state, self.log = env, config, state, log
        self.common = ["--config", str(config), "--state-dir", str(state)]
        self.engine: subprocess.Popen | None = None

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "cockpit", *args, *self.common], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def start(self, *args: str) -> dict[str, Any]:
        """The engine as `cockpit [args] --no-ui`, until it answers with its feed running."""
        with self.log.open("a") as err:
            self.engine = subprocess.Popen([sys.executable, "-m", "cockpit", *args, "--no-ui", *self.common],
                                           env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        return wait_for(lambda: self._up(), "the engine up, its feed running")

    def _up(self) -> dict[str, Any] | None:
        assert self.engine is not None and self.engine.poll() is None, self.log.read_text()[-2000:]
        s = self.status()
        return s if s and (s["feeds"][0]["events"] or 0) > 0 else None

    def status(self) -> dict[str, Any] | None:
        try:
            return ControlClient(self.state / "control.sock", timeout=5).get("/status")
        except NoEngine:
            return None

    def stop(self) -> None:
        if self.engine is not None and self.engine.poll() is None:
            self.engine.send_signal(signal.SIGTERM)
            assert self.engine.wait(30) == 0


@pytest.fixture
def cli(clean_env: dict[str, str], tmp_path: Path) -> Iterator[Cli]:
    env = {**clean_env, "COCKPIT_FEED__SPEED": "86400", "COCKPIT_DEADMAN__ENABLED": "false"}
    c = Cli(env, CONFIG, tmp_path / "state", tmp_path / "engine.log")
    try:
        yield c
    finally:
        if c.engine is not None and c.engine.poll() is None:
            c.engine.kill()
            c.engine.wait(10)


def halts(state: Path) -> list[tuple[str, dict[str, Any]]]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [(a, json.loads(d)) for a, d in db.execute("SELECT actor, detail FROM audit WHERE kind = "
                                                          "'operator.halt' ORDER BY seq")]
    finally:
        db.close()


def test_start_halted_flag_then_resume(cli: Cli) -> None:
    s = cli.start("--start-halted")
    assert s["trading_state"] == "HALTED", s
    assert s["trading_reason"].startswith("operator halt by cli:") and s["trading_reason"].endswith(
        "start halted: --start-halted"), s
    text = cli("status").stdout
    assert "trading   HALTED (operator halt by cli:" in text and "start halted: --start-halted" in text, text
    [(actor, row)] = halts(cli.state)
    assert actor.startswith("cli:") and row["reason"] == "start halted: --start-halted" and row["after"] == "HALTED"
    before = cli.status()["feeds"][0]["events"]
    wait_for(lambda: cli.status()["feeds"][0]["events"] > before, "the replay still running while halted")

    refused = cli("order", "buy", "SPY", "1", "--reason", "while halted")
    assert refused.returncode == 1 and "HALTED" in refused.stderr, refused
    assert cli.status()["open_orders"] == 0 and json.loads(cli("fills", "--json").stdout) == []  # nothing traded

    resumed = cli("resume", "--reason", "checked the book")
    assert resumed.returncode == 0 and "trading ACTIVE (was HALTED)" in resumed.stdout, resumed
    assert cli("order", "buy", "SPY", "1", "--reason", "trading again").returncode == 0
    wait_for(lambda: json.loads(cli("fills", "--json").stdout), "the order filled")
    cli.stop()

    s = cli.start()  # without the flag: the resume stands (a halt persists until resumed, and back)
    assert s["trading_state"] == "ACTIVE", s
    cli.stop()


def test_start_halted_in_the_config_halts_every_start(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.read_text().replace("start_halted = false", "start_halted = true"))
    assert "start_halted = true" in config.read_text()
    cli.config = config
    cli.common = ["--config", str(config), "--state-dir", str(cli.state)]
    s = cli.start("run")  # `cockpit run --no-ui` is the same engine
    assert s["trading_state"] == "HALTED" and s["trading_reason"] == (
        f"operator halt by engine: start halted: [engine] start_halted = true in {config}"), s
    assert cli("resume", "--reason", "morning checks done").returncode == 0
    cli.stop()
    s = cli.start()
    assert s["trading_state"] == "HALTED", s  # every start, whatever the last run's state
    assert [a for a, _ in halts(cli.state)] == ["engine", "engine"]
    cli.stop()


def test_the_flag_on_the_run_subcommand_and_the_environment(cli: Cli) -> None:
    cli.env = {**cli.env, "COCKPIT_ENGINE__START_HALTED": "true"}
    s = cli.start("run", "--start-halted")
    assert s["trading_state"] == "HALTED" and s["trading_reason"].startswith("operator halt by cli:"), s
    assert "[engine] start_halted = true" in s["trading_reason"]  # both asked: one halt, both reasons
    assert len(halts(cli.state)) == 1
    cli.stop()


async def test_the_cockpit_starts_halted_and_its_key_resumes(tmp_path: Path, clean_env: dict[str, str]) -> None:
    from cockpit.engine_run import EngineRun
    from cockpit.tui.screens import ConfirmScreen
    from core.config import load_config
    from tests.test_tui import make_app
    from tests.test_tui_operator import settle

    app = make_app(tmp_path)
    settings = load_config(CONFIG, state_dir=tmp_path)
    with EngineRun(settings, start_halted=True) as run:
        app.host.run_record = run
        async with app.run_test(size=(160, 50)) as pilot:
            await app.engine_done.wait()
            assert str(app.engine.gate.state) == "HALTED"
            assert not app.engine.oms.orders  # the whole replay ran halted: no order
            app.refresh_panes()
            await pilot.pause()
            assert "HALTED" in str(app.query_one("#status").render())
            await pilot.press("h")
            assert isinstance(app.screen, ConfirmScreen) and "RESUME" in app.screen.question
            await pilot.press("y")
            await settle(app, pilot)
            assert str(app.engine.gate.state) == "ACTIVE"
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await app.workers.wait_for_complete()
    assert app.return_value == 0
    from cockpit.run_record import read_run

    record = read_run(tmp_path)  # `q` is a clean stop: the watchdog leaves it alone
    assert record is not None and record.clean_stop and record.traded, record
