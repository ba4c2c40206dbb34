"""The replay feed: real bars from files, merged across symbols, paced or as fast as possible.

Each bar becomes a few quotes synthesised from its OHLC (open, then the extreme nearer
the open, the other extreme, then the close), so prices move between bars, followed by
the bar itself at its end time. The order of events is deterministic for a given
config, which lets a restart resume exactly after the last event it processed: the
cursor is (timestamp, how many events at that timestamp were done).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from core.config import ConfigError, FeedConfig, ReplayFile
from core.data.bar_cache import BarCache, CachedBars
from core.data.bar_files import BarFile, BarFileError, DroppedRow, log_read, read_bar_bytes, read_bar_file
from core.data.feeds.base import stopped_within
from core.data.feeds.replay_quotes import PendingQuote, QuoteMaker
from core.data.quality import QualityGate
from core.domain.model import Bar, Quote

log = logging.getLogger("cockpit.feed")

Event = Quote | Bar
_BPS = Decimal(10000)
_LOGGED_FINDINGS = 5  # per reason and file; then one line saying there are more
#: one gate finding as logged and cached: (reason, bar end ISO, quarantined, detail)
Finding = tuple[str, str, bool, str]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last processed position in the replay: events at ``ts`` done so far."""

    ts: datetime
    n_at_ts: int


class DataFileError(ConfigError):
    """A configured data file that cannot be replayed: not a bar file at all, or not one usable row.

    A ``ConfigError`` (the config points at it, and whoever refuses a config refuses this),
    worded as a data problem: the CLI prints it as ``data error: ...`` and exits 2.
    """


