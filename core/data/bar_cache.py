"""A replay's data files, parsed once: the bars a file gives, kept on disk by the hash of what made them.

Reading a bar file is the slow part of starting a replay (CSV text to ``Decimal`` and UTC
``datetime``, the session times of an exchange calendar, the quality gate over every bar).
The result depends only on the file's bytes, how it is read (zone, bar time, bar length,
calendar), the replay's date range and quality settings, and the reader's own code; the key
is a sha256 of all of those, so a changed file, setting or reader never finds a stale entry.

An entry is columnar: bar start and end as int64 microseconds since the epoch, and the
prices and volumes as indices into one table of their distinct decimal texts (a minute file
of 30,000 bars holds a few hundred prices), so loading makes each ``Decimal`` once and each
bar shares them (a ``Decimal`` is immutable). It also holds what reading the file reported
(dropped rows, the header repair, the gate's findings), so a cached load logs the same lines
as a parsed one.

The cache is a convenience, never a source of truth: an entry that cannot be read (cut short,
flipped bits: a CRC32 guards each one, another Python's marshal format: the version is in the
key) is a miss, and a cache folder that cannot be written is logged once and the replay runs
from the file. Entries are written to a temporary name and renamed, so a reader never sees a
half-written one; the oldest are removed beyond ``MAX_ENTRIES``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import marshal
import os
import sys
import tempfile
import zlib
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.domain.model import Bar

log = logging.getLogger("cockpit.data")

__all__ = ["FORMAT", "MAX_ENTRIES", "BarCache", "CachedBars", "reader_fingerprint"]

FORMAT = 1  # bump when an entry's layout changes
MAX_ENTRIES = 64
_MAGIC = b"cockpit-bars\n"
_SUFFIX = ".bars"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# The modules whose code decides what a file's bars are: a change to any of them is a new key.
_READER_MODULES = ("bar_cache", "bar_columns", "bar_file_model", "bar_files", "bar_rows", "bar_stamps",
                   "bar_timing", "calendar", "quality", "feeds/replay")

_reader_fp: str | None = None


def reader_fingerprint() -> str:
    """A hash of the reader's source and of the libraries it leans on (made once per process)."""
    global _reader_fp
    if _reader_fp is None:
        h = hashlib.sha256(f"{FORMAT} {sys.version_info[:2]} {marshal.version}".encode())
        here = Path(__file__).parent
        for name in _READER_MODULES:
            try:
                h.update((here / f"{name}.py").read_bytes())
            except OSError:  # an installed build without sources: the version below still keys it
                h.update(name.encode())
        try:
            from importlib.metadata import version

            h.update(version("exchange-calendars").encode())  # the sessions daily bars take
        except Exception:  # not installed: calendars are refused where they are used
            h.update(b"no exchange-calendars")
        _reader_fp = h.hexdigest()
    return _reader_fp


@dataclass(frozen=True, slots=True)
class CachedBars:
    """What loading one file gave: the bars it replays and what reading it reported."""

    bars: list[Bar]
    dropped: list[tuple[int, str]]  # (line number, reason) of the rows the reader refused
    header_note: str | None  # the reader's header repair, as it logged it
    findings: list[tuple[str, str, bool, str]]  # the gate's: (reason, bar end ISO, quarantined, detail)
    counts: dict[str, int]  # the gate's findings per reason


