"""Rows of the store read back into domain objects (one place, for every reader)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain.model import Order, OrderStatus, OrderType, Side, TimeInForce


def order_from_row(r: Any) -> Order:
    """An ``orders`` row (sqlite3.Row or a mapping) as an Order."""
    return Order(
        client_order_id=r["client_order_id"],
        strategy=r["strategy"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        qty=Decimal(r["qty"]),
        order_type=OrderType(r["order_type"]),
        tif=TimeInForce(r["tif"]),
        limit_price=Decimal(r["limit_price"]) if r["limit_price"] is not None else None,
        created_at=datetime.fromisoformat(r["created_at"]),
        status=OrderStatus(r["status"]),
        filled_qty=Decimal(r["filled_qty"]),
        avg_fill_price=Decimal(r["avg_fill_price"]) if r["avg_fill_price"] is not None else None,
        broker_order_id=r["broker_order_id"],
        reason=r["reason"],
        updated_at=datetime.fromisoformat(r["updated_at"]),
    )
