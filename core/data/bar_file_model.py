"""What reading a bar file gives back: the bars, the refused rows with their reasons, and the
error for a file that cannot be read at all. Shared by the reader's parts, so they live apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from core.domain.model import Bar

__all__ = ["BarFile", "BarFileError", "DroppedRow", "Row"]


@dataclass(frozen=True, slots=True)
class DroppedRow:
    """A data row the reader refused, so that a caller can see what was left out and why."""

    line_no: int  # 1-based line number in the file
    reason: str  # e.g. "low 209.85 > open 209.42", "7 fields, expected 8"


@dataclass(frozen=True, slots=True)
class BarFile:
    """The bars read from one file, in file order, plus the rows that were dropped."""

    symbol: str
    path: Path
    bars: list[Bar]
    dropped: list[DroppedRow]
    header_note: str | None = None  # the header repair the reader made and logged, if any


class BarFileError(Exception):
    """The file as a whole cannot be read (missing, no header, no usable column)."""


#: A row that passed validation, before it has its times: (line number, date or local
#: wall time, open, high, low, close, volume).
Row = tuple[int, date | datetime, Decimal, Decimal, Decimal, Decimal, Decimal]
