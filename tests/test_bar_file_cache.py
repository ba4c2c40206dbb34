"""read_bar_file parses a file's bytes once per process (a walk-forward worker runs the same
files hundreds of times), yet an edited file is read afresh and the drops are logged each time."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from core.data import bar_files
from core.data.bar_files import read_bar_file

ROWS = "Date,Open,High,Low,Close,Volume\n2008-01-02,10,11,9,10.5,100\n2008-01-03,10.5,12,10,11,100\n"
BAD = "2008-01-04,10,9,11,10,100\n"  # high below low: dropped


def test_the_same_bytes_are_parsed_once_and_an_edit_is_seen(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "X.csv"
    path.write_text(ROWS + BAD)
    with caplog.at_level(logging.WARNING, logger="cockpit.data"):
        first = read_bar_file(path, "X", calendar=None)
        second = read_bar_file(path, "X", calendar=None)
    assert [b.close for b in first.bars] == [Decimal("10.5"), Decimal(11)]
    assert second.bars == first.bars and second.bars is not first.bars  # a list of its own ...
    assert all(a is b for a, b in zip(first.bars, second.bars, strict=True))  # ... of the same parsed bars
    assert second.dropped == first.dropped and len(first.dropped) == 1
    assert sum("line 4 dropped" in r.getMessage() for r in caplog.records) == 2  # logged on each read

    path.write_text(ROWS.replace("10.5,100", "10.7,100") + BAD)  # same size, same moment: other bytes
    edited = read_bar_file(path, "X", calendar=None)
    assert [b.close for b in edited.bars] == [Decimal("10.7"), Decimal(11)]
    other_symbol = read_bar_file(path, "Y", calendar=None)
    assert {b.symbol for b in other_symbol.bars} == {"Y"}


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    for i in range(bar_files.PARSED_CACHE + 5):
        path = tmp_path / f"F{i}.csv"
        path.write_text(ROWS.replace("100\n", f"{100 + i}\n"))
        read_bar_file(path, "X", calendar=None)
    assert len(bar_files._parsed) <= bar_files.PARSED_CACHE
