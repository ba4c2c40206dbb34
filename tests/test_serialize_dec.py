"""``serialize.dec`` writes every Decimal as the plain text it always wrote (``format(v, "f")``,
trailing zeros and a lone "-0" dropped), whichever way it now gets there."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.serialize import dec


def _plain(value: Decimal) -> str:
    """The formula ``dec`` used before it tried ``str`` first."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


EDGES = ["0", "-0", "0.00", "-0.000", "0E-7", "-0E+3", "1E+2", "1.500", "100", "-100.10", "1E-7", "123456789.987654321",
         "1E+30", "-2.5E-12", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "0.1000000000000000055511151231257827"]


def test_the_edges_are_written_as_before() -> None:
    for text in EDGES:
        assert dec(Decimal(text)) == _plain(Decimal(text)), text


@settings(max_examples=3000, deadline=None, database=None)
@given(st.decimals(allow_nan=True, allow_infinity=True) | st.builds(
    lambda digits, exp, neg: Decimal((neg, digits, exp)),
    st.tuples(*[st.integers(0, 9)] * 3) | st.lists(st.integers(0, 9), min_size=1, max_size=30).map(tuple),
    st.integers(-40, 40), st.integers(0, 1)))
def test_any_decimal_is_written_as_before(value: Decimal) -> None:
    assert dec(value) == _plain(value)
