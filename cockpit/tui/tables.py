"""Bring a DataTable to new rows with the least work: changed cells only, when the rows
are the same keys in the same order; a rebuild otherwise (rows came or went)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]


def sync_rows(table: DataTable, rows: Sequence[Row], shown: dict[str, Sequence[Cell]]) -> None:
    """``shown`` is the caller's memory of what the table holds (updated here)."""
    keys = [key for key, _ in rows]
    if keys != list(shown):
        table.clear()
        shown.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
            shown[key] = cells
        return
    columns = list(table.columns)
    for key, cells in rows:
        before = shown[key]
        for column, (old, new) in zip(columns, zip(before, cells)):
            if old != new:
                table.update_cell(key, column, new)  # fixed widths: no re-measure
        shown[key] = cells
