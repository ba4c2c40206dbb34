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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from core.config import ConfigError, FeedConfig, ReplayFile
from core.data.bar_files import BarFile, BarFileError, read_bar_file
from core.data.feeds.base import stopped_within
from core.domain.model import Bar, Quote

log = logging.getLogger("cockpit.feed")

Event = Quote | Bar
_BPS = Decimal(10000)


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last processed position in the replay: events at ``ts`` done so far."""

    ts: datetime
    n_at_ts: int


class ReplayFeed:
    name = "replay"

    def __init__(self, config: FeedConfig, resolve: Callable[[str], Path]) -> None:
        self.config = config
        self._resolve = resolve
        self.files: list[BarFile] = []
        self.bars: dict[str, list[Bar]] = {}

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
        """Read every configured file (bad rows are dropped with a warning by the reader)."""
        cfg = self.config
        for spec in cfg.files:
            try:
                bar_file = read_bar_file(
                    self._resolve(spec.path), spec.symbol, tz=spec.tz, bar_time=spec.bar_time,
                    bar_seconds=spec.bar_seconds, calendar=spec.calendar,
                )
            except (BarFileError, ValueError) as exc:
                raise ConfigError(f"feed.files[{spec.symbol}]: {exc}") from None
            bars = _in_range(bar_file.bars, spec, cfg)
            self.files.append(bar_file)
            self.bars[spec.symbol] = bars
            log.info("replay %s: %d bars from %s (%d rows dropped)%s", spec.symbol, len(bars),
                     bar_file.path.name, len(bar_file.dropped),
                     f", {bars[0].start.date()} .. {bars[-1].ts.date()}" if bars else "")

    def bars_before(self, cursor: Cursor | None) -> list[Bar]:
        """Bars already replayed up to and including ``cursor``, in replay order (to warm
        strategies up); bars that share the cursor's timestamp count only if they were done."""
        if cursor is None:
            return []
        done: list[Bar] = []
        at_ts = 0
        streams = [self._symbol_events(i, bars) for i, bars in enumerate(self.bars.values())]
        for ts, _, _, event in heapq.merge(*streams):
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
        streams = [self._symbol_events(i, bars) for i, bars in enumerate(self.bars.values())]
        merged = heapq.merge(*streams) if len(streams) > 1 else streams[0] if streams else iter(())
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

    def _symbol_events(self, index: int, bars: list[Bar]) -> Iterator[tuple[datetime, int, int, Event]]:
        n = self.config.quotes_per_bar
        half = self.config.spread_bps / 2 / _BPS
        inc = self.config.price_increment
        seq = 0  # orders a symbol's events that share a timestamp (a bar's close, the next open)
        for bar in bars:
            start, end = bar.start, bar.ts
            path: tuple[tuple[datetime, Decimal], ...]
            if n == 1:
                path = ((start, bar.open),)
            elif n == 2:
                path = ((start, bar.open), (end, bar.close))
            else:
                third = (end - start) / 3
                first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
                path = ((start, bar.open), (start + third, first), (start + 2 * third, second), (end, bar.close))
            volume = bar.volume / n if bar.volume else None
            for ts, price in path:
                bid = (price * (1 - half)).quantize(inc, ROUND_FLOOR)
                ask = (price * (1 + half)).quantize(inc, ROUND_CEILING)
                if ask <= bid:
                    ask = bid + inc
                seq += 1
                yield (ts, index, seq, Quote(bar.symbol, ts, bid, ask, price, volume))
            seq += 1
            yield (end, index, seq, bar)

    async def stream(
        self, after: Cursor | None, speed: float | str, stop: asyncio.Event, batch_size: int = 512
    ) -> AsyncIterator[list[Event]]:
        """Yield events in batches; paced at ``speed`` data-seconds per wall-second unless 'max'."""
        events = self.events(after)
        if speed == "max":
            batch: list[Event] = []
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
