from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

from core.config import FeedConfig, ReplayFile
from core.data.bar_files import bundled_path
from core.data.feeds.replay import Cursor, ReplayFeed
from core.domain.model import Bar, Quote


def feed(quotes_per_bar: int = 4, symbols: tuple[str, ...] = ("ORCL", "SPY")) -> ReplayFeed:
    files = {"ORCL": "daily/ORCL_1995-2014_yahoo.csv", "SPY": "daily/SPY_2007-2017_yahoo.csv"}
    cfg = FeedConfig(
        speed="max", start=date(2008, 1, 2), end=date(2008, 1, 31), quotes_per_bar=quotes_per_bar,
        files=[ReplayFile(symbol=s, path=files[s]) for s in symbols],
    )
    f = ReplayFeed(cfg, lambda p: bundled_path(p))
    f.load()
    return f


def test_quotes_walk_open_extremes_close_then_the_bar() -> None:
    f = feed(symbols=("ORCL",))
    events = list(f.events())
    first_bar = f.bars["ORCL"][0]
    quotes, bar = events[:4], events[4]
    assert all(isinstance(q, Quote) for q in quotes) and bar is first_bar
    lo_hi = (first_bar.low, first_bar.high) if first_bar.close >= first_bar.open else (first_bar.high, first_bar.low)
    assert [q.last for q in quotes] == [first_bar.open, *lo_hi, first_bar.close]
    assert quotes[0].ts == first_bar.start and quotes[-1].ts == first_bar.ts == bar.ts
    for q in quotes:
        assert q.bid < q.last <= q.ask or q.bid <= q.last < q.ask  # never crossed or locked
        assert q.volume == first_bar.volume / 4


def test_events_are_in_time_order_across_symbols_and_deterministic() -> None:
    events = list(feed().events())
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len(events) == sum(len(b) for b in feed().bars.values()) * 5
    assert [(type(e), e.symbol, e.ts) for e in events] == [(type(e), e.symbol, e.ts) for e in feed().events()]


def test_cursor_resumes_exactly_after_the_last_processed_event() -> None:
    f = feed()
    events = list(f.events())
    for cut in (1, 7, 10, 11, 37, len(events) - 1):
        done = events[:cut]
        last = done[-1].ts
        cursor = Cursor(last, sum(1 for e in done if e.ts == last))
        assert list(f.events(cursor)) == events[cut:]
        assert f.bars_before(cursor) == [e for e in done if isinstance(e, Bar)]


def test_date_range_and_dropped_rows() -> None:
    f = feed(symbols=("SPY",))
    bars = f.bars["SPY"]
    assert bars[0].start.date() == date(2008, 1, 2) and bars[-1].ts.date() == date(2008, 1, 31)
    assert len(bars) == 21  # NYSE sessions in January 2008 after New Year's Day
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    assert D(0) not in {b.volume for b in bars}


def test_one_quote_per_bar_is_the_open(tmp_path: Path) -> None:
    f = feed(quotes_per_bar=1, symbols=("ORCL",))
    events = list(f.events())
    bar = f.bars["ORCL"][0]
    assert isinstance(events[0], Quote) and events[0].last == bar.open and events[1] is bar
