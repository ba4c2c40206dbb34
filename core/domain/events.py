"""Events the engine publishes on the bus after its state changed.

Every change of state is one of these. The store, the audit trail, the alerts, the read model
(TUI, API) and anything added later (Discord, email, Prometheus) subscribe to them; none of
them is called by hand from the engine, so adding a subscriber never means touching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain import daily_summary_text as words
from core.domain.alert import Alert
from core.domain.daily_summary import DailySummary
from core.domain.model import Execution, Order, OrderStatus, OrderType, Side


@dataclass(slots=True, frozen=True)
class OrderChanged:
    """An order was created or changed status; ``order`` is the live object.

    ``previous`` is the status before (None: the order was just created, after passing the
    gate); ``reason`` why it moved; ``source`` who asked for a new order (strategy, operator,
    liquidation); ``broker`` the venue it was sent to (status SUBMITTED)."""

    order: Order
    previous: OrderStatus | None = None
    reason: str | None = None
    source: str | None = None
    reduce_only: bool = False
    broker: str | None = None
    adopted: bool = False


@dataclass(slots=True, frozen=True)
class FillApplied:
    """A fill reached the book; ``realized_pnl`` is what it realized (before commission).

    ``strategy`` is the fill's owner (the order's strategy, or operator/external);
    ``allocation`` says whose positions it moved ((owner, signed qty), summing to the
    fill); ``kind`` is "trade" or "adjustment" (an override or an accepted break).
    ``equity`` is the book's equity just after the fill, at the marks then: the daily report
    samples it from here, since the event may reach it after the next mark moved (the order
    manager holds the events of a venue's reports until the order path is done; oms.py)."""

    fill: Execution
    strategy: str
    realized_pnl: Decimal
    allocation: tuple[tuple[str, Decimal], ...] = ()
    kind: str = "trade"
    actor: str = "broker"
    reason: str | None = None
    equity: Decimal | None = None


@dataclass(slots=True, frozen=True)
class IntentRejected:
    """The risk gate (or the OMS) refused an intent; ``reason`` says why."""

    ts: datetime
    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    reason: str
    source: str = "strategy"
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None


@dataclass(slots=True, frozen=True)
class SignalRaised:
    """A strategy asked for a trade (a target position or an order), before the gate."""

    strategy: str
    symbol: str
    detail: dict[str, object]


@dataclass(slots=True, frozen=True)
class TradingStateChanged:
    old: str
    new: str
    reason: str


@dataclass(slots=True, frozen=True)
class SettingChanged:
    """A run-time setting the operator changed (a limit, a strategy on/off, reduce-only
    symbols); persisted so it survives a restart. ``key`` as in the settings table."""

    key: str
    value: str


@dataclass(slots=True, frozen=True)
class AllocationChanged:
    """A strategy's capital allocation changed at run time: ``before`` / ``after`` as given
    ("50000", "25%"; None: no allocation), ``amount`` the new one in money. ``actor`` is who
    (the operator's command, or "engine" when a stored change could not be taken at start)."""

    strategy: str
    before: str | None
    after: str | None
    amount: Decimal | None
    actor: str
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class AllocationsStarted:
    """The engine measured the allocations against the equity at start (``source`` says whose);
    ``allocations`` are (strategy, given, amount) in force, ``uncovered`` the enabled strategies
    without one."""

    equity_at_start: Decimal
    source: str
    allocations: tuple[tuple[str, str, Decimal | None], ...]
    uncovered: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class BrokerConnectionChanged:
    broker: str
    up: bool
    reason: str


@dataclass(slots=True, frozen=True)
class HoldChanged:
    """Why no new order may go right now (None: they may again)."""

    hold: str | None


@dataclass(slots=True, frozen=True)
class ReconcilePassed:
    reason: str
    differences: int
    missed_fills: int
    new_breaks: tuple[str, ...]
    at: datetime


@dataclass(slots=True, frozen=True)
class MissedFillFound:
    """Reconciliation found a broker execution the engine never booked (it is then applied)."""

    fill: Execution


@dataclass(slots=True, frozen=True)
class BreakFound:
    symbol: str
    summary: str
    reason: str
    differences: tuple[dict[str, str], ...]


@dataclass(slots=True, frozen=True)
class BreakResolved:
    symbol: str
    action: str
    actor: str


@dataclass(slots=True, frozen=True)
class DeadmanChanged:
    """The dead-man switch moved: armed, confirmed, warning, missed, disarmed."""

    kind: str  # "deadman.<phase>"
    actor: str
    detail: dict[str, object]


@dataclass(slots=True, frozen=True)
class LiquidationFinished:
    job_id: str
    actor: str
    summary: dict[str, object]


@dataclass(slots=True, frozen=True)
class CommandHandled:
    """An operator command ran (``refused`` None) or was refused (the reason)."""

    command: str
    actor: str
    reason: str | None
    message: str
    before: object = None
    after: object = None
    detail: dict[str, object] | None = None
    refused: str | None = None


@dataclass(slots=True, frozen=True)
class FeedHealthChanged:
    """The feed went stale (``healthy`` False, with why) or delivers again."""

    feed: str
    healthy: bool
    reason: str


@dataclass(slots=True, frozen=True)
class FeedSwitched:
    """The engine takes its prices from another feed now (a failover, or a failback)."""

    from_feed: str
    to_feed: str
    reason: str
    failback: bool  # back to a feed earlier in the order (the primary, usually)
    # why the new feed's prices are not live (IB delayed or frozen data); None: they are live
    not_live: str | None = None


@dataclass(slots=True, frozen=True)
class FeedHoldChanged:
    """The risk gate holds strategy orders because the active feed is not live (``hold``: the
    refusal's reason), or lifts that hold (``hold`` None) once a live feed is active again.

    Separate from ``HoldChanged`` (broker down, reconciling: no order at all) and from the
    operator's halt: this one lets the operator's orders and flattens through."""

    feed: str  # the active feed
    hold: str | None


@dataclass(slots=True, frozen=True)
class DataQualityIssue:
    """A feed's items of ``symbol`` fail the quality gate (``opened``) or pass again.

    One per episode, not per item: ``count`` is how many failed (so far, or in all when it
    closes); ``quarantined`` False means flagged only (a gap: the bars are kept).
    """

    feed: str
    symbol: str
    reason: str
    detail: str
    opened: bool
    count: int
    quarantined: bool = True


@dataclass(slots=True, frozen=True)
class EngineError:
    """Something failed inside the engine that the operator must hear about."""

    where: str
    message: str


@dataclass(slots=True, frozen=True)
class StrategyQuarantined:
    """A strategy hook raised: the strategy stops trading ``symbol`` for this run (None: it is disabled)."""

    strategy: str
    symbol: str | None
    error: str


@dataclass(slots=True, frozen=True)
class FeedExhausted:
    feed: str


@dataclass(slots=True, frozen=True)
class EquityRecorded:
    """A point of the equity curve worth keeping (at most one a minute): the store saves it."""

    ts: datetime
    equity: Decimal
    peak: Decimal
    max_drawdown: Decimal
    day_open: Decimal


@dataclass(slots=True, frozen=True)
class EngineStarted:
    """The engine finished starting (store open, broker connected, strategies warmed up)."""

    broker: str
    feed: str
    strategies: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class EngineStopped:
    """The engine is shutting down; ``reason`` says why (the feed ended, a stop was asked, it failed)."""

    reason: str
    failed: bool = False


@dataclass(slots=True, frozen=True)
class PreflightDecided:
    """A real-money account's start against the go-live check: "pass", "refused" or "override"
    (started although ``failing`` checks fail, by ``actor`` for ``reason``)."""

    outcome: str
    failing: tuple[str, ...]
    actor: str
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class BrokerPacingViolation:
    """The broker refused messages for their rate (IB error 100): the go-live check looks for these."""

    broker: str
    message: str


@dataclass(slots=True, frozen=True)
class BrokerReconnectFailed:
    """One more reconnect attempt failed while the broker is down (``attempt`` counts since it
    went): the alerts count these into the disconnect's digest instead of one line each."""

    broker: str
    attempt: int
    reason: str
    next_delay_seconds: float


@dataclass(slots=True, frozen=True)
class BackupWritten:
    """A backup of the store was written and checked (``STATE/backups/<name>``); ``reason`` is
    why it was taken (manual, scheduled, session-close), ``actor`` who asked (the engine for its
    own schedule); ``pruned`` names the older backups rotation deleted after it."""

    name: str
    reason: str
    size: int
    actor: str
    pruned: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class BackupFailed:
    """A backup could not be made (nothing was kept; the store and older backups are untouched)."""

    reason: str
    error: str
    actor: str


@dataclass(slots=True, frozen=True)
class BackupRestored:
    """A backup replaced the store (``cockpit restore``, no engine running); published into the
    restored store's audit trail. ``archived`` is where the replaced store was kept."""

    name: str
    taken_at: datetime
    archived: str | None
    actor: str


@dataclass(slots=True, frozen=True)
class DailySummaryReady:
    """The exchange session closed: the day's summary (core/analytics/daily.py builds it, the
    reports recorder stores it, the alert router delivers ``alert()``)."""

    summary: DailySummary

    def alert(self, *, html: bool = True) -> Alert:
        """The summary as an alert; ``html=False`` leaves the HTML body out (no sink shows it)."""
        return words.alert(self.summary, html=html)
