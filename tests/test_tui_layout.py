"""The main screen at the sizes traders run it: every key in the footer at 160 columns, the
positions pane at 80x24 showing the largest risk first and saying how many rows it hides,
and a command palette that lists each action once. Pilot over a real engine (paper, real
data, SQLite); what is asserted is the text actually painted on the screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from textual.command import CommandPalette

from cockpit.tui.actions import ACTIONS
from cockpit.tui.screens import DeadmanScreen
from cockpit.tui.widgets.fixed_table import FixedTable
from core.common.clock import SimClock
from tests.test_tui import make_app


def painted_lines(app) -> list[str]:
    """The screen as the terminal shows it, one string per line."""
    width, height = app.size
    console = Console(width=width, height=height, color_system=None, force_terminal=True,
                      file=open("/dev/null", "w"))
    text = "".join("\n" if seg.control else seg.text  # the compositor moves the cursor to each line
                   for seg in console.render(app.screen._compositor.render_update(full=True), console.options))
    return [line.rstrip() for line in text.splitlines() if line.strip()]


async def test_the_footer_shows_every_key_at_160_columns(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        app.refresh_panes()
        await pilot.pause()
        footer = painted_lines(app)[-1]
        shown = [b for b in app.BINDINGS if b.show]
        assert len(shown) == len([a for a in ACTIONS if a.show]) == 13
        for binding in shown:
            entry = f"{app.get_key_display(binding)} {binding.description}"
            assert entry in footer, f"{entry!r} missing from the footer: {footer!r}"
        assert footer.rstrip().endswith("^p palette")
        app.engine.request_stop()
        await app.engine.shutdown()


async def test_positions_at_80x24_show_the_largest_risk_first_and_count_the_hidden(
        tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.engine_done.wait()
        engine = app.engine
        # A book with a position in every symbol; the short one is the largest risk by far.
        for symbol, qty in (("AAPL", -5000), ("NVDA", 10), ("ORCL", 300), ("SPY", 40), ("YHOO", 1)):
            await engine.controls.set_position(symbol, qty, "20", actor="test", reason="layout test")
        app.refresh_panes()
        await pilot.pause()
        snap = engine.snapshot()
        assert all(p.last is not None for p in snap.positions)
        expected = sorted(snap.positions, key=lambda p: abs(p.qty * p.last), reverse=True)
        assert expected[0].symbol == "AAPL" and expected[0].qty == Decimal(-5000)

        table = app.query_one("#positions", FixedTable)
        order = [table.cell(row, 0) for row in range(table.row_count)]
        assert order == [p.symbol for p in expected]
        above, below = table.hidden_rows
        visible = len(expected) - below
        assert above == 0 and 0 < visible < len(expected)  # more positions than the pane holds

        screen = "\n".join(painted_lines(app))
        pane_rows = [line for line in painted_lines(app) if line.startswith("│") and line[1:8].strip() in
                     {p.symbol for p in expected}]
        assert [row[1:8].strip() for row in pane_rows] == [p.symbol for p in expected[:visible]]
        assert f"{below} more ↓" in screen

        table.scroll_to(y=below, animate=False)  # scrolled to the bottom, the count follows
        await pilot.pause()
        assert table.border_subtitle == f"↑ {below} more"
        engine.request_stop()
        await engine.shutdown()


async def test_the_command_palette_lists_each_action_once(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert len(titles) == len(set(titles)), titles
        callbacks = [c.callback for c in commands]
        assert len(callbacks) == len(set(callbacks)), titles
        # Textual's own quit and key help are the same actions as ours: only ours are listed.
        quits = [c.title for c in commands if c.callback in (app.action_quit, app.action_quit_cockpit)]
        helps = [c.title for c in commands if c.callback in (app.action_help, app.action_show_help_panel,
                                                              app.action_hide_help_panel)]
        assert quits == ["Quit cockpit"] and helps == ["Keys"]
        ours = [a.title for a in ACTIONS if a.title]
        assert all(titles.count(t) == 1 for t in ours)

        await pilot.press("ctrl+p")  # what the operator sees in the palette
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        painted = [line.strip() for line in painted_lines(app)]
        for title in titles:  # every command on screen, each exactly once
            assert painted.count(title) == 1, (title, painted)
        await pilot.press("escape")
        app.engine.request_stop()
        await app.engine.shutdown()


async def test_the_deadman_modal_counts_down_and_closes_when_presence_is_confirmed_elsewhere(
        tmp_path: Path, clean_env) -> None:
    """The panes and the modal keep following the engine while a modal is open."""
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
        modal = app.screen
        assert isinstance(modal, DeadmanScreen)
        app.refresh_panes()
        first = str(modal.query_one("#deadman-countdown").render())
        wall.advance(timedelta(seconds=5))
        app.refresh_panes()
        later = str(modal.query_one("#deadman-countdown").render())
        assert first.endswith("s left") and int(first.split()[0]) - int(later.split()[0]) == 5
        await app.engine.controls.confirm(actor="cli:test")  # as `cockpit confirm` would
        app.refresh_panes()
        await pilot.pause()
        assert not isinstance(app.screen, DeadmanScreen)
        app.engine.request_stop()
        await app.engine.shutdown()
