"""Snapshots of the cockpit (pytest-textual-snapshot): the replay is deterministic on the
simulated clock, and the random ids are fixed, so the same screen comes back every run.
Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG


@pytest.fixture
def cockpit_app(tmp_path: Path, clean_env, monkeypatch: pytest.MonkeyPatch):
    # A replay faster than live folds its daily summaries by the wall clock (one a minute): one
    # window for the whole replay, so a slow machine shows the same pane.
    monkeypatch.setattr("core.kernel.engine.FOLD_SECONDS", 3600.0)
    settings = load_config(CONFIG, state_dir=tmp_path, overrides={"feed": {"speed": "max", "end": "2008-06-30"}})
    # The pane is the alert router's "tui" sink: fills, the engine's start, the replay's end.
    return CockpitApp(build_engine(settings, new_id=lambda: "abc123"), AlertBuffer())


async def finished(pilot) -> None:
    app = pilot.app
    await app.engine_done.wait()
    for _ in range(500):  # every alert of the replay delivered to the pane (its lane is idle)
        if app.engine.alerts.lanes["tui"].idle:
            break
        await asyncio.sleep(0.01)
    app.refresh_panes()
    await pilot.pause()


def test_main_screen_160x50(snap_compare, cockpit_app) -> None:
    assert snap_compare(cockpit_app, terminal_size=(160, 50), run_before=finished)


def test_main_screen_80x24(snap_compare, cockpit_app) -> None:
    assert snap_compare(cockpit_app, terminal_size=(80, 24), run_before=finished)


def test_help_screen(snap_compare, cockpit_app) -> None:
    async def help_open(pilot) -> None:
        await finished(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(cockpit_app, terminal_size=(160, 50), run_before=help_open)


def test_quit_confirm(snap_compare, cockpit_app) -> None:
    async def quit_asked(pilot) -> None:
        await finished(pilot)
        await pilot.press("q")
        await pilot.pause()

    assert snap_compare(cockpit_app, terminal_size=(160, 50), run_before=quit_asked)
