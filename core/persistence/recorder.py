"""The store as a subscriber: orders, fills, their owners, positions, cash and refusals are
written from the events on the bus, never by hand from the engine.

Writes are buffered (``Store.put``/``append``) and committed by the next flush; an order is
in the buffer the moment it exists, so the OMS's write-ahead flush before sending commits it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.common.bus import Bus
from core.common.clock import Clock
from core.domain.events import (
    AllocationsStarted,
    EquityRecorded,
    FillApplied,
    IntentRejected,
    OrderChanged,
    SettingChanged,
)
from core.domain.model import Order
from core.domain.serialize import dec, dt, opt_dec
from core.persistence.store import Store
from core.portfolio.book import Portfolio

UPSERT_ORDER = (
    "INSERT INTO orders (client_order_id, strategy, symbol, side, qty, order_type, tif, limit_price,"
    " status, filled_qty, avg_fill_price, broker_order_id, reason, created_at, updated_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(client_order_id) DO UPDATE SET"
    " status=excluded.status, filled_qty=excluded.filled_qty, avg_fill_price=excluded.avg_fill_price,"
    " broker_order_id=excluded.broker_order_id, reason=excluded.reason, updated_at=excluded.updated_at"
)
INSERT_FILL = (
    "INSERT OR IGNORE INTO fills (exec_id, client_order_id, strategy, symbol, side, qty, price,"
    " commission, realized_pnl, ts, kind, actor, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_ALLOCATION = "INSERT OR IGNORE INTO fill_allocations (exec_id, owner, symbol, qty) VALUES (?,?,?,?)"
UPSERT_POSITION = (
    "INSERT INTO positions (symbol, qty, avg_cost, realized_pnl, commissions, last_price, updated_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT(symbol) DO UPDATE SET qty=excluded.qty,"
    " avg_cost=excluded.avg_cost, realized_pnl=excluded.realized_pnl,"
    " commissions=excluded.commissions, last_price=excluded.last_price, updated_at=excluded.updated_at"
)
PUT_ACCOUNT = "INSERT INTO account (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
INSERT_REJECT = "INSERT INTO risk_events (ts, strategy, symbol, side, qty, reason) VALUES (?,?,?,?,?,?)"
PUT_EQUITY = (
    "INSERT INTO equity_points (ts, equity, peak, max_drawdown, day_open) VALUES (?,?,?,?,?)"
    " ON CONFLICT(ts) DO UPDATE SET equity=excluded.equity, peak=excluded.peak,"
    " max_drawdown=excluded.max_drawdown, day_open=excluded.day_open"
)
PUT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
#: meta key: the equity the capital allocations of the last start are measured against
#: (a percentage allocation is that share of it; `cockpit metrics` reads it).
CAPITAL_EQUITY_KEY = "capital.equity_at_start"
PUT_SETTING = (
    "INSERT INTO settings (key, value, updated_at) VALUES (?,?,?)"
    " ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at"
)


def order_row(o: Order) -> tuple[str | None, ...]:
    """The ``orders`` row of ``o`` (UPSERT_ORDER's parameters)."""
    created = dt(o.created_at)
    updated = o.updated_at
    return (o.client_order_id, o.strategy, o.symbol, o.side.value, dec(o.qty), o.order_type.value, o.tif.value,
            opt_dec(o.limit_price), o.status.value, dec(o.filled_qty), opt_dec(o.avg_fill_price), o.broker_order_id,
            o.reason, created, created if updated is None or updated is o.created_at else dt(updated))


def fill_row(event: FillApplied) -> tuple[str | None, ...]:
    """The ``fills`` row of ``event`` (INSERT_FILL's parameters)."""
    ex = event.fill
    return (ex.exec_id, ex.client_order_id, event.strategy, ex.symbol, ex.side.value, dec(ex.qty), dec(ex.price),
            dec(ex.commission), dec(event.realized_pnl), dt(ex.ts), event.kind, event.actor, event.reason)


class _AllocationRow:
    """A ``fill_allocations`` row made at the flush (its values do not change)."""

    __slots__ = ("exec_id", "owner", "symbol", "qty")

    def __init__(self, exec_id: str, owner: str, symbol: str, qty: Decimal) -> None:
        self.exec_id, self.owner, self.symbol, self.qty = exec_id, owner, symbol, qty

    def __call__(self) -> tuple[str, str, str, str]:
        return (self.exec_id, self.owner, self.symbol, dec(self.qty))


class StoreRecorder:
    """Subscribes the store to the book's and the orders' events."""

    def __init__(self, store: Store, bus: Bus, portfolio: Portfolio, clock: Clock, wall_clock: Clock | None = None
                 ) -> None:
        self.store = store
        self.portfolio = portfolio
        self.clock = clock
        self.wall_clock = wall_clock or clock
        bus.subscribe(OrderChanged, self.on_order)
        bus.subscribe(FillApplied, self.on_fill)
        bus.subscribe(IntentRejected, self.on_rejected)
        bus.subscribe(SettingChanged, self.on_setting)
        bus.subscribe(EquityRecorded, self.on_equity)
        bus.subscribe(AllocationsStarted, self.on_allocations)

    def on_order(self, event: OrderChanged) -> None:
        self.persist_order(event.order)

    def persist_order(self, o: Order) -> None:
        # The row is made at the flush, from the order as it is then (its latest state).
        self.store.put(("order", o.client_order_id), UPSERT_ORDER, lambda: order_row(o))

    def on_fill(self, event: FillApplied) -> None:
        # FillApplied and its Execution are frozen: their rows are made at the flush, off the tick.
        self.store.append(INSERT_FILL, lambda: fill_row(event))
        ex = event.fill
        for owner, qty in event.allocation:
            self.store.append(INSERT_ALLOCATION, _AllocationRow(ex.exec_id, owner, ex.symbol, qty))
        self.persist_position(ex.symbol)
        self.store.put(("account", "cash"), PUT_ACCOUNT, self._cash_row)

    def _cash_row(self) -> tuple[str, str]:
        return ("cash", dec(self.portfolio.cash))

    def persist_position(self, symbol: str) -> None:
        """The position's row as of the flush, stamped with the engine time of this change."""
        now = self.clock.now()
        self.store.put(("position", symbol), UPSERT_POSITION, lambda: self._position_row(symbol, now))

    def _position_row(self, symbol: str, updated_at: datetime) -> tuple[str, str, str, str, str, str | None, str]:
        p = self.portfolio.position(symbol)
        return (symbol, dec(p.qty), dec(p.avg_cost), dec(p.realized_pnl), dec(p.commissions), opt_dec(p.last_price),
                dt(updated_at))

    def on_rejected(self, event: IntentRejected) -> None:
        self.store.append(INSERT_REJECT, (dt(event.ts), event.strategy, event.symbol, event.side.value,
                                          dec(event.qty), event.reason))

    def on_setting(self, event: SettingChanged) -> None:
        self.store.put(("setting", event.key), PUT_SETTING, (event.key, event.value, dt(self.wall_clock.now())))

    def on_allocations(self, event: AllocationsStarted) -> None:
        self.store.put(("meta", CAPITAL_EQUITY_KEY), PUT_META, (CAPITAL_EQUITY_KEY, dec(event.equity_at_start)))

    def on_equity(self, event: EquityRecorded) -> None:
        ts = event.ts.astimezone(UTC)  # UTC text sorts in time order
        self.store.put(("equity", ts), PUT_EQUITY,  # a frozen event: its row is made at the flush
                       lambda: (dt(ts), dec(event.equity), dec(event.peak), dec(event.max_drawdown), dec(event.day_open)))
