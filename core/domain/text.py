"""Numbers as a trader reads them in messages, prompts and alerts.

Money to the cent with thousands separators, prices to the instrument's increment (a cent for
US stocks unless told), quantities as integers with their sign. Storage and JSON keep exact
text (``core.domain.serialize``); these are for people.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from core.domain.serialize import dec

CENT = Decimal("0.01")


def qty(value: Decimal | int) -> str:
    """``-304``, ``12.5`` for a fractional quantity; never an exponent."""
    d = Decimal(value)
    return dec(d) if d.is_finite() else str(d)


def money(value: Decimal) -> str:
    """``81,029.95``, ``-1,200.00``."""
    try:
        return f"{value.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"
    except InvalidOperation:
        return str(value)


def price(value: Decimal | None, increment: Decimal = CENT) -> str:
    """``18.46`` (to ``increment``); ``-`` when unknown."""
    if value is None:
        return "-"
    try:
        steps = (value / increment).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        out = steps * increment
        places = max(0, -increment.normalize().as_tuple().exponent)  # type: ignore[operator]  # int for finite
        return f"{out:.{places}f}"
    except InvalidOperation:
        return str(value)


def reported_price(value: Decimal) -> str:
    """A price a venue reported (already on its increment): exact, at least to the cent
    (``130.2231``, ``18.50``), never rounded and never 28 digits of division noise."""
    try:
        exact = value.normalize()
        places = max(2, -exact.as_tuple().exponent) if exact.is_finite() else 2  # type: ignore[operator]  # int for finite
        return f"{value:.{min(places, 8)}f}"
    except InvalidOperation:
        return str(value)
