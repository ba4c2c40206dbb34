"""The data quality gate: one verdict per quote or bar before anything downstream sees it.

Quarantined (dropped, with the reason): a missing (NaN) or non-positive price, a crossed or
locked book, a timestamp before the symbol's last (out of order) or an exact repeat
(duplicate), and a spike: a move larger than ``spike_k`` times the symbol's recent
volatility. A spike that the next ``spike_confirm`` items confirm at the new level is a real
move: the level is accepted (those items pass) rather than quarantining the symbol forever.
A gap (bars only: a time jump far beyond the symbol's usual interval) is flagged and counted
but the bar is kept: the data after a gap is still good data.

Each symbol's problems come in episodes: the first failure opens one (``Finding.opened``),
``clear_after`` clean items in a row close it (``QualityGate.closed``), so an alert goes out
once per episode rather than once per bad tick.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from core.config.feeds import FeedQualityConfig
from core.domain.model import Bar, Quote

#: the reasons, as counted in the metrics (``cockpit_feed_quarantined_total{reason=...}``)
REASONS = ("nan", "non_positive", "crossed", "locked", "out_of_order", "duplicate", "spike", "gap")


@dataclass(frozen=True, slots=True)
class Finding:
    """One item that failed a check (``quarantined`` False: flagged only, e.g. a gap)."""

    symbol: str
    reason: str  # one of REASONS
    detail: str
    ts: datetime
    quarantined: bool = True
    opened: bool = False  # the first finding of an episode for (symbol, reason)


@dataclass(frozen=True, slots=True)
class EpisodeClosed:
    """A symbol's episode of ``reason`` ended: ``count`` findings in it."""

    symbol: str
    reason: str
    count: int


@dataclass(slots=True)
class _Symbol:
    last_ts: datetime | None = None
    last_key: tuple[float, float, float] | None = None
    price: float = 0.0  # last accepted price (mid of a quote, close of a bar)
    var: float = 0.0  # EWMA of squared log returns
    n: int = 0  # accepted prices so far
    pending: list[float] = field(default_factory=list)  # a spike's new level, awaiting confirmation
    bar_ts: datetime | None = None
    bar_gap: float = 0.0  # EWMA of seconds between bars
    episodes: dict[str, int] = field(default_factory=dict)  # reason -> findings in the open episode
    clean: int = 0  # clean items in a row since the last finding


def _bad(x: float) -> bool:
    return x != x or x in (math.inf, -math.inf)


