"""Orders, fills and the account arithmetic, with no I/O: the simulator's exchange and back office.

The server turns wire messages into calls here and turns the results back into wire
messages; keeping the arithmetic apart makes it checkable without sockets. Fills follow
IB's conventions: a buy fills at the ask and a sell at the bid; average cost includes
commission (so a long's cost is price + commission/share, a short's price - commission/share);
commission is IB's fixed US-stock rate, $0.005 a share, at least $1, at most 1% of value.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from brokers.ibsim.contracts import ContractInfo, contract_info, derive_con_id
from brokers.ibsim.prices import PriceBook, Quote
from brokers.ibsim.state import ZERO, SimExecution, SimOrder, SimPosition, SimState

__all__ = ["Book", "Fill", "commission_for"]

CENT = Decimal("0.01")
_PER_SHARE = Decimal("0.005")
_MIN_COMMISSION = Decimal("1.00")
_MAX_COMMISSION_RATE = Decimal("0.01")
_MARGIN_RATE = Decimal("0.25")
_LEVERAGE = Decimal(4)


def commission_for(qty: Decimal, price: Decimal) -> Decimal:
    """IB fixed pricing for US stocks."""
    c = max(_MIN_COMMISSION, qty * _PER_SHARE)
    c = min(c, qty * price * _MAX_COMMISSION_RATE) if qty * price > 0 else c
    return c.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one order, after the account was updated."""

    order: SimOrder
    execution: SimExecution


