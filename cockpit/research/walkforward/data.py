"""The bars each run may see: the strategy's bar files cut at the run's own window.

The look-ahead guard. A run is not handed the whole file with a start and an end to respect:
it is handed a copy of each file that holds only the header and the rows dated inside its data
range (warm-up included). So nothing a run can reach (its feed, the engine, the config's paths,
the file on disk) holds a bar after its last date: an in-sample run cannot see its test window
by any route. The copies are bytes in the job (a remote worker needs no shared disk) and land in
the worker's throwaway folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from core.config import ReplayFile
from core.data.bar_columns import find_columns
from core.data.bar_files import read_bar_file
from core.data.bar_rows import valid_rows


@dataclass(frozen=True, slots=True)
class SymbolData:
    """One symbol's file: its header, its good rows with their dates, and its sessions."""

    spec: ReplayFile
    name: str  # the file's name (kept in the copies: messages name the file a user knows)
    header: str
    rows: tuple[tuple[date, str], ...]  # (local date, the line as written), in file order
    sessions: tuple[date, ...]  # the local dates of its bars


@dataclass(frozen=True, slots=True)
class FileSlice:
    """A cut of one file, as the worker writes it."""

    spec: ReplayFile  # the configured entry (its path is replaced by the copy's)
    name: str
    content: bytes
    digest: str  # sha256 of content: the worker's copy is named by it (written once per worker)
    first: date | None  # the dates of its first and last row (the guard's evidence)
    last: date | None
    days: tuple[date, ...] = ()

    def rows_before(self, day: date) -> int:
        return sum(1 for d in self.days if d < day)


def load_symbol(spec: ReplayFile, path: Path) -> SymbolData:
    """Read a configured file once (the engine's reader: its drops are logged once, here)."""
    bar_file = read_bar_file(path, spec.symbol, tz=spec.tz, bar_time=spec.bar_time, bar_seconds=spec.bar_seconds,
                             calendar=spec.calendar)
    tz = ZoneInfo(spec.tz)
    sessions = tuple(sorted({b.start.astimezone(tz).date() for b in bar_file.bars}))
    text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.split("\n")
    header_idx = next(i for i, ln in enumerate(lines) if ln.strip())
    header = lines[header_idx].rstrip("\r")
    cols = find_columns(str(path), header, lines[header_idx + 1:])

    def ignore(_line: int, _reason: str) -> None:
        return None

    _stamps, rows = valid_rows(lines, header_idx + 1, cols, ignore)
    dated = tuple((_day(when), lines[line_no - 1].rstrip("\r")) for line_no, when, *_ in rows)
    return SymbolData(spec, path.name, header, dated, sessions)


def _day(when: date | datetime) -> date:
    return when.date() if isinstance(when, datetime) else when


def cut(data: SymbolData, first: date, last: date) -> FileSlice:
    """The header and the rows dated ``first`` .. ``last`` (inclusive)."""
    kept = [(day, line) for day, line in data.rows if first <= day <= last]
    content = ("\n".join([data.header, *(line for _, line in kept)]) + "\n").encode()
    days = tuple(day for day, _ in kept)
    return FileSlice(data.spec, data.name, content, hashlib.sha256(content).hexdigest()[:20],
                     days[0] if days else None, days[-1] if days else None, days)


def all_sessions(data: Sequence[SymbolData]) -> list[date]:
    return sorted({d for s in data for d in s.sessions})


def write_slices(slices: Sequence[FileSlice], folder: Path, exists: Callable[[Path], bool] = Path.exists) -> list[Path]:
    """Each slice as a file in ``folder`` named by its digest (kept: the next run of the window reuses it)."""
    paths = []
    for s in slices:
        target = folder / s.digest / s.name
        if not exists(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(s.content)
            partial.replace(target)
        paths.append(target)
    return paths
