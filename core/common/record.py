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

from operator import attrgetter
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
    setters = [getattr(new, n).__set__ for n in names]
    scope: dict[str, Any] = {f"_set_{n}": set_ for n, set_ in zip(names, setters, strict=True)}
    scope.update({f"_default_{n}": v for n, v in defaults.items()})
    params = ", ".join(f"{n}=_default_{n}" if n in defaults else n for n in names)
    lines = "\n".join(f"    _set_{n}(self, {n})" for n in names) or "    pass"
    exec(f"def __init__(self, {params}):\n{lines}\n", scope)  # a fixed template over the class's field names
    # the rest needs no speed: no more compiling per class
    getter = attrgetter(*names) if names else (lambda _: ())
    fields_of = getter if len(names) != 1 else (lambda self: (getter(self),))
    name_of = cls.__qualname__

    def __repr__(self: Any) -> str:
        return f"{name_of}({', '.join(f'{n}={v!r}' for n, v in zip(names, fields_of(self), strict=True))})"

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for set_, value in zip(setters, state, strict=True):
            set_(self, value)

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

    for name, fn in (("__init__", scope["__init__"]), ("__repr__", __repr__), ("__eq__", __eq__),
                     ("__hash__", __hash__), ("__setattr__", __setattr__), ("__delattr__", __delattr__),
                     ("__getstate__", lambda self: fields_of(self)), ("__setstate__", __setstate__)):
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        type.__setattr__(new, name, fn)
    built: type[T] = new
    return built
