"""The bus's events as alerts: kind, severity, de-duplication key, title, fields; the wording of
each line is ``core.control.alert_text``'s, so the pane, the log and Discord say the same thing.

Kinds (``[alerts.routes]`` patterns match these):

=======================  ==========================================================  =========
kind                     from                                                        resolved?
=======================  ==========================================================  =========
fill, fill.adjustment    every fill (symbol, side, qty, price, strategy, position)
order.rejected/.unknown  the broker rejected an order / never answered it
risk.collar              a limit too far from the quote (price_collar_pct)
risk.fat_finger          an order beyond max_order_qty / max_order_notional
risk.refused             any other (routine) gate refusal: the pane and the log only
risk.daily_loss          the daily loss limit moved trading to REDUCING / HALTED     resume
trading.state            trading left ACTIVE for another reason (halt, dead-man)     resume
risk.hold                no new orders for now (disconnected, reconciling)           lifted
risk.feed_hold           strategy orders held: the active feed is not live (delayed)  live feed
reconcile.break          a break blocks a symbol                                     resolved
reconcile.differences    a pass found differences (applied or settling)
broker.disconnected      the broker went; each failed reconnect counts into it       connected
feed.stale               no data while trading                                       data again
engine.error             an exception inside the engine
strategy.quarantined     a strategy raised (on a symbol, or in on_start)
deadman.warning          confirm presence within the grace window                    confirmed
deadman.missed           nobody confirmed: the action runs                           confirmed
deadman.action           what the dead-man's action did (cancel all, flatten)
operator.command         an operator command ran / was refused (operator.refused)
allocation.changed       a strategy's capital allocation changed (by whom, from, to)
flatten                  a flatten job finished
engine.started/.stopped  the engine started / is stopping
backup.failed            a backup could not be made (a written one is routine)      next backup
daily.summary            the session close's P&L summary (``DailySummaryReady``, below)
test                     ``cockpit alerts test``
=======================  ==========================================================  =========

The daily summary plugs in without touching this module. An event class named
``DailySummaryReady`` in ``core.domain.events`` is followed automatically and becomes one
``daily.summary`` alert (``_daily_summary``): from its ``alert()`` if it has one, else from its
fields ``date``, ``text`` (plain), ``html`` (optional, for the email) and ``fields`` (optional
(name, value) pairs). Any other event class there with a method ``alert() -> Alert`` is routed
as the Alert it returns (``id`` is the router's to set); a class defined outside
``core.domain.events`` is followed with ``AlertRouter.follow(EventType)``. (A domain event
cannot import ``Alert`` itself, the layers forbid it: the plain fields are the way from there.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from core.alerts.model import Alert, Severity
from core.control import alert_text
from core.domain import events as ev
from core.domain import text
from core.domain.model import OrderStatus
from core.portfolio.book import Portfolio

#: Kinds that are conditions: they stay firing until an alert with ``resolved`` clears them.
RESOLVABLE: frozenset[str] = frozenset({
    "risk.daily_loss", "trading.state", "risk.hold", "risk.feed_hold", "reconcile.break", "broker.disconnected", "feed.stale",
    "deadman.warning", "deadman.missed", "backup.failed",
})
DAILY_SUMMARY = "daily.summary"  # the kind a DailySummaryReady.alert() uses

_LEVELS = {alert_text.INFO: Severity.INFO, alert_text.WARNING: Severity.WARNING, alert_text.ERROR: Severity.ERROR,
           alert_text.CRITICAL: Severity.CRITICAL}


class BookLookup(Protocol):
    """The book right after a fill was applied (the bus is synchronous): position after."""

    def position(self, symbol: str) -> Decimal: ...

    def owner_position(self, owner: str, symbol: str) -> Decimal: ...


class PortfolioLookup:
    """``BookLookup`` over the engine's book (read only, at the moment of the event)."""

    def __init__(self, portfolio: Portfolio) -> None:
        self._portfolio = portfolio

    def position(self, symbol: str) -> Decimal:
        pos = self._portfolio.positions.get(symbol)
        return pos.qty if pos is not None else Decimal(0)

    def owner_position(self, owner: str, symbol: str) -> Decimal:
        return self._portfolio.owner_qty(owner, symbol)


def _line(event: object) -> tuple[Severity, str]:
    described = alert_text.describe(event)
    if described is None:  # every mapper below is for an event alert_text words
        return Severity.INFO, type(event).__name__
    level, _source, line = described
    return _LEVELS.get(level, Severity.WARNING), line


