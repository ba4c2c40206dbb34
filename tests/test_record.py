"""``@record`` (core/common/record.py) behaves as ``@dataclass(frozen=True, slots=True)`` does
for what the analytics' value classes use: construction by position and keyword with defaults,
equality and hashing over the fields (only within the class), repr, immutability, slots,
pickling and copying, methods and properties kept."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from decimal import Decimal

import pytest

from core.common.record import FrozenError, record


@record
class Point:
    """A doc."""

    name: str
    qty: Decimal
    tags: tuple[str, ...] = ()
    kind: str = "trade"

    @property
    def double(self) -> Decimal:
        return self.qty * 2

    def label(self) -> str:
        return f"{self.name}:{self.kind}"


@dataclasses.dataclass(frozen=True, slots=True)
class Twin:
    name: str
    qty: Decimal
    tags: tuple[str, ...] = ()
    kind: str = "trade"


@record
class Other:
    name: str
    qty: Decimal
    tags: tuple[str, ...] = ()
    kind: str = "trade"


@record
class Single:
    value: int


def test_a_record_is_built_compared_and_shown_as_a_frozen_dataclass() -> None:
    p = Point("a", Decimal("1.5"))
    twin = Twin("a", Decimal("1.5"))
    assert p == Point(name="a", qty=Decimal("1.5"), tags=(), kind="trade") and p != Point("a", Decimal(2))
    assert hash(p) == hash(twin) == hash(Point("a", Decimal("1.50")))
    assert repr(p) == repr(twin).replace("Twin", "Point")
    assert p != Other("a", Decimal("1.5")) and p != ("a", Decimal("1.5"), (), "trade")
    assert p.double == 3 and p.label() == "a:trade" and Point.__doc__ == "A doc."
    assert Point.__slots__ == ("name", "qty", "tags", "kind") and not hasattr(p, "__dict__")
    assert Point.__match_args__ == Twin.__match_args__
    assert Single(3) == Single(value=3) and hash(Single(3)) == hash((3,)) and repr(Single(3)) == "Single(value=3)"
    with pytest.raises(TypeError):
        Point("a")  # type: ignore[call-arg]
    with pytest.raises(FrozenError):
        p.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.qty  # type: ignore[misc]


def test_a_record_pickles_and_copies() -> None:
    p = Point("a", Decimal("1.5"), ("x",), "adjustment")
    assert pickle.loads(pickle.dumps(p)) == p == copy.copy(p) == copy.deepcopy(p)
    assert pickle.loads(pickle.dumps(Single(7))) == Single(7)
