"""A live feed made of a primary and ordered fallbacks, every item behind its quality gate.

All sources stream at once (the idle ones too: their health must be known before they are
needed), each through its own ``QualityGate``; only the active source's items go on to the
engine. A source is unhealthy while it is stale (no item passed the gate for its
``stale_seconds`` while the exchange is open, or its connection is down) or failing (at least
``fail_count`` items quarantined within ``fail_window_seconds``). When the active source is
unhealthy the next healthy one in order takes over; a source earlier in the order takes over
again once it has been healthy for ``failback_seconds``.

A source whose prices are not live (``FeedSource.not_live``: an IB fallback on delayed or frozen
data) is used like any other, but each ``FeedSwitched`` says so: the risk gate holds strategy
orders while it is active (core/risk/gate.py, ``feed_hold``).

Across a switch the engine never sees a symbol's item older than the last one it got, or the
same quote twice: the switch filter drops them (a crossed quote never passes a gate).

The engine's wall clock drives the health checks (``Clock.call_later``), so a test moves
time with a ``SimClock`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.common.clock import Clock, TimerHandle
from core.data.feeds.base import Feed
from core.data.feeds.replay_quotes import PendingQuote
from core.data.quality import Finding, QualityGate
from core.domain.events import DataQualityIssue, FeedHealthChanged, FeedSwitched
from core.domain.model import Bar, Quote

log = logging.getLogger("cockpit.feed")

Event = Quote | Bar
_MAX_BUFFERED = 100_000


@dataclass(eq=False)
class FeedSource:
    """One feed behind its gate, and what is known of its health."""

    name: str
    kind: str
    feed: Feed
    gate: QualityGate
    stale_seconds: float
    not_live: str | None = None  # why its prices are not live (IB delayed data): strategies are held on it
    healthy: bool = True
    reason: str = "starting"
    last_good: datetime | None = None  # wall time of the last item that passed the gate
    healthy_since: datetime | None = None
    failures: deque[datetime] = field(default_factory=deque)
    last_failure: str = ""
    buffer: list[Event] = field(default_factory=list)
    delivered: int = 0  # items handed to the engine while active
    dropped_at_switch: int = 0

    def connection_down(self) -> bool:
        return bool(getattr(self.feed, "stale", False))


@dataclass(frozen=True, slots=True)
class FeedView:
    """One source as ``cockpit status`` shows it."""

    name: str
    kind: str
    active: bool
    healthy: bool
    reason: str
    quarantined: int
    passed: int
    last_good: datetime | None
    by_reason: dict[str, int]  # quarantined (and flagged) items per check
    not_live: str | None = None  # why its prices are not live (IB delayed or frozen data)


class FailoverFeed:
    """The ``Feed`` the engine reads when the feed is live (``watches_health``: the engine
    leaves staleness to this feed's per-source checks)."""

    watches_health = True

    def __init__(self, sources: list[FeedSource], wall: Clock,
                 publish: Callable[[object], None], *, failback_seconds: float,
                 in_session: Callable[[datetime], bool] | None = None) -> None:
        if not sources:
            raise ValueError("a failover feed needs at least one source")
        self.sources = sources
        self.wall = wall
        self.publish = publish
        self.failback = timedelta(seconds=failback_seconds)
        self.in_session = in_session
        self.active_index = 0
        self.switches = 0
        self._arrived = asyncio.Event()
        self._timer: TimerHandle | None = None
        self._started_at: datetime | None = None
        self._last_sent: dict[str, tuple[datetime, object]] = {}  # symbol -> (ts, quote key) delivered
        for src in self.sources:
            # the last fail_count failures are all the check needs: a flood of bad items stays bounded
            src.failures = deque(src.failures, maxlen=src.gate.config.fail_count)
            if hasattr(src.feed, "reject"):  # a feed that drops items itself reports them to the gate's count
                src.feed.reject = self._rejected_by(src)

    # ---- the Feed protocol (the primary's identity: its cursor, its symbols) ------------------

    @property
    def name(self) -> str:
        return self.sources[0].feed.name

    @property
    def symbols(self) -> list[str]:
        return self.sources[0].feed.symbols

    @property
    def active(self) -> FeedSource:
        return self.sources[self.active_index]

    @property
    def healthy(self) -> bool:
        return self.active.healthy

    def load(self) -> None:
        for src in self.sources:
            src.feed.load()

    def fingerprint(self) -> str:
        return self.sources[0].feed.fingerprint()

    def bars_before(self, cursor: Any) -> list[Bar]:
        return self.sources[0].feed.bars_before(cursor)

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event) -> AsyncIterator[list[Event]]:
        """The active source's items that passed its gate, until ``stop`` is set."""
        self._started_at = self.wall.now()
        ended = asyncio.Event()
        pumps = [asyncio.ensure_future(self._pump(src, after, speed, ended)) for src in self.sources]
        self._schedule()
        try:
            while not stop.is_set():
                out = self._take()
                if out:
                    yield out
                    continue
                if all(p.done() for p in pumps):
                    return  # every source ended (a finite rehearsal feed): nothing more will come
                self._arrived.clear()
                arrived = asyncio.ensure_future(self._arrived.wait())
                stopped = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    arrived.cancel()
                    stopped.cancel()
        finally:
            ended.set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def aclose(self) -> None:
        """End the sources' own sessions (a fallback's data connection)."""
        for src in self.sources:
            closing = getattr(src.feed, "aclose", None)
            if closing is not None:
                try:
                    await closing()
                except Exception:
                    log.exception("feed %s did not close cleanly", src.name)

    # ---- what the engine and the read model see ---------------------------------------------

    def views(self) -> list[FeedView]:
        return [FeedView(s.name, s.kind, i == self.active_index, s.healthy, s.reason, s.gate.quarantined,
                         s.gate.passed, s.last_good, dict(s.gate.counts), s.not_live)
                for i, s in enumerate(self.sources)]

    def check_now(self) -> None:
        """Judge every source's health now (the timer does this on its own)."""
        self._evaluate(self.wall.now())

    # ---- inside ------------------------------------------------------------------------------

    def _take(self) -> list[Event]:
        src = self.active
        if not src.buffer:
            return []
        batch, src.buffer = src.buffer, []
        out: list[Event] = []
        sent = self._last_sent
        for ev in batch:
            key: object = (ev.bid, ev.ask, ev.last) if isinstance(ev, Quote) else ev.close
            prev = sent.get(ev.symbol)
            if prev is not None and (ev.ts < prev[0] or (ev.ts == prev[0] and key == prev[1])):
                src.dropped_at_switch += 1  # older than, or the same as, what the engine already has
                continue
            sent[ev.symbol] = (ev.ts, key)
            out.append(ev)
        src.delivered += len(out)
        return out

    async def _pump(self, src: FeedSource, after: Any, speed: float | str, ended: asyncio.Event) -> None:
        try:
            async for batch in src.feed.stream(after, speed, ended):
                now = self.wall.now()
                gate = src.gate
                keep = src is self.active
                good = 0
                for item in batch:
                    # A live feed's items are made already; a synthetic replay quote is made here (it is gated).
                    ev = item.quote() if isinstance(item, PendingQuote) else item
                    found = gate.check(ev)
                    if found is not None:
                        self._found(src, found, now)
                        if found.quarantined:
                            continue
                    good += 1
                    if keep:
                        src.buffer.append(ev)
                if good:
                    src.last_good = now
                if len(src.buffer) > _MAX_BUFFERED:
                    del src.buffer[: len(src.buffer) - _MAX_BUFFERED]
                for closed in gate.take_closed():
                    self.publish(DataQualityIssue(src.name, closed.symbol, closed.reason, "passes again", False,
                                                  closed.count))
                if not src.healthy or not self.active.healthy:
                    self._evaluate(now)
                self._arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a source that breaks is unhealthy; the others carry on
            log.exception("feed %s failed", src.name)
            self._set_health(src, False, f"it failed: {type(exc).__name__}: {exc}"[:200], self.wall.now())
            self._choose(self.wall.now())
        finally:
            self._arrived.set()

    def _rejected_by(self, src: FeedSource) -> Callable[[str, str, str], None]:
        def reject(symbol: str, reason: str, detail: str) -> None:
            self._found(src, src.gate.record(symbol, reason, detail, self.wall.now()), self.wall.now())
        return reject

    def _found(self, src: FeedSource, found: Finding, now: datetime) -> None:
        if found.quarantined:
            src.failures.append(now)
            src.last_failure = f"{found.symbol} {found.detail}"
        if found.opened:
            what = "quarantined" if found.quarantined else "flagged"
            log.warning("feed %s: %s %s %s: %s", src.name, found.symbol, what, found.reason, found.detail)
            self.publish(DataQualityIssue(src.name, found.symbol, found.reason, found.detail, True, 1,
                                          found.quarantined))
        cfg = src.gate.config
        if src.healthy and len(src.failures) >= cfg.fail_count:
            self._evaluate(now)

    def _schedule(self) -> None:
        every = min(s.stale_seconds for s in self.sources) / 4
        self._timer = self.wall.call_later(timedelta(seconds=min(max(every, 0.05), 5.0)), self._tick)

    def _tick(self) -> None:
        self._evaluate(self.wall.now())
        self._arrived.set()
        self._schedule()

    def _problem(self, src: FeedSource, now: datetime) -> str | None:
        if src.connection_down():
            return "its connection is down"
        cfg = src.gate.config
        window = timedelta(seconds=cfg.fail_window_seconds)
        while src.failures and now - src.failures[0] > window:
            src.failures.popleft()
        if len(src.failures) >= cfg.fail_count:
            return (f"{len(src.failures)} items failed the quality gate in {cfg.fail_window_seconds:g} s "
                    f"(last: {src.last_failure})")
        if self.in_session is None or self.in_session(now):
            since = src.last_good or self._started_at
            if since is not None and (now - since).total_seconds() > src.stale_seconds:
                return f"no data for {(now - since).total_seconds():.0f} s (stale_seconds {src.stale_seconds:g})"
        return None

    def _evaluate(self, now: datetime) -> None:
        for src in self.sources:
            problem = self._problem(src, now)
            if problem is not None:
                self._set_health(src, False, problem, now)
            elif not src.healthy or src.healthy_since is None:
                self._set_health(src, True, "data passing the gate", now)
        self._choose(now)

    def _set_health(self, src: FeedSource, healthy: bool, reason: str, now: datetime) -> None:
        if healthy:
            if src.healthy and src.healthy_since is not None:
                return
            changed = not src.healthy
            src.healthy, src.reason, src.healthy_since = True, reason, now
        else:
            changed = src.healthy
            src.healthy, src.reason, src.healthy_since = False, reason, None
        if changed:
            if healthy:
                log.warning("feed %s healthy again: %s", src.name, reason)
            else:
                log.error("feed %s UNHEALTHY: %s", src.name, reason)
            self.publish(FeedHealthChanged(src.name, healthy, reason))

    def _choose(self, now: datetime) -> None:
        active = self.active
        if not active.healthy:
            for i, src in enumerate(self.sources):
                if i != self.active_index and src.healthy:
                    self._switch(i, f"{active.name}: {active.reason}")
                    return
            return
        for i in range(self.active_index):
            src = self.sources[i]
            if src.healthy and src.healthy_since is not None and now - src.healthy_since >= self.failback:
                self._switch(i, f"{src.name} healthy for {(now - src.healthy_since).total_seconds():.0f} s "
                                f"(failback_seconds {self.failback.total_seconds():g})")
                return

    def _switch(self, index: int, reason: str) -> None:
        old, new = self.active, self.sources[index]
        failback = index < self.active_index
        self.active_index = index
        self.switches += 1
        old.buffer.clear()
        new.buffer.clear()  # what it sent while idle is history: the engine takes its next items
        log.warning("feed: %s -> %s (%s)", old.name, new.name, reason)
        self.publish(FeedSwitched(old.name, new.name, reason, failback, new.not_live))