def _alert(kind: str, key: str, severity: Severity, title: str, line: str, at: datetime,
           fields: tuple[tuple[str, str], ...] = (), resolved: bool = False) -> Alert:
    return Alert(kind=kind, severity=severity, title=title, text=line, key=key, at=at, fields=fields,
                 resolved=resolved)


def _fill(e: ev.FillApplied, at: datetime, book: BookLookup | None) -> list[Alert]:
    f = e.fill
    severity, line = _line(e)
    fields = [("symbol", f.symbol), ("side", str(f.side)), ("qty", text.qty(f.qty)),
              ("price", text.reported_price(f.price)), ("strategy", e.strategy)]
    if book is not None:
        after = book.position(f.symbol)
        fields.append(("position after", text.qty(after)))
        line = f"{line}; position {f.symbol} now {text.qty(after)}"
        if e.kind == "trade":
            mine = book.owner_position(e.strategy, f.symbol)
            fields.append((f"{e.strategy} position", text.qty(mine)))
    fields += [("commission", text.money(f.commission)), ("realized", text.money(e.realized_pnl)),
               ("exec id", f.exec_id), ("time", f.ts.isoformat())]
    kind = "fill" if e.kind == "trade" else "fill.adjustment"
    title = f"{'Filled' if e.kind == 'trade' else 'Adjustment'} {f.side} {text.qty(f.qty)} {f.symbol} @ " \
            f"{text.reported_price(f.price)}"
    return [_alert(kind, f"fill:{f.exec_id}", severity, title, line, at, tuple(fields))]


def order_may_alert(e: ev.OrderChanged) -> bool:
    """Whether ``_order`` can make an alert of ``e`` (most order changes make none): the router
    drops the others as they come instead of queueing them for nothing."""
    status = e.order.status
    return (status is OrderStatus.REJECTED and e.previous is not None) or status is OrderStatus.UNKNOWN


