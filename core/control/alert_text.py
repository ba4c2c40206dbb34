"""The words an operator reads for each event: one line, the strategy or symbol named, money
to the cent, quantities with their sign, no Python reprs. The alerts pane (and, later, every
alert sink) turns events into these lines; events that are not worth an alert give None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.domain import events as ev
from core.domain import text
from core.domain.model import OrderStatus

INFO, WARNING, ERROR, CRITICAL = logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL


def describe(event: object) -> tuple[int, str, str] | None:
    """(level, source, line) for ``event``, or None when it is not an alert."""
    describer = _DESCRIBERS.get(type(event))
    return describer(event) if describer is not None else None


def level(event: object) -> int | None:
    """``describe(event)[0]`` (None when it is not an alert) without wording the line, for the
    events that come by the thousand (fills, order changes); the others are worded."""
    if type(event) is ev.FillApplied:
        return WARNING if event.kind == "adjustment" else INFO
    if type(event) is ev.OrderChanged:
        o = event.order
        if o.status is OrderStatus.REJECTED and event.previous is not None:
            return WARNING
        return ERROR if o.status is OrderStatus.UNKNOWN else None
    described = describe(event)
    return described[0] if described is not None else None


def _fill(e: ev.FillApplied) -> tuple[int, str, str]:
    f = e.fill
    owners = ", ".join(f"{o} {text.qty(q)}" for o, q in e.allocation)
    if e.kind == "adjustment":
        return (WARNING, "book", f"adjustment {f.side} {text.qty(f.qty)} {f.symbol} @ {text.reported_price(f.price)} by "
                                 f"{e.actor} ({e.reason}); owners: {owners}")
    return (INFO, "fill", f"filled {f.side} {text.qty(f.qty)} {f.symbol} @ {text.reported_price(f.price)} for {e.strategy} "
                          f"(commission {text.money(f.commission)})")


def _order(e: ev.OrderChanged) -> tuple[int, str, str] | None:
    o = e.order
    if o.status is OrderStatus.REJECTED and e.previous is not None:
        return (WARNING, "order", f"order {o.client_order_id} ({o.strategy} {o.side} {text.qty(o.qty)} {o.symbol}) "
                                  f"rejected: {e.reason or 'no reason given'}")
    if o.status is OrderStatus.UNKNOWN:
        return (ERROR, "order", f"order {o.client_order_id} ({o.symbol}) state UNKNOWN: {e.reason or 'no answer'}")
    return None


def _rejected(e: ev.IntentRejected) -> tuple[int, str, str]:
    return (WARNING, "risk", f"refused {e.side} {text.qty(e.qty)} {e.symbol} for {e.strategy}: {e.reason}")


def _state(e: ev.TradingStateChanged) -> tuple[int, str, str]:
    level = WARNING if e.new == "ACTIVE" else ERROR
    return (level, "trading", f"trading {e.old} -> {e.new}: {e.reason}")


def _broker(e: ev.BrokerConnectionChanged) -> tuple[int, str, str]:
    if e.up:
        return (WARNING, "broker", f"broker {e.broker} connected: {e.reason}")
    return (ERROR, "broker", f"BROKER {e.broker} DISCONNECTED: {e.reason}; no new orders until it is back")


def _hold(e: ev.HoldChanged) -> tuple[int, str, str]:
    if e.hold is None:
        return (WARNING, "risk", "new orders may go again")
    return (WARNING, "risk", f"no new orders: {e.hold}")


def _break(e: ev.BreakFound) -> tuple[int, str, str]:
    return (ERROR, "reconcile", f"RECONCILIATION BREAK {e.symbol}: {e.summary}; {e.symbol} is blocked until "
                                f"resolved (key b)")


def _resolved(e: ev.BreakResolved) -> tuple[int, str, str]:
    return (WARNING, "reconcile", f"break on {e.symbol} resolved by {e.actor} ({e.action})")


def _reconcile(e: ev.ReconcilePassed) -> tuple[int, str, str] | None:
    if not e.differences and not e.missed_fills:
        return None
    return (WARNING, "reconcile", f"reconcile ({e.reason}): {e.differences} difference(s), "
                                  f"{e.missed_fills} missed fill(s) applied")


def _deadman(e: ev.DeadmanChanged) -> tuple[int, str, str] | None:
    phase = e.kind.removeprefix("deadman.")
    if phase == "warning":
        return (WARNING, "dead-man", f"confirm presence within {e.detail.get('seconds_left')} s (key d, or "
                                     "`cockpit confirm`)")
    if phase == "missed":
        return (CRITICAL, "dead-man", f"DEAD-MAN MISSED: nobody confirmed presence; running {e.detail.get('action')}")
    if phase == "confirmed":
        return (INFO, "dead-man", f"presence confirmed by {e.actor}")
    return None


def _command(e: ev.CommandHandled) -> tuple[int, str, str]:
    if e.refused is not None:
        return (WARNING, "operator", f"{e.command} by {e.actor} refused: {e.refused}")
    return (WARNING, "operator", f"{e.actor}: {e.message}")


def _liquidation(e: ev.LiquidationFinished) -> tuple[int, str, str]:
    symbols = e.summary.get("symbols", {})
    outcome = ", ".join(f"{s} {p['outcome']}" for s, p in symbols.items()) if isinstance(symbols, dict) else ""
    return (WARNING, "flatten", f"{e.job_id} finished: {outcome or 'nothing to close'}")


def _feed(e: ev.FeedHealthChanged) -> tuple[int, str, str]:
    if e.healthy:
        return (WARNING, "feed", f"feed {e.feed} back: {e.reason}")
    return (ERROR, "feed", f"FEED {e.feed} {feed_trouble(e.reason)}: {e.reason}")


def feed_trouble(reason: str) -> str:
    """STALE when nothing arrives (or the connection is down), UNHEALTHY when what arrives is bad."""
    return "STALE" if reason.startswith(("no data", "its connection")) else "UNHEALTHY"


def _pacing(e: ev.BrokerPacingViolation) -> tuple[int, str, str]:
    return (ERROR, "broker", f"{e.broker} pacing violation: {e.message}")


def _switched(e: ev.FeedSwitched) -> tuple[int, str, str]:
    if e.failback:
        return (WARNING, "feed", f"feed back on {e.to_feed} (from {e.from_feed}): {e.reason}")
    return (ERROR, "feed", f"FEED FAILOVER {e.from_feed} -> {e.to_feed}: {e.reason}")


def _feed_hold(e: ev.FeedHoldChanged) -> tuple[int, str, str]:
    if e.hold is None:
        return (WARNING, "risk", f"strategy orders may go again: the active feed {e.feed} is live")
    return (ERROR, "risk", f"strategy orders {e.hold} (operator orders and flattens still go)")


def _quality(e: ev.DataQualityIssue) -> tuple[int, str, str]:
    if not e.opened:
        return (WARNING, "data", f"{e.feed} {e.symbol}: {e.reason} over ({e.count} item(s) in the episode)")
    what = "quarantined" if e.quarantined else "flagged (kept)"
    return (WARNING, "data", f"{e.feed} {e.symbol}: {e.reason} {what}: {e.detail}")


def _error(e: ev.EngineError) -> tuple[int, str, str]:
    return (ERROR, "engine", f"{e.where}: {e.message}")


def _quarantined(e: ev.StrategyQuarantined) -> tuple[int, str, str]:
    if e.symbol is None:
        return (ERROR, "strategy", f"strategy {e.strategy} raised and was disabled: {e.error}")
    return (ERROR, "strategy", f"strategy {e.strategy} raised on {e.symbol}: quarantined for {e.symbol} until a "
                               f"restart (its working {e.symbol} orders cancelled; it still trades its other "
                               f"symbols): {e.error}")


def _allocation(e: ev.AllocationChanged) -> tuple[int, str, str]:
    amount = f" = {text.money(e.amount)}" if e.amount is not None and e.after and e.after.endswith("%") else ""
    line = (f"allocation of {e.strategy}: {e.before or 'none'} -> {e.after or 'none'}{amount} by {e.actor}"
            + (f" ({e.reason})" if e.reason else ""))
    return (WARNING if e.actor == "engine" else INFO, "allocation", line)


_DESCRIBERS: dict[type, Callable[[Any], tuple[int, str, str] | None]] = {
    ev.FillApplied: _fill, ev.OrderChanged: _order, ev.IntentRejected: _rejected,
    ev.TradingStateChanged: _state, ev.BrokerConnectionChanged: _broker, ev.HoldChanged: _hold,
    ev.BreakFound: _break, ev.BreakResolved: _resolved, ev.ReconcilePassed: _reconcile,
    ev.DeadmanChanged: _deadman, ev.CommandHandled: _command, ev.LiquidationFinished: _liquidation,
    ev.EngineError: _error, ev.StrategyQuarantined: _quarantined, ev.FeedHealthChanged: _feed,
    ev.FeedSwitched: _switched, ev.DataQualityIssue: _quality, ev.BrokerPacingViolation: _pacing,
    ev.AllocationChanged: _allocation, ev.FeedHoldChanged: _feed_hold,
}

EVENT_TYPES: tuple[type, ...] = tuple(_DESCRIBERS)
