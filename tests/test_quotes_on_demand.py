"""A replay makes its synthetic quotes only where someone observes them (core/kernel/driver.py),
and that changes nothing anyone can see: the same fills, the same cursor, every quote for a
strategy or a subscriber that listens to quotes, an exact resume from a stop inside a bar."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from cockpit.wiring import build_engine
from core.config import FeedConfig
from core.data.bar_files import bundled_path
from core.data.feeds.replay import Cursor, ReplayFeed
from core.data.feeds.replay_quotes import PendingQuote
from core.domain.model import Bar, Quote
from core.strategy import KINDS, Strategy
from tests.replay_fingerprint import bench_settings, run_and_fingerprint, traded
from tests.test_replay_same_trades import GOLDEN

MINUTES = "intraday/backtrader_2006-01-02-volume-min-001.txt"


def minute_feed(quotes: int, end: date = date(2006, 1, 3)) -> ReplayFeed:
    cfg = FeedConfig(speed="max", end=end, quotes_per_bar=quotes,
                     files=[{"symbol": "F", "path": MINUTES, "tz": "Europe/Berlin", "bar_seconds": 60,
                             "calendar": None}])
    feed = ReplayFeed(cfg, lambda p: bundled_path(p))
    feed.load()
    return feed


def key(ev: Quote | Bar | PendingQuote) -> tuple[object, ...]:
    if isinstance(ev, Bar):
        return ("bar", ev.symbol, ev.ts, ev.close)
    quote = ev.quote() if isinstance(ev, PendingQuote) else ev
    return ("quote", quote.symbol, quote.ts, quote.bid, quote.ask, quote.last, quote.volume)


@pytest.mark.parametrize("quotes", [1, 2, 4])
def test_units_after_every_cursor_are_exactly_the_events_left(quotes: int) -> None:
    feed = minute_feed(quotes)
    events = list(feed.events())
    assert len(events) > 1000
    for cut in [*range(0, 40), *range(len(events) - 12, len(events) + 1), 511, 512, 513, 1024]:
        done = events[:cut]
        cursor = Cursor(done[-1].ts, sum(1 for e in done if e.ts == done[-1].ts)) if done else None
        units = feed.units(cursor)
        assert units is not None
        head, bars = units
        expanded = [*head, *(ev for bar in bars for ev in (*feed.maker.pending(bar), bar))]
        assert [key(e) for e in expanded] == [key(e) for e in events[cut:]], cut


def test_several_files_are_not_units() -> None:
    cfg = FeedConfig(speed="max", start=date(2008, 1, 2), end=date(2008, 1, 10),
                     files=[{"symbol": s, "path": f"daily/{s}_{y}_yahoo.csv"} for s, y in
                            (("ORCL", "1995-2014"), ("SPY", "2007-2017"))])
    feed = ReplayFeed(cfg, lambda p: bundled_path(p))
    feed.load()
    assert feed.units(None) is None
    assert [key(e) for e in feed.pending_events()] == [key(e) for e in feed.events()]


class QuoteCounter(Strategy):
    """Listens to every quote and trades nothing."""

    seen = 0

    def on_quote(self, quote: Quote) -> None:
        QuoteCounter.seen += 1


def test_a_strategy_with_a_quote_hook_gets_every_quote_and_the_fills_stay(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "quote_counter", QuoteCounter)
    QuoteCounter.seen = 0
    settings = bench_settings("orcl", 4, tmp_path / "state")
    settings.strategies["counter"] = settings.strategies["sma_cross"].model_copy(
        update={"kind": "quote_counter", "params": {}})
    assert run_and_fingerprint(settings) == GOLDEN[("orcl", 4)]
    assert QuoteCounter.seen == 5036 * 4


@pytest.mark.parametrize("every", [True, False])
def test_a_quote_subscriber_gets_every_quote_unless_it_says_it_can_do_without(tmp_path: Path, every: bool) -> None:
    settings = bench_settings("fesx", 4, tmp_path / "state")
    engine = build_engine(settings, alert_sinks=())
    seen: list[Quote] = []
    engine.bus.subscribe(Quote, seen.append, every=every)

    async def go() -> None:
        await engine.start()
        await engine.run()
        await engine.shutdown()

    asyncio.run(go())
    assert traded(tmp_path / "state" / "cockpit.sqlite") == GOLDEN[("fesx", 4)]
    assert engine.events_processed == 30889 * 5
    if every:
        assert len(seen) == engine.quotes_made == 30889 * 4
    else:  # only while an order worked: an order waits 50 ms for the next quote, filling within a few
        assert len(seen) == engine.quotes_made < 30889 * 4 // 20
        assert all(isinstance(q, Quote) for q in seen)


@pytest.mark.parametrize("quotes", [1, 2, 4])
def test_stops_inside_bars_resume_to_the_same_trades(tmp_path: Path, quotes: int) -> None:
    """Stopped after every 7th batch (512 events: mostly inside a bar), restarted on the same
    state dir until done, the replay trades exactly what one run does."""
    whole = bench_settings("fesx", quotes, tmp_path / "whole")
    whole.feed.end = date(2006, 1, 10)
    reference = run_and_fingerprint(whole)
    assert reference.fills > 50
    state = tmp_path / "stopped"
    runs = 0
    while True:
        settings = bench_settings("fesx", quotes, state)
        settings.feed.end = date(2006, 1, 10)
        engine = build_engine(settings, alert_sinks=())
        batches = 0
        done = engine.batch_done

        async def stopping(cur_ts, n_at_ts, size, engine=engine, done=done):  # type: ignore[no-untyped-def]
            nonlocal batches
            stop = await done(cur_ts, n_at_ts, size)
            batches += 1
            if batches == 7:
                engine.request_stop()
                return True
            return stop

        engine.batch_done = stopping  # type: ignore[method-assign]

        async def go(engine=engine) -> bool:  # type: ignore[no-untyped-def]
            await engine.start()
            try:
                return await engine.run()
            finally:
                await engine.shutdown()

        finished = asyncio.run(go())
        runs += 1
        if finished:
            break
        assert engine.cursor is not None and runs < 200
    assert runs > 3
    assert traded(state / "cockpit.sqlite") == reference