def _order(e: ev.OrderChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    o = e.order
    if o.status is OrderStatus.REJECTED and e.previous is not None:
        severity, line = _line(e)
        return [_alert("order.rejected", f"order.rejected:{o.strategy}:{o.symbol}", severity,
                       f"Order rejected: {o.side} {text.qty(o.qty)} {o.symbol}", line, at,
                       (("symbol", o.symbol), ("strategy", o.strategy), ("order", o.client_order_id),
                        ("reason", e.reason or "no reason given")))]
    if o.status is OrderStatus.UNKNOWN:
        severity, line = _line(e)
        return [_alert("order.unknown", f"order.unknown:{o.client_order_id}", severity,
                       f"Order state unknown: {o.symbol}", line, at,
                       (("symbol", o.symbol), ("strategy", o.strategy), ("order", o.client_order_id)))]
    return []


def refusal_kind(reason: str) -> str:
    """Which refusals matter beyond the pane: a fat finger (size) or a limit far from the quote."""
    if "price_collar_pct" in reason:
        return "risk.collar"
    if "max_order_qty" in reason or "max_order_notional" in reason:
        return "risk.fat_finger"
    return "risk.refused"


def _rejected(e: ev.IntentRejected, at: datetime, _book: BookLookup | None) -> list[Alert]:
    kind = refusal_kind(e.reason)
    _severity, line = _line(e)
    severity = Severity.INFO if kind == "risk.refused" else Severity.WARNING
    titles = {"risk.collar": "Refused (price collar)", "risk.fat_finger": "Refused (order size)",
              "risk.refused": "Refused"}
    return [_alert(kind, f"{kind}:{e.strategy}:{e.symbol}", severity,
                   f"{titles[kind]}: {e.side} {text.qty(e.qty)} {e.symbol} for {e.strategy}", line, at,
                   (("symbol", e.symbol), ("strategy", e.strategy), ("side", str(e.side)), ("qty", text.qty(e.qty)),
                    ("reason", e.reason)))]


def _state(e: ev.TradingStateChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    fields = (("from", e.old), ("to", e.new), ("reason", e.reason))
    if e.new == "ACTIVE":
        return [_alert(kind, kind, severity, f"Trading ACTIVE again (from {e.old})", line, at, fields, resolved=True)
                for kind in ("trading.state", "risk.daily_loss")]
    if "daily_loss_limit" in e.reason:
        return [_alert("risk.daily_loss", "risk.daily_loss", Severity.CRITICAL,
                       f"Daily loss limit hit: trading {e.new}", line, at, fields)]
    return [_alert("trading.state", "trading.state", severity, f"Trading {e.old} -> {e.new}", line, at, fields)]


def _broker(e: ev.BrokerConnectionChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    key = f"broker.disconnected:{e.broker}"
    fields = (("broker", e.broker), ("reason", e.reason))
    if e.up:
        return [_alert("broker.disconnected", key, severity, f"Broker {e.broker} connected", line, at, fields,
                       resolved=True)]
    return [_alert("broker.disconnected", key, severity, f"Broker {e.broker} DISCONNECTED", line, at, fields)]


def _retry(e: ev.BrokerReconnectFailed, at: datetime, _book: BookLookup | None) -> list[Alert]:
    delay = e.next_delay_seconds
    within = f"{delay:.0f}" if delay >= 10 else f"{delay:.2g}"
    line = f"broker {e.broker} still down: reconnect attempt {e.attempt} failed: {e.reason}; next try within {within} s"
    return [_alert("broker.disconnected", f"broker.disconnected:{e.broker}", Severity.ERROR,
                   f"Broker {e.broker} DISCONNECTED", line, at,
                   (("broker", e.broker), ("attempt", str(e.attempt)), ("reason", e.reason)))]


def _hold(e: ev.HoldChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    if e.hold is None:
        return [_alert("risk.hold", "risk.hold", severity, "New orders may go again", line, at, resolved=True)]
    return [_alert("risk.hold", "risk.hold", severity, "No new orders", line, at, (("why", e.hold),))]


def _feed_hold(e: ev.FeedHoldChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    if e.hold is None:
        return [_alert("risk.feed_hold", "risk.feed_hold", severity, f"Strategies trade again: feed {e.feed} is live",
                       line, at, (("feed", e.feed),), resolved=True)]
    return [_alert("risk.feed_hold", "risk.feed_hold", severity, f"Strategy orders HELD: feed {e.feed} is not live",
                   line, at, (("feed", e.feed), ("why", e.hold)))]


def _break(e: ev.BreakFound, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    return [_alert("reconcile.break", f"reconcile.break:{e.symbol}", severity, f"Reconciliation break {e.symbol}",
                   line, at, (("symbol", e.symbol), ("summary", e.summary)))]


def _break_resolved(e: ev.BreakResolved, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    return [_alert("reconcile.break", f"reconcile.break:{e.symbol}", severity, f"Break {e.symbol} resolved", line,
                   at, (("symbol", e.symbol), ("action", e.action), ("by", e.actor)), resolved=True)]


def _reconcile(e: ev.ReconcilePassed, at: datetime, _book: BookLookup | None) -> list[Alert]:
    if not e.differences and not e.missed_fills:
        return []
    severity, line = _line(e)
    return [_alert("reconcile.differences", "reconcile.differences", severity, "Reconcile found differences", line,
                   at, (("differences", str(e.differences)), ("missed fills", str(e.missed_fills))))]


def _deadman(e: ev.DeadmanChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    phase = e.kind.removeprefix("deadman.")
    described = alert_text.describe(e)
    if phase == "confirmed":
        line = described[2] if described else f"presence confirmed by {e.actor}"
        return [_alert(kind, kind, Severity.INFO, f"Presence confirmed by {e.actor}", line, at, resolved=True)
                for kind in ("deadman.warning", "deadman.missed")]
    if described is None or phase not in ("warning", "missed"):
        return []
    level, _source, line = described
    title = "Dead-man: confirm presence" if phase == "warning" else "DEAD-MAN MISSED"
    fields = tuple((k, str(v)) for k, v in e.detail.items())
    return [_alert(f"deadman.{phase}", f"deadman.{phase}", _LEVELS.get(level, Severity.WARNING), title, line, at,
                   fields)]


def _command(e: ev.CommandHandled, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    if e.actor == "deadman":
        return [_alert("deadman.action", "deadman.action", Severity.CRITICAL, f"Dead-man action: {e.command}",
                       f"dead-man: {e.message}", at, (("command", e.command),))]
    if e.refused is not None:
        return [_alert("operator.refused", f"operator.refused:{e.command}", severity, f"Refused: {e.command}", line,
                       at, (("command", e.command), ("by", e.actor), ("reason", e.refused)))]
    return [_alert("operator.command", f"operator.command:{e.command}:{e.actor}", Severity.INFO,
                   f"Operator: {e.command}", line, at, (("command", e.command), ("by", e.actor)))]


def _allocation(e: ev.AllocationChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    return [_alert("allocation.changed", f"allocation.changed:{e.strategy}", severity,
                   f"Allocation {e.strategy}: {e.before or 'none'} -> {e.after or 'none'}", line, at,
                   (("strategy", e.strategy), ("from", e.before or "none"), ("to", e.after or "none"),
                    ("by", e.actor)))]


def _liquidation(e: ev.LiquidationFinished, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    if e.actor == "deadman":
        return [_alert("deadman.action", "deadman.action", Severity.CRITICAL, "Dead-man flatten finished",
                       f"dead-man: {line}", at, (("job", e.job_id),))]
    return [_alert("flatten", f"flatten:{e.job_id}", severity, "Flatten finished", line, at,
                   (("job", e.job_id), ("by", e.actor)))]


def _feed(e: ev.FeedHealthChanged, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    key = f"feed.stale:{e.feed}"
    if e.healthy:
        return [_alert("feed.stale", key, severity, f"Feed {e.feed} back", line, at, resolved=True)]
    return [_alert("feed.stale", key, severity, f"Feed {e.feed} {alert_text.feed_trouble(e.reason)}", line, at, (("feed", e.feed),
                                                                                    ("reason", e.reason)))]


def _pacing(e: ev.BrokerPacingViolation, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    return [_alert("broker.pacing", f"broker.pacing:{e.broker}", severity, f"{e.broker} pacing violation", line, at,
                   (("broker", e.broker), ("message", e.message)))]


def _switched(e: ev.FeedSwitched, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    key = "feed.switch"
    fields = (("from", e.from_feed), ("to", e.to_feed), ("reason", e.reason))
    if e.failback:
        return [_alert("feed.switch", key, severity, f"Feed back on {e.to_feed}", line, at, fields, resolved=True)]
    return [_alert("feed.switch", key, severity, f"Feed failover to {e.to_feed}", line, at, fields)]


def _quality(e: ev.DataQualityIssue, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    key = f"data.quality:{e.feed}:{e.symbol}:{e.reason}"
    if not e.opened:
        return [_alert("data.quality", key, severity, f"{e.symbol} data clean again ({e.feed})", line, at,
                       resolved=True)]
    return [_alert("data.quality", key, severity, f"Bad data: {e.symbol} {e.reason} ({e.feed})", line, at,
                   (("feed", e.feed), ("symbol", e.symbol), ("check", e.reason), ("detail", e.detail)))]


def _error(e: ev.EngineError, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    return [_alert("engine.error", f"engine.error:{e.where}", severity, f"Engine error in {e.where}", line, at,
                   (("where", e.where),))]


def _quarantined(e: ev.StrategyQuarantined, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity, line = _line(e)
    where = e.symbol or "all symbols"
    return [_alert("strategy.quarantined", f"strategy.quarantined:{e.strategy}:{e.symbol or '*'}", severity,
                   f"Strategy {e.strategy} quarantined ({where})", line, at,
                   (("strategy", e.strategy), ("symbol", e.symbol or "-"), ("error", e.error)))]


def _started(e: ev.EngineStarted, at: datetime, _book: BookLookup | None) -> list[Alert]:
    names = ", ".join(e.strategies) or "none"
    return [_alert("engine.started", "engine.started", Severity.INFO, "Engine started",
                   f"engine started: {e.broker} broker, {e.feed} feed, strategies {names}", at,
                   (("broker", e.broker), ("feed", e.feed), ("strategies", names)))]


def _stopped(e: ev.EngineStopped, at: datetime, _book: BookLookup | None) -> list[Alert]:
    severity = Severity.ERROR if e.failed else Severity.WARNING
    return [_alert("engine.stopped", "engine.stopped", severity, "Engine FAILED" if e.failed else "Engine stopped",
                   f"engine stopping: {e.reason}", at, (("reason", e.reason),))]


def _backup_written(e: ev.BackupWritten, at: datetime, _book: BookLookup | None) -> list[Alert]:
    """A backup is routine (the log and the audit trail have it): an alert only as the
    resolution of a failure before it."""
    line = f"backup written: {e.name} ({e.size / 1e6:.1f} MB, {e.reason}, checked)"
    return [_alert("backup.failed", "backup.failed", Severity.ERROR, "Backups work again", line, at,
                   (("file", e.name), ("reason", e.reason), ("by", e.actor)), resolved=True)]


def _backup_failed(e: ev.BackupFailed, at: datetime, _book: BookLookup | None) -> list[Alert]:
    return [_alert("backup.failed", "backup.failed", Severity.ERROR, "Backup FAILED",
                   f"BACKUP FAILED ({e.reason}, asked by {e.actor}): {e.error}", at,
                   (("reason", e.reason), ("by", e.actor), ("error", e.error)))]


def _preflight(e: ev.PreflightDecided, at: datetime, _book: BookLookup | None) -> list[Alert]:
    """A LIVE account's start against the go-live check: a refusal and an override are critical
    (someone must know, away from the screen); a pass is in the audit trail only."""
    failing = ", ".join(e.failing) or "none"
    if e.outcome == "refused":
        return [_alert("preflight.refused", "preflight.refused", Severity.CRITICAL,
                       "LIVE start REFUSED: the go-live check fails",
                       f"a LIVE account did not start: the go-live check fails ({failing}); fix them (`cockpit "
                       "preflight` lists each fix) or start with --override-preflight REASON (audited)", at,
                       (("failing", failing),))]
    if e.outcome == "override":
        return [_alert("preflight.override", f"preflight.override:{e.actor}", Severity.CRITICAL,
                       "LIVE start OVERRIDES the go-live check",
                       f"a LIVE account started although the go-live check fails ({failing}): override by "
                       f"{e.actor}: {e.reason or 'no reason given'}", at,
                       (("failing", failing), ("by", e.actor), ("reason", e.reason or "-")))]
    return []


Mapper = Callable[[Any, datetime, BookLookup | None], list[Alert]]

MAPPERS: dict[type, Mapper] = {
    ev.FillApplied: _fill, ev.OrderChanged: _order, ev.IntentRejected: _rejected,
    ev.TradingStateChanged: _state, ev.BrokerConnectionChanged: _broker, ev.BrokerReconnectFailed: _retry,
    ev.HoldChanged: _hold, ev.BreakFound: _break, ev.BreakResolved: _break_resolved,
    ev.ReconcilePassed: _reconcile, ev.DeadmanChanged: _deadman, ev.CommandHandled: _command,
    ev.LiquidationFinished: _liquidation, ev.FeedHealthChanged: _feed, ev.EngineError: _error,
    ev.FeedSwitched: _switched, ev.DataQualityIssue: _quality, ev.BrokerPacingViolation: _pacing,
    ev.StrategyQuarantined: _quarantined, ev.EngineStarted: _started, ev.EngineStopped: _stopped,
    ev.AllocationChanged: _allocation, ev.FeedHoldChanged: _feed_hold,
    ev.BackupWritten: _backup_written, ev.BackupFailed: _backup_failed, ev.PreflightDecided: _preflight,
}


def self_described(event: object, _at: datetime, _book: BookLookup | None) -> list[Alert]:
    """An event that words itself (``alert() -> Alert``)."""
    made = event.alert()  # type: ignore[attr-defined]
    return [made] if isinstance(made, Alert) else []


def _daily_summary(event: object, at: datetime, book: BookLookup | None) -> list[Alert]:
    """The metrics part's ``DailySummaryReady`` (its class is theirs): the day's summary, to the
    sinks ``[alerts.routes]`` sends ``daily.summary`` to (by default Discord and email)."""
    if callable(getattr(event, "alert", None)):
        return self_described(event, at, book)
    day = str(getattr(event, "date", "") or at.date())
    body = str(getattr(event, "text", "") or f"daily summary {day}")
    html = getattr(event, "html", None)
    pairs = tuple((str(k), str(v)) for k, v in getattr(event, "fields", ()) or ())
    return [Alert(kind=DAILY_SUMMARY, severity=Severity.INFO, title=f"Daily summary {day}", text=body,
                  key=f"{DAILY_SUMMARY}:{day}", at=at, fields=pairs, html=str(html) if html is not None else None)]


_DailySummary = ev.DailySummaryReady  # the domain's own (a test may stand another in under its name)

#: Events mapped by class name, for classes this module cannot name yet (defined by another part).
BY_NAME: dict[str, Mapper] = {"DailySummaryReady": _daily_summary}


def self_describing_events() -> tuple[type, ...]:
    """The event classes in ``core.domain.events`` mapped by name or with an ``alert()`` method."""
    return tuple(cls for cls in vars(ev).values()
                 if isinstance(cls, type) and cls not in MAPPERS
                 and (cls.__name__ in BY_NAME or callable(getattr(cls, "alert", None))))


def alerts_for(event: object, at: datetime, book: BookLookup | None = None, *, html: bool = True) -> list[Alert]:
    """The alerts ``event`` stands for (often none). ``html``: a sink will show an HTML body (the
    daily summary's is made only then: it is most of the cost of wording a session's close)."""
    if type(event) is _DailySummary:
        return [event.alert(html=html)]
    mapper = MAPPERS.get(type(event)) or BY_NAME.get(type(event).__name__)
    if mapper is not None:
        return mapper(event, at, book)
    if callable(getattr(event, "alert", None)):
        return self_described(event, at, book)
    return []
