"""The cockpit app driven by Textual's Pilot over a real engine (paper, real data, SQLite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens import ConfirmScreen, HelpScreen
from cockpit.tui.widgets.pnl_pane import PnlPane
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG, ROOT


def make_app(tmp_path: Path, keymap: dict[str, str] | None = None) -> CockpitApp:
    settings = load_config(CONFIG, state_dir=tmp_path,
                           overrides={"feed": {"speed": "max", "end": "2008-03-31"}})
    return CockpitApp(build_engine(settings), AlertBuffer(), keymap)


async def test_engine_trades_on_the_app_loop_and_quit_flushes_state(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        assert app.engine_state == "replay finished"
        app.refresh_panes()
        await pilot.pause()
        assert app.query_one("#orders").row_count > 0
        assert "PAPER" in str(app.query_one("#status").render())
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # "no" keeps the cockpit running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
    assert app.return_value == 0
    assert not app.engine.store.is_open  # shut down, flushed and closed
    out = subprocess.run([sys.executable, "-m", "cockpit", "fills", "--json", "--config", str(CONFIG),
                          "--state-dir", str(tmp_path)], cwd=ROOT, env=clean_env, capture_output=True, text=True)
    assert out.returncode == 0 and '"symbol"' in out.stdout


async def test_help_lists_the_keys(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert ("q", "Quit  [app.quit]") in app.screen.rows
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        app.engine.request_stop()
        await app.engine_done.wait()
        await app.engine.shutdown()


def test_headless_path_never_imports_textual() -> None:
    code = (
        "import sys, cockpit.cli, cockpit.headless, cockpit.wiring, core.kernel.engine, brokers.paper;"
        "assert 'textual' not in sys.modules, 'textual imported';"
        "cockpit.cli.build_parser();"
        "assert 'textual' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


async def test_keys_can_be_remapped_and_help_shows_the_new_key(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path, {"app.quit": "x"})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert ("x", "Quit  [app.quit]") in app.screen.rows
        await pilot.press("escape")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
    assert app.return_value == 0


def test_unknown_binding_id_is_refused(tmp_path: Path, clean_env) -> None:
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="unknown binding id"):
        make_app(tmp_path, {"app.qiut": "x"})


async def test_a_crash_is_logged_and_the_engine_state_is_flushed(tmp_path: Path, clean_env, caplog) -> None:
    app = make_app(tmp_path)

    def broken(snap) -> None:
        raise RuntimeError("pane exploded")

    with pytest.raises(RuntimeError, match="pane exploded"):  # run_test re-raises what crashed the app
        async with app.run_test(size=(120, 40)) as pilot:
            await app.engine_done.wait()
            app.query_one(PnlPane).show = broken  # type: ignore[method-assign]  # the test swaps in a probe
            await pilot.pause(0.5)
    assert app.crash == "RuntimeError: pane exploded"
    assert "cockpit crashed" in caplog.text and "pane exploded" in caplog.text
    assert not app._exit_renderables  # no rich traceback printed over the terminal
    assert not app.engine.store.is_open  # shut down and flushed on the way out


async def test_alerts_newest_first_filtered_by_level_and_text(tmp_path: Path, clean_env) -> None:
    import asyncio
    from datetime import UTC, datetime

    from cockpit.tui.widgets.alerts_pane import AlertsPane
    from core.alerts.model import Alert, Severity

    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()  # the replay's own alerts are in; the router still runs
        for severity, line in ((Severity.INFO, "first order placed"), (Severity.WARNING, "feed is stale"),
                               (Severity.ERROR, "broker rejected order")):
            app.engine.alerts.submit(Alert(kind="test.pane", severity=severity, title=line, text=line,
                                           key=f"test.pane:{line}", at=datetime.now(UTC)))
        for _ in range(200):  # the pane's sink is a lane of the router: delivered on the loop, soon
            if sum(1 for item in app.alerts.items if item.kind == "test.pane") == 3:
                break
            await asyncio.sleep(0.01)
        pane = app.query_one(AlertsPane)
        pane.redraw()
        lines = str(app.query_one("#alerts-lines").render()).splitlines()
        assert lines[:3] == ["ERROR   broker rejected order", "WARNING feed is stale", "INFO    first order placed"]
        await pilot.press("a")  # WARNING and up
        lines = str(app.query_one("#alerts-lines").render()).splitlines()
        assert lines[:2] == ["ERROR   broker rejected order", "WARNING feed is stale"]
        assert not any(line.startswith("INFO") for line in lines)
        await pilot.press("slash")
        await pilot.press(*"stale")
        await pilot.pause()
        lines = str(app.query_one("#alerts-lines").render()).splitlines()
        assert lines == ["WARNING feed is stale"]
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause()
        assert pane.text == ""
