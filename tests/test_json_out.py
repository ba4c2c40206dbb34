"""cockpit.json_out.dumps is json.dumps(value, indent=2), byte for byte, errors included."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.json_out import dumps

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.tuples(inner, inner), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=60)


@settings(max_examples=500, deadline=None)
@given(values)
def test_the_same_text_as_the_standard_library(value: object) -> None:
    assert dumps(value) == json.dumps(value, indent=2)


class Level(IntEnum):
    LOW = 1


class Text(str):
    pass


@pytest.mark.parametrize("value", [
    {1: "a", 2.5: "b", False: "c", None: "d"}, {"a": Level.LOW}, {"t": Text("x\u00e9")}, [[[[[]]]]],
    {"deep": [[[1]]] * 3}, {"": {}}, [float("nan"), float("-inf")], "\x00\x1f\u2028", 10**40,
])
def test_odd_but_valid_values(value: object) -> None:
    assert dumps(value) == json.dumps(value, indent=2)


def test_what_the_standard_library_refuses_is_refused_alike() -> None:
    loop: list[object] = []
    loop.append(loop)
    for bad in ({"x": Decimal("1")}, {(1, 2): "tuple key"}, loop, {"s": {1, 2}}):
        with pytest.raises((TypeError, ValueError)) as ours:
            dumps(bad)
        with pytest.raises((TypeError, ValueError)) as theirs:
            json.dumps(bad, indent=2)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
    deep: list[object] = []
    for _ in range(150):
        deep = [deep]
    assert dumps(deep) == json.dumps(deep, indent=2)
