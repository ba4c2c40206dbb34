"""The adjustment fills that take a book from ``held @ avg`` to ``target @ cost`` without
inventing P&L: what an operator override or an accepted break books.

- Same direction, larger: one fill priced so the average becomes exactly ``cost``.
- Same direction, smaller (or to zero): one fill at the book's own average cost, so nothing is
  realized; the average cost stays (a reduction cannot change it without realizing P&L).
- From flat, or flipping through zero: close what is held at its average cost (nothing
  realized), then open ``target`` at ``cost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class AdjustmentFill:
    signed_qty: Decimal
    price: Decimal


def adjustment_fills(held: Decimal, avg: Decimal, target: Decimal, cost: Decimal) -> tuple[AdjustmentFill, ...]:
    """The fills (in order) from ``held @ avg`` to ``target`` at average ``cost``. Raises
    ValueError when the stated cost cannot be reached by adding shares at a positive price."""
    delta = target - held
    if delta == ZERO:
        return ()
    same_side = held != ZERO and target != ZERO and (held > 0) == (target > 0)
    if same_side and abs(target) > abs(held):
        price = (cost * target - avg * held) / delta
        if price <= 0:
            raise ValueError(f"an average cost of {cost} cannot come from adding {abs(delta)} shares to "
                             f"{held} @ {avg} at a positive price: state a cost above {avg * held / target}")
        return (AdjustmentFill(delta, price),)
    if same_side or target == ZERO:
        return (AdjustmentFill(delta, avg),)
    fills = []
    if held != ZERO:
        fills.append(AdjustmentFill(-held, avg))
    fills.append(AdjustmentFill(target, cost))
    return tuple(fills)
