"""The daily summary's numbers as text, remembered: the same figure is written the same way
many times (the equity at a close is the next day's opening equity, a quiet day's figures are
zeros, a percentage appears in the title, the body and the fields), and a replay of a daily file
writes a summary per bar.

Each ``Remembered`` stands for one function and gives exactly what it gives
(``core.domain.serialize`` for the stored JSON, ``core.domain.text`` and the summary's own
``signed``/``pct`` for the words). Those depend on the number's value only, never on how it is
written (``1.5`` and ``1.50`` read the same), except for a zero's sign (``text.money`` of
``-0`` is ``-0.00``). So the memory is a dict keyed by value that holds no zero (equal values other
than zeros have the same sign); a zero is looked up by its sign, unless the function writes
every zero the same way (``signed_zero=False``: the stored JSON's "0"). Non-finite
values and values of 1e21 or more are made each time (``text.money`` writes one it cannot round
to the cent as it is written: ``1E+30``). Each table is emptied when it reaches ``KEPT``
entries. Text is made in the calling thread's decimal context, as the originals do; the engine
never changes its context.

The hot paths read the table first and make only what it lacks: ``r.get(v) or r.make(v)``, a
dict look-up instead of a call (a ``Decimal``'s hash is cheap). A signalling NaN (never the
result of arithmetic) cannot be hashed: such a look-up raises ``TypeError``, and the callers
fall back to their reference path (``summary_json``, ``daily_summary_text``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

from core.domain import serialize, text

__all__ = ["KEPT", "Remembered", "dec", "fresh_dec", "fresh_money", "money_text", "pct", "pct_text", "signed"]

KEPT = 8192
_LARGEST = 20  # adjusted exponent: 1e21 and above are made each time
_PCT = Decimal("0.01")
_PLACES = Decimal("1e-8")  # serialize.money's


class Remembered:
    """``fn`` (of one ``Decimal``, depending on its value and a zero's sign only), remembered.

    ``signed_zero`` False: ``fn`` writes every zero the same way (``serialize.money``: "0"), so
    zeros are kept in the table too. ``quick``: the same function, made quicker (what a value
    the table lacks is made with); ``fn`` stays the reference the tests hold it to."""

    __slots__ = ("fn", "get", "quick", "signed_zero", "table", "zeros")

    def __init__(self, fn: Callable[[Decimal], str], *, signed_zero: bool = True,
                 quick: Callable[[Decimal], str] | None = None) -> None:
        self.fn = fn
        self.quick = fn if quick is None else quick
        self.signed_zero = signed_zero
        self.table: dict[Decimal, str] = {}
        self.get = self.table.get  # what the table holds for a value, or None
        self.zeros: dict[bool, str] = {}  # a zero's text, by its sign (signed_zero)

    def make(self, value: Decimal) -> str:
        """``fn(value)``, kept for next time when it may be."""
        if not value and self.signed_zero:  # a zero (0, -0, 0E-30 ...; NaN is not falsy): by its sign
            sign = value.is_signed()
            found = self.zeros.get(sign)
            if found is None:
                found = self.zeros[sign] = self.quick(value)
            return found
        found = self.quick(value)
        if value.is_finite() and value.adjusted() <= _LARGEST:
            table = self.table
            if len(table) >= KEPT:
                table.clear()
            table[value] = found
        return found

    def __call__(self, value: Decimal) -> str:
        return self.get(value) or self.make(value)


def _signed(value: Decimal) -> str:
    """``+1,234.50``, ``-80.00``, ``0.00``."""
    shown = text.money(value)  # to the cent: "0.00" is what rounds to zero
    if shown == "0.00" or shown.startswith("-"):
        return shown
    return f"+{shown}" if shown[0].isdigit() else shown  # NaN, infinity: shown as they are


def _pct(value: Decimal) -> str:
    rounded = value.quantize(_PCT, rounding=ROUND_HALF_EVEN)
    return f"{'+' if rounded > 0 else ''}{rounded}%"


def reference_pct(value: Decimal | None) -> str:
    """``+1.23%``, ``-0.50%``, ``0.00%``; ``n/a`` for none."""
    return "n/a" if value is None else _pct(value)


# ``str`` of a finite Decimal is its plain text (``format(v, "f")``) when it has no exponent
# part: its exponent is at most 0 and it is not below 1e-6. With at most 8 decimals, its
# quantize to 1e-8 (``serialize.money``) only adds zeros that are stripped again; a short text
# (13 integer digits at most) keeps that quantize far inside the context's 28 digits, where it
# cannot fail. str is about a third of format's cost, and a replay writes several new figures a
# session (an equity, the P&L that follows the marks).
def _quick_dec(value: Decimal) -> str:
    """``serialize.dec(value)``, the same text."""
    if not value:  # a zero, of any sign and exponent (NaN is not falsy)
        return "0"
    text = str(value)
    if "E" in text or not value.is_finite():
        return serialize.dec(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _quick_money(value: Decimal) -> str:
    """``serialize.money(value)``, the same text."""
    if not value:  # a zero, of any sign and exponent (NaN is not falsy): its str has an exponent
        return "0"
    text = str(value)
    dot = text.find(".")
    if dot >= 0:  # a finite value (NaN and infinity are written without a dot), not a zero
        if "E" in text or len(text) > 14 or len(text) - dot > 9:
            return _rounded_money(value)
        text = text.rstrip("0")
        return text[:-1] if text[-1] == "." else text
    if "E" in text or len(text) > 14 or not value.is_finite():
        return _rounded_money(value)
    return text


def _rounded_money(value: Decimal) -> str:
    """``serialize.money(value)`` of one with more than 8 places (a percentage's 28 digits), the
    same text: its quantize, written by ``str`` where that is plain text (its exponent is then
    -8: plain from 1e-6 up), by ``serialize`` otherwise (smaller ones, zeros, a quantize that fails)."""
    try:
        rounded = value.quantize(_PLACES)
    except ArithmeticError:  # too many digits, infinity: serialize.money raises as it would
        return serialize.money(value)
    text = str(rounded)
    if "E" in text or "." not in text:
        return serialize.dec(rounded)
    text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fresh_money(value: Decimal) -> str:
    """``serialize.money(value)``, the same text, made without the table: a figure computed
    this session is a new Decimal, whose first hash (what a look-up costs: 1 to 2.5 µs for 8 to
    28 digits) costs more than writing it."""
    return _quick_money(value)


def fresh_dec(value: Decimal) -> str:
    """``serialize.dec(value)``, the same text, made without the table (a new mark each session)."""
    return _quick_dec(value)


# serialize.dec writes -0 as "0" (checked by tests/test_daily_summary_json.py)
dec = Remembered(serialize.dec, signed_zero=False, quick=_quick_dec)  # stored JSON: quantities, prices
money_text = Remembered(text.money)  # words: 81,029.95
signed = Remembered(_signed)  # words: +1,234.50
pct_text = Remembered(_pct)  # words: +1.23%


def pct(value: Decimal | None) -> str:
    """``+1.23%``, ``-0.50%``, ``0.00%``; ``n/a`` for none."""
    return "n/a" if value is None else pct_text.get(value) or pct_text.make(value)