def _encode(entry: CachedBars) -> bytes:
    texts: dict[str, int] = {}
    starts, ends = array("q"), array("q")
    columns = [array("I") for _ in range(5)]
    for bar in entry.bars:
        starts.append((bar.start - _EPOCH) // _US)
        ends.append((bar.ts - _EPOCH) // _US)
        for col, value in zip(columns, (bar.open, bar.high, bar.low, bar.close, bar.volume), strict=True):
            text = str(value)
            index = texts.get(text)
            if index is None:
                index = texts[text] = len(texts)
            col.append(index)
    payload = marshal.dumps({
        "texts": list(texts), "starts": starts.tobytes(), "ends": ends.tobytes(),
        "columns": [c.tobytes() for c in columns], "dropped": entry.dropped, "header_note": entry.header_note,
        "findings": entry.findings, "counts": entry.counts,
    })
    return _MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload


def _decode(blob: bytes, symbol: str) -> CachedBars:
    """The entry in ``blob``; ValueError when it is not a whole, intact one.

    The collector is off meanwhile: the bars are tens of thousands of new tracked objects and no
    cycle, so each pass it would make (a full one walks every object of the process: on the FESX
    minute file in a bench's process that doubled the decode) finds nothing to free."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _decoded(blob, symbol)
    finally:
        if collecting:
            gc.enable()


def _decoded(blob: bytes, symbol: str) -> CachedBars:
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 4:
        raise ValueError("not a bar cache entry")
    crc, payload = blob[len(_MAGIC):len(_MAGIC) + 4], blob[len(_MAGIC) + 4:]
    if zlib.crc32(payload).to_bytes(4, "big") != crc:
        raise ValueError("checksum mismatch")
    data: dict[str, Any] = marshal.loads(payload)
    values = [Decimal(t) for t in data["texts"]]
    starts, ends = array("q"), array("q")
    starts.frombytes(data["starts"])
    ends.frombytes(data["ends"])
    columns = []
    for raw in data["columns"]:
        col = array("I")
        col.frombytes(raw)
        columns.append(col)
    if not all(len(c) == len(starts) for c in (ends, *columns)):
        raise ValueError("columns of different lengths")
    bars: list[Bar] = []
    append = bars.append
    steps: dict[int, timedelta] = {}  # a file's bars are a few lengths apart: one timedelta each
    prev_us, prev_dt = 0, _EPOCH
    for s, e, o, h, lo, c, v in zip(starts, ends, *columns, strict=True):
        if s == prev_us:  # a minute bar starts where the last one ended: the same datetime
            start = prev_dt
        else:
            step = steps.get(s - prev_us)
            if step is None:
                step = steps[s - prev_us] = timedelta(microseconds=s - prev_us)
            start = prev_dt + step
        step = steps.get(e - s)
        if step is None:
            step = steps[e - s] = timedelta(microseconds=e - s)
        end = start + step
        append(Bar(symbol, start, end, values[o], values[h], values[lo], values[c], values[v]))
        prev_us, prev_dt = e, end
        if len(steps) > 4096:  # irregular stamps: do not keep one timedelta per bar
            steps.clear()
    return CachedBars(bars, [(int(n), str(r)) for n, r in data["dropped"]], data["header_note"],
                      [(str(a), str(b), bool(q), str(d)) for a, b, q, d in data["findings"]],
                      {str(k): int(n) for k, n in data["counts"].items()})


class BarCache:
    """One folder of entries (created 0700 on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._write_failed = False

    @staticmethod
    def key(raw: bytes, how: dict[str, Any]) -> str:
        """The entry for a file's bytes read as ``how`` says (a JSON-able description)."""
        h = hashlib.sha256(reader_fingerprint().encode())
        h.update(hashlib.sha256(raw).digest())
        h.update(json.dumps(how, sort_keys=True, default=str).encode())
        return h.hexdigest()[:40]

    def get(self, key: str, symbol: str) -> CachedBars | None:
        path = self.directory / f"{key}{_SUFFIX}"
        try:
            blob = path.read_bytes()
        except OSError:  # not there (the usual miss), or unreadable: parse the file
            return None
        try:
            return _decode(blob, symbol)
        except Exception as exc:  # a damaged entry is a miss; the next put replaces it
            log.warning("bar cache entry %s unreadable (%s): reading the file again", path, exc)
            return None

    def put(self, key: str, entry: CachedBars) -> None:
        if self._write_failed:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(_encode(entry))
                os.replace(tmp, self.directory / f"{key}{_SUFFIX}")
            except BaseException:
                os.unlink(tmp)
                raise
            self._prune()
        except OSError as exc:
            self._write_failed = True
            log.warning("bar cache %s cannot be written (%s): replays read their files each time",
                        self.directory, exc.strerror or exc)

    def _prune(self) -> None:
        entries = sorted(self.directory.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
