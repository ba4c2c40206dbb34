"""Checks every adapter makes before an order goes anywhere: the order's own shape.

What the venue would refuse anyway (a repeated client order id, a non-positive quantity, a
limit order without a positive limit) is refused at once, with the same words in every adapter.
"""

from __future__ import annotations

from collections.abc import Container

from core.domain.model import Order, OrderType


def order_shape_problem(order: Order, known_ids: Container[str]) -> str | None:
    """Why ``order`` cannot be placed as it is, or None; ``known_ids``: client order ids already in use."""
    if order.client_order_id in known_ids:
        return f"duplicate client order id {order.client_order_id}"
    if order.qty <= 0:
        return f"quantity must be positive, got {order.qty}"
    if order.order_type is OrderType.LIMIT and (order.limit_price is None or order.limit_price <= 0):
        return "limit order without a positive limit price"
    return None
