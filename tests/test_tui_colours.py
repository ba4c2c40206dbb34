"""Colours hold up on a 16-colour terminal: no text is drawn in its own background colour.

Every painted segment is downgraded the way Rich downgrades for a 16-colour terminal
(TERM=xterm, tmux without 256 colours); text whose foreground and background land on
the same ANSI colour would vanish. Block and box-drawing characters are decoration
(scrollbar thumbs, button edges) and may blend.
"""

from __future__ import annotations

from pathlib import Path

from rich.color import ColorSystem
from rich.console import Console

from tests.test_tui import make_app


def _decoration(ch: str) -> bool:
    return 0x2500 <= ord(ch) <= 0x259F or ch.isspace()


def invisible_text(app) -> list[str]:
    console = Console(width=160, height=50, color_system="truecolor", force_terminal=True, file=open("/dev/null", "w"))
    bad = []
    for seg in console.render(app.screen._compositor.render_update(full=True), console.options):
        text = "".join(ch for ch in seg.text if not _decoration(ch))
        if not text or seg.style is None:
            continue
        fg, bg = seg.style.color, seg.style.bgcolor
        if seg.style.reverse:
            fg, bg = bg, fg
        if fg is None or bg is None:
            continue  # the terminal's default on one side: always distinct from the other
        if fg.downgrade(ColorSystem.STANDARD).number == bg.downgrade(ColorSystem.STANDARD).number:
            bad.append(f"{text[:30]!r} fg {fg.name} on bg {bg.name}")
    return bad


async def test_every_screen_is_legible_in_16_colours(tmp_path: Path, clean_env) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        app.refresh_panes()
        await pilot.pause()
        assert invisible_text(app) == [], "main screen"
        await pilot.press("question_mark")
        await pilot.pause()
        assert invisible_text(app) == [], "help screen"
        await pilot.press("escape", "q")
        await pilot.pause()
        assert invisible_text(app) == [], "quit confirm"
        await pilot.press("n", "slash")
        await pilot.pause()
        assert invisible_text(app) == [], "alert filter"