class ReplayFeed:
    name = "replay"

    def __init__(self, config: FeedConfig, resolve: Callable[[str], Path], cache: BarCache | None = None) -> None:
        self.config = config
        self._resolve = resolve
        self.cache = cache
        self._logged: dict[str, int] = {}  # gate findings logged so far, per reason
        self.files: list[BarFile] = []
        self.bars: dict[str, list[Bar]] = {}
        self.quality = QualityGate(config.name or "replay", config.quality, history=True)
        self.maker = QuoteMaker(config)

    @property
    def symbols(self) -> list[str]:
        return [f.symbol for f in self.config.files]

    def fingerprint(self) -> str:
        """What fixes the order of events: files and their reading, start date, quotes per bar.

        The end date is left out: extending a replay keeps the order of what came before.
        """
        cfg = self.config
        spec = {
            "files": [f.model_dump(mode="json") for f in cfg.files],
            "start": cfg.start.isoformat() if cfg.start else None,
            "quotes_per_bar": cfg.quotes_per_bar,
            "spread_bps": str(cfg.spread_bps),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def load(self) -> None:
        """Read every configured file (bad rows are dropped with a warning by the reader).

        With a bar cache, a file read before with the same settings is taken from it (the same
        bars, the same warnings logged). Raises ``DataFileError`` for a file that is not a bar
        file, or whose data rows were all dropped (a wrong file, not a replay of nothing), and
        ``ConfigError`` for a bad argument (time zone, calendar): one line each, naming the file.
        """
        for spec in self.config.files:
            bar_file = self._load_file(spec, self._resolve(spec.path))
            bars = bar_file.bars
            self.files.append(bar_file)
            self.bars[spec.symbol] = bars
            log.info("replay %s: %d bars from %s (%d rows dropped)%s", spec.symbol, len(bars),
                     bar_file.path.name, len(bar_file.dropped),
                     f", {bars[0].start.date()} .. {bars[-1].ts.date()}" if bars else "")

    def _load_file(self, spec: ReplayFile, path: Path) -> BarFile:
        """One file's bars after the date range and the quality gate: from the cache or parsed."""
        try:
            raw = read_bar_bytes(path)
        except BarFileError as exc:
            raise DataFileError(f"feed.files[{spec.symbol}]: {exc}") from None
        key = None
        if self.cache is not None:
            key = BarCache.key(raw, self._reading(spec))
            hit = self.cache.get(key, spec.symbol)
            if hit is not None:
                cached = BarFile(spec.symbol, path, hit.bars, [DroppedRow(n, r) for n, r in hit.dropped],
                                 hit.header_note)
                log_read(cached)
                _log_findings(spec.symbol, hit.findings, self._logged)
                self.quality.counts.update(hit.counts)
                return cached
        try:
            bar_file = read_bar_file(path, spec.symbol, tz=spec.tz, bar_time=spec.bar_time,
                                     bar_seconds=spec.bar_seconds, calendar=spec.calendar, raw=raw)
        except BarFileError as exc:
            raise DataFileError(f"feed.files[{spec.symbol}]: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"feed.files[{spec.symbol}]: {exc}") from None
        if not bar_file.bars and bar_file.dropped:
            first = bar_file.dropped[0]
            raise DataFileError(
                f"feed.files[{spec.symbol}]: {bar_file.path}: none of its {len(bar_file.dropped)} data row(s) "
                f"is usable (line {first.line_no}: {first.reason}); is it the right file?")
        before = dict(self.quality.counts)
        bars, findings = self._gated(_in_range(bar_file.bars, spec, self.config), spec.symbol)
        _log_findings(spec.symbol, findings, self._logged)
        if self.cache is not None and key is not None:
            counts = {r: n - before.get(r, 0) for r, n in self.quality.counts.items() if n != before.get(r, 0)}
            self.cache.put(key, CachedBars(bars, [(d.line_no, d.reason) for d in bar_file.dropped],
                                           bar_file.header_note, findings, counts))
        return BarFile(spec.symbol, path, bars, bar_file.dropped, bar_file.header_note)

    def _reading(self, spec: ReplayFile) -> dict[str, object]:
        """Everything besides the file's bytes that decides the bars it gives (the cache key)."""
        cfg = self.config
        return {"tz": spec.tz, "bar_time": spec.bar_time, "bar_seconds": spec.bar_seconds,
                "calendar": spec.calendar, "start": cfg.start, "end": cfg.end,
                "quality": cfg.quality.model_dump(mode="json")}

    def _gated(self, bars: list[Bar], symbol: str) -> tuple[list[Bar], list[Finding]]:
        """The bars that pass the quality gate, and what it found (the first few of each reason:
        enough to log). The reader already dropped rows out of order, repeated or out of range;
        the gate adds spikes (when ``feed.quality.spike_k`` is set) and gaps."""
        gate = self.quality
        kept: list[Bar] = []
        findings: list[Finding] = []
        seen: dict[str, int] = {}
        for bar in bars:
            found = gate.check(bar)
            if found is None or not found.quarantined:
                kept.append(bar)
            if found is not None:
                n = seen[found.reason] = seen.get(found.reason, 0) + 1
                if n <= _LOGGED_FINDINGS + 1:
                    findings.append((found.reason, bar.ts.isoformat(), found.quarantined, found.detail))
        return kept, findings

    def bars_before(self, cursor: Cursor | None) -> list[Bar]:
        """Bars already replayed up to and including ``cursor``, in replay order (to warm
        strategies up); bars that share the cursor's timestamp count only if they were done."""
        if cursor is None:
            return []
        done: list[Bar] = []
        at_ts = 0
        for ts, _, _, event in self._merged(pending=True):
            if ts > cursor.ts:
                break
            if ts == cursor.ts:
                at_ts += 1
                if at_ts > cursor.n_at_ts:
                    break
            if type(event) is Bar:
                done.append(event)
        return done

    def events(self, after: Cursor | None = None) -> Iterator[Event]:
        """Every event in replay order, skipping those at or before ``after``."""
        return cast(Iterator[Event], self._after(after, pending=False))  # every quote made

    def pending_events(self, after: Cursor | None = None) -> Iterator[PendingQuote | Bar]:
        """``events``, with each quote a ``PendingQuote`` (made only if someone looks)."""
        return cast(Iterator[PendingQuote | Bar], self._after(after, pending=True))

    def units(self, after: Cursor | None = None) -> tuple[list[PendingQuote | Bar], list[Bar]] | None:
        """A one-file replay as bars that each stand for their quotes and themselves: the events
        left of the bar ``after`` points into (some of its events were done), then the bars after
        it. None for several files (their events interleave: the engine takes them one by one)."""
        if len(self.bars) != 1:
            return None
        [(symbol, bars)] = self.bars.items()
        if after is None:
            return [], bars
        # A bar that ends before the cursor's time is done; the next ones may share its stamp.
        i = bisect_left(bars, after.ts, key=lambda b: b.ts)
        left = self._after(after, pending=True, bars={symbol: bars[i:]})
        first = next(left, None)
        if first is None:
            return [], []
        bar = first if type(first) is Bar else first.bar  # type: ignore[union-attr]
        j = next(k for k in range(i, len(bars)) if bars[k] is bar)
        head: list[PendingQuote | Bar] = [first]  # type: ignore[list-item]
        while head[-1] is not bar:
            head.append(next(left))  # type: ignore[arg-type]
        if len(head) == self.maker.n + 1:
            return [], bars[j:]  # none of its events was done: a whole unit
        return head, bars[j + 1:]

    def _after(self, after: Cursor | None, *, pending: bool,
               bars: dict[str, list[Bar]] | None = None) -> Iterator[Event | PendingQuote]:
        merged = self._merged(pending=pending, bars=bars)
        if after is None:
            for item in merged:
                yield item[3]
            return
        skip_at_ts = after.n_at_ts
        for item in merged:
            ts = item[0]
            if ts < after.ts:
                continue
            if ts == after.ts and skip_at_ts > 0:
                skip_at_ts -= 1
                continue
            yield item[3]

    def _merged(self, *, pending: bool, bars: dict[str, list[Bar]] | None = None
                ) -> Iterator[tuple[datetime, int, int, Event | PendingQuote]]:
        streams = [self._symbol_events(i, b, pending) for i, b in enumerate((bars or self.bars).values())]
        return heapq.merge(*streams) if len(streams) > 1 else streams[0] if streams else iter(())

    def _symbol_events(self, index: int, bars: list[Bar], pending: bool
                       ) -> Iterator[tuple[datetime, int, int, Event | PendingQuote]]:
        maker = self.maker
        seq = 0  # orders a symbol's events that share a timestamp (a bar's close, the next open)
        for bar in bars:
            for ts, price in maker.path(bar):
                seq += 1
                yield (ts, index, seq, PendingQuote(bar, ts, price, maker) if pending else maker.quote(bar, ts, price))
            seq += 1
            yield (bar.ts, index, seq, bar)

    async def stream(
        self, after: Cursor | None, speed: float | str, stop: asyncio.Event, batch_size: int = 512
    ) -> AsyncIterator[list[PendingQuote | Bar]]:
        """Yield events in batches; paced at ``speed`` data-seconds per wall-second unless 'max'.

        The quotes are ``PendingQuote``s: the engine makes the ones someone needs."""
        events = self.pending_events(after)
        if speed == "max":
            batch: list[PendingQuote | Bar] = []
            for ev in events:
                batch.append(ev)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
                    if stop.is_set():
                        return
            if batch:
                yield batch
            return
        loop = asyncio.get_running_loop()
        origin_wall = loop.time()
        origin_data: datetime | None = None
        batch = []
        for ev in events:
            if origin_data is None:
                origin_data = ev.ts
            due = origin_wall + (ev.ts - origin_data).total_seconds() / float(speed)
            delay = due - loop.time()
            if delay > 0.001:
                if batch:
                    yield batch
                    batch = []
                if stop.is_set():
                    return
                if await stopped_within(stop, delay):
                    return
            batch.append(ev)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def _log_findings(symbol: str, findings: list[Finding], seen: dict[str, int]) -> None:
    """The gate's findings for one file: the first few of each reason across the replay's files
    (``seen`` counts them), then one line that there are more."""
    for reason, at, quarantined, detail in findings:
        n = seen[reason] = seen.get(reason, 0) + 1
        if n <= _LOGGED_FINDINGS:
            log.warning("replay %s: bar at %s %s: %s", symbol, at, "dropped" if quarantined else "follows a gap",
                        detail)
        elif n == _LOGGED_FINDINGS + 1:
            log.warning("replay: more %s findings (QualityGate counts them)", reason)


def _in_range(bars: list[Bar], spec: ReplayFile, cfg: FeedConfig) -> list[Bar]:
    if cfg.start is None and cfg.end is None:
        return bars
    tz = ZoneInfo(spec.tz)
    lo, hi = cfg.start, cfg.end
    out = []
    for bar in bars:
        day = bar.start.astimezone(tz).date()
        if (lo is None or day >= lo) and (hi is None or day <= hi):
            out.append(bar)
    return out
