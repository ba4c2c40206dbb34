"""Parameter grids: ``"fast=5..20:5 slow=20..60:10"`` into the points a walk-forward tries.

Each spec is ``name=lo..hi:step`` (ints or floats, both ends included), ``name=v`` (one value)
or ``name=a,b,c`` (a list). Names and values are checked against the strategy's own params
model; a combination the model refuses (``fast`` not below ``slow``) is left out and counted,
never run. Values are stepped in decimal arithmetic, so ``0.1..0.3:0.1`` is 0.1, 0.2, 0.3 and
not 0.30000000000000004.
"""

from __future__ import annotations

import itertools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

MAX_POINTS = 10_000  # a grid larger than this is a typo, or a job for a bigger machine than one run
MAX_VALUES = 1_000  # per parameter

Value = int | float
Point = tuple[tuple[str, Value], ...]  # (name, value) in the grid's order of names

_SPEC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


class GridError(ValueError):
    """A grid that cannot be run: one line naming the spec and the fix."""


@dataclass(frozen=True, slots=True)
class Axis:
    name: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]  # the valid combinations, in grid order (the first name varies slowest)
    refused: int  # combinations the params model refused
    refused_example: str  # why the first refused one was refused ("" when none was)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def index_of(self, point: Point) -> tuple[int, ...]:
        """Each value's position on its axis (for "neighbouring grid point")."""
        return tuple(axis.values.index(value) for axis, (_, value) in zip(self.axes, point, strict=True))


def neighbours(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """The same grid point, or one step away on any number of axes."""
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def point_text(point: Point) -> str:
    return " ".join(f"{name}={_shown(value)}" for name, value in point)


def point_dict(point: Point) -> dict[str, Value]:
    return dict(point)


def _shown(value: Value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kind(model: type[BaseModel], name: str) -> type:
    """int, float or Decimal: what the model's field takes (Optional unwrapped)."""
    annotation = model.model_fields[name].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    for kind in (int, float, Decimal):
        if kind in args:
            return kind
    raise GridError(f"--grid {name}: {model.__name__}.{name} is not a number ({annotation}); only numeric "
                    "parameters can be stepped")


def _number(text: str, spec: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise GridError(f"--grid {spec!r}: {text.strip()[:40]!r} is not a number (name=lo..hi:step, e.g. "
                        "fast=5..20:5)") from None
    if not value.is_finite():
        raise GridError(f"--grid {spec!r}: {text.strip()[:40]!r} is not a finite number")
    return value


def _values(spec: str, body: str) -> list[Decimal]:
    if ".." not in body:
        return [_number(part, spec) for part in body.split(",")]
    lo_text, rest = body.split("..", 1)
    if ":" not in rest:
        raise GridError(f"--grid {spec!r}: a range needs a step: name=lo..hi:step (e.g. fast=5..20:5)")
    hi_text, step_text = rest.rsplit(":", 1)
    lo, hi, step = _number(lo_text, spec), _number(hi_text, spec), _number(step_text, spec)
    if step <= 0:
        raise GridError(f"--grid {spec!r}: the step must be above 0")
    if hi < lo:
        raise GridError(f"--grid {spec!r}: {hi} is below {lo}; write name=lo..hi:step with lo <= hi")
    count = int((hi - lo) / step) + 1
    if count > MAX_VALUES:
        raise GridError(f"--grid {spec!r}: {count} values, at most {MAX_VALUES} per parameter: use a larger step")
    return [lo + i * step for i in range(count)]


def _typed(spec: str, name: str, value: Decimal, kind: type) -> Value:
    if kind is int:
        if value != value.to_integral_value():
            raise GridError(f"--grid {spec!r}: {name} takes whole numbers, not {value}")
        return int(value)
    return float(value) if value != value.to_integral_value() or kind is float else int(value)


def parse_grid(text: str, model: type[BaseModel], base: Mapping[str, Any] | None = None) -> Grid:
    """The grid of ``text`` for a strategy whose params model is ``model``; ``base`` holds the
    configured params the grid overrides (the others, such as ``notional``, stay as configured)."""
    specs = text.split()
    if not specs:
        raise GridError("--grid is empty: give at least one name=lo..hi:step (e.g. fast=5..20:5)")
    known = list(model.model_fields)
    axes: list[Axis] = []
    for spec in specs:
        match = _SPEC.match(spec)
        if match is None:
            raise GridError(f"--grid {spec[:60]!r}: write name=lo..hi:step (e.g. fast=5..20:5), several separated "
                            "by spaces")
        name, body = match.groups()
        if name not in known:
            raise GridError(f"--grid {spec[:60]!r}: {model.__name__} has no parameter {name!r} (it has: "
                            f"{', '.join(known)})")
        if name in (a.name for a in axes):
            raise GridError(f"--grid: {name} is given twice")
        kind = _kind(model, name)
        values = [_typed(spec, name, v, kind) for v in _values(spec, body)]
        if len(set(values)) != len(values):
            raise GridError(f"--grid {spec!r}: a value is listed twice")
        axes.append(Axis(name, tuple(values)))
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > MAX_POINTS:
        raise GridError(f"--grid: {total} points, at most {MAX_POINTS}: use larger steps or fewer parameters")
    points: list[Point] = []
    refused = 0
    example = ""
    for combo in itertools.product(*(a.values for a in axes)):
        point: Point = tuple(zip((a.name for a in axes), combo, strict=True))
        problem = params_problem(model, {**(base or {}), **as_params(model, point)})
        if problem is None:
            points.append(point)
        else:
            refused += 1
            example = example or f"{point_text(point)}: {problem}"
    if not points:
        raise GridError(f"--grid: none of its {total} points is a valid parameter set ({example})")
    return Grid(tuple(axes), tuple(points), refused, example)


def as_params(model: type[BaseModel], point: Point) -> dict[str, Any]:
    """The point as the params model takes it (Decimal fields as exact text)."""
    out: dict[str, Any] = {}
    for name, value in point:
        out[name] = str(value) if _kind(model, name) is Decimal else value
    return out


def params_problem(model: type[BaseModel], params: Mapping[str, Any]) -> str | None:
    """Why the model refuses ``params`` (its first error, one line), or None."""
    try:
        model(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return None
