"""What the command handler and the read model need of the engine, as a Protocol: the
control layer names the services it uses and never imports the kernel that provides them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from core.common.bus import Bus
from core.common.clock import Clock
from core.config import Settings
from core.control.backups import BackupService
from core.control.deadman import DeadMan
from core.data.feeds.base import Feed
from core.data.feeds.replay import Cursor
from core.execution.broker import Broker
from core.execution.oms import OrderManager
from core.execution.reconcile import Reconciler
from core.persistence.store import Store
from core.portfolio.book import Portfolio
from core.portfolio.equity import EquityTracker
from core.risk.gate import RiskGate
from core.strategy import Strategy

if TYPE_CHECKING:
    from core.control.handler import CommandHandler


class EngineServices(Protocol):
    settings: Settings
    store: Store
    bus: Bus
    clock: Clock
    wall_clock: Clock
    broker: Broker
    feed: Feed
    strategies: list[Strategy]
    oms: OrderManager | None
    portfolio: Portfolio
    gate: RiskGate
    deadman: DeadMan
    backups: BackupService
    reconciler: Reconciler
    equity: EquityTracker
    market_tz: ZoneInfo
    quote_ts: dict[str, datetime]
    realized_at_day_open: dict[str, Decimal]
    cursor: Cursor | None
    events_processed: int
    last_batch_at: float | None
    feed_healthy: bool
    stop_reason: tuple[str, bool] | None
    parked: str | None

    @property
    def controls(self) -> CommandHandler: ...

    def set_reduce_only(self, symbols: set[str]) -> None: ...

    def persist_setting(self, key: str, value: str) -> None: ...

    async def commit(self) -> None: ...

    async def park(self, reason: str) -> None: ...
