"""Every operator key in the cockpit, with Pilot: each goes through a modal that says what
will happen, then through core.control.handler (the same path as the CLI and the API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cockpit.tui.screens import ConfirmScreen, DeadmanScreen, TextPromptScreen
from core.common.clock import SimClock
from core.control.deadman import DeadmanPhase
from tests.test_tui import make_app


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await app.engine.actions_done()  # a dead-man miss runs its action as an engine task
    await pilot.pause()


async def test_halt_resume_cancel_confirm_keys(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        seq = app.engine.audit.seq
        await pilot.press("h")
        assert isinstance(app.screen, ConfirmScreen) and "HALT trading" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert str(app.engine.gate.state) == "HALTED"
        await pilot.press("h")
        assert "RESUME" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert str(app.engine.gate.state) == "ACTIVE"
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen) and "CANCEL ALL" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert all(o.status.value in ("PENDING_CANCEL", "CANCELLED") for o in app.engine.oms.open_orders.values())
        await pilot.press("d")
        await settle(app, pilot)
        rows = app.engine.audit.seq - seq
        assert rows >= 4  # halt, resume, cancel all, confirm: each audited


async def test_prompts_for_strategies_limits_orders_positions_and_flatten(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        await pilot.press("s")
        assert isinstance(app.screen, TextPromptScreen)
        await pilot.press(*"sma_cross", "enter", "y")
        await settle(app, pilot)
        assert not next(s for s in app.engine.strategies if s.name == "sma_cross").enabled

        await pilot.press("r")
        await pilot.press(*"nonsense", "enter")  # no value: the prompt comes back with the usage
        await pilot.pause()
        assert isinstance(app.screen, TextPromptScreen) and "usage" in (app.screen.error or "")
        await pilot.press("ctrl+u", *"max_order_qty 500", "enter", "y")
        await settle(app, pilot)
        assert app.engine.gate.limits.max_order_qty == Decimal(500)

        await pilot.press("o", *"buy AAPL 10", "enter")
        assert isinstance(app.screen, ConfirmScreen) and "BUY 10 AAPL at market" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert any(o.strategy == "operator" for o in app.engine.oms.orders.values())

        await pilot.press("p", *"NVDA 100 20 statement shows 100", "enter")
        assert isinstance(app.screen, ConfirmScreen) and "OVERRIDE" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert app.engine.portfolio.qty("NVDA") == Decimal(100)

        await pilot.press("f", "enter")  # the prompt offers ALL
        assert isinstance(app.screen, ConfirmScreen) and "FLATTEN ALL" in app.screen.question
        assert "NVDA" in app.screen.question and "notional" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert str(app.engine.gate.state) == "HALTED" and app.engine.controls.liquidation is not None


async def test_deadman_modal_confirm_and_miss(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    wall = SimClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    app.engine.deadman.wall = wall  # presence is wall-clock time: drive it, never sleep
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        app.engine.deadman.arm()
        cfg = app.engine.settings.deadman
        wall.advance(timedelta(seconds=cfg.interval_seconds - cfg.grace_seconds + 1))
        app.refresh_panes()
        await pilot.pause()
        assert isinstance(app.screen, DeadmanScreen)
        await pilot.press("d")
        await settle(app, pilot)
        assert app.engine.deadman.view().phase is DeadmanPhase.ARMED
        wall.advance(timedelta(seconds=cfg.interval_seconds))
        await settle(app, pilot)
        assert app.engine.deadman.view().phase is DeadmanPhase.MISSED
        assert str(app.engine.gate.state) == "REDUCING"  # cancel_and_reduce ran
        app.refresh_panes()
        await pilot.pause()
        assert "dead-man MISSED" in str(app.query_one("#status").render())


async def test_breaks_key_shows_and_resolves_a_reconciliation_break(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        engine = app.engine
        await pilot.press("b")  # no break: a notice, no prompt
        await pilot.pause()
        assert not isinstance(app.screen, TextPromptScreen)
        venue = engine.portfolio.qty("NVDA")
        await engine.controls.set_position("NVDA", venue + 5, "20", actor="test", reason="misread")
        await engine.reconciler.run("test")
        app.refresh_panes()
        assert "BREAK NVDA" in str(app.query_one("#status").render())  # the status bar says so
        await pilot.press("b")
        assert isinstance(app.screen, TextPromptScreen) and "NVDA" in app.screen.help_text
        await pilot.press("enter")  # the prompt offers "NVDA accept"
        assert isinstance(app.screen, ConfirmScreen) and "RESOLVE the NVDA break by ACCEPT" in app.screen.question
        await pilot.press("y")
        await settle(app, pilot)
        assert engine.reconciler.breaks == {} and engine.portfolio.qty("NVDA") == venue
