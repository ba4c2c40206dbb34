"""Translations between the engine's model and ib_async's objects, with no I/O.

Floats from ib_async become Decimals through their shortest repr (``100.01`` stays
``Decimal("100.01")``), so prices compare exactly with what the gateway sent.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal

from ib_async import Contract
from ib_async import Trade as IBTrade

from brokers.ibkr.ib_objects import SentOrder, SmartStock
from core.domain.model import Order, OrderStatus, OrderType, Side, TimeInForce

UTC = timezone.utc

#: IB statuses of an order that is live at IB (acknowledged, may fill).
WORKING = frozenset({"PreSubmitted", "Submitted", "ApiPending"})
#: IB statuses that end an order as cancelled (only when IB says so in orderStatus or completedOrder).
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
#: Error codes that mean a new order was not accepted (when the gateway has not acknowledged it).
REFUSED_NEW = frozenset({110, 200, 201, 203, 320, 321, 387, 434})

_UNSET = 1.7976931348623157e308


def dec(x: float | int | str | Decimal) -> Decimal:
    """A Decimal from an ib_async number, via its shortest repr."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(str(x))


def usable(x: float | None) -> bool:
    """A number ib_async really received (not NaN, not IB's 'unset' sentinel)."""
    return x is not None and not math.isnan(x) and abs(x) < _UNSET


def stock(symbol: str) -> SmartStock:
    """The contract every order and subscription uses: a US stock routed SMART, in USD."""
    return SmartStock(symbol, "SMART", "USD")


def ib_action(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


def side_of(ib_side: str) -> Side:
    """execDetails says BOT/SLD, orders say BUY/SELL."""
    return Side.BUY if ib_side in ("BOT", "BUY") else Side.SELL


def ib_order(order: Order, order_id: int, account: str = "", *, qty: Decimal | None = None,
             limit_price: Decimal | None = None) -> SentOrder:
    """Our order as IB's, tagged with our client order id as ``orderRef``."""
    quantity = float(qty if qty is not None else order.qty)
    common = dict(orderRef=order.client_order_id, tif=order.tif.value, orderId=order_id, transmit=True)
    if account:
        common["account"] = account
    if order.order_type is OrderType.LIMIT:
        price = limit_price if limit_price is not None else order.limit_price
        assert price is not None
        return SentOrder(orderType="LMT", action=ib_action(order.side), totalQuantity=quantity, lmtPrice=float(price),
                         **common)
    return SentOrder(orderType="MKT", action=ib_action(order.side), totalQuantity=quantity, **common)


def exec_time(t: datetime | None, fallback: datetime) -> datetime:
    if t is None:
        return fallback
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def order_from_trade(trade: IBTrade, client_order_id: str | None = None) -> Order:
    """An IB open order as the engine's Order (for ``open_orders()``): strategy unknown here."""
    o = trade.order
    created = trade.log[0].time if trade.log else datetime.now(UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    is_limit = o.orderType == "LMT"
    filled = dec(trade.orderStatus.filled) if usable(trade.orderStatus.filled) else Decimal(0)
    status = OrderStatus.PARTIALLY_FILLED if filled > 0 else (
        OrderStatus.ACCEPTED if trade.orderStatus.status in WORKING else OrderStatus.SUBMITTED)
    return Order(
        client_order_id=client_order_id or o.orderRef or f"ib-perm-{o.permId}",
        strategy="",
        symbol=trade.contract.symbol,
        side=side_of(o.action),
        qty=dec(o.totalQuantity),
        order_type=OrderType.LIMIT if is_limit else OrderType.MARKET,
        tif=TimeInForce.GTC if o.tif == "GTC" else TimeInForce.DAY,
        limit_price=dec(o.lmtPrice) if is_limit and usable(o.lmtPrice) else None,
        created_at=created.astimezone(UTC),
        status=status,
        filled_qty=filled,
        avg_fill_price=dec(trade.orderStatus.avgFillPrice) if filled > 0 else None,
        broker_order_id=str(o.permId) if o.permId else None,
    )


def contract_symbol(contract: Contract) -> str:
    return contract.symbol or contract.localSymbol
