"""The order state machine: which status may follow which.

NEW -> SUBMITTED -> ACCEPTED -> PARTIALLY_FILLED -> FILLED | CANCELLED | REJECTED, plus
PENDING_CANCEL while a cancel is in flight and UNKNOWN for a submit nobody answered.
An illegal transition is refused (``IllegalTransition``) so a confused broker report can
never move a filled order back to working.
"""

from __future__ import annotations

from core.domain.model import OrderStatus as S

LEGAL: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    S.SUBMITTED: frozenset(
        {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.PENDING_CANCEL, S.UNKNOWN}
    ),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.PENDING_CANCEL}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.PENDING_CANCEL}),
    # REJECTED: the broker refused the order itself while its cancel was in flight (IB's Inactive)
    S.PENDING_CANCEL: frozenset({S.CANCELLED, S.REJECTED, S.PARTIALLY_FILLED, S.FILLED, S.ACCEPTED}),
    S.UNKNOWN: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


class IllegalTransition(Exception):
    """A status change the state machine does not allow."""

    def __init__(self, order_id: str, current: S, target: S) -> None:
        super().__init__(f"order {order_id}: illegal transition {current} -> {target}")
        self.order_id = order_id
        self.current = current
        self.target = target


def check_transition(order_id: str, current: S, target: S) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is allowed."""
    if target not in LEGAL[current]:
        raise IllegalTransition(order_id, current, target)
