"""One numeric field of a client's request, read the way TWS reads it, and bounded.

TWS parses integer fields with Java's ``Integer.parseInt`` (32 bits) and answers anything
else with error 320. Python's ``int()`` is far more lenient (underscores, spaces, non-ASCII
digits, up to 4,300 digits, then ``ValueError``), and ``Decimal()`` takes any size, so a
hostile client could push a 5,000-digit id or a 10**4000 share order into the book, the
prices and the state file. Every number a request carries goes through here instead: an
integer is ASCII digits in Java's int range, a quantity or price is a plain decimal of at
most 64 characters whose size stays in ``(1e-20, 1e15)``; anything else is a
:class:`BadRequest`, which the session answers with 320.
"""

from __future__ import annotations

import re
from decimal import Decimal

from brokers.ibsim.wire import ProtocolError, show

__all__ = ["INT_MAX", "INT_MIN", "MAX_MAGNITUDE", "BadRequest", "parse_int", "parse_number"]

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1  # also IB's UNSET_INTEGER
MAX_MAGNITUDE = Decimal("1e15")  # no share count or price comes near it
MIN_ADJUSTED_EXPONENT = -20  # a non-zero number below 1e-20 is no price or quantity
MAX_NUMBER_CHARS = 64
UNSET = Decimal("1.7976931348623157E308")  # IB's UNSET_DOUBLE: the field is not set

_INT = re.compile(r"[+-]?\d{1,10}", re.A)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.A)
# ib_async writes float infinity as "Infinite"; Java's parseDouble reads "Infinity" and "NaN".
_NOT_FINITE = frozenset({"infinite", "-infinite", "infinity", "-infinity", "inf", "-inf", "nan", "-nan"})


class BadRequest(ProtocolError):
    """A request whose fields do not parse: error 320, and the session goes on."""


def parse_int(text: str, where: str) -> int:
    """A Java int (``where`` names the field in the error)."""
    if _INT.fullmatch(text) is None:
        raise BadRequest(f"{where} is not an integer: {show(text)}")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise BadRequest(f"{where} is out of the 32-bit range: {show(text)}")
    return value


def parse_number(text: str, where: str) -> Decimal | None:
    """A quantity or price; ``None`` for IB's unset value (UNSET_DOUBLE, infinity, NaN)."""
    if len(text) > MAX_NUMBER_CHARS:
        raise BadRequest(f"{where} is {len(text)} characters long, not a number")
    if text.lower() in _NOT_FINITE:
        return None
    if _NUMBER.fullmatch(text) is None:
        raise BadRequest(f"{where} is not a number: {show(text)}")
    value = Decimal(text)
    if not value:
        return Decimal(0)  # "0E-9999" would print as ten thousand zeros
    if value >= UNSET:
        return None
    if abs(value) >= MAX_MAGNITUDE or value.adjusted() < MIN_ADJUSTED_EXPONENT:
        raise BadRequest(f"{where} is out of range: {show(text)}")
    return value
