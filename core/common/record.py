"""``@record``: a frozen, slotted value class, as ``@dataclass(frozen=True, slots=True)`` makes it,
without importing ``dataclasses``.

`cockpit metrics` is a fresh process each time: importing ``dataclasses`` (it imports ``inspect``,
``ast``, ``dis``, ``tokenize`` ...) and building its classes was about a fifth of the command's
start-up, for the handful of value classes the analytics read. A class here gets what those
have: the fields from its annotations in order (a class attribute is the field's default),
``__slots__``, an ``__init__`` taking them by position or keyword, ``__eq__`` and ``__hash__``
over the fields (only against the same class), a dataclass-like ``__repr__``, ``__match_args__``,
pickling and copying (the walk-forward's worker processes send results back), and it refuses to
be changed after ``__init__`` (``FrozenError``). What it does not have:
``dataclasses.fields``/``replace``/``asdict`` (nothing uses them on these classes), ordering, or
mutable defaults (a default is shared, so it must be immutable). mypy reads it as a frozen
dataclass (``dataclass_transform``).
"""

from __future__ import annotations

from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")
_MISSING = object()


class FrozenError(AttributeError):
    """A field of a ``@record`` assigned or deleted after ``__init__``."""


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """``cls`` rebuilt as a frozen, slotted value class of its annotated fields (module doc)."""
    names = [n for n in vars(cls).get("__annotations__", {}) if not n.startswith("__")]
    defaults = {n: vars(cls)[n] for n in names if n in vars(cls)}
    body = {k: v for k, v in vars(cls).items() if k not in names and k not in ("__dict__", "__weakref__")}
    body["__slots__"] = tuple(names)
    body["__match_args__"] = tuple(names)
    new: Any = type(cls)(cls.__name__, cls.__bases__, body)  # type: ignore[misc]
    new.__qualname__ = cls.__qualname__
    scope: dict[str, Any] = {f"_set_{n}": getattr(new, n).__set__ for n in names}
    scope.update({f"_default_{n}": v for n, v in defaults.items()})
    params = ", ".join(f"{n}=_default_{n}" if n in defaults else n for n in names)
    lines = "\n".join(f"    _set_{n}(self, {n})" for n in names) or "    pass"
    fields = "".join(f"self.{n}, " for n in names)
    shown = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    sets = "\n".join(f"    _set_{n}(self, state[{i}])" for i, n in enumerate(names)) or "    pass"
    source = (f"def __init__(self, {params}):\n{lines}\n"
              f"def __setstate__(self, state):\n{sets}\n"
              f"def _fields(self):\n    return ({fields})\n"
              f"def __repr__(self):\n    return f'{cls.__qualname__}({shown})'\n")
    exec(source, scope)  # a fixed template over the class's own field names
    fields_of = scope["_fields"]

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(fields_of(self) == fields_of(other))

    def __hash__(self: Any) -> int:
        return hash(fields_of(self))

    def __setattr__(self: Any, name: str, value: object) -> None:
        raise FrozenError(f"cannot assign to field {name!r} of a frozen {cls.__name__}")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r} of a frozen {cls.__name__}")

    for name, fn in (("__init__", scope["__init__"]), ("__repr__", scope["__repr__"]), ("__eq__", __eq__),
                     ("__hash__", __hash__), ("__setattr__", __setattr__), ("__delattr__", __delattr__),
                     ("__getstate__", fields_of), ("__setstate__", scope["__setstate__"])):
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        type.__setattr__(new, name, fn)
    built: type[T] = new
    return built
