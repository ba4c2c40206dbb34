"""Failover between feeds, on a simulated wall clock: a stale or failing primary hands over to
the next healthy fallback, the primary takes over again after ``failback_seconds`` healthy,
and the engine never sees an older or repeated quote across a switch.

The sources are scripted feeds (a queue of batches the test pushes), so each step is exact;
tests/test_feed_failover_ib.py does the same with two real simulator processes over TCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from core.common.clock import SimClock
from core.config import FeedQualityConfig
from core.data.feeds.failover import FailoverFeed, FeedSource
from core.data.quality import QualityGate
from core.domain.events import DataQualityIssue, FeedHealthChanged, FeedSwitched
from core.domain.model import Quote

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)


class ScriptedFeed:
    """A feed whose batches the test pushes; ``stale`` stands for a dropped connection."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.symbols = ["AAPL"]
        self.stale = False
        self.queue: asyncio.Queue[list[Quote]] = asyncio.Queue()

    def load(self) -> None: ...
    def fingerprint(self) -> str:
        return self.name
    def bars_before(self, cursor: Any) -> list:
        return []

    async def stream(self, after: Any, speed: Any, stop: asyncio.Event) -> AsyncIterator[list[Quote]]:
        while not stop.is_set():
            yield await self.queue.get()


class Rig:
    def __init__(self, **quality: Any) -> None:
        self.wall = SimClock(T0)
        self.events: list[object] = []
        self.a, self.b = ScriptedFeed("a"), ScriptedFeed("b")
        cfg = FeedQualityConfig(**{"fail_count": 3, "fail_window_seconds": 10, **quality})
        self.feed = FailoverFeed([FeedSource("a", "ibkr", self.a, QualityGate("a", cfg), 5.0),
                                  FeedSource("b", "ibkr", self.b, QualityGate("b", cfg), 5.0)],
                                 self.wall, self.events.append, failback_seconds=30)
        self.stop = asyncio.Event()
        self.got: list[Quote] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        async def consume() -> None:
            async for batch in self.feed.stream(None, "max", self.stop):
                self.got.extend(batch)
        self.task = asyncio.create_task(consume())
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    def quote(self, seconds: float, bid: str, ask: str | None = None) -> Quote:
        ask = ask or str(D(bid) + D("0.01"))
        return Quote("AAPL", T0 + timedelta(seconds=seconds), D(bid), D(ask), D(bid))

    async def push(self, feed: ScriptedFeed, *quotes: Quote) -> None:
        feed.queue.put_nowait(list(quotes))
        await settle()

    def switches(self) -> list[tuple[str, str, bool]]:
        return [(e.from_feed, e.to_feed, e.failback) for e in self.events if isinstance(e, FeedSwitched)]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_stale_primary_fails_over_and_fails_back_after_being_healthy() -> None:
    async with Rig() as rig:
        await rig.push(rig.a, rig.quote(0, "100"))
        await rig.push(rig.b, rig.quote(0, "100.5"))
        assert [q.bid for q in rig.got] == [D("100")]  # only the active feed reaches the engine
        for s in (2, 4, 6, 8):  # b keeps talking, a went quiet (checked every 1.25 s)
            rig.wall.advance(timedelta(seconds=2))
            await rig.push(rig.b, rig.quote(s, "100.5"))
        assert rig.switches() == [("a", "b", False)]
        assert rig.feed.active.name == "b"
        health = [(e.feed, e.healthy, e.reason) for e in rig.events if isinstance(e, FeedHealthChanged)]
        assert health == [("a", False, "no data for 6 s (stale_seconds 5)")]
        assert rig.feed.sources[0].reason == "no data for 8 s (stale_seconds 5)"  # status shows it growing
        await rig.push(rig.b, rig.quote(9, "100.6"))
        assert rig.got[-1].bid == D("100.6")
        await rig.push(rig.a, rig.quote(9.5, "100.7"))  # a is back, but not trusted yet
        assert rig.feed.active.name == "b" and rig.got[-1].bid == D("100.6")
        for s in range(10, 44, 2):
            rig.wall.advance(timedelta(seconds=2))
            await rig.push(rig.a, rig.quote(s, "100.7"))
            await rig.push(rig.b, rig.quote(s, "100.8"))
        assert rig.switches() == [("a", "b", False), ("b", "a", True)]  # failback after 30 s healthy
        assert rig.got[-1].bid == D("100.7")


async def test_a_primary_that_keeps_failing_the_gate_hands_over() -> None:
    async with Rig() as rig:
        await rig.push(rig.a, rig.quote(0, "100"))
        await rig.push(rig.b, rig.quote(0, "100"))
        await rig.push(rig.a, rig.quote(1, "101", "100"), rig.quote(2, "101", "100"))
        assert rig.switches() == []
        await rig.push(rig.a, rig.quote(3, "101", "100"))  # the third crossed quote in 10 s
        assert rig.switches() == [("a", "b", False)]
        assert "3 items failed the quality gate" in rig.feed.sources[0].reason
        assert all(q.bid <= q.ask for q in rig.got)  # no crossed quote reached the engine
        issues = [e for e in rig.events if isinstance(e, DataQualityIssue)]
        assert [(e.feed, e.symbol, e.reason, e.opened) for e in issues] == [("a", "AAPL", "crossed", True)]


