"""A table for hot data: fixed columns, drawn line by line with Textual's Line API.

DataTable renders each cell through a Rich console (padding, wrapping, measuring); under
a tick storm that was 30-100 ms per frame for 50 position rows and kept keys waiting
(bench/tui_storm.py). Here a row is plain strings cut to fixed widths, turned into one
Strip when the row changes; painting a line is a lookup. No business logic: rows come in
already formatted and ordered. With ``count_hidden`` the border's subtitle says how many
rows are out of view ("3 more ↓"), so a short pane never hides rows silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: A cell is its text, or its text and a Rich style name ("red", "bold red", "dim").
Cell = str | tuple[str, str]
GAP = 1


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: int
    right: bool = False  # numbers align right


class FixedTable(ScrollView, can_focus=True):
    """Rows of pre-formatted cells under a header that stays put while the body scrolls."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"fixed-table--header"}
    DEFAULT_CSS = """
    FixedTable > .fixed-table--header {
        text-style: bold;
        color: $text-accent;
    }
    """

    def __init__(self, columns: Sequence[Column], *, id: str | None = None,
                 count_hidden: bool = False) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.count_hidden = count_hidden
        self._rows: list[tuple[Cell, ...]] = []
        self._strips: list[Strip | None] = []
        self._styles: dict[str, Style] = {}
        self._width = sum(c.width for c in self.columns) + GAP * (len(self.columns) - 1)
        self.virtual_size = Size(self._width, 1)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def cell(self, row: int, column: int) -> str:
        """The text shown in a cell (tests and screen readers ask this)."""
        value = self._rows[row][column]
        return value if isinstance(value, str) else value[0]

    @property
    def hidden_rows(self) -> tuple[int, int]:
        """Rows out of view (above, below): the body is the viewport less the header line."""
        body = max(0, self.scrollable_content_region.height - 1)
        above = min(int(self.scroll_y), len(self._rows))
        return above, max(0, len(self._rows) - above - body)

    def set_rows(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Show ``rows``; only rows that changed are rebuilt, and only if anything changed."""
        new = [tuple(r) for r in rows]
        if new == self._rows:
            return
        strips = [s if i < len(self._rows) and self._rows[i] == r else None
                  for i, (r, s) in enumerate(zip(new, self._strips + [None] * len(new), strict=False))]
        self._rows, self._strips = new, strips
        self.virtual_size = Size(self._width, len(new) + 1)
        self.refresh()
        self._show_hidden()

    def on_resize(self) -> None:
        self._show_hidden()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._show_hidden()

    def _show_hidden(self) -> None:
        if not self.count_hidden:
            return
        above, below = self.hidden_rows
        parts = ([f"↑ {above} more"] if above else []) + ([f"{below} more ↓"] if below else [])
        subtitle = " · ".join(parts)
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()  # theme or CSS changed: styles and strips are rebuilt on demand
        self._strips = [None] * len(self._rows)

    # ---- painting ------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("fixed-table--header")
            strip = self._strip([c.label for c in self.columns], base + header)
        else:
            index = scroll_y + y - 1
            if index >= len(self._rows):
                return Strip.blank(width, base)
            strip = self._strips[index]
            if strip is None:
                strip = self._strips[index] = self._strip(self._rows[index], base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _strip(self, cells: Sequence[Cell], base: Style) -> Strip:
        segments: list[Segment] = []
        pad = Segment(" " * GAP, base)
        for n, (column, cell) in enumerate(zip(self.columns, cells, strict=False)):
            if n:
                segments.append(pad)
            text, style = (cell, "") if isinstance(cell, str) else cell
            if len(text) > column.width:
                text = text[: column.width - 1] + "…"
            text = text.rjust(column.width) if column.right else text.ljust(column.width)
            segments.append(Segment(text, base + self._style(style) if style else base))
        return Strip(segments, self._width)

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(name)
        return style
