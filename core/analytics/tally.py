"""What one session accumulates between two closes: counts from the bus, the book's realized
P&L and commissions, the trades closed, and the equity samples the intraday drawdown is
measured on."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from core.analytics.trades import Trade

ZERO = Decimal(0)


class Counts(dict[str, int]):
    """``collections.Counter``'s reading (a missing key counts 0 and is not added) without its
    cost: a tally of counts per owner or severity is made at every session close."""

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0


@dataclass(slots=True)
class DayTally:
    open_equity: Decimal
    orders: Counts = field(default_factory=Counts)  # per owner
    fills: Counts = field(default_factory=Counts)  # trade fills per the fill's owner
    adjustments: int = 0
    refusals: Counts = field(default_factory=Counts)  # per strategy (the gate's)
    rejected: int = 0
    realized: Decimal = ZERO  # as the book booked it
    commissions: Decimal = ZERO
    trades: list[Trade] = field(default_factory=list)
    alerts: Counts = field(default_factory=Counts)  # per severity
    breaks_found: int = 0
    breaks_resolved: int = 0
    disconnects: int = 0
    reconnects: int = 0
    data_incidents: int = 0
    engine_starts: int = 0
    loss_limit_hit: bool = False
    # The intraday drawdown: from the equity at the previous close, over every sample since.
    peak: Decimal = ZERO
    max_drawdown: Decimal = ZERO
    worst_pnl: Decimal = ZERO
    samples: int = 1

    def __post_init__(self) -> None:
        self.peak = self.open_equity

    def sample(self, equity: Decimal) -> None:
        # max(a, b) and min(a, b) spelled out (each keeps ``a`` unless ``b`` is beyond it, as they do):
        # the builtins cost more than the comparison on a sample per fill and per close.
        self.samples += 1
        if equity > self.peak:
            self.peak = equity
        drawdown = self.peak - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
        pnl = equity - self.open_equity
        if pnl < self.worst_pnl:
            self.worst_pnl = pnl
