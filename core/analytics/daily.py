"""The daily P&L summary: built at each exchange session close, published as DailySummaryReady.

A subscriber like any other: it follows the bus (orders, fills, refusals, breaks, the broker's
connection, the feed's health, equity points, and every event the alerts pane words) and
reads the book at the close; it writes nothing itself (the reports recorder stores what it
publishes, the alert router delivers it).

**When.** At the close of each session of the exchange calendar (half days at their early
close), on the engine's clock: in a replay, when simulated time first moves past the close
(before the next session's first event is handled) or when the replay ends at a close; live,
at the close in wall time. A session belongs to the summary of the first close at or after
it (core/analytics/sessions.py). A day already in the store is never summarised again, so a
restart never duplicates one; a session the engine ran through without any event still gets
its (quiet) summary.

**A restart mid-session.** Fills, orders and refusals of the session before the restart are
read back from the store, so they count; the bus-only counts (alerts, breaks, reconnects,
data-quality incidents) and the intraday drawdown's samples cover the time since the start
(``engine_starts`` says how many starts the session saw). The equity at the previous close is
the last stored summary's; without one it is the starting cash plus every owner's net P&L
at the restart's marks, with the positions held at the previous close.

**Intraday drawdown** is measured on the equity at the previous close, the equity after each
fill, each equity point the engine records (at most one a minute of engine time, once per
batch), and the close: with daily bars that is the open's fills and the close, so it is a
floor of the true intraday figure. The daily loss limit's use is the lowest of those samples
against the previous close, as a share of ``risk.daily_loss_limit`` at the close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.analytics.sessions import Session, SessionClock
from core.analytics.stored import ALLOCATIONS_SQL, FILLS_SQL, fill_records, report_rows
from core.analytics.tally import DayTally
from core.analytics.trades import FillRecord, OwnerLedger, Trade
from core.common.bus import Bus
from core.common.clock import Clock, SimClock, TimerHandle
from core.control import alert_text
from core.data.calendar import ExchangeSession
from core.domain import events as ev
from core.domain.daily_summary import DailySummary, PositionLine, StrategyLine, TradeLine
from core.domain.model import Bar, OrderStatus
from core.domain.text import money
from core.persistence.store import Store
from core.portfolio.book import Portfolio

log = logging.getLogger("cockpit.daily")

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_AFTER_CLOSE = timedelta(microseconds=1)
_LEVELS = {alert_text.INFO: "info", alert_text.WARNING: "warning", alert_text.ERROR: "error",
           alert_text.CRITICAL: "critical"}


def _pct(value: Decimal, of: Decimal) -> Decimal | None:
    return value / of * HUNDRED if of > 0 else None


_NO_ALERTS = (("info", 0), ("warning", 0), ("error", 0), ("critical", 0))


class DailyReports:
    """Follows the bus through a session and publishes its summary at the close."""

    def __init__(self, *, bus: Bus, clock: Clock, store: Store, portfolio: Portfolio, exchange: ExchangeSession,
                 loss_limit: Callable[[], Decimal], trading_state: Callable[[], str]) -> None:
        self.bus = bus
        self.clock = clock
        self.store = store
        self.portfolio = portfolio
        self.sessions = SessionClock(exchange)
        self.loss_limit = loss_limit
        self.trading_state = trading_state
        self.ledger = OwnerLedger()
        self.session: Session | None = None
        self.last_reported: date | None = None
        self.starting_cash = ZERO
        self.tally = DayTally(ZERO)
        # Each owner's ledger totals at the previous close: the day's figures are the change.
        self.open_cumulative: dict[str, Decimal] = {}
        self.open_realized: dict[str, Decimal] = {}
        self.open_commissions: dict[str, Decimal] = {}
        # The owners of the previous close's rows that go on (open_cumulative's, sorted), set
        # only right after a close: a day without fills, orders or refusals has the same ones.
        self._open_owners: list[str] | None = None
        self._ledger_moved = True  # a fill reached the ledger since open_realized was copied
        self._timer: TimerHandle | None = None
        self._broker_down = False
        self._loading = True  # until start() has read the stored fills
        self._pending: list[FillRecord] = []
        self.published = 0
        handlers: dict[type, Callable[[Any], None]] = {
            ev.FillApplied: self._on_fill, ev.OrderChanged: self._on_order, ev.IntentRejected: self._on_refused,
            ev.BreakFound: self._on_break, ev.BreakResolved: self._on_resolved,
            ev.BrokerConnectionChanged: self._on_broker, ev.FeedHealthChanged: self._on_feed,
            ev.TradingStateChanged: self._on_state, ev.EquityRecorded: self._on_equity,
        }
        # A fault here is logged and never stops trading: the summary is a report, not state.
        for event_type, handler in handlers.items():
            bus.subscribe(event_type, handler, critical=False)
        for event_type in alert_text.EVENT_TYPES:
            bus.subscribe(event_type, self._count_alert, critical=False)

    # ---- start, end ----------------------------------------------------------------

    async def start(self, resume_at: datetime | None) -> None:
        """Read the history back: the last summary, the owners' books, the session so far.

        Called once the engine has started (book loaded, broker connected, recovered).
        ``resume_at``: where a replay resumes (its cursor, or a fresh one's first bar; None: a
        fresh one arms at its first bar, which it then watches for); a live clock's session is
        the one at its current time. Fills that
        reach the bus meanwhile are held and applied once, after the stored ones."""
        last = report_rows(await self.store.fetchall(
            "SELECT date, summary FROM daily_reports ORDER BY date DESC LIMIT 1"), log.warning)
        previous = last[0] if last else None
        self.last_reported = date.fromisoformat(previous["date"]) if previous else None
        row = await self.store.fetchone("SELECT value FROM account WHERE key = 'starting_cash'")
        self.starting_cash = Decimal(row["value"]) if row else self.portfolio.cash
        fills = fill_records(await self.store.fetchall(FILLS_SQL), await self.store.fetchall(ALLOCATIONS_SQL),
                             log.warning)
        stored = {f.exec_id for f in fills}
        fills += [f for f in self._pending if f.exec_id not in stored]
        self._pending = []
        self._loading = False
        now = resume_at if isinstance(self.clock, SimClock) else self.clock.now()
        session = self._current(now) if now is not None else None
        before = self.sessions.before(session) if session is not None else None
        boundary = before.close if before is not None else None
        today: list[FillRecord] = []
        for fill in fills:
            if boundary is not None and fill.ts > boundary:
                today.append(fill)
            else:
                self.ledger.apply(fill)
        if previous is not None and before is not None and before.day == self.last_reported:
            self._set_open({s["strategy"]: Decimal(s["cumulative"]) for s in previous.get("strategies", ())},
                           Decimal(previous["equity_close"]))
        else:
            self._set_open(None, None)
        for fill in today:
            self._count_fill(fill, self.ledger.apply(fill))
        if session is not None:
            await self._count_stored(boundary)
            self._arm(session)
        else:  # a fresh replay that did not say when it begins: its first bar says which session it is
            self.bus.subscribe(Bar, self._on_bar, critical=False)
        self.tally.engine_starts += 1

    def _set_open(self, cumulative: dict[str, Decimal] | None, equity: Decimal | None) -> None:
        """The day's starting point: the previous close's figures, or (none known) every
        owner's book as it is now, at the marks of now, on the starting cash."""
        if self._ledger_moved:  # else the copies taken at the last close are still its figures
            self.open_realized = dict(self.ledger.realized)
            self.open_commissions = dict(self.ledger.commissions)
            self._ledger_moved = False
        if cumulative is None:
            cumulative = {o: self.ledger.cumulative(o, self._price_of) for o in self.ledger.owners}
        self.open_cumulative = cumulative
        self._open_owners = None
        if equity is None:
            equity = self.starting_cash + sum(cumulative.values(), ZERO)
        self.tally = DayTally(equity)

    async def _count_stored(self, boundary: datetime | None) -> None:
        """Orders and refusals of this session the store holds from before a restart."""
        if boundary is None:
            return
        since = (boundary - timedelta(days=1)).isoformat()  # text bound; the exact one below
        for r in await self.store.fetchall("SELECT strategy, status, created_at, updated_at FROM orders "
                                           "WHERE updated_at >= ?", (since,)):
            try:
                if datetime.fromisoformat(r["created_at"]) > boundary:
                    self.tally.orders[r["strategy"]] += 1
                if r["status"] == OrderStatus.REJECTED and datetime.fromisoformat(r["updated_at"]) > boundary:
                    self.tally.rejected += 1
            except (TypeError, ValueError):
                continue
        for r in await self.store.fetchall("SELECT strategy, ts FROM risk_events WHERE ts >= ?", (since,)):
            try:
                if datetime.fromisoformat(r["ts"]) > boundary:
                    self.tally.refusals[r["strategy"]] += 1
            except (TypeError, ValueError):
                continue

    def feed_exhausted(self) -> None:
        """The replay ended: if it ended at (or after) the session's close, that day is complete."""
        if self.session is not None and self.clock.now() >= self.session.close:
            self._close_session()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- the session ---------------------------------------------------------------

    def _current(self, now: datetime) -> Session:
        session = self.sessions.session_of(now)
        while self.last_reported is not None and session.day <= self.last_reported:
            session = self.sessions.after(session)
        return session

    def _arm(self, session: Session) -> None:
        self.stop()
        self.session = session
        self._timer = self.clock.call_at(session.close + _AFTER_CLOSE, self._close_session)

    def _close_session(self) -> None:
        session = self.session
        if session is None:
            return
        self.stop()
        try:
            summary: DailySummary | None = self.build(session)
        except Exception:
            log.exception("the daily summary of %s could not be built; the next session's goes on", session.day)
            summary = None
        self.last_reported = session.day
        if summary is not None:
            # Owners that only sent orders (never filled) are not carried into the next day's rows.
            owners = self.ledger.owners
            self._set_open({r.strategy: r.cumulative for r in summary.strategies
                            if r.strategy in owners or r.cumulative}, summary.equity_close)
            # Every owner of the ledger had a row (sorted), so these keys hold them all, in order.
            self._open_owners = list(self.open_cumulative)
        else:
            self._set_open(None, None)
        self._arm(self.sessions.after(session))
        if summary is not None:
            self.published += 1
            # DEBUG: the alert router's log sink writes the summary's title (its net) at INFO already,
            # and a replay of a daily file closes a session on every bar.
            if log.isEnabledFor(logging.DEBUG):
                log.debug("daily summary %s: net %s, %d fill(s)", session.day, money(summary.net), summary.fills)
            self.bus.publish(ev.DailySummaryReady(summary))

    def _price_of(self, symbol: str) -> Decimal | None:
        price = self.portfolio.marks.price.get(symbol)
        if price is not None:
            return price
        pos = self.portfolio.positions.get(symbol)
        return pos.last_price if pos is not None else None

    # ---- the bus -------------------------------------------------------------------

    def _count_fill(self, fill: FillRecord, closed: list[Trade]) -> None:
        """``fill``, which the ledger has just applied (closing ``closed``), in the day's tally."""
        self._ledger_moved = True
        t = self.tally
        if fill.kind == "adjustment":
            t.adjustments += 1
        else:
            t.fills[fill.owner] += 1
        t.realized += fill.realized
        t.commissions += fill.commission
        t.trades += closed

    def _on_fill(self, e: ev.FillApplied) -> None:
        f = e.fill
        record = FillRecord(f.exec_id, f.ts, e.strategy, f.symbol, f.qty * f.side.sign, f.price, f.commission,
                            e.realized_pnl, e.allocation, e.kind)
        if self._loading:
            self._pending.append(record)
            return
        self._count_fill(record, self.ledger.apply(record))
        # The equity the fill left, as the event says: it may reach us after the next mark moved.
        self.tally.sample(self.portfolio.equity() if e.equity is None else e.equity)

    def _on_order(self, e: ev.OrderChanged) -> None:
        if e.previous is None:
            self.tally.orders[e.order.strategy] += 1
        elif e.order.status is OrderStatus.REJECTED and e.previous is not OrderStatus.REJECTED:
            self.tally.rejected += 1

    def _on_refused(self, e: ev.IntentRejected) -> None:
        self.tally.refusals[e.strategy] += 1

    def _on_break(self, _: ev.BreakFound) -> None:
        self.tally.breaks_found += 1

    def _on_resolved(self, _: ev.BreakResolved) -> None:
        self.tally.breaks_resolved += 1

    def _on_broker(self, e: ev.BrokerConnectionChanged) -> None:
        if not e.up:
            self.tally.disconnects += 1
        elif self._broker_down:
            self.tally.reconnects += 1
        self._broker_down = not e.up

    def _on_feed(self, e: ev.FeedHealthChanged) -> None:
        if not e.healthy:
            self.tally.data_incidents += 1

    def _on_state(self, e: ev.TradingStateChanged) -> None:
        if "daily_loss_limit" in e.reason:
            self.tally.loss_limit_hit = True

    def _on_equity(self, e: ev.EquityRecorded) -> None:
        session = self.session
        if session is not None and e.ts <= session.close:
            self.tally.sample(e.equity)

    def _on_bar(self, bar: Bar) -> None:
        if self.session is None:  # a fresh replay: its first bar says which session it is
            self._arm(self._current(bar.ts))

    def _count_alert(self, event: object) -> None:
        found = alert_text.level(event)
        if found is not None:
            self.tally.alerts[_LEVELS.get(found, "info")] += 1

    # ---- the summary ---------------------------------------------------------------

    def build(self, session: Session) -> DailySummary:
        """The summary of ``session`` from the tally and the book as they are now (its close)."""
        t = self.tally
        book = self.portfolio
        equity = book.equity()
        t.sample(equity)
        base = t.open_equity
        net = equity - base
        realized, commissions = t.realized, t.commissions
        unrealized = net - realized + commissions
        total = realized + unrealized
        # A percentage is a function of the value (a division, then a product, each rounded to the
        # context): equal figures have equal ones, computed once (zeros apart: their sign may differ).
        net_pct = _pct(net, base)
        closed_by: dict[str, int] = {}
        if t.trades:
            trades = sorted(t.trades, key=lambda x: x.pnl)
            for trade in trades:
                closed_by[trade.owner] = closed_by.get(trade.owner, 0) + 1
            best, worst = _line(trades[-1]), _line(trades[0])
        else:
            trades, best, worst = [], None, None
        ledger = self.ledger
        owners = self._open_owners
        if owners is None or t.orders or t.refusals or t.fills or t.adjustments:  # the ledger or the rows moved
            owners = sorted(ledger.owners | t.orders.keys() | t.refusals.keys() | self.open_cumulative.keys())
        strategies = []
        orders, fills, refusals = t.orders, t.fills, t.refusals  # Counts: .get reads a missing owner as 0, no call
        price_of, open_realized, open_commissions = self._price_of, self.open_realized, self.open_commissions
        open_cumulative, ledger_realized, ledger_commissions = self.open_cumulative, ledger.realized, ledger.commissions
        for owner in owners:
            cumulative, market_value, open_positions = ledger.figures(owner, price_of)
            owner_realized = ledger_realized.get(owner, ZERO) - open_realized.get(owner, ZERO)
            owner_commissions = ledger_commissions.get(owner, ZERO) - open_commissions.get(owner, ZERO)
            owner_net = cumulative - open_cumulative.get(owner, ZERO)
            strategies.append(StrategyLine(
                owner, owner_realized, owner_net - owner_realized + owner_commissions, owner_commissions, owner_net,
                net_pct if net and owner_net == net else _pct(owner_net, base), cumulative, orders.get(owner, 0),
                fills.get(owner, 0), refusals.get(owner, 0), closed_by.get(owner, 0), market_value, open_positions))
        held = [p for p in book.positions.values() if p.qty != 0]
        if len(held) > 1:
            held.sort(key=lambda p: p.symbol)
        lines = []
        for p in held:
            holders = tuple(book.holders(p.symbol).items())
            lines.append(PositionLine(p.symbol, p.qty, p.avg_cost, p.last_price, p.market_value, p.unrealized_pnl,
                                      tuple(sorted(holders)) if len(holders) > 1 else holders))
        positions = tuple(lines)
        limit = self.loss_limit()
        alerts = t.alerts
        return DailySummary(
            session.day, self.sessions.name, session.open, session.close, session.half_day, base, equity,
            realized, unrealized, commissions, total, net, _pct(realized, base),
            net_pct if net and unrealized == net else _pct(unrealized, base),
            net_pct if net and total == net else _pct(total, base), net_pct,
            sum(orders.values()) if orders else 0, sum(fills.values()) if fills else 0, t.adjustments,
            sum(refusals.values()) if refusals else 0, t.rejected, len(trades), best, worst, t.max_drawdown,
            _pct(t.max_drawdown, base), t.samples, limit, t.worst_pnl,
            ((ZERO if t.worst_pnl >= ZERO else -t.worst_pnl) / limit * HUNDRED) if limit > 0 else ZERO,
            t.loss_limit_hit,
            self.trading_state(), t.breaks_found, t.breaks_resolved, t.disconnects, t.reconnects, t.data_incidents,
            (("info", alerts["info"]), ("warning", alerts["warning"]), ("error", alerts["error"]),
             ("critical", alerts["critical"])) if alerts else _NO_ALERTS,
            t.engine_starts, positions, tuple(strategies),
        )


def _line(t: Trade) -> TradeLine:
    assert t.closed_at is not None
    return TradeLine(t.owner, t.symbol, t.side, t.max_qty, t.pnl, t.opened_at, t.closed_at)