class Book:
    """Order matching and accounting over a :class:`SimState`."""

    def __init__(self, state: SimState, prices: PriceBook, clock: Callable[[], float] = _time.time) -> None:
        self.state = state
        self.prices = prices
        self.clock = clock
        self.liquidity: Decimal | None = None  # most shares one order fills per match
        self.partial_next: Decimal | None = None  # cap on the next accepted order's first fill

    # ------------------------------------------------------------------ contracts

    def contract(self, symbol: str) -> ContractInfo:
        """The contract of ``symbol``, allocating (and recording) its conId on first sight."""
        con_id = self.state.con_ids.get(symbol)
        if con_id is None:
            taken = set(self.state.con_ids.values())
            salt = 0
            con_id = derive_con_id(symbol)
            while con_id in taken:
                salt += 1
                con_id = derive_con_id(symbol, salt)
            self.state.con_ids[symbol] = con_id
        return contract_info(symbol, con_id)

    def symbol_for_con_id(self, con_id: int) -> str | None:
        for sym, cid in self.state.con_ids.items():
            if cid == con_id:
                return sym
        return None

    # ------------------------------------------------------------------ orders

    def next_perm_id(self) -> int:
        perm = self.state.next_perm_id
        self.state.next_perm_id += 1
        return perm

    def note_order_id(self, order_id: int) -> None:
        """Keep nextValidId above every id a client has used."""
        if order_id >= self.state.next_valid_id:
            self.state.next_valid_id = order_id + 1

    def add_order(self, order: SimOrder, live: bool = True) -> None:
        """Record a new order; a ``live`` one takes the pending partial-fill cap."""
        order.placed_at = self.clock()
        if live and self.partial_next is not None:
            order.fill_cap = self.partial_next
            self.partial_next = None
        self.state.orders[order.perm_id] = order
        self.note_order_id(order.order_id)

    def finish(self, order: SimOrder, status: str, why: str = "") -> None:
        """Move an order to a terminal status."""
        order.status = status
        order.completed_at = self.clock()
        order.completed_status = why or status
        order.fill_cap = None

    def working_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return sorted(
            (o for o in self.state.orders.values() if o.working and (symbol is None or o.symbol == symbol)),
            key=lambda o: o.perm_id,
        )

    def marketable_price(self, order: SimOrder, quote: Quote) -> Decimal | None:
        """The price ``order`` would fill at against ``quote``, or None if it would rest."""
        px = quote.ask if order.action == "BUY" else quote.bid
        if order.order_type == "MKT":
            return px
        assert order.lmt_price is not None
        if order.action == "BUY":
            return px if order.lmt_price >= px else None
        return px if order.lmt_price <= px else None

    def match(self, order: SimOrder) -> Fill | None:
        """Fill as much of ``order`` as the current quote and the liquidity caps allow."""
        if not order.working or order.remaining <= 0:
            return None
        price = self.marketable_price(order, self.prices.quote(order.symbol))
        if price is None:
            return None
        qty = order.remaining
        if order.fill_cap is not None:
            qty = min(qty, order.fill_cap)
            order.fill_cap = None
        if self.liquidity is not None:
            qty = min(qty, self.liquidity)
        if qty <= 0:
            return None
        return self.fill(order, qty, price)

    def fill(self, order: SimOrder, qty: Decimal, price: Decimal) -> Fill:
        """Execute ``qty`` of ``order`` at ``price`` and book it."""
        qty = min(qty, order.remaining)
        commission = commission_for(qty, price)
        realized = self._book_position(order, qty, price, commission)
        self.state.cash -= order.sign * qty * price + commission
        if realized is not None:
            self.state.realized_pnl += realized

        cost_before = order.avg_fill_price * order.filled
        order.filled += qty
        order.avg_fill_price = (cost_before + qty * price) / order.filled
        order.last_fill_price = price
        if order.remaining <= 0:
            self.finish(order, "Filled")
        else:
            order.status = "Submitted"

        seq = self.state.next_exec_seq
        self.state.next_exec_seq += 1
        execution = SimExecution(
            exec_id=f"0000{seq:04x}.{order.perm_id & 0xFFFFFFFF:08x}.01.01",
            order_id=order.order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            symbol=order.symbol,
            con_id=order.con_id,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            time=self.clock(),
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            order_ref=order.order_ref,
            account=order.account,
            exchange=self.contract(order.symbol).primary_exchange,
            commission=commission,
            realized_pnl=realized,
        )
        self.state.executions.append(execution)
        return Fill(order, execution)

    def _book_position(self, order: SimOrder, qty: Decimal, price: Decimal, commission: Decimal) -> Decimal | None:
        """Update the position; return the realized P&L if the fill closed anything."""
        pos = self.state.positions.get(order.symbol)
        if pos is None:
            pos = self.state.positions[order.symbol] = SimPosition(order.symbol, order.con_id)
        s = order.sign
        if pos.qty == 0 or (pos.qty > 0) == (s > 0):
            held = abs(pos.qty)
            pos.avg_cost = (held * pos.avg_cost + qty * price + s * commission) / (held + qty)
            pos.qty += s * qty
            return None
        closing = min(qty, abs(pos.qty))
        opening = qty - closing
        close_commission = commission * closing / qty
        direction = 1 if pos.qty > 0 else -1
        realized = ((price - pos.avg_cost) * closing * direction - close_commission).quantize(CENT)
        pos.realized_pnl += realized
        pos.qty += s * qty
        if opening > 0:
            pos.avg_cost = price + s * (commission - close_commission) / opening
        elif pos.qty == 0:
            pos.avg_cost = ZERO
        return realized

    # ------------------------------------------------------------------ account

    def mark(self, symbol: str) -> Decimal:
        return self.prices.quote(symbol).last

    def portfolio(self) -> list[tuple[SimPosition, Decimal, Decimal, Decimal]]:
        """(position, mark price, market value, unrealized P&L) for every symbol ever held."""
        rows = []
        for sym in sorted(self.state.positions):
            pos = self.state.positions[sym]
            mark = self.mark(sym)
            value = pos.qty * mark
            unrealized = (mark - pos.avg_cost) * pos.qty if pos.qty else ZERO
            rows.append((pos, mark, value, unrealized.quantize(CENT)))
        return rows

    def account_values(self) -> list[tuple[str, str, str]]:
        """(key, value, currency) rows as reqAccountUpdates reports them."""
        rows = self.portfolio()
        stock = sum((r[2] for r in rows), ZERO)
        gross = sum((abs(r[2]) for r in rows), ZERO)
        unrealized = sum((r[3] for r in rows), ZERO)
        cash = self.state.cash
        netliq = cash + stock
        margin = gross * _MARGIN_RATE
        available = netliq - margin
        money = {
            "NetLiquidation": netliq,
            "TotalCashValue": cash,
            "CashBalance": cash,
            "SettledCash": cash,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "BuyingPower": available * _LEVERAGE,
            "EquityWithLoanValue": netliq,
            "GrossPositionValue": gross,
            "StockMarketValue": stock,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.state.realized_pnl,
            "InitMarginReq": margin,
            "MaintMarginReq": margin,
        }
        out = [
            ("AccountCode", self.state.account, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("Currency", "USD", "USD"),
        ]
        out += [(k, format(v.quantize(CENT), "f"), "USD") for k, v in money.items()]
        out += [
            ("CashBalance", format(cash.quantize(CENT), "f"), "BASE"),
            ("NetLiquidationByCurrency", format(netliq.quantize(CENT), "f"), "BASE"),
        ]
        return out
