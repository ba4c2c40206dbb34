"""The shape of GET /status (and `cockpit status --json`), for the OpenAPI schema and so a
change to it is a deliberate one. Money and quantities are decimal strings, as everywhere."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class BrokerOut(BaseModel):
    kind: str
    connected: bool
    status: str


class FeedOut(BaseModel):
    """One feed source: the active one (the engine's events come from it) or a standby fallback."""

    name: str
    kind: str
    active: bool
    healthy: bool
    reason: str  # why it is unhealthy (or what made it healthy)
    quarantined: int  # items its quality gate refused
    by_reason: dict[str, int]  # per check: crossed, spike, stale ... (a gap is flagged, not refused)
    passed: int  # items that passed its gate (active or not)
    last_good_at: str | None  # wall time of the last item that passed
    events: int | None  # events the engine processed (the active feed only)
    last_event_at: str | None
    age_seconds: float | None
    delayed: bool  # its prices are not live (IB delayed or frozen data): strategies are held while it is active
    not_live: str | None  # why (None: live)


class StrategyOut(BaseModel):
    name: str
    enabled: bool
    quarantined: list[str]


class DeadmanOut(BaseModel):
    enabled: bool
    phase: str
    armed: bool
    seconds_left: float | None
    action: str
    interval_seconds: float


class AccountOut(BaseModel):
    equity: str
    cash: str
    day_pnl: str
    realized: str
    unrealized: str


class PositionOut(BaseModel):
    symbol: str
    qty: str
    avg_cost: str
    last: str | None


class StrategyAllocationOut(BaseModel):
    enabled: bool
    allocation: str | None  # money; None: no allocation (not limited by one)
    given: str | None  # as written: "50000" or "25%"
    used: str | None  # gross exposure now (worst case with working orders x mark)
    remaining: str | None
    used_pct: float | None


class AllocationOut(BaseModel):
    """Capital per strategy (``[allocation]``, `cockpit allocation`)."""

    equity_at_start: str | None  # what a percentage is a share of
    equity_source: str | None
    strategies: dict[str, StrategyAllocationOut]
    uncovered: list[str]  # enabled strategies without an allocation


class PreflightOut(BaseModel):
    """A LIVE account's start against the go-live check: pass, refused or override."""

    outcome: str
    failing: list[str]  # the checks that fail (`cockpit preflight` says each fix)
    actor: str
    reason: str | None


class StatusOut(BaseModel):
    run_state: str  # "running", or "refused": a LIVE start refused by the go-live check, parked until SIGTERM
    preflight: PreflightOut | None  # None: not a LIVE account
    trading_state: str
    trading_reason: str | None
    mode: str
    broker: BrokerOut
    hold: Any
    feed_hold: str | None  # strategy orders held: the active feed is not live (operator orders still go)
    breaks: list[dict[str, Any]]
    last_reconcile: dict[str, Any] | None
    feeds: list[FeedOut]
    strategies: list[StrategyOut]
    symbols: list[str]
    reduce_only_symbols: list[str]
    deadman: DeadmanOut
    risk: dict[str, str]
    allocation: AllocationOut
    account: AccountOut
    positions: list[PositionOut]
    open_orders: int
    liquidation: dict[str, Any] | None
    engine_time: str
