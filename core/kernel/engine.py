"""The engine: feed -> strategies -> risk gate -> OMS -> broker -> book -> store.

One asyncio loop, one writer: every state change happens here, in the order events
arrived. The broker is injected (core never imports an adapter). Orders are committed
to the store before they are sent; everything else is written in batches.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from core.alerts.from_events import PortfolioLookup
from core.alerts.policy import FOLD_SECONDS
from core.alerts.router import AlertRouter
from core.alerts.sink import Sink
from core.analytics.daily import DailyReports
from core.analytics.recorder import ReportsRecorder
from core.audit.journal import AuditLog
from core.audit.subscriber import AuditRecorder
from core.common.bus import Bus
from core.common.clock import Clock, LiveClock, SimClock, TimerHandle
from core.config import ConfigError, Settings
from core.control.backups import BackupService
from core.control.deadman import DeadMan
from core.control.handler import CommandHandler
from core.control.read_model import EngineSnapshot, ReadModel
from core.data.calendar import ExchangeSession
from core.data.feeds.base import Feed
from core.data.feeds.failover import FailoverFeed
from core.data.feeds.replay import Cursor, ReplayFeed
from core.domain.commands import Halt
from core.domain.events import (
    AllocationChanged,
    AllocationsStarted,
    BrokerConnectionChanged,
    BrokerPacingViolation,
    BrokerReconnectFailed,
    DeadmanChanged,
    EngineError,
    EngineStarted,
    EngineStopped,
    EquityRecorded,
    FeedExhausted,
    FeedHealthChanged,
    FeedHoldChanged,
    FeedSwitched,
    FillApplied,
    HoldChanged,
    IntentRejected,
    SettingChanged,
    SignalRaised,
    StrategyQuarantined,
    TradingStateChanged,
)
from core.domain.model import ZERO, Bar, OrderType, Quote, Side, TimeInForce
from core.domain.serialize import dt
from core.domain.text import money as text_money
from core.execution.broker import Broker
from core.execution.oms import OrderManager
from core.execution.reconcile import Reconciler
from core.kernel.driver import EventDriver
from core.kernel.risk_view import BookView
from core.persistence.disk_full import DiskFull
from core.persistence.recorder import StoreRecorder
from core.persistence.store import Store
from core.portfolio.book import Portfolio, Position
from core.portfolio.equity import EquityPoint, EquityTracker
from core.risk.capital import CapitalAllocation
from core.risk.gate import OrderRequest, RiskGate, TradingState
from core.strategy import Strategy

log = logging.getLogger("cockpit.engine")

E = TypeVar("E")

#: How often a replay at full speed on the simulated clock commits (wall seconds), at the least.
#: Such a replay is reproducible from its files: a crash loses at most this much of it, and the
#: restart replays it again from the committed cursor (every commit is one transaction of the
#: book, the venue's records and the cursor together, so a SIGKILL never leaves a torn store).
#: Committing every ``flush_interval_ms`` instead cost a replay 10-20% (the commits' own work on
#: the loop, and the database thread taking the interpreter from it).
REPLAY_FLUSH_SECONDS = 1.0


def faster_than_live(clock: Clock, speed: float | str) -> bool:
    """The engine's clock is simulated and paced faster than wall time (a replay at ``max`` or
    at more than one simulated second per wall second): its sessions may close faster than
    anyone reads their summaries. A live clock, or a replay at live pace, is not."""
    return isinstance(clock, SimClock) and (speed == "max" or isinstance(speed, (int, float)) and speed > 1)

_PUT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
_PUT_CURSOR = (
    "INSERT INTO feed_cursor (feed, ts, n_at_ts) VALUES (?,?,?)"
    " ON CONFLICT(feed) DO UPDATE SET ts=excluded.ts, n_at_ts=excluded.n_at_ts"
)


class Engine:
    """Owns the book and the order flow; feeds, broker and strategies are handed in."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        clock: Clock,
        bus: Bus,
        broker: Broker,
        feed: Feed,
        strategies: list[Strategy],
        new_id: Callable[[], str] = lambda: secrets.token_hex(3),
        wall_clock: Clock | None = None,
        alert_sinks: Sequence[Sink] = (),
        alerting: bool = True,
    ) -> None:
        self.settings = settings
        self._new_id = new_id  # the instance id in order ids; tests fix it for stable screens
        self.store = store
        self.clock = clock
        self.bus = bus
        self.broker = broker
        self.feed = feed
        self.strategies = strategies
        self.portfolio = Portfolio()
        self.audit = AuditLog(store, wall_clock, engine_clock=clock)
        self.gate = RiskGate(settings.risk, on_state_change=self._on_state_change,
                             capital=CapitalAllocation(settings.allocation, (s.name for s in strategies)),
                             on_feed_hold=self._on_feed_hold)
        self._stored_allocations: dict[str, str] = {}  # run-time changes from the store, taken at start
        # Presence is asked in wall-clock time, whatever the replay speed (tests pass a SimClock).
        self.wall_clock = wall_clock or LiveClock()
        # The store and the audit trail follow the bus; the engine never calls them by hand.
        self.recorder = StoreRecorder(store, bus, self.portfolio, clock, self.wall_clock)
        self.audit_recorder = AuditRecorder(self.audit, bus, lambda: self.store.is_open)
        # Alerts follow the bus too, timed in wall-clock time (a replay's day is not a trader's).
        # A replay faster than live folds its daily summaries (a trader reads one a minute at most).
        self.alerts = AlertRouter(settings.alerts, bus, store, self.wall_clock, alert_sinks,
                                  book=PortfolioLookup(self.portfolio),
                                  fold_seconds=FOLD_SECONDS if faster_than_live(clock, settings.feed.speed) else None)
        # False (a backtest: nobody to tell): the router never follows the bus, so no event is
        # worded or recorded as an alert. Trading is the same either way.
        self._alerting = alerting
        self.deadman = DeadMan(settings.deadman, self.wall_clock, on_event=self._deadman_event,
                               on_miss=self._deadman_missed)
        # The daily P&L summary at each session close, and its table (core/analytics).
        self.reports_recorder = ReportsRecorder(store, bus, self.wall_clock)
        # A switch to a feed that is not live (IB delayed data) holds strategy orders; back on a live one lifts it.
        bus.subscribe(FeedSwitched, self.gate.on_feed_switched)
        # Its sessions come from the exchange calendar, kept in the cache folder between runs.
        self.daily = DailyReports(bus=bus, clock=clock, store=store, portfolio=self.portfolio,
                                  exchange=ExchangeSession(cache_dir=settings.bar_cache_dir),
                                  loss_limit=lambda: self.gate.limits.daily_loss_limit,
                                  trading_state=lambda: str(self.gate.state))
        # Backups of the store: on a wall-clock timer, at each session close, and on command.
        self.backups = BackupService(settings.backup, store, bus, self.wall_clock)
        self.controls = CommandHandler(self)
        self.read_model = ReadModel(self)
        self.reconciler = Reconciler(self)
        # A live feed trades only in the exchange session: the dead-man is armed only then.
        self.session = ExchangeSession() if settings.feed.kind == "ibkr" else None
        self._session_timer: TimerHandle | None = None
        self._shutting_down = False
        self.parked: str | None = None  # why it waits without trading (a refused LIVE start): park()
        self.broker_generation = 0  # counts connection changes: a pass only lifts the hold it was for
        self._cash_from_broker = False
        self._started = False  # start() finished: a (re)connect from now on triggers a reconcile
        self._tasks: set[asyncio.Task[object]] = set()
        self._actions: set[asyncio.Task[None]] = set()  # safety actions: awaited, never cancelled
        self.quote_ts = self.portfolio.marks.ts  # engine time of each symbol's mark (the book's marks)
        self.trading = False  # the run loop is live (the dead-man is armed while it is)
        self.oms: OrderManager | None = None
        self.warming_up = False
        self.events_processed = 0  # every event, the synthetic quotes not made included
        self.quotes_made = 0  # of a replay's synthetic quotes, those someone needed (the last run)
        self._watched = False
        self._next_flush = 0.0
        self._flush_every = settings.engine.flush_interval_ms / 1000  # seconds between commits of the run loop
        self._flushing: asyncio.Future[None] | None = None
        self.last_batch_at: float | None = None  # loop time: how fresh the feed is, in wall terms
        self._last_data_wall: datetime | None = None  # wall time of the last batch (stale check)
        self.feed_healthy = True
        self._feed_timer: TimerHandle | None = None
        self.cursor: Cursor | None = None
        self._cursor_dirty = False
        self._dirty_marks: set[str] = set()
        self._stop = asyncio.Event()
        self._frozen = False  # run() froze the objects that existed when it began (see _freeze_for_replay)
        self.stop_reason: tuple[str, bool] | None = None  # why run() ended, and whether it failed
        self._bar_handlers: dict[str, list[Callable[[Bar], None]]] = defaultdict(list)
        self._quote_handlers: dict[str, list[Callable[[Quote], None]]] = defaultdict(list)
        self._hook_owner: dict[object, str] = {}  # each guarded hook -> its strategy's name
        # (strategy, symbol) -> the error that quarantined it; this run only (see _guard)
        self.quarantined: dict[tuple[str, str], str] = {}
        # A class's declaration (ClassVar), read once: whether each strategy may go short (others: yes).
        self._may_short_of = {s.name: s.may_short for s in strategies}
        # The strategies with an on_fill hook of their own: a fill of another owner calls nothing.
        self._fill_hooks: dict[str, Strategy] = {s.name: s for s in strategies if s.overrides("on_fill")}
        self.market_tz = ZoneInfo(settings.engine.market_tz)
        self.equity = EquityTracker(self.market_tz)
        # Realized P&L per symbol when the exchange day began (per batch: exact at a live pace).
        self.realized_at_day_open: dict[str, Decimal] = {}

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self, halt: Halt | None = None) -> None:
        """Open the store, rebuild the book, connect the broker, recover, warm strategies up.

        ``halt``: start halted (``cockpit --start-halted``, ``[engine] start_halted``, or the
        process watchdog after an emergency flatten). The command runs as soon as the book and
        the orders are loaded, before the broker connects and before any strategy starts, so
        the engine reconciles and its feeds run, but nothing new is sent until a resume. It is
        the operator's halt command itself: planned, audited with its actor and reason, and
        persisted like any halt (a restart stays halted).
        """
        self.feed.load()  # first: a bad data file refuses to start before anything is opened
        self.store.durability = self.settings.engine.order_durability  # what a commit must survive
        await self.store.open()
        await self.reports_recorder.open()
        instance_id = await self._meta("instance_id", self._new_id)
        row = await self.store.fetchone("SELECT ts, n_at_ts FROM feed_cursor WHERE feed = ?", (self.feed.name,))
        self.cursor = Cursor(datetime.fromisoformat(row["ts"]), row["n_at_ts"]) if row else None
        # The cursor counts events in replay order; another file list or quote count would
        # make it point elsewhere, replaying or skipping events. Refuse instead.
        fingerprint = self.feed.fingerprint()
        stored = await self._meta("replay_fingerprint", lambda: fingerprint)
        if stored != fingerprint:
            if self.cursor is not None:
                await self.store.close()
                raise ConfigError(
                    "feed: the replay's files, their order, start date or quotes_per_bar changed since "
                    f"this state dir was written ({self.settings.state_dir}); resuming would replay or skip "
                    "events. Restore the old [feed] settings, use another --state-dir, or `cockpit paper reset`"
                )
            self.store.put(("meta", "replay_fingerprint"), _PUT_META, ("replay_fingerprint", fingerprint))
        if self._alerting:
            await self.alerts.start()
        await self.audit.load()
        await self._load_book()
        await self._load_settings()
        if isinstance(self.feed, FailoverFeed):  # the active feed at start decides, as a switch would
            self.gate.follow_feed(self.feed.active.name, self.feed.active.not_live)
        self.oms = OrderManager(
            store=self.store, broker=self.broker, portfolio=self.portfolio, gate=self.gate,
            clock=self.clock, bus=self.bus, instance_id=instance_id,
            view_factory=lambda oms: BookView(clock=self.clock, portfolio=self.portfolio, oms=oms,
                                              quote_ts=self.quote_ts, day_open_equity=lambda: self.equity.day_open),
        )
        await self.oms.load()
        await self.read_model.load()
        await self._load_equity()
        if halt is not None:
            await self.controls.execute(halt)
        if self._fill_hooks:  # no strategy with an on_fill hook: no subscriber to call on every fill
            self.bus.subscribe(FillApplied, self._on_fill)
        self.store.before_flush(self._before_flush)
        self.store.before_flush(self._persist_marks, ahead=False)  # not on an order's write-ahead
        # What the store says is open from an earlier run: the broker reports on it from its first sync.
        self.broker.adopt(self.oms.open_orders.values())
        await self.broker.connect()
        if self._cash_from_broker:
            await self._take_broker_cash()
        await self._start_capital()
        await self.oms.recover()
        await self.store.flush()
        await self._reconcile_and_release("connect")
        self._started = True
        if self.gate.hold is not None and self.broker.connected:
            self._spawn(self._reconcile_and_release("connect (again)"))  # it came and went meanwhile

        for strategy in self.strategies:
            strategy.ctx = self
            try:
                strategy.on_start()
            except Exception as exc:  # no symbol to quarantine: the whole strategy stops
                self._quarantine(strategy, None, exc)
            for symbol in strategy.symbols:
                if strategy.overrides("on_bar"):
                    self._bar_handlers[symbol].append(self._guard(strategy, strategy.on_bar, symbol))
                if strategy.overrides("on_quote"):
                    self._quote_handlers[symbol].append(self._guard(strategy, strategy.on_quote, symbol))
        history = self.feed.bars_before(self.cursor)
        if history:
            self.warming_up = True
            for bar in history:
                for handler in self._bar_handlers.get(bar.symbol, ()):
                    handler(bar)
            self.warming_up = False
            log.info("resuming replay after %s (%d bars replayed to warm strategies up)",
                     self.cursor.ts if self.cursor else None, len(history))
        if isinstance(self.clock, SimClock) and self.cursor is not None:
            self.clock.advance_to(self.cursor.ts)
        await self.daily.start(self.cursor.ts if self.cursor else self._first_bar_at())
        self.bus.publish(EngineStarted(self.broker.kind, self.feed.name, tuple(s.name for s in self.strategies)))

    def _first_bar_at(self) -> datetime | None:
        """A fresh replay's first bar time (the daily summaries' first session), None for a live feed:
        told at start, the summaries need not watch every bar for it."""
        if not isinstance(self.feed, ReplayFeed) or not isinstance(self.clock, SimClock):
            return None
        firsts = [bars[0].ts for bars in self.feed.bars.values() if bars]
        return min(firsts) if firsts else None

    async def _meta(self, key: str, make: Callable[[], str]) -> str:
        row = await self.store.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        if row:
            return str(row["value"])
        value = make()
        self.store.append("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        await self.store.flush()
        return value

    async def _load_book(self) -> None:
        acct = {r["key"]: r["value"] for r in await self.store.fetchall("SELECT key, value FROM account")}
        # A new book on a real account takes the account's cash once connected (_take_broker_cash).
        self._cash_from_broker = "starting_cash" not in acct and not self.broker.records_in_engine_store
        if "starting_cash" not in acct and not self._cash_from_broker:
            cash = self.settings.paper.starting_cash
            for key in ("starting_cash", "cash"):
                self.store.append("INSERT INTO account (key, value) VALUES (?, ?)", (key, str(cash)))
            await self.store.flush()
            self.portfolio.cash = cash
        elif "cash" in acct:
            self.portfolio.cash = Decimal(acct["cash"])
        for r in await self.store.fetchall("SELECT * FROM positions"):
            self.portfolio.positions[r["symbol"]] = Position(
                r["symbol"], Decimal(r["qty"]), Decimal(r["avg_cost"]), Decimal(r["realized_pnl"]),
                Decimal(r["commissions"]), Decimal(r["last_price"]) if r["last_price"] else None,
            )

    async def _load_equity(self) -> None:
        """The equity curve, its peak and the max drawdown of earlier runs (the last points)."""
        rows = await self.store.fetchall(
            "SELECT * FROM (SELECT * FROM equity_points ORDER BY ts DESC LIMIT ?) ORDER BY ts",
            (self.equity.curve.maxlen or 2000,))
        self.equity.restore(EquityPoint(datetime.fromisoformat(r["ts"]), Decimal(r["equity"]), Decimal(r["peak"]),
                                        Decimal(r["max_drawdown"]), Decimal(r["day_open"])) for r in rows)

    async def _take_broker_cash(self) -> None:
        """A new state dir on a real account starts from the account's cash, not the paper
        default; from then on the engine books its own fills (reconciliation compares
        positions, orders and executions, not cash)."""
        try:
            cash = (await self.broker.account()).cash
        except ConnectionError as exc:
            log.warning("account cash unknown (%s): the book starts at 0 cash", exc)
            cash = ZERO
        for key in ("starting_cash", "cash"):
            self.store.append("INSERT INTO account (key, value) VALUES (?, ?)", (key, str(cash)))
        await self.store.flush()
        self.portfolio.cash = cash
        log.info("new book on the %s account: cash %s taken from the broker", self.broker.kind, cash)

    async def _load_settings(self) -> None:
        """Operator changes made at run time (limits, strategies on/off, trading state) beat
        the config file: they were made on purpose and must survive a restart."""
        rows = {r["key"]: r["value"] for r in await self.store.fetchall("SELECT key, value FROM settings")}
        for key, value in rows.items():
            if key.startswith("risk."):
                try:
                    self.gate.set_limit(key.removeprefix("risk."), value)
                except ConfigError as exc:
                    log.error("stored limit %s=%s no longer valid, config value kept: %s", key, value, exc)
        # Capital allocations need the equity at start: taken once the broker is connected.
        self._stored_allocations = {k.removeprefix("allocation."): v for k, v in rows.items()
                                    if k.startswith("allocation.")}
        by_name = {s.name: s for s in self.strategies}
        for key, value in rows.items():
            if key.startswith("strategy.") and key.endswith(".enabled"):
                strategy = by_name.get(key.removeprefix("strategy.").removesuffix(".enabled"))
                if strategy is not None:
                    strategy.enabled = value == "true"
        reduce_only = rows.get("reduce_only_symbols")
        if reduce_only:
            self.gate.reduce_only_symbols = set(reduce_only.split(","))
            log.warning("reduce-only since before the restart: %s (resume to lift)", reduce_only)
        state = rows.get("trading_state")
        if state and state != TradingState.ACTIVE:
            self.gate.set_state(TradingState(state), reason=rows.get("trading_state_reason") or "stored state")
            log.warning("trading is %s since before the restart (%s): resume to trade",
                        state, rows.get("trading_state_reason"))

    async def _equity_at_start(self) -> tuple[Decimal, str]:
        """What the allocations are measured against: the paper book's equity (its marks are the
        engine's), a real account's net liquidation; the book's if the broker cannot say."""
        if not self.broker.records_in_engine_store:
            try:
                equity = (await self.broker.account()).equity
            except ConnectionError as exc:
                log.warning("account equity unknown (%s): allocations are measured against the book's", exc)
                equity = None
            if equity is not None:
                return equity, f"the {self.broker.kind} account's net liquidation"
            return self.portfolio.equity(), "the book's equity"
        return self.portfolio.equity(), f"the {self.broker.kind} account's equity"

    async def _start_capital(self) -> None:
        """Measure the allocations against the equity at start and take the operator's stored
        changes; one that cannot be taken is an error and an alert (the config's value is kept
        and stored again, so the settings say what is in force). Allocations that do not fit
        in the equity refuse to start (ConfigError: one line naming the keys and the fix), unless
        the book holds positions: an engine that refused then would leave them unmanaged after a
        loss and a restart, so it starts with the money allocations scaled down to fit, and says so."""
        capital = self.gate.capital
        config = dict(capital.entries)
        equity, source = await self._equity_at_start()
        dropped = capital.start(equity, source, self._stored_allocations)
        problem = capital.problem()
        if problem is not None and not any(p.qty for p in self.portfolio.positions.values()):
            # nothing to manage and nothing stored is touched: the fix is in the config file
            raise ConfigError(f"{problem} (the allocations in force when the engine starts must fit in its "
                              f"equity: edit [allocation])")
        if problem is not None:
            factor = capital.fit_to_equity()
            message = (f"{problem.removeprefix('allocation: ')}; the book holds positions, so the engine starts "
                       f"with the money allocations scaled by {factor:.4f} to fit: "
                       + ", ".join(f"{n} {a.describe(equity)}" for n, a in sorted(capital.entries.items())))
            log.error("%s", message)
            self.bus.publish(EngineError("allocation", message))
        for name, text, why in dropped:
            kept = config.get(name)
            message = (f"the allocation of {name} changed at run time ({text}) cannot be taken at start: {why}; "
                       f"in force: {kept.given if kept else 'none'} (the config's)")
            log.error("%s", message)
            self.bus.publish(EngineError("allocation", message))
            if name in capital.strategies:
                self.persist_setting(f"allocation.{name}", kept.given if kept else "none")
                self.bus.publish(AllocationChanged(name, text, kept.given if kept else None, capital.amount(name),
                                                   "engine", why))
        enabled = [s.name for s in self.strategies if s.enabled]
        self.bus.publish(AllocationsStarted(
            equity, source, tuple((n, a.given, capital.amount(n)) for n, a in sorted(capital.entries.items())),
            tuple(capital.uncovered(enabled))))
        if capital.entries:
            log.info("capital allocations against %s %s: %s", source, text_money(equity),
                     ", ".join(f"{n} {a.describe(equity)}" for n, a in sorted(capital.entries.items())))

    def set_reduce_only(self, symbols: set[str]) -> None:
        """The symbols that may only reduce (a per-symbol flatten) until the operator resumes;
        persisted, so a restart does not lift them."""
        self.gate.reduce_only_symbols = set(symbols)
        self.persist_setting("reduce_only_symbols", ",".join(sorted(symbols)))

    def persist_setting(self, key: str, value: str) -> None:
        self.bus.publish(SettingChanged(key, value))

    async def commit(self) -> None:
        """Make what an operator command changed durable before answering."""
        if self.store.is_open:
            await self.store.flush()

    def _on_state_change(self, old: TradingState, new: TradingState, reason: str) -> None:
        self.persist_setting("trading_state", str(new))
        self.persist_setting("trading_state_reason", reason)
        self.bus.publish(TradingStateChanged(str(old), str(new), reason))

    def _on_feed_hold(self, feed: str, hold: str | None) -> None:
        self.bus.publish(FeedHoldChanged(feed, hold))

    def _deadman_event(self, kind: str, detail: dict[str, object]) -> None:
        fields = dict(detail)
        actor = str(fields.pop("actor", "engine"))
        self.bus.publish(DeadmanChanged(kind, actor, fields))
        if kind == "deadman.warning":
            log.warning("dead-man: confirm presence within %ss (press d, or run `cockpit confirm`)",
                        detail.get("seconds_left"))

    def _deadman_missed(self, action: str) -> None:
        task = asyncio.ensure_future(self._run_deadman_action(action))
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def actions_done(self) -> None:
        """Wait for safety actions in flight (a dead-man's cancel and reduce): the end of a
        trading loop cancels its own tasks, but never one of these."""
        while self._actions:
            await asyncio.gather(*list(self._actions), return_exceptions=True)

    async def _run_deadman_action(self, action: str) -> None:
        try:
            if action == "flatten_and_halt":
                await self.controls.flatten(None, actor="deadman", reason="presence not confirmed")
            else:
                await self.controls.cancel_all(actor="deadman", reason="presence not confirmed")
                if self.gate.state is TradingState.ACTIVE:
                    self.gate.set_state(TradingState.REDUCING, reason="dead-man missed: only reducing orders")
                await self.commit()
        except Exception as exc:
            log.exception("dead-man action %s failed", action)
            self.bus.publish(EngineError("deadman", f"the dead-man action {action} failed: {exc!r}"))

    def broker_connection_changed(self, up: bool, reason: str) -> None:
        """The broker's connection came or went: an alert, an audit row, and while it is
        down (and until the reconcile after it returns) no new order passes the gate."""
        self.broker_generation += 1
        self.bus.publish(BrokerConnectionChanged(self.broker.kind, up, reason))
        check_feeds = getattr(self.feed, "check_now", None)
        if check_feeds is not None:
            check_feeds()  # a feed on the broker's session is down with it: fail over now, not at the next check
        if not up and (self._shutting_down or self.parked is not None):
            log.info("broker %s disconnected: %s", self.broker.kind, reason)
            return
        if not up:
            log.error("BROKER DISCONNECTED (%s): %s; no new orders until it is back and reconciled",
                      self.broker.kind, reason)
            self._set_hold(f"broker {self.broker.kind} disconnected ({reason})")
            return
        log.warning("broker %s connected: %s", self.broker.kind, reason)
        self._set_hold(f"reconciling with the {self.broker.kind} broker after connecting")
        if self._started:  # before that, start() reconciles and releases the hold itself
            self._spawn(self._reconcile_and_release("reconnect"))

    def broker_pacing_violation(self, message: str) -> None:
        """The broker refused messages for their rate: an audit row (the go-live check counts them) and an alert."""
        self.bus.publish(BrokerPacingViolation(self.broker.kind, message))

    def broker_reconnect_failed(self, attempt: int, reason: str, next_delay_seconds: float) -> None:
        """One more reconnect attempt failed while the broker is down: counted into the
        disconnect's alert (a digest), never a line of its own per retry."""
        self.bus.publish(BrokerReconnectFailed(self.broker.kind, attempt, reason, next_delay_seconds))

    def _set_hold(self, reason: str | None) -> None:
        """Why no new order may go now (None: they may); the gate owns it, the bus hears of it."""
        if self.gate.hold != reason:
            self.gate.hold = reason
            self.bus.publish(HoldChanged(reason))

    async def _reconcile_and_release(self, reason: str) -> None:
        """One pass; the hold is lifted only if the pass compared (not skipped) and the
        connection did not come or go while it ran (else a newer pass decides)."""
        generation = self.broker_generation
        for _attempt in range(30):
            try:
                result = await asyncio.shield(self.reconciler.run(reason))  # never cut off inside a commit
            except Exception:
                log.exception("reconcile (%s) failed; new orders stay held until a pass succeeds", reason)
                return
            if result.skipped is None or not self.broker.connected or self._shutting_down:
                break
            await asyncio.sleep(1)  # connected but still resyncing: look again shortly
        if result.skipped is None and generation == self.broker_generation and self.broker.connected:
            if self.gate.hold is not None:
                log.warning("new orders may go again: reconciled with the %s broker", self.broker.kind)
            self._set_hold(None)

    async def _reconcile_periodically(self) -> None:
        interval = self.settings.reconcile.interval_minutes * 60
        while True:
            await asyncio.sleep(interval)  # wall time: the broker's book moves in wall time
            await self._reconcile_and_release("periodic")  # also lifts a hold a failed pass left

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _follow_session(self) -> None:
        """Arm the dead-man while the exchange is in session, disarm it outside, and come
        back at the next open or close (wall clock)."""
        assert self.session is not None
        now = self.wall_clock.now()
        if self.session.is_open(now):
            self.deadman.arm()
        else:
            self.deadman.disarm(f"outside the {self.session.name} session")
        nxt = self.session.next_change(now)
        self._session_timer = self.wall_clock.call_later(max(nxt - now, timedelta(0)), self._follow_session)

    @property
    def shutting_down(self) -> bool:
        """The engine is closing: no new reconcile pass, disconnects are expected."""
        return self._shutting_down

    def _watch_feed(self) -> None:
        """Every half of ``feed.stale_seconds`` (wall clock): a feed that delivered nothing for
        longer while trading (a live one: while the exchange is open) is stale, once per episode."""
        stale = self.settings.feed.stale_seconds
        now = self.wall_clock.now()
        in_session = self.session is None or self.session.is_open(now)
        if self.trading and in_session and self._last_data_wall is not None and self.feed_healthy:
            quiet = (now - self._last_data_wall).total_seconds()
            if quiet > stale:
                self._feed_health(False, f"no data for {quiet:.0f} s (feed.stale_seconds {stale:g})")
        self._feed_timer = self.wall_clock.call_later(timedelta(seconds=stale / 2), self._watch_feed)

    def _feed_health(self, healthy: bool, reason: str) -> None:
        self.feed_healthy = healthy
        if healthy:
            log.warning("feed %s back: %s", self.feed.name, reason)
        else:
            log.error("feed %s STALE: %s", self.feed.name, reason)
        self.bus.publish(FeedHealthChanged(self.feed.name, healthy, reason))

    async def park(self, reason: str) -> None:
        """A refused LIVE start that stays up (``[engine] on_refused_start = "wait"``) instead of
        exiting into a restart loop. Its refusal's alert is delivered (the router drains, then
        stops: a parked engine raises nothing more, not even its own disconnect), then the broker
        session ends, so nothing reaches the broker while it waits; the run loop never starts.
        Its stop is the usual shutdown, a clean one."""
        self.parked = reason
        self.stop_reason = (f"parked ({reason}); stopped as asked", False)
        await self.alerts.stop()
        await self.broker.disconnect()
        self._set_hold(f"parked: {reason}")  # and the gate passes nothing, whoever asks

    def request_stop(self) -> None:
        """Ask the run loop to stop after the event in hand (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> bool:
        """Replay until the feed is exhausted (True) or a stop was requested (False)."""
        assert self.oms is not None
        self.trading = True
        if self.session is not None:
            self._follow_session()
        else:
            self.deadman.arm()  # a replay (or the synthetic feed) trades throughout
        self._spawn(self._reconcile_periodically())
        self._last_data_wall = self.wall_clock.now()
        self._watched = getattr(self.feed, "watches_health", False)  # a live feed judges its sources itself
        if not self._watched:
            self._watch_feed()
        self.backups.start()
        loop = asyncio.get_running_loop()
        self._flush_every = self.settings.engine.flush_interval_ms / 1000
        if self.settings.feed.speed == "max" and isinstance(self.clock, SimClock):
            self._flush_every = max(self._flush_every, REPLAY_FLUSH_SECONDS)  # a replay as fast as it goes
        self._next_flush = loop.time() + self._flush_every
        self._flushing = None
        driver = EventDriver(self, self.cursor)
        self.stop_reason = ("the run loop did not finish", True)
        self._frozen = self._frozen or self._freeze_for_replay()
        try:
            feed = self.feed
            units = None
            if isinstance(feed, ReplayFeed) and self.settings.feed.speed == "max" and isinstance(self.clock, SimClock):
                units = feed.units(self.cursor)  # one file at full speed: bar by bar
            if units is not None and isinstance(feed, ReplayFeed):
                await driver.run_units(*units, feed.maker)
            else:
                await driver.run_batches(self.feed.stream(self.cursor, self.settings.feed.speed, self._stop))
            if self.store.failed is not None:
                await self.store.flush()  # raises: a commit failed since the last batch (the run did not end well)
            if not self._stop.is_set():
                self.daily.feed_exhausted()  # a replay that ends at a close completes that day
                self.bus.publish(FeedExhausted(self.settings.feed.kind))  # after the last summary
            self.stop_reason = ("a stop was requested", False) if self._stop.is_set() else ("the feed is exhausted",
                                                                                             False)
        except asyncio.CancelledError:
            self.stop_reason = ("the run was cancelled (the cockpit closed)", False)
            raise
        except Exception as exc:
            self.stop_reason = (f"the run failed: {type(exc).__name__}: {exc}"[:300], True)
            raise
        finally:
            self.quotes_made = driver.made
            cur_ts = driver.cur_ts
            self.daily.stop()
            self.backups.stop()
            self.trading = False
            if self._feed_timer is not None:
                self._feed_timer.cancel()
                self._feed_timer = None
            if cur_ts is not None and (point := self.equity.to_save(cur_ts, False, force=True)) is not None:
                self.bus.publish(EquityRecorded(point.ts, point.equity, point.peak, point.max_drawdown,
                                                point.day_open))
            if self._session_timer is not None:
                self._session_timer.cancel()
                self._session_timer = None
            for task in list(self._tasks):
                task.cancel()  # a pass in progress is shielded: shutdown() waits for it
            self.deadman.disarm("the engine stopped trading")
            if self._flushing is not None:
                await self._flushing
        return not self._stop.is_set()

    def _freeze_for_replay(self) -> bool:
        """A replay at full speed on the simulated clock runs with what exists when it starts (its
        bars, the engine, the imports) out of the garbage collector's view, as the cockpit's own
        host does for a live engine (cockpit/gc_policy.py): a full collection then walks only what
        the run made (on the FESX minute file one took ~125 ms of a one-second run; a walk-forward
        worker's or a bench's process holds far more). Given back when the run ends (``gc.unfreeze``),
        so cyclic garbage of the time before is still collected later: by ``shutdown`` (the final
        commit's rows are made after the run); nothing is done when something froze objects
        already (that host: its own policy stands)."""
        if self.settings.feed.speed != "max" or not isinstance(self.clock, SimClock) or gc.get_freeze_count():
            return False
        gc.freeze()
        return True

    async def batch_done(self, cur_ts: datetime | None, n_at_ts: int, size: int) -> bool:
        """The bookkeeping after each batch of ``size`` events; True when the run must stop.

        The equity is observed (and a point recorded), the daily loss limit checked, a
        liquidation stepped, the cursor moved to the batch's last event; the store commits in
        the background every ``flush_interval_ms`` (a replay at full speed: at least every
        ``REPLAY_FLUSH_SECONDS``; the engine goes on with the next batch while the database thread
        writes this one); then the loop lets other tasks run.
        """
        loop = asyncio.get_running_loop()
        self.events_processed += size
        self.last_batch_at = loop.time()
        self._last_data_wall = self.wall_clock.now()
        if not self.feed_healthy and not self._watched:
            self._feed_health(True, "data again")
        if cur_ts is not None:
            new_day = self.equity.observe(cur_ts, self.portfolio.equity())
            if new_day:
                self.realized_at_day_open = {s: p.realized_pnl for s, p in self.portfolio.positions.items()}
            if (point := self.equity.to_save(cur_ts, new_day)) is not None:
                self.bus.publish(EquityRecorded(point.ts, point.equity, point.peak, point.max_drawdown,
                                                point.day_open))
        self.gate.observe_pnl(self.equity.day_pnl, cur_ts)
        controls = self.controls
        if controls.liquidation is not None and not controls.liquidation.done:
            await controls.step_liquidation()
        self.cursor = Cursor(cur_ts, n_at_ts) if cur_ts is not None else self.cursor
        self._cursor_dirty = True
        if self.store.failed is not None:
            await self.store.flush()  # raises: a commit failed (a backup's, say), so state must not drift on
        flushing = self._flushing
        if loop.time() >= self._next_flush and (flushing is None or flushing.done()):
            if flushing is not None:
                flushing.result()  # a failed commit stops the engine: state must not drift
            # The buffers are swapped at once; the database thread writes them meanwhile.
            self._flushing = asyncio.ensure_future(self.store.flush())
            self._next_flush = loop.time() + self._flush_every
        await asyncio.sleep(0)
        return self._stop.is_set()

    async def shutdown(self) -> None:
        """Stop strategies, flush everything, disconnect, close the store."""
        try:
            await self._shutdown()
        finally:
            if self._frozen:  # what run() froze, back in the collector's view (see _freeze_for_replay)
                self._frozen = False
                gc.unfreeze()

    async def _shutdown(self) -> None:
        for strategy in self.strategies:
            try:
                strategy.on_stop()
            except Exception:
                log.exception("strategy %s failed in on_stop", strategy.name)
        if not self.store.is_open:
            return  # start() failed before the store opened: nothing to flush
        if self.oms is not None and self.oms.has_unsent:
            try:
                await self.oms.send_pending()
            except DiskFull as exc:  # their write-ahead was refused: they stay unsent (never sent unrecorded)
                log.error("orders not sent at the stop: %s", exc)
        try:
            await self.actions_done()  # a dead-man action in flight reaches the broker and the store
            self._shutting_down = True
            await self.reconciler.idle()  # a pass still comparing finishes before the store closes
            await self.backups.idle()  # so does a backup being made (its outcome is audited)
            reason, failed = self.stop_reason or ("stopped before trading", False)
            self.bus.publish(EngineStopped(reason, failed))
            await self.alerts.stop()  # before the broker goes: its disconnect is expected, not an alert
        finally:  # whatever failed above, the sessions end and the store closes
            try:
                closing = getattr(self.feed, "aclose", None)
                if closing is not None:
                    await closing()  # a fallback's own data session
                await self.broker.disconnect()
            finally:
                if self.oms is not None:
                    self.oms.log.flush()  # lines noted in the last step, before the process may end
                await self.store.close()

    def snapshot(self, max_orders: int = 50) -> EngineSnapshot:
        """A frozen picture of the book and the orders (the read model's), for a frame or a call."""
        return self.read_model.snapshot(max_orders)

    # ---- the strategy context ------------------------------------------------------

    def position(self, strategy: str, symbol: str) -> Decimal:
        return self.portfolio.owner_qty(strategy, symbol)

    def target_position(self, strategy: str, symbol: str, qty: Decimal) -> None:
        if self.warming_up:
            return
        assert self.oms is not None
        current = self.portfolio.owner_qty(strategy, symbol)  # self.position(), one call fewer on every order
        working = self.oms.working_signed(strategy, symbol)
        if current + working == qty:
            return
        if working:
            self.cancel_orders(strategy, symbol)
        delta = qty - current
        if delta and self.quarantined and self._refused_quarantined(
                strategy, symbol, Side.BUY if delta > 0 else Side.SELL, abs(delta)):
            return
        if delta:
            side = Side.BUY if delta > 0 else Side.SELL
            # Held with the order it makes: both reach the subscribers once the broker has the order
            # (or before anything else is published: the OMS's refusal, a cancel), in this order.
            self.bus.hold_new(SignalRaised, strategy, symbol, {"target": qty, "current": current, "working": working})
            self.oms.submit(OrderRequest(strategy, symbol, side, abs(delta), OrderType.MARKET,
                                         may_short=self._may_short_of.get(strategy, True)), TimeInForce.DAY)

    def submit_order(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> None:
        if self.warming_up:
            return
        assert self.oms is not None
        if self.quarantined and self._refused_quarantined(strategy, symbol, side, qty, order_type):
            return
        self.bus.hold_new(SignalRaised, strategy, symbol, {"side": side, "qty": qty, "type": order_type,  # as above
                                                          "limit": limit_price})
        self.oms.submit(OrderRequest(strategy, symbol, side, qty, order_type, limit_price,
                                     may_short=self._may_short_of.get(strategy, True)), tif)

    def cancel_orders(self, strategy: str, symbol: str) -> None:
        if self.warming_up:
            return
        assert self.oms is not None
        for order in self.oms.open_orders_of(strategy, symbol):
            self.oms.cancel(order.client_order_id)

    # ---- internals -----------------------------------------------------------------

    def _refused_quarantined(self, strategy: str, symbol: str, side: Side, qty: Decimal,
                             order_type: OrderType = OrderType.MARKET) -> bool:
        """A quarantined strategy ordering its quarantined symbol from another hook (a bar of
        another symbol, a fill): refused with the reason, like the gate's refusals."""
        error = self.quarantined.get((strategy, symbol))
        if error is None:
            return False
        self.bus.publish(IntentRejected(self.clock.now(), strategy, symbol, side, qty,
                                        f"{strategy} is quarantined for {symbol} until a restart ({error})",
                                        order_type=order_type))
        return True

    def _guard(self, strategy: Strategy, hook: Callable[[E], None], symbol: str | None) -> Callable[[E], None]:
        """Run a strategy hook only while enabled; an exception quarantines, never stops the engine.

        A hook for one ``symbol`` that raises quarantines the strategy for that symbol only: it
        gets no more bars, quotes or fills of it, its working orders there are cancelled, and
        it keeps trading its other symbols. One ``StrategyQuarantined`` event per (strategy,
        symbol) tells the alerts, the audit trail and the read model. A hook without a symbol
        (``symbol`` None, like ``on_start``) disables the whole strategy instead.

        The quarantine lives in memory for this run: a restart lifts it, and the warm-up
        replays the same bars, so a strategy that still raises on them is quarantined again
        there, with a new alert.
        """

        def call(event: E) -> None:
            if not strategy.enabled:
                return
            try:
                hook(event)
            except Exception as exc:
                self._quarantine(strategy, symbol, exc)

        self._hook_owner[call] = strategy.name
        return call

    def _quarantine(self, strategy: Strategy, symbol: str | None, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if symbol is None:
            strategy.enabled = False
            log.exception("strategy %s raised and was disabled", strategy.name)
        else:
            key = (strategy.name, symbol)
            if key in self.quarantined:
                return
            self.quarantined[key] = error
            # New lists: a loop going over the old one (this very event's) is not disturbed.
            name, owner = strategy.name, self._hook_owner
            if symbol in self._bar_handlers:
                self._bar_handlers[symbol] = [h for h in self._bar_handlers[symbol] if owner.get(h) != name]
            if symbol in self._quote_handlers:
                self._quote_handlers[symbol] = [h for h in self._quote_handlers[symbol] if owner.get(h) != name]
            log.exception("strategy %s raised on %s and is quarantined for %s until a restart; it keeps trading "
                          "its other symbols", strategy.name, symbol, symbol)
            try:
                self.cancel_orders(strategy.name, symbol)
            except Exception:
                log.exception("cancelling %s's working %s orders after its quarantine failed", strategy.name, symbol)
        self.bus.publish(StrategyQuarantined(strategy.name, symbol, error))

    def _on_fill(self, event: FillApplied) -> None:
        strategy = self._fill_hooks.get(event.strategy)
        if (strategy is not None and strategy.enabled
                and (strategy.name, event.fill.symbol) not in self.quarantined):
            try:
                strategy.on_fill(event.fill)
            except Exception as exc:
                self._quarantine(strategy, event.fill.symbol, exc)

    def _before_flush(self) -> None:
        # The cursor goes with every commit, an order's write-ahead included: it points at the event
        # that made the order, so that a restart resumes after it and does not make the order again.
        if self._cursor_dirty and self.cursor is not None:
            self.store.put(("cursor", self.feed.name), _PUT_CURSOR,
                           (self.feed.name, dt(self.cursor.ts), self.cursor.n_at_ts))
            self._cursor_dirty = False

    def _persist_marks(self) -> None:
        """Positions whose last price moved, at a flush, not at an order's write-ahead: a mark is no
        order's business, and a crash right after the write-ahead leaves on disk the marks of the
        flush before, as a crash just before it would have. A position a fill changed is put by the
        recorder at the fill, so it goes with the fill's commit, a write-ahead's included."""
        if self._dirty_marks and self.oms is not None:
            for symbol in self._dirty_marks:
                self.recorder.persist_position(symbol)
            self._dirty_marks.clear()
