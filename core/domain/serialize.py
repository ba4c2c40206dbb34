"""How Decimals and datetimes are written to the store and to JSON: exact text, ISO UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


def dec(value: Decimal) -> str:
    """A Decimal as plain text, never in exponent form."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def dt(value: datetime) -> str:
    return value.isoformat()


_MONEY_PLACES = Decimal("1e-8")


def money(value: Decimal) -> str:
    """Money for people and JSON: exact to 1e-8 (far below a cent), without division noise."""
    return dec(value.quantize(_MONEY_PLACES))
