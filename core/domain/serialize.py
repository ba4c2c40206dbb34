"""How Decimals and datetimes are written to the store and to JSON: exact text, ISO UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any


def dec(value: Decimal) -> str:
    """A Decimal as plain text, never in exponent form.

    ``str`` first: it is about three times as fast as ``format(value, "f")`` and gives the same
    digits unless it chose the exponent form (very small or very large numbers, ``1E+2``), which
    only ``format`` then writes out. This runs several times per order before its write-ahead."""
    text = str(value)
    if "E" in text:
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


def _not_serializable(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_ENCODERS: dict[bool, Any] = {}  # json.dumps's C encoder per sort_keys, made on first use (_encoder)


def _encoder(sort_keys: bool) -> Any:
    """json.dumps's C encoder with its default settings, made once each (json.dumps makes one per
    call, a visible cost for a row written per fill or per session), None without the C module.
    No circular check: what is written is plain data; a value the C encoder refuses goes through
    json.dumps itself. Made here, not at import: the readers import this module for ``dec`` and
    ``money`` and never write JSON through it."""
    import json

    make = getattr(json.encoder, "c_make_encoder", None)
    encode = _ENCODERS[sort_keys] = make(None, _not_serializable, json.encoder.encode_basestring_ascii, None, ": ",
                                         ", ", sort_keys, False, True) if make is not None else None
    return encode


def json_text(value: Any, *, sort_keys: bool = False) -> str:
    """``json.dumps(value, sort_keys=sort_keys)``, the same text, faster."""
    encode = _ENCODERS[sort_keys] if sort_keys in _ENCODERS else _encoder(sort_keys)
    if encode is not None and not isinstance(value, str):
        try:
            return "".join(encode(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    import json

    return json.dumps(value, sort_keys=sort_keys)
