"""Capital allocation in the cockpit, with Pilot over a real engine: the P&L pane shows how much
of its allocation each strategy uses, key s lists the allocations, and key r takes
``allocation STRATEGY VALUE`` through the plan and the confirm to the handler (audited). A
snapshot of the main screen with allocations (the default config has none: its screens are
the existing snapshots, unchanged)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest

from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.tui.rows import capital_lines, short_money
from cockpit.tui.screens import ConfirmScreen, TextPromptScreen
from cockpit.wiring import build_engine
from core.config import load_config
from core.control.read_model import CapitalView
from tests.test_allocation_config import allocated_config
from tests.test_tui_layout import painted_lines
from tests.test_tui_operator import settle


def allocated_app(tmp_path: Path, end: str) -> CockpitApp:
    settings = load_config(allocated_config(tmp_path, 'sma_cross = 15000\nrsi_reversion = "30%"'),
                           state_dir=tmp_path / "state", overrides={"feed": {"speed": "max", "end": end}})
    return CockpitApp(build_engine(settings, new_id=lambda: "abc123"), AlertBuffer())


async def test_the_pane_shows_use_and_key_r_sets_an_allocation(tmp_path: Path, clean_env) -> None:
    app = allocated_app(tmp_path, "2008-03-31")
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        app.refresh_panes()
        await pilot.pause()
        screen = "\n".join(painted_lines(app))
        used = {c.strategy: c for c in app.engine.read_model.capital()}
        pct = used["sma_cross"].used_pct
        assert "allocation" in screen and "used of" in screen
        assert f"{round(pct)}% of 15.0k" in screen and "% of 30.0k" in screen

        await pilot.press("s")
        assert isinstance(app.screen, TextPromptScreen)
        assert "allocation 15,000.00, uses " in app.screen.help_text
        assert "allocation 30,000.00 (30%), uses " in app.screen.help_text
        await pilot.press("escape")

        await pilot.press("r")
        assert isinstance(app.screen, TextPromptScreen)
        assert "Capital per strategy (% of the equity at start 100,000.00):" in app.screen.help_text
        await pilot.press(*"allocation sma_cross -5", "enter")  # refused: the prompt comes back with why
        await settle(app, pilot)
        assert isinstance(app.screen, TextPromptScreen) and "'-5' is negative" in (app.screen.error or "")
        await pilot.press("ctrl+u", *"allocation sma_cross 40%", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "SET allocation.sma_cross: 15,000.00 -> 40% (40,000.00)" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert app.engine.gate.capital.entries["sma_cross"].given == "40%"
        row = await app.engine.store.fetchone(
            "SELECT actor FROM audit WHERE kind = 'operator.allocation_set' AND detail NOT LIKE '%refused%'")
        assert row["actor"] == app.actor
        app.refresh_panes()
        await pilot.pause()
        assert "% of 40.0k" in "\n".join(painted_lines(app))
        app.engine.request_stop()


async def _finished(pilot) -> None:
    app = pilot.app
    await app.engine_done.wait()
    for _ in range(500):  # every alert of the replay in the pane
        if app.engine.alerts.lanes["tui"].idle:
            break
        await asyncio.sleep(0.01)
    app.refresh_panes()
    await pilot.pause()


@pytest.fixture
def allocated(tmp_path: Path, clean_env, monkeypatch: pytest.MonkeyPatch) -> CockpitApp:
    # one fold window for the whole replay (its daily summaries fold by the wall clock)
    monkeypatch.setattr("core.kernel.engine.FOLD_SECONDS", 3600.0)
    return allocated_app(tmp_path, "2008-06-30")


def test_main_screen_with_allocations_160x50(snap_compare, allocated) -> None:
    assert snap_compare(allocated, terminal_size=(160, 50), run_before=_finished)


def test_main_screen_with_allocations_80x24(snap_compare, allocated) -> None:
    assert snap_compare(allocated, terminal_size=(80, 24), run_before=_finished)


def test_the_pane_lines_from_a_snapshot() -> None:
    def view(name: str, allocation: str | None, used: str | None, enabled: bool = True) -> CapitalView:
        a, u = (D(allocation) if allocation else None), (D(used) if used else None)
        pct = u * 100 / a if a and u is not None else None
        return CapitalView(name, enabled, allocation, a, u, a - u if a is not None and u is not None else None, pct)

    rows = (view("a", "50000", "12345"), view("b", None, "100"), view("c", "1000", "1500"), view("d", "0", "2500"),
            view("e", "1000000", None, enabled=False))
    assert capital_lines(SimpleNamespace(capital=(view("b", None, "100"),))) == []  # no allocation: no block
    assert capital_lines(SimpleNamespace(capital=rows)) == [
        ("allocation", "used of"), ("a", ("25% of 50.0k", "")), ("b", ("no allocation", "yellow")),
        ("c", ("150% of 1.0k", "bold red")), ("d", ("2.5k of 0", "bold red")), ("e", ("? of 1.00M", "dim"))]
    assert [short_money(D(v)) for v in ("950", "50000", "1250000", "2e9")] == ["950", "50.0k", "1.25M", "2.00B"]
