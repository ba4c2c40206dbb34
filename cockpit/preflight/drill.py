"""`cockpit preflight --drill`: every check of the risk gate refuses an order, on the record.

Each check runs alone against the gate the engine uses (``core.risk.gate.RiskGate``) with
the configured value of its limit and every other limit opened wide, on a small paper book
built for that check (a position at the limit, a stale quote, a day's loss past the limit
...). An order that must be refused and is, is a PASS; one that goes through is a FAIL that
says the gate does not hold that limit. Each outcome becomes a ``preflight.drill`` audit row
in the state dir (the lock is taken: not while an engine runs), which the go-live check reads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from core.config import RiskConfig, Settings
from core.domain.model import OrderType, Side
from core.risk.capital import CapitalAllocation, Holding
from core.risk.gate import OrderRequest, RiskGate

PRICE = Decimal("100")
_WIDE: dict[str, object] = {
    "max_order_qty": Decimal("1e9"), "max_order_notional": Decimal("1e12"), "max_position_qty": Decimal("1e9"),
    "max_gross_exposure": Decimal("1e15"), "max_net_exposure": Decimal("1e15"), "price_collar_pct": Decimal("1000"),
    "quote_max_age_seconds": 604800.0, "daily_loss_limit": Decimal("1e12"),
    "max_orders_per_minute_per_strategy": 1_000_000, "max_orders_per_minute_total": 1_000_000,
    "duplicate_window_seconds": 0.001, "allowed_symbols": [],
}


@dataclass
class DrillBook:
    """A paper book for one drill: one symbol at ``PRICE``, a position, a quote of some age."""

    at: datetime
    symbol: str
    pos: Decimal = Decimal(0)
    quote_age: timedelta = timedelta(0)
    pnl: Decimal = Decimal(0)
    working_buy: Decimal = Decimal(0)
    extra: dict[str, Decimal] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.at

    def position(self, symbol: str) -> Decimal:
        return self.pos if symbol == self.symbol else Decimal(0)

    def working(self, symbol: str) -> tuple[Decimal, Decimal]:
        return (self.working_buy, Decimal(0)) if symbol == self.symbol else (Decimal(0), Decimal(0))

    def quote(self, symbol: str) -> tuple[Decimal, datetime] | None:
        return (PRICE, self.at - self.quote_age)

    def mark(self, symbol: str) -> Decimal | None:
        return PRICE

    def symbols(self) -> Iterable[str]:
        return [self.symbol]

    def day_pnl(self) -> Decimal:
        return self.pnl

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        return self.position(symbol)

    def strategy_working_sells(self, strategy: str, symbol: str) -> Decimal:
        return Decimal(0)

    def strategy_holdings(self, strategy: str) -> dict[str, Holding]:
        return {}  # the drill's strategy holds nothing: its one order is all its exposure


@dataclass(frozen=True, slots=True)
class DrillResult:
    check: str
    refused: bool
    reason: str  # the gate's words (or what went through)


def _gate(risk: RiskConfig, key: str) -> RiskGate:
    limits = RiskConfig(**{**_WIDE, key: getattr(risk, key), "daily_loss_action": risk.daily_loss_action})
    return RiskGate(limits)


def _order(symbol: str, qty: Decimal, limit: Decimal | None = None, strategy: str = "preflight-drill",
           side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(strategy, symbol, side, qty, OrderType.LIMIT if limit is not None else OrderType.MARKET,
                        limit, source="operator")


def _over(amount: Decimal) -> Decimal:
    """Shares at ``PRICE`` whose value is just past ``amount``."""
    return Decimal(math.floor(amount / PRICE) + 1)


def run_drill(settings: Settings, now: datetime) -> list[DrillResult]:
    """Each check's outcome (the drill's gates log their state changes: kept quiet here)."""
    quiet = logging.getLogger("cockpit.risk")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return _drill(settings, now)
    finally:
        quiet.setLevel(level)


def _drill(settings: Settings, now: datetime) -> list[DrillResult]:
    risk = settings.risk
    symbol = risk.allowed_symbols[0] if risk.allowed_symbols else "DRILL"
    out: list[DrillResult] = []

    def one(key: str, book: DrillBook, *orders: OrderRequest) -> None:
        gate = _gate(risk, key)
        reason = None
        for req in orders:
            reason = gate.check(req, book)
        refused = reason is not None and (key in reason)
        out.append(DrillResult(key, refused, reason or f"{orders[-1].side} {orders[-1].qty} went through"))

    fresh = DrillBook(now, symbol)
    one("max_order_qty", fresh, _order(symbol, risk.max_order_qty + 1))
    one("max_order_notional", fresh, _order(symbol, _over(risk.max_order_notional)))
    one("max_position_qty", DrillBook(now, symbol, pos=risk.max_position_qty), _order(symbol, Decimal(1)))
    one("max_gross_exposure", fresh, _order(symbol, _over(risk.max_gross_exposure)))
    one("max_net_exposure", fresh, _order(symbol, _over(risk.max_net_exposure)))
    off = PRICE * (1 + risk.price_collar_pct / 50)  # twice the collar away from the quote
    one("price_collar_pct", fresh, _order(symbol, Decimal(1), limit=off.quantize(Decimal("0.01"))))
    stale = timedelta(seconds=risk.quote_max_age_seconds + 1)
    one("quote_max_age_seconds", DrillBook(now, symbol, quote_age=stale), _order(symbol, Decimal(1)))
    one("daily_loss_limit", DrillBook(now, symbol, pnl=-(risk.daily_loss_limit + 1)), _order(symbol, Decimal(1)))
    n = risk.max_orders_per_minute_per_strategy
    one("max_orders_per_minute_per_strategy", fresh,
        *(_order(symbol, Decimal(i + 1)) for i in range(n + 1)))
    n = risk.max_orders_per_minute_total
    one("max_orders_per_minute_total", fresh,
        *(_order(symbol, Decimal(i + 1), strategy=f"drill-{i}") for i in range(n + 1)))
    one("duplicate_window_seconds", fresh, _order(symbol, Decimal(1)), _order(symbol, Decimal(1)))
    if settings.allocation:
        name, entry = next(iter(settings.allocation.items()))
        capital = CapitalAllocation({name: entry}, settings.strategies)
        capital.equity_at_start = settings.paper.starting_cash  # a percentage is of this paper account here
        amount = entry.amount(capital.equity_at_start) or Decimal(0)
        gate = RiskGate(RiskConfig(**_WIDE), capital=capital)  # type: ignore[arg-type]  # _WIDE values are typed loosely
        reason = gate.check(_order(symbol, _over(amount), strategy=name), fresh)
        out.append(DrillResult("allocation", reason is not None and reason.startswith("allocation:"),
                               reason or f"{name}'s order past its allocation {amount} went through"))
    return out
