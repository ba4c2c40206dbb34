"""The audit trail as a subscriber: every decision and trade on the bus becomes one
hash-chained row, with who did it. Nothing in the engine calls the audit log by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.audit import journal as kinds
from core.audit.journal import AuditLog
from core.common.bus import Bus
from core.domain.events import (
    AllocationChanged,
    AllocationsStarted,
    BackupFailed,
    BackupRestored,
    BackupWritten,
    BreakFound,
    BrokerConnectionChanged,
    BrokerPacingViolation,
    CommandHandled,
    DataQualityIssue,
    DeadmanChanged,
    EngineError,
    FeedHealthChanged,
    FeedHoldChanged,
    FeedSwitched,
    FillApplied,
    IntentRejected,
    LiquidationFinished,
    MissedFillFound,
    OrderChanged,
    PreflightDecided,
    ReconcilePassed,
    SignalRaised,
    StrategyQuarantined,
    TradingStateChanged,
)
from core.domain.model import OrderStatus

ALLOCATION_CHANGE = "config.allocation"
ALLOCATION_START = "allocation.start"
RECONCILE_RUN = "reconcile.run"
RECONCILE_BREAK = "reconcile.break"
RECONCILE_MISSED_FILL = "reconcile.missed_fill"
BACKUP_WRITTEN = "backup.written"
BACKUP_FAILED = "backup.failed"
BACKUP_RESTORED = "backup.restored"
FEED_HOLD = "risk.feed_hold"  # strategy orders held: the active feed is not live (IB delayed data)
FEED_HOLD_LIFTED = "risk.feed_hold_lifted"

_STATUS_KIND = {
    OrderStatus.SUBMITTED: kinds.ORDER_SENT,
    OrderStatus.ACCEPTED: kinds.ORDER_ACK,
    OrderStatus.CANCELLED: kinds.ORDER_CANCELLED,
    OrderStatus.REJECTED: kinds.ORDER_REJECTED,
    OrderStatus.PENDING_CANCEL: "order.cancel_requested",
    OrderStatus.UNKNOWN: "order.unknown",
}


class AuditRecorder:
    """Writes the audit rows for the events it subscribes to (while the store is open)."""

    def __init__(self, audit: AuditLog, bus: Bus, is_open: Callable[[], bool]) -> None:
        self.audit = audit
        self._is_open = is_open
        handlers: dict[type[Any], Callable[[Any], None]] = {
            OrderChanged: self.on_order, FillApplied: self.on_fill, IntentRejected: self.on_rejected,
            SignalRaised: self.on_signal, TradingStateChanged: self.on_state, DeadmanChanged: self.on_deadman,
            BrokerConnectionChanged: self.on_broker, ReconcilePassed: self.on_reconcile,
            MissedFillFound: self.on_missed_fill, BreakFound: self.on_break, LiquidationFinished: self.on_liquidation,
            CommandHandled: self.on_command, EngineError: self.on_error, StrategyQuarantined: self.on_quarantine,
            BrokerPacingViolation: self.on_pacing, PreflightDecided: self.on_preflight,
            FeedHealthChanged: self.on_feed,
            FeedSwitched: self.on_feed_switch, FeedHoldChanged: self.on_feed_hold,
            DataQualityIssue: self.on_quality, AllocationChanged: self.on_allocation,
            AllocationsStarted: self.on_allocations_started,
            BackupWritten: self.on_backup, BackupFailed: self.on_backup_failed, BackupRestored: self.on_restored,
        }
        for event_type, handler in handlers.items():
            bus.subscribe(event_type, self._guarded(handler))

    def _guarded(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def call(event: Any) -> None:
            if self._is_open():
                handler(event)
        return call

    def on_order(self, e: OrderChanged) -> None:
        o = e.order
        if e.previous is None:
            if e.adopted:
                self.audit.record("order.adopted", actor=e.source or "operator", subject=o.client_order_id,
                                  symbol=o.symbol, side=o.side, qty=o.qty, status=o.status)
                return
            # An order's fields that do not change, in a dict made here: worded at the flush.
            self.audit.record_detail(kinds.GATE_PASS, {
                "strategy": o.strategy, "symbol": o.symbol, "side": o.side, "qty": o.qty, "type": o.order_type,
                "limit": o.limit_price, "reduce_only": e.reduce_only}, actor=e.source or "strategy",
                subject=o.client_order_id)
            return
        kind = _STATUS_KIND.get(o.status)
        if kind is None or e.previous is o.status:
            return
        if o.status is OrderStatus.SUBMITTED:
            self.audit.record(kind, subject=o.client_order_id, broker=e.broker)
        else:
            self.audit.record(kind, subject=o.client_order_id, reason=e.reason)

    def on_fill(self, e: FillApplied) -> None:
        ex = e.fill
        # A dict made here and handed over, of values that cannot change: worded at the flush.
        self.audit.record_detail(
            kinds.ORDER_FILL if e.kind == "trade" else "book.adjustment",
            {"exec_id": ex.exec_id, "symbol": ex.symbol, "side": ex.side, "qty": ex.qty, "price": ex.price,
             "commission": ex.commission, "owners": {o: str(q) for o, q in e.allocation}, "reason": e.reason},
            actor=e.actor, subject=ex.client_order_id or ex.symbol)

    def on_rejected(self, e: IntentRejected) -> None:
        self.audit.record(kinds.GATE_REFUSE, actor=e.source, subject=e.symbol, strategy=e.strategy, side=e.side,
                          qty=e.qty, type=e.order_type, limit=e.limit_price, reason=e.reason)

    def on_signal(self, e: SignalRaised) -> None:
        self.audit.record(kinds.SIGNAL, actor=e.strategy, subject=e.symbol, **e.detail)

    def on_state(self, e: TradingStateChanged) -> None:
        self.audit.record(kinds.STATE_CHANGE, subject=e.new, before=e.old, after=e.new, reason=e.reason)

    def on_deadman(self, e: DeadmanChanged) -> None:
        self.audit.record(e.kind, actor=e.actor, subject="deadman", **e.detail)

    def on_broker(self, e: BrokerConnectionChanged) -> None:
        self.audit.record("broker.up" if e.up else "broker.down", actor="broker", subject=e.broker, reason=e.reason)

    def on_reconcile(self, e: ReconcilePassed) -> None:
        self.audit.record(RECONCILE_RUN, actor="engine", subject=e.reason, differences=e.differences,
                          missed_fills=e.missed_fills, new_breaks=list(e.new_breaks))

    def on_missed_fill(self, e: MissedFillFound) -> None:
        ex = e.fill
        self.audit.record(RECONCILE_MISSED_FILL, actor="engine", subject=ex.exec_id, symbol=ex.symbol, side=ex.side,
                          qty=ex.qty, price=ex.price, order=ex.client_order_id)

    def on_break(self, e: BreakFound) -> None:
        self.audit.record(RECONCILE_BREAK, actor="engine", subject=e.symbol, reason=e.reason,
                          differences=list(e.differences))

    def on_liquidation(self, e: LiquidationFinished) -> None:
        self.audit.record("liquidation.done", actor=e.actor, subject=e.job_id, job=e.summary)

    def on_command(self, e: CommandHandled) -> None:
        detail = dict(e.detail or {})
        if e.refused is not None:
            detail["refused"] = e.refused
        subject = str(detail.pop("subject", ""))
        self.audit.operator(e.command, actor=e.actor, reason=e.reason, before=e.before, after=e.after,
                            subject=subject, **detail)

    def on_feed(self, e: FeedHealthChanged) -> None:
        self.audit.record("feed.healthy" if e.healthy else "feed.stale", actor="engine", subject=e.feed,
                          reason=e.reason)

    def on_preflight(self, e: PreflightDecided) -> None:
        self.audit.record(f"preflight.{e.outcome}", actor=e.actor, subject="go-live", reason=e.reason,
                          failing=list(e.failing))

    def on_pacing(self, e: BrokerPacingViolation) -> None:
        self.audit.record("broker.pacing", actor="engine", subject=e.broker, message=e.message)

    def on_feed_switch(self, e: FeedSwitched) -> None:
        self.audit.record("feed.failback" if e.failback else "feed.failover", actor="engine", subject=e.to_feed,
                          reason=e.reason, previous=e.from_feed)

    def on_feed_hold(self, e: FeedHoldChanged) -> None:
        self.audit.record(FEED_HOLD if e.hold is not None else FEED_HOLD_LIFTED, actor="engine", subject=e.feed,
                          reason=e.hold or "the active feed is live")

    def on_quality(self, e: DataQualityIssue) -> None:
        self.audit.record("data.quarantine" if e.opened else "data.clean", actor="engine", subject=e.symbol,
                          feed=e.feed, check=e.reason, detail=e.detail, count=e.count, quarantined=e.quarantined)
    def on_allocation(self, e: AllocationChanged) -> None:
        self.audit.record(ALLOCATION_CHANGE, actor=e.actor, subject=e.strategy, before=e.before, after=e.after,
                          amount=e.amount, reason=e.reason)

    def on_allocations_started(self, e: AllocationsStarted) -> None:
        self.audit.record(ALLOCATION_START, actor="engine", subject="allocation", equity_at_start=e.equity_at_start,
                          source=e.source, allocations={n: g for n, g, _ in e.allocations},
                          uncovered=list(e.uncovered))

    def on_error(self, e: EngineError) -> None:
        self.audit.record("engine.error", actor="engine", subject=e.where, message=e.message)

    def on_quarantine(self, e: StrategyQuarantined) -> None:
        self.audit.record("strategy.quarantined", actor="engine", subject=e.strategy, symbol=e.symbol, error=e.error)

    def on_backup(self, e: BackupWritten) -> None:
        self.audit.record(BACKUP_WRITTEN, actor=e.actor, subject=e.name, reason=e.reason, size=e.size,
                          pruned=list(e.pruned))

    def on_backup_failed(self, e: BackupFailed) -> None:
        self.audit.record(BACKUP_FAILED, actor=e.actor, subject=e.reason, error=e.error)

    def on_restored(self, e: BackupRestored) -> None:
        self.audit.record(BACKUP_RESTORED, actor=e.actor, subject=e.name, taken_at=e.taken_at, archived=e.archived)
