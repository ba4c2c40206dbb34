"""The quotes a replay synthesises from each bar, and the promise of one not made yet.

A bar becomes ``quotes_per_bar`` quotes before it: 1 (the open at the bar's start), 2 (the
open, then the close at its end) or 4 (the open, the extreme nearer the open, the other
extreme, the close, a third of the bar apart). A quote's bid and ask sit ``spread_bps / 2``
either side of its price, rounded outwards to ``price_increment``.

Most of those quotes are seen by no one: with no order working and no strategy listening to
quotes, the paper venue, the strategies and the book only ever use the bar (the last quote of
a bar has the bar's close). So the engine gets ``PendingQuote``s, which cost a slot each, and
makes the ``Quote`` (``PendingQuote.quote()``) only when something needs it; see
core/kernel/driver.py for when that is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from core.config import FeedConfig
from core.domain.model import Bar, Quote

__all__ = ["TINY_BAR", "PendingQuote", "QuoteMaker"]

_BPS = Decimal(10000)
#: A bar shorter than this may have interior quotes at its start's or end's stamp (a third of
#: it rounds to 0 or up to the end); a longer one has them strictly inside.
TINY_BAR = timedelta(microseconds=3)


class QuoteMaker:
    """Makes the synthetic quotes of a replay's bars, with the feed's spread and increment."""

    __slots__ = ("half", "inc", "n")

    def __init__(self, config: FeedConfig) -> None:
        self.n = config.quotes_per_bar
        self.half = config.spread_bps / 2 / _BPS
        self.inc = config.price_increment

    def path(self, bar: Bar) -> tuple[tuple[datetime, Decimal], ...]:
        """When each of ``bar``'s quotes comes and at what price."""
        start, end = bar.start, bar.ts
        if self.n == 1:
            return ((start, bar.open),)
        if self.n == 2:
            return ((start, bar.open), (end, bar.close))
        third = (end - start) / 3
        first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
        return ((start, bar.open), (start + third, first), (start + 2 * third, second), (end, bar.close))

    def quote(self, bar: Bar, ts: datetime, price: Decimal) -> Quote:
        """The quote at ``price`` and ``ts`` of ``bar``'s path (its share of the bar's volume)."""
        half, inc = self.half, self.inc
        bid = (price * (1 - half)).quantize(inc, ROUND_FLOOR)
        ask = (price * (1 + half)).quantize(inc, ROUND_CEILING)
        if ask <= bid:
            ask = bid + inc
        return Quote(bar.symbol, ts, bid, ask, price, bar.volume / self.n if bar.volume else None)

    def pending(self, bar: Bar) -> list[PendingQuote]:
        return [PendingQuote(bar, ts, price, self) for ts, price in self.path(bar)]


class PendingQuote:
    """A synthetic quote not made yet: its symbol, time and price, and how to make it."""

    __slots__ = ("bar", "last", "maker", "symbol", "ts")

    def __init__(self, bar: Bar, ts: datetime, last: Decimal, maker: QuoteMaker) -> None:
        self.bar = bar
        self.symbol = bar.symbol
        self.ts = ts
        self.last = last
        self.maker = maker

    def quote(self) -> Quote:
        return self.maker.quote(self.bar, self.ts, self.last)

    def __repr__(self) -> str:
        return f"PendingQuote({self.symbol} {self.ts.isoformat()} {self.last})"
