"""The paper broker: a simulated venue whose account persists across restarts.

It fills against the market data on the engine's bus (the replayed prices), with the
fill model's slippage, commission and partial fills, and a latency before an order is
live. Its own account (cash, positions, orders, executions) lives in its own tables of
the state store and is written in the same transactions as the engine's book, so a
month of paper trading survives reboots. It is a venue, not the engine's book: the
engine learns of fills only through reports, as it would from IBKR.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from brokers.order_checks import order_shape_problem
from brokers.paper.fill_model import FillModel
from core.common.bus import Bus
from core.common.clock import Clock
from core.config import PaperConfig
from core.domain.model import (
    ZERO,
    AccountSnapshot,
    Bar,
    BrokerPosition,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
    TimeInForce,
)
from core.domain.serialize import dec, dt, opt_dec
from core.execution.broker import Broker
from core.persistence.store import Store
from core.portfolio.book import Position

log = logging.getLogger("cockpit.paper")

PAPER_MIGRATIONS: list[str] = [
    """
    CREATE TABLE paper_account (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE paper_positions (symbol TEXT PRIMARY KEY, qty TEXT NOT NULL, avg_cost TEXT NOT NULL);
    CREATE TABLE paper_orders (
        order_id TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        order_type TEXT NOT NULL,
        limit_price TEXT,
        tif TEXT NOT NULL,
        status TEXT NOT NULL,
        filled_qty TEXT NOT NULL,
        traded_value TEXT NOT NULL,
        commission TEXT NOT NULL,
        active_at TEXT NOT NULL,
        session TEXT,
        created_at TEXT NOT NULL,
        reason TEXT
    );
    CREATE TABLE paper_executions (
        exec_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        commission TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE INDEX paper_orders_client_id ON paper_orders(client_order_id);
    CREATE INDEX paper_orders_status ON paper_orders(status);
    """,
]

_PUT_ACCOUNT = (
    "INSERT INTO paper_account (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
)
_PUT_POSITION = (
    "INSERT INTO paper_positions (symbol, qty, avg_cost) VALUES (?,?,?)"
    " ON CONFLICT(symbol) DO UPDATE SET qty=excluded.qty, avg_cost=excluded.avg_cost"
)
_PUT_ORDER = (
    "INSERT INTO paper_orders (order_id, client_order_id, symbol, side, qty, order_type, limit_price, tif,"
    " status, filled_qty, traded_value, commission, active_at, session, created_at, reason)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(order_id) DO UPDATE SET status=excluded.status,"
    " filled_qty=excluded.filled_qty, traded_value=excluded.traded_value, commission=excluded.commission,"
    " session=excluded.session, reason=excluded.reason"
)
_INSERT_EXEC = (
    "INSERT INTO paper_executions (exec_id, order_id, client_order_id, symbol, side, qty, price,"
    " commission, ts) VALUES (?,?,?,?,?,?,?,?,?)"
)

# Venue-side order states (the engine has its own richer machine).
PENDING, WORKING, FILLED, CANCELLED, REJECTED = "PENDING", "WORKING", "FILLED", "CANCELLED", "REJECTED"
_OPEN = (PENDING, WORKING)
# Bars at least this long stand for a whole session (a half day is 3.5 h; intraday bars are minutes).
_SESSION_BAR = timedelta(hours=3)


@dataclass(slots=True)
class PaperOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    tif: TimeInForce
    status: str
    active_at: datetime
    created_at: datetime
    filled_qty: Decimal = ZERO
    traded_value: Decimal = ZERO
    commission: Decimal = ZERO
    session: date | None = None
    reason: str | None = None


class PaperBroker(Broker):
    kind = "paper"
    records_in_engine_store = True

    def __init__(self, *, store: Store, clock: Clock, bus: Bus, config: PaperConfig,
                 market_tz: str = "America/New_York",
                 new_id: Callable[[], str] = lambda: secrets.token_hex(3)) -> None:
        super().__init__()
        self._new_id = new_id
        self.store = store
        self.clock = clock
        self.bus = bus
        self.config = config
        self.model = FillModel.from_config(config)
        self.latency = timedelta(milliseconds=config.latency_ms)
        self.tz = ZoneInfo(market_tz)
        self.account_id = ""
        self.cash = config.starting_cash
        self._positions: dict[str, Position] = {}
        self._orders: dict[str, PaperOrder] = {}  # open orders by client order id
        self._by_symbol: dict[str, list[PaperOrder]] = {}
        self._last: dict[str, Decimal] = {}
        self._order_seq = 1
        self._exec_seq = 1
        self._connected = False
        self._loaded = False

    # ---- lifecycle -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        if not self._loaded:
            await self.store.migrate("paper", PAPER_MIGRATIONS)
            await self._load()
            # Quotes only while an order of their symbol is open here (wants_quotes): a replay
            # leaves the others out.
            self.bus.subscribe(Quote, self.on_quote, every=False)
            self.bus.subscribe(Bar, self.on_bar)
            self._loaded = True
        self._connected = True
        log.info("paper account %s connected: cash %s, %d open orders, %d positions", self.account_id,
                 self.cash, len(self._orders), sum(1 for p in self._positions.values() if p.qty))

    async def disconnect(self) -> None:
        self._connected = False

    async def _load(self) -> None:
        acct = {r["key"]: r["value"] for r in await self.store.fetchall("SELECT key, value FROM paper_account")}
        if "account_id" not in acct:
            self.account_id = "DU" + self._new_id().upper()
            self.cash = self.config.starting_cash
            self._put_account("account_id", self.account_id)
            self._put_account("cash", dec(self.cash))
            self._put_account("starting_cash", dec(self.cash))
            await self.store.flush()
            log.info("opened new paper account %s with %s", self.account_id, self.cash)
        else:
            self.account_id = acct["account_id"]
            self.cash = Decimal(acct["cash"])
            self._order_seq = int(acct.get("order_seq", "1"))
            self._exec_seq = int(acct.get("exec_seq", "1"))
        for r in await self.store.fetchall("SELECT * FROM paper_positions"):
            self._positions[r["symbol"]] = Position(r["symbol"], Decimal(r["qty"]), Decimal(r["avg_cost"]))
        for r in await self.store.fetchall(
            "SELECT * FROM paper_orders WHERE status IN (?, ?) ORDER BY created_at", _OPEN
        ):
            po = PaperOrder(
                order_id=r["order_id"], client_order_id=r["client_order_id"], symbol=r["symbol"],
                side=Side(r["side"]), qty=Decimal(r["qty"]), order_type=OrderType(r["order_type"]),
                limit_price=Decimal(r["limit_price"]) if r["limit_price"] else None, tif=TimeInForce(r["tif"]),
                status=r["status"], active_at=datetime.fromisoformat(r["active_at"]),
                created_at=datetime.fromisoformat(r["created_at"]), filled_qty=Decimal(r["filled_qty"]),
                traded_value=Decimal(r["traded_value"]), commission=Decimal(r["commission"]),
                session=date.fromisoformat(r["session"]) if r["session"] else None, reason=r["reason"],
            )
            self._track(po)
            if po.status == PENDING:
                self.clock.call_at(po.active_at, lambda po=po: self._activate(po))

    # ---- orders --------------------------------------------------------------------

    def place(self, order: Order) -> None:
        now = self.clock.now()
        po = PaperOrder(
            order_id=f"{self.account_id}-{self._order_seq}", client_order_id=order.client_order_id,
            symbol=order.symbol, side=order.side, qty=order.qty, order_type=order.order_type,
            limit_price=order.limit_price, tif=order.tif, status=PENDING, active_at=now + self.latency,
            created_at=now,
        )
        self._order_seq += 1
        self._put_account("order_seq", str(self._order_seq))
        reason = self._validate(order)
        if reason is not None:
            po.status, po.reason = REJECTED, reason
            self._persist(po)
            self._report(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, now, po.order_id, reason))
            return
        self._track(po)
        self._persist(po)
        self.clock.call_at(po.active_at, lambda: self._activate(po))

    def _validate(self, order: Order) -> str | None:
        if not self._connected:
            return "paper broker not connected"
        return order_shape_problem(order, self._orders)

    def _activate(self, po: PaperOrder) -> None:
        if po.status != PENDING:
            return
        po.status = WORKING
        self._persist(po)
        self._report(OrderUpdate(po.client_order_id, OrderStatus.ACCEPTED, self.clock.now(), po.order_id))

    def cancel(self, client_order_id: str) -> None:
        po = self._orders.get(client_order_id)
        if po is None:
            log.info("cancel %s: not open at the paper venue", client_order_id)
            return
        self._close(po, CANCELLED, "cancelled by request")

    def cancel_all(self) -> None:
        for po in list(self._orders.values()):
            self._close(po, CANCELLED, "cancel all")

    def _close(self, po: PaperOrder, status: str, reason: str) -> None:
        po.status, po.reason = status, reason
        self._untrack(po)
        self._persist(po)
        engine_status = OrderStatus.CANCELLED if status == CANCELLED else OrderStatus.REJECTED
        self._report(OrderUpdate(po.client_order_id, engine_status, self.clock.now(), po.order_id, reason))

    # ---- market --------------------------------------------------------------------

    def on_quote(self, quote: Quote) -> None:
        self._last[quote.symbol] = quote.last
        orders = self._by_symbol.get(quote.symbol)
        if not orders:
            return
        session = quote.ts.astimezone(self.tz).date()
        for po in list(orders):
            if po.status != WORKING or po.active_at > quote.ts:
                continue
            if po.tif is TimeInForce.DAY:
                if po.session is None:
                    po.session = session
                    self._persist(po)  # a restart must know which day this order belongs to
                elif session > po.session:
                    self._close(po, CANCELLED, f"DAY order expired at the close of {po.session}")
                    continue
            self._try_fill(po, quote)

    def wants_quotes(self, symbol: str) -> bool:
        """Only an open order of ``symbol`` (pending or working) needs its quotes: without one a
        quote changes nothing here but the last price, which the bar's close also sets."""
        return bool(self._by_symbol.get(symbol))

    def on_bar(self, bar: Bar) -> None:
        """A bar spanning a session (daily bars, half days included) ends it: its DAY orders expire.

        Its close is the venue's last price too (a replay may have left the quotes before it out)."""
        self._last[bar.symbol] = bar.close
        if bar.ts - bar.start < _SESSION_BAR:
            return
        orders = self._by_symbol.get(bar.symbol)
        if not orders:
            return
        session = bar.ts.astimezone(self.tz).date()
        for po in list(orders):
            if po.tif is TimeInForce.DAY and po.session is not None and po.session <= session \
                    and po.status == WORKING:
                self._close(po, CANCELLED, f"DAY order expired at the close of {po.session}")

    def _try_fill(self, po: PaperOrder, quote: Quote) -> None:
        price = self.model.price(po.side, po.order_type, po.limit_price, quote)
        if price is None:
            return
        qty = self.model.quantity(po.qty - po.filled_qty, quote)
        if qty <= 0:
            return
        po.filled_qty += qty
        po.traded_value += qty * price
        owed = self.model.commission_total(po.filled_qty, po.traded_value)
        commission = owed - po.commission
        po.commission = owed
        signed = qty * po.side.sign
        pos = self._positions.get(po.symbol)
        if pos is None:
            pos = self._positions[po.symbol] = Position(po.symbol)
        pos.apply(signed, price, commission)
        self.cash -= signed * price + commission
        exec_id = f"{self.account_id}.{self._exec_seq}"
        self._exec_seq += 1
        ts = quote.ts
        # The rows are made at the store's next flush (core/persistence/store.py), off the fill's path:
        # the execution's from values that do not change, the position's and the cash's as they are
        # then (each changes only here, and is put again when it does).
        self.store.append(_INSERT_EXEC, lambda: (exec_id, po.order_id, po.client_order_id, po.symbol, po.side.value,
                                                 dec(qty), dec(price), dec(commission), dt(ts)))
        self.store.put(("paper_position", po.symbol), _PUT_POSITION, lambda: _position_row(pos))
        self.store.put(("paper_account", "cash"), _PUT_ACCOUNT, self._cash_row)
        self._put_account("exec_seq", str(self._exec_seq))
        if po.filled_qty >= po.qty:
            po.status = FILLED
            self._untrack(po)
        self._persist(po)
        self._report(Execution(exec_id, po.client_order_id, po.symbol, po.side, qty, price, commission, ts,
                               po.order_id))

    def adopt_unknown(self, order: Order) -> bool:
        """Every order the paper venue holds is reported by client order id already."""
        return order.client_order_id in self._orders

    # ---- queries -------------------------------------------------------------------

    async def positions(self) -> list[BrokerPosition]:
        return [BrokerPosition(p.symbol, p.qty, p.avg_cost) for p in self._positions.values() if p.qty]

    async def open_orders(self) -> list[Order]:
        return [
            Order(client_order_id=po.client_order_id, strategy="", symbol=po.symbol, side=po.side, qty=po.qty,
                  order_type=po.order_type, tif=po.tif, limit_price=po.limit_price, created_at=po.created_at,
                  status=OrderStatus.ACCEPTED if po.status == WORKING else OrderStatus.SUBMITTED,
                  filled_qty=po.filled_qty, broker_order_id=po.order_id)
            for po in self._orders.values()
        ]

    async def executions_since(self, since: datetime | None) -> list[Execution]:
        await self.store.flush()
        sql = "SELECT * FROM paper_executions"
        params: tuple[str, ...] = ()
        if since is not None:
            sql += " WHERE ts > ?"
            params = (dt(since),)
        rows = await self.store.fetchall(sql + " ORDER BY rowid", params)
        return [
            Execution(r["exec_id"], r["client_order_id"], r["symbol"], Side(r["side"]), Decimal(r["qty"]),
                      Decimal(r["price"]), Decimal(r["commission"]), datetime.fromisoformat(r["ts"]),
                      r["order_id"])
            for r in rows
        ]

    async def account(self) -> AccountSnapshot:
        equity = self.cash
        for p in self._positions.values():
            equity += p.qty * self._last.get(p.symbol, p.avg_cost)
        return AccountSnapshot(cash=self.cash, equity=equity, extra={"account_id": self.account_id})

    # ---- helpers -------------------------------------------------------------------

    def _track(self, po: PaperOrder) -> None:
        self._orders[po.client_order_id] = po
        self._by_symbol.setdefault(po.symbol, []).append(po)

    def _untrack(self, po: PaperOrder) -> None:
        self._orders.pop(po.client_order_id, None)
        lst = self._by_symbol.get(po.symbol)
        if lst and po in lst:
            lst.remove(po)

    def _cash_row(self) -> tuple[str, str]:
        return ("cash", dec(self.cash))

    def _put_account(self, key: str, value: str) -> None:
        self.store.put(("paper_account", key), _PUT_ACCOUNT, (key, value))

    def _persist(self, po: PaperOrder) -> None:
        # The row is made at the store's next flush, from the order as it is then (core/persistence/store.py).
        self.store.put(("paper_order", po.order_id), _PUT_ORDER, lambda: _order_row(po))


def _position_row(pos: Position) -> tuple[str, str, str]:
    return (pos.symbol, dec(pos.qty), dec(pos.avg_cost))


def _order_row(po: PaperOrder) -> tuple[str | None, ...]:
    """The ``paper_orders`` row of ``po`` (_PUT_ORDER's parameters)."""
    return (po.order_id, po.client_order_id, po.symbol, po.side.value, dec(po.qty), po.order_type.value,
            opt_dec(po.limit_price), po.tif.value, po.status, dec(po.filled_qty), dec(po.traded_value),
            dec(po.commission), dt(po.active_at), po.session.isoformat() if po.session else None,
            dt(po.created_at), po.reason)
