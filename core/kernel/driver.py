"""The run loop's hot path: each event through the venue, the book's marks and the strategies.

For every event, in the order the feed gives them: simulated time moves to it (timers due by
then fire first), the venue sees it (the paper broker fills at this price), the book's mark
for its symbol follows it, then the strategies' hooks; orders they made are sent before the
next event. After each batch the engine does its bookkeeping (``Engine.batch_done``).

**Quotes nobody observes are not made.** A replay's quotes come as ``PendingQuote``s. One is
made into a ``Quote`` and published only if something would see it: a strategy with an
``on_quote`` hook for the symbol, a venue that says it needs it (``Broker.wants_quotes``: the
paper broker while an order of the symbol is open there), or a bus subscriber of quotes that
did not say it can do without (``Bus.needs_every``). Otherwise only what the quote changes is
done: the clock moves to it and the book's mark takes its price and time (so the equity, the
risk gate and a reader see what they saw before). Fills, orders and every stored row are
therefore the same as when every quote was made.

**A one-file replay at full speed** goes bar by bar: a bar stands for its quotes and itself.
When nothing needs its quotes (as above, no order waiting to be sent, and no timer due
between the first quote and the bar: a timer would see the marks in between), the quotes are
skipped as a whole: the clock moves to the first one (the timers due by then fire there, as
before), the cursor counts them, and the bar is handled as usual; it sets the mark the last
quote would have set. A bar that does not qualify, or that a batch boundary falls inside (the
bookkeeping must see the marks of that very event), goes event by event. Batches are 512
events counted as if every quote had been made, so the bookkeeping runs at the same events.

**A venue's reports wait for the event's orders.** While an event is dispatched (after the
timers due by its time: each runs at its own time, and what it changes is published then), what
the paper venue reports (a fill at this quote, a DAY order expired at a session's bar) reaches the
book and the orders at once, but the order manager holds the events saying so on the bus
(``OrderManager.defer_reports``): they are handed out once the event's orders reached the broker
(``send_pending``), or after the event when it made none, and always before the next event is
taken (the clock has not moved meanwhile), so every subscriber sees the same events in the same
order at the same engine time. The fill's bookkeeping (store rows, audit, daily report, alerts)
is then not on the way of the order the quote makes. Not when a strategy has an ``on_fill`` hook:
that is a bus subscriber, and a strategy sees its fill before the same event's quote or bar hooks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.common.clock import SimClock
from core.data.feeds.replay import Cursor
from core.data.feeds.replay_quotes import TINY_BAR, PendingQuote, QuoteMaker
from core.domain.model import Bar, Quote

if TYPE_CHECKING:
    from core.kernel.engine import Engine

BATCH = 512  # events per batch at full speed (a paced replay's batches end where it waits)

Item = Quote | Bar | PendingQuote


class EventDriver:
    """Runs batches of events (or a one-file replay's bars) through the engine's hot path."""

    def __init__(self, engine: Engine, cursor: Cursor | None) -> None:
        assert engine.oms is not None
        self.engine = engine
        self.oms = engine.oms
        clock = engine.clock
        self.sim = clock if isinstance(clock, SimClock) else None
        self.bus = engine.bus
        self.quote_bus = engine.bus.handlers(Quote)
        self.bar_bus = engine.bus.handlers(Bar)
        self.wants_quotes = engine.broker.wants_quotes
        self.unsent = engine.oms.unsent()  # the OMS's live queue: tested after every event without a call
        # The dicts and set the hot path writes (the same objects for the whole run).
        self.last_prices = engine.oms.last_prices
        self.quote_ts: dict[str, datetime] = engine.portfolio.marks.ts  # engine.quote_ts
        self.positions = engine.portfolio.positions
        self.dirty = engine._dirty_marks
        self.bar_hooks = engine._bar_handlers
        self.quote_hooks = engine._quote_handlers
        self.cur_ts: datetime | None = cursor.ts if cursor else None
        self.n_at_ts = cursor.n_at_ts if cursor else 0
        self.made = 0  # synthetic quotes made into Quotes (the rest were not needed)
        # The reports of an event wait for its orders (see the module's docstring), unless a strategy
        # must see its fills (an on_fill hook, a bus subscriber) before the event's other hooks.
        self.defer = not engine._fill_hooks
        self.held = engine.bus.held()  # the bus's held events: tested after every event without a call

    def needed(self, symbol: str) -> bool:
        """Whether someone observes the next quote of ``symbol``."""
        return bool(self.quote_hooks.get(symbol)) or self.wants_quotes(symbol) or self.bus.needs_every(Quote)

    # ---- one event at a time ---------------------------------------------------------

    def event(self, ev: Item) -> None:
        """One event (its orders are sent by the caller: ``self.unsent``; the events it held are handed
        out by the caller, after sending: ``self.held``)."""
        engine = self.engine
        ts = ev.ts
        sim = self.sim
        if sim is not None:
            sim.advance_to(ts)  # each timer runs at its own time: what it reports goes out then, not held
        oms = self.oms
        oms.defer_reports = self.defer
        try:
            sym = ev.symbol
            if type(ev) is PendingQuote:
                if not self.needed(sym):
                    self._mark(sym, ev.last, ts)
                    self._count(ts)
                    return
                ev = ev.quote()
                self.made += 1
            venue: list[Callable[[Any], None]]
            hooks: dict[str, list[Callable[[Any], None]]]
            if type(ev) is Quote:
                venue, hooks, price = self.quote_bus, engine._quote_handlers, ev.last
            else:
                assert type(ev) is Bar
                venue, hooks, price = self.bar_bus, engine._bar_handlers, ev.close
            for h in venue:  # the paper venue fills first, at this price
                try:
                    h(ev)
                except Exception:
                    if not self.bus.forgives(h, ev):  # as Bus.publish: a non-critical subscriber's error is logged
                        raise
            self._mark(sym, price, ts)
            for h in hooks.get(sym, ()):
                h(ev)
            self._count(ts)
        finally:
            oms.defer_reports = False

    def _mark(self, sym: str, price: Any, ts: datetime) -> None:
        self.last_prices[sym] = price
        self.quote_ts[sym] = ts
        pos = self.positions.get(sym)
        if pos is not None:
            pos.last_price = price
            self.dirty.add(sym)

    def bar(self, bar: Bar) -> None:
        """``event(bar)`` for a one-file replay's bar (on a SimClock), without asking what it is."""
        ts = bar.ts
        self.sim.advance_to(ts)  # type: ignore[union-attr]  # run_units runs on a SimClock only
        oms = self.oms
        oms.defer_reports = self.defer  # after the timers, as in ``event``
        try:
            for h in self.bar_bus:  # the paper venue first (DAY orders expire at a session's bar)
                try:
                    h(bar)
                except Exception:
                    if not self.bus.forgives(h, bar):
                        raise
            sym, price = bar.symbol, bar.close
            self.last_prices[sym] = price
            self.quote_ts[sym] = ts
            pos = self.positions.get(sym)
            if pos is not None:
                pos.last_price = price
                self.dirty.add(sym)
            for h in self.bar_hooks.get(sym, ()):
                h(bar)
            if ts == self.cur_ts:
                self.n_at_ts += 1
            else:
                self.cur_ts, self.n_at_ts = ts, 1
        finally:
            oms.defer_reports = False

    def _count(self, ts: datetime) -> None:
        if ts == self.cur_ts:
            self.n_at_ts += 1
        else:
            self.cur_ts, self.n_at_ts = ts, 1

    def send(self) -> Coroutine[Any, Any, None]:
        """Orders the last event made: the cursor points at it while they are written and sent. Returns
        the OMS's ``send_pending()`` to await (no coroutine of its own on the order's path)."""
        assert self.cur_ts is not None
        self.engine.cursor = Cursor(self.cur_ts, self.n_at_ts)
        self.engine._cursor_dirty = True
        return self.oms.send_pending()

    # ---- the loops ---------------------------------------------------------------------

    async def run_batches(self, stream: AsyncIterator[Sequence[Item]]) -> None:
        """Any feed: the batches it yields, event by event."""
        unsent, event, done, held, release = self.unsent, self.event, self.engine.batch_done, self.held, self.bus.release
        async for batch in stream:
            for ev in batch:
                event(ev)
                if unsent:
                    await self.send()
                if held:  # what the event held, before the next one (send_pending handed out the rest)
                    release()
            if await done(self.cur_ts, self.n_at_ts, len(batch)):
                return

    async def run_units(self, head: list[PendingQuote | Bar], bars: list[Bar], maker: QuoteMaker) -> None:
        """A one-file replay at full speed: ``head`` (what is left of the bar a resume starts
        in) event by event, then ``bars``, each standing for its quotes and itself.

        Whether a bus subscriber needs every quote is read again after each ``await`` only: a
        subscription can only come from a task that ran meanwhile (the loop runs nothing else
        between two awaits)."""
        assert self.sim is not None
        unsent, event, done, sim = self.unsent, self.event, self.engine.batch_done, self.sim
        held, release = self.held, self.bus.release  # what an event held, handed out before the next one
        advance, due_by, on_bar = sim.advance_to, sim.due_by, self.bar
        quote_hooks, wants, needs_every = self.quote_hooks, self.wants_quotes, self.bus.needs_every
        n = maker.n
        unit = n + 1
        count = 0  # events of the current batch, counted as if every quote had been made

        for ev in head:
            event(ev)
            if unsent:
                await self.send()
            if held:
                release()
            count += 1
            if count == BATCH:
                count = 0
                if await done(self.cur_ts, self.n_at_ts, BATCH):
                    return
        every_quote = needs_every(Quote)
        last = BATCH - unit  # a bar starting at a count above this has the batch's end inside it
        for bar in bars:
            if count > last:  # the batch ends inside this bar: its events one by one
                events: list[PendingQuote | Bar] = [*maker.pending(bar), bar]
                for ev in events:
                    event(ev)
                    if unsent:
                        await self.send()
                    if held:
                        release()
                    count += 1
                    if count == BATCH:
                        count = 0
                        if await done(self.cur_ts, self.n_at_ts, BATCH):
                            return
                every_quote = needs_every(Quote)
                continue
            sym = bar.symbol
            advance(bar.start)  # the first quote's time: what is due by then fires before it
            if every_quote or unsent or quote_hooks.get(sym) or wants(sym) or due_by(bar.ts):
                for q in maker.pending(bar):
                    event(q)
                    if unsent:
                        await self.send()
                        every_quote = needs_every(Quote)
                    if held:
                        release()
            elif n == 1:
                self._count(bar.start)  # the open, at the start (which may be the last bar's end)
            elif bar.ts - bar.start < TINY_BAR:  # quotes that may share stamps: counted one by one
                for ts, _ in maker.path(bar):
                    self._count(ts)
            else:  # the first quote at the start, the interior ones strictly inside, the last at the end
                self.cur_ts, self.n_at_ts = bar.ts, 1
            on_bar(bar)
            if unsent:
                await self.send()
                every_quote = needs_every(Quote)
            if held:
                release()
            count += unit
            if count == BATCH:
                count = 0
                if await done(self.cur_ts, self.n_at_ts, BATCH):
                    return
                every_quote = needs_every(Quote)
        if count:
            await done(self.cur_ts, self.n_at_ts, count)