async def test_a_dropped_connection_fails_over_at_once() -> None:
    async with Rig() as rig:
        await rig.push(rig.a, rig.quote(0, "100"))
        await rig.push(rig.b, rig.quote(0, "100"))
        rig.a.stale = True
        rig.wall.advance(timedelta(seconds=1.25))  # the next health check (a quarter of stale_seconds)
        await settle()
        assert rig.switches() == [("a", "b", False)]
        assert rig.feed.sources[0].reason == "its connection is down"


async def test_no_older_or_repeated_quote_across_a_switch() -> None:
    async with Rig() as rig:
        await rig.push(rig.a, rig.quote(10, "100"))
        await rig.push(rig.b, rig.quote(0, "99"))
        rig.a.stale = True
        rig.wall.advance(timedelta(seconds=1.25))
        await settle()
        assert rig.feed.active.name == "b"
        # b lags: its quotes stamped before the engine's last one are dropped, the rest pass
        await rig.push(rig.b, rig.quote(9, "99.5"), rig.quote(10, "100"), rig.quote(10, "100.1"),
                       rig.quote(11, "100.2"))
        assert [(q.ts - T0).total_seconds() for q in rig.got] == [10, 10, 11]
        assert [q.bid for q in rig.got] == [D("100"), D("100.1"), D("100.2")]
        ts = [q.ts for q in rig.got]
        assert ts == sorted(ts)
        assert rig.feed.sources[1].dropped_at_switch == 2


async def test_when_every_feed_is_down_the_active_stays_and_says_so() -> None:
    async with Rig() as rig:
        await rig.push(rig.a, rig.quote(0, "100"))
        rig.a.stale = rig.b.stale = True
        rig.wall.advance(timedelta(seconds=1.25))
        await settle()
        assert rig.switches() == [] and rig.feed.active.name == "a" and not rig.feed.healthy
        views = {v.name: v for v in rig.feed.views()}
        assert views["a"].active and not views["a"].healthy and not views["b"].healthy


def test_fallbacks_in_config_are_checked_and_wired(tmp_path) -> None:
    import pytest

    from cockpit.live_feeds import live_feed
    from core.common.bus import Bus
    from core.common.clock import LiveClock
    from core.config import ConfigError, load_config
    from tests.conftest import CONFIG

    def settings(feed: dict):
        return load_config(CONFIG, state_dir=tmp_path / "state", overrides={"feed": feed})

    s = settings({"kind": "synthetic", "fallbacks": [{"kind": "synthetic", "seed": 7}, {"kind": "synthetic",
                                                                                     "name": "spare"}]})
    primary_symbols = ["SYN000", "SYN001"]
    from core.data.feeds.synthetic import SyntheticFeed

    primary = SyntheticFeed(s.feed.synthetic.model_copy(update={"symbols": 2}), LiveClock())
    feed = live_feed(s, primary, bus=Bus(), wall=SimClock(T0), clock=LiveClock())
    assert [(v.name, v.kind, v.active) for v in feed.views()] == [
        ("synthetic", "synthetic", True), ("synthetic-1", "synthetic", False), ("spare", "synthetic", False)]
    assert all(src.feed.symbols == primary_symbols for src in feed.sources)  # a fallback carries the same symbols
    assert feed.name == "synthetic" and feed.symbols == primary_symbols  # the primary's cursor and symbols

    for bad, words in [
        ({"fallbacks": [{"kind": "synthetic"}]}, "a replay has no fallback"),
        ({"kind": "synthetic", "fallbacks": [{"kind": "ibkr"}]}, "an ibkr fallback serves IB symbols"),
        ({"kind": "synthetic", "fallbacks": [{"kind": "synthetic", "name": "synthetic"}]}, "is taken by another feed"),
        ({"kind": "synthetic", "fallbacks": [{"kind": "synthetic", "name": "Bad Name"}]}, "a feed name is"),
        ({"kind": "synthetic", "quality": {"spike_k": -1}}, "spike_k"),
    ]:
        with pytest.raises(ConfigError, match=words):
            settings(bad)
    with pytest.raises(ConfigError, match="random prices would drive real IBKR orders"):  # never trade on fake prices
        load_config(CONFIG, state_dir=tmp_path / "state", overrides={
            "broker": {"kind": "ibkr"}, "feed": {"kind": "ibkr", "symbols": ["AAPL"], "fallbacks": [{"kind": "synthetic"}]}})