class QualityGate:
    """Checks one feed's items; keeps per-symbol state and the counts per reason."""

    def __init__(self, feed: str, config: FeedQualityConfig, *, history: bool = False) -> None:
        """``history``: a replay's bars, where an unset ``spike_k`` means no spike check."""
        self.feed = feed
        self.config = config
        self.spike_k = config.spike_k if config.spike_k is not None else (0.0 if history else 10.0)
        self.counts: Counter[str] = Counter()
        self.passed = 0
        self.closed: list[EpisodeClosed] = []  # episodes that ended since the caller last took them
        self._symbols: dict[str, _Symbol] = {}
        self._alpha = 2.0 / (config.spike_span + 1)
        self._floor = (config.spike_floor_bps / 10_000) ** 2

    def check(self, item: Quote | Bar) -> Finding | None:
        """None if ``item`` may pass (a gap finding also lets it pass: see ``Finding.quarantined``)."""
        st = self._symbols.get(item.symbol)
        if st is None:
            st = self._symbols[item.symbol] = _Symbol()
        if type(item) is Quote:
            found = self._quote(item, st)
        else:
            assert type(item) is Bar
            found = self._bar(item, st)
        if found is None:
            self._pass(item, st)
            return None
        reason, detail, keep = found
        if keep:
            self._pass(item, st)
        return self._finding(item, st, reason, detail, not keep)

    # ---- checks ------------------------------------------------------------------------

    def _order(self, ts: datetime, key: tuple[float, float, float], st: _Symbol) -> tuple[str, str] | None:
        if st.last_ts is not None:
            if ts < st.last_ts:
                return "out_of_order", f"timestamp {ts.isoformat()} before the last {st.last_ts.isoformat()}"
            if ts == st.last_ts and key == st.last_key:
                return "duplicate", f"the same item again at {ts.isoformat()}"
        return None

    def _quote(self, q: Quote, st: _Symbol) -> tuple[str, str, bool] | None:
        bid, ask, last = float(q.bid), float(q.ask), float(q.last)
        if _bad(bid) or _bad(ask) or _bad(last):
            return "nan", f"a missing price (bid {q.bid}, ask {q.ask}, last {q.last})", False
        if bid <= 0 or ask <= 0 or last <= 0:
            return "non_positive", f"a non-positive price (bid {q.bid}, ask {q.ask}, last {q.last})", False
        if bid > ask:
            return "crossed", f"crossed: bid {q.bid} > ask {q.ask}", False
        if bid == ask and not self.config.allow_locked:
            return "locked", f"locked: bid {q.bid} = ask {q.ask}", False
        key = (bid, ask, last)
        if (order := self._order(q.ts, key, st)) is not None:
            return order[0], order[1], False
        return self._spike(q.symbol, (bid + ask) / 2, st)

    def _bar(self, b: Bar, st: _Symbol) -> tuple[str, str, bool] | None:
        o, h, lo, c = float(b.open), float(b.high), float(b.low), float(b.close)
        if _bad(o) or _bad(h) or _bad(lo) or _bad(c) or _bad(float(b.volume)):
            return "nan", "a missing value in the bar", False
        if min(o, h, lo, c) <= 0:
            return "non_positive", f"a non-positive price (O {b.open} H {b.high} L {b.low} C {b.close})", False
        if st.bar_ts is not None and b.ts <= st.bar_ts:
            reason = "duplicate" if b.ts == st.bar_ts else "out_of_order"
            return reason, f"bar at {b.ts.isoformat()} not after the last at {st.bar_ts.isoformat()}", False
        spike = self._spike(b.symbol, c, st)
        if spike is not None:
            return spike
        if st.bar_ts is not None and self.config.gap_factor > 0:
            seconds = (b.ts - st.bar_ts).total_seconds()
            usual = st.bar_gap
            if usual > 0 and seconds > self.config.gap_factor * usual:
                return "gap", f"{seconds:g} s since the last bar (usually {usual:g} s)", True
        return None

    def _spike(self, symbol: str, price: float, st: _Symbol) -> tuple[str, str, bool] | None:
        cfg = self.config
        k = self.spike_k
        if k <= 0 or st.n < cfg.spike_warmup or st.price <= 0:
            return None
        limit = k * math.sqrt(max(st.var, self._floor))
        move = abs(math.log(price / st.price))
        if move <= limit:
            st.pending.clear()
            return None
        if st.pending and abs(math.log(price / st.pending[-1])) <= limit:
            st.pending.append(price)
            if len(st.pending) > cfg.spike_confirm:
                st.pending.clear()
                st.price, st.var = price, max(st.var, move * move / k)  # a new level: wider bands
                return None
        else:
            st.pending[:] = [price]
        return "spike", (f"a {move * 100:.2f}% move from {st.price:g} to {price:g} is beyond "
                         f"{k:g}x the recent volatility ({limit * 100:.2f}%)"), False

    # ---- bookkeeping -------------------------------------------------------------------

    def _pass(self, item: Quote | Bar, st: _Symbol) -> None:
        self.passed += 1
        if type(item) is Quote:
            bid, ask = float(item.bid), float(item.ask)
            price = (bid + ask) / 2
            st.last_ts, st.last_key = item.ts, (bid, ask, float(item.last))
        else:
            assert type(item) is Bar
            price = float(item.close)
            if st.bar_ts is not None:
                seconds = (item.ts - st.bar_ts).total_seconds()
                st.bar_gap = seconds if st.bar_gap == 0 else min(st.bar_gap * 0.9 + seconds * 0.1, seconds * 4)
            st.bar_ts = item.ts
        if st.price > 0 and price > 0 and price != st.price:
            r = math.log(price / st.price)
            st.var = st.var + self._alpha * (r * r - st.var) if st.n > 1 else r * r
        if price > 0:
            st.price = price
            st.n += 1
        if st.episodes:
            st.clean += 1
            if st.clean >= self.config.clear_after:
                self.closed.extend(EpisodeClosed(item.symbol, r, n) for r, n in st.episodes.items())
                st.episodes.clear()

    def _finding(self, item: Quote | Bar, st: _Symbol, reason: str, detail: str, quarantined: bool) -> Finding:
        return self._finding_for(item.symbol, item.ts, st, reason, detail, quarantined)

    def _finding_for(self, symbol: str, ts: datetime, st: _Symbol, reason: str, detail: str,
                     quarantined: bool) -> Finding:
        self.counts[reason] += 1
        st.clean = 0
        n = st.episodes.get(reason, 0)
        st.episodes[reason] = n + 1
        return Finding(symbol, reason, detail, ts, quarantined, opened=n == 0)

    def record(self, symbol: str, reason: str, detail: str, ts: datetime) -> Finding:
        """An item the feed itself dropped (e.g. IB's crossed quote): counted like the gate's own."""
        st = self._symbols.get(symbol)
        if st is None:
            st = self._symbols[symbol] = _Symbol()
        return self._finding_for(symbol, ts, st, reason, detail, True)

    def take_closed(self) -> list[EpisodeClosed]:
        closed, self.closed = self.closed, []
        return closed

    @property
    def quarantined(self) -> int:
        return sum(n for r, n in self.counts.items() if r != "gap")
