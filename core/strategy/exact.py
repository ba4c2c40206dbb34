"""Exact decimal arithmetic for strategy decisions and order sizing.

A decision must be a function of the bars it looks at and nothing else: not of how many
bars came before (float running sums drift), and not of whatever decimal context the
caller happens to have set. Sums and products here run in ``EXACT``, which is wide
enough never to round and traps ``Inexact`` to prove it; rounding for prices and share
counts runs in ``WIDE``, which rounds only where it is told to. Neither divides inexactly
(that would need a bounded precision), so neither can allocate without limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

__all__ = ["EXACT", "WIDE", "exact_sum", "limit_below", "shares_for"]

_TRAPS = [InvalidOperation, DivisionByZero, Overflow]
WIDE = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=_TRAPS)
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[*_TRAPS, Inexact])

_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The sum of ``values`` with no rounding, whatever the caller's decimal context."""
    total = _ZERO
    for v in values:
        total = EXACT.add(total, v)
    return total


def shares_for(notional: Decimal, price: Decimal) -> int:
    """Whole shares that ``notional`` buys at ``price`` (rounded down); 0 for a price that is not positive.

    Integer division, so a quotient like 99.999...9 is 99, never a rounded-up 100.
    """
    if not price.is_finite() or price <= 0:
        return 0
    return int(WIDE.divide_int(notional, price))


def limit_below(price: Decimal, offset_bps: Decimal) -> Decimal | None:
    """A limit ``offset_bps`` under ``price``, rounded down to the cent; None when that is not a positive price."""
    if not price.is_finite() or price <= 0:
        return None
    factor = WIDE.subtract(Decimal(1), offset_bps.scaleb(-4, WIDE))
    limit = WIDE.multiply(price, factor).quantize(_CENT, rounding=ROUND_DOWN, context=WIDE)
    return limit if limit > 0 else None
