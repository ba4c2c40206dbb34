"""``json.dumps(value, indent=2)``, byte for byte, several times faster.

With an indent, the standard library leaves its C encoder out and walks the value with a
generator per container: `cockpit report daily --json` over two years (1.4 MB) spent about
100 ms there. ``dumps`` writes the same text with one recursive function over the types the
readers give (dict with text keys, list, tuple, str, int, float, bool, None) and the C string
escaper, each container one ``str.join`` over its items. Anything else (another key or value
type, a cycle, a value nested very deep) is left to ``json.dumps`` itself, so errors and odd
values come out exactly as they did.
"""

from __future__ import annotations

from typing import Any

try:  # the C escaper json.encoder uses, without importing json (its decoder compiles regular expressions)
    from _json import encode_basestring_ascii
except ImportError:  # an interpreter without the C module
    from json.encoder import encode_basestring_ascii

_MAX_DEPTH = 100  # deeper than any reader's answer: the standard library then does it (and its errors)
_FLOAT = float.__repr__
_INT = int.__repr__


class _Unusual(Exception):
    """A value ``json.dumps`` itself must handle."""


def dumps(value: Any) -> str:
    """``json.dumps(value, indent=2)``."""
    try:
        return _text(value, "\n", 0)
    except _Unusual:
        import json

        return json.dumps(value, indent=2)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return _FLOAT(value)


def _true_false(value: bool) -> str:
    return "true" if value else "false"


def _null(_value: None) -> str:
    return "null"


# The exact types the readers give (a subclass, such as an IntEnum, goes the slower way).
_SCALARS: dict[type, Any] = {str: encode_basestring_ascii, int: _INT, float: _float, bool: _true_false,
                             type(None): _null}


def _scalar(value: Any) -> str:
    """A value that is not a container, as json words it (subclasses of str, int, float too)."""
    word = _SCALARS.get(type(value))
    if word is not None:
        return str(word(value))
    if isinstance(value, str):
        return str(encode_basestring_ascii(value))
    if isinstance(value, bool):
        return _true_false(value)
    if isinstance(value, int):
        return _INT(value)
    if isinstance(value, float):
        return _float(value)
    raise _Unusual


def _text(value: Any, newline: str, depth: int) -> str:
    """``value`` as indented JSON text, its first line at the indent ``newline`` ends with.

    A container is one join over its items, each a scalar's word or a container's own text;
    a key that is not text (the C escaper's TypeError) or a value it does not know goes to
    ``json.dumps``."""
    kind = type(value)
    word = _SCALARS.get
    if kind is dict or (kind is not list and isinstance(value, dict)):
        if not value:
            return "{}"
        if depth >= _MAX_DEPTH:
            raise _Unusual
        inner = newline + "  "
        deeper = depth + 1
        try:
            body = ("," + inner).join([encode_basestring_ascii(k) + ": " + (
                w(v) if (w := word(type(v))) is not None else _text(v, inner, deeper)) for k, v in value.items()])
        except TypeError:  # numbers, booleans and None as keys: the standard library words them
            raise _Unusual from None
        return "{" + inner + body + newline + "}"
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if depth >= _MAX_DEPTH:
            raise _Unusual
        inner = newline + "  "
        deeper = depth + 1
        body = ("," + inner).join([w(v) if (w := word(type(v))) is not None else _text(v, inner, deeper)
                                   for v in value])
        return "[" + inner + body + newline + "]"
    return _scalar(value)
