"""The canonical text of a row's details: what is stored in ``detail`` and hashed.

Sorted keys, no spaces, ASCII only; Decimal as plain text, datetime/date/time as ISO,
enums by value, sets sorted, dataclasses and pydantic models as their fields. A value
of any other type is stored as its ``str()``: an odd detail never takes the engine down.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

from core.domain.serialize import dec

# JSON string escaping, ASCII-only: how text fields enter the hashed array (see core.audit.row).
escape = json.encoder.encode_basestring_ascii


def _iso(o: datetime | date | time) -> str:
    return o.isoformat()


_BY_TYPE: dict[type, Any] = {Decimal: dec, datetime: _iso, date: _iso, time: _iso}


def _default(o: Any) -> Any:
    convert = _BY_TYPE.get(type(o))
    if convert is not None:
        return convert(o)
    if isinstance(o, Decimal):
        return dec(o)
    if isinstance(o, datetime | date | time):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, set | frozenset):
        return sorted(o, key=repr)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
    if hasattr(o, "model_dump"):  # pydantic models (config sections)
        return o.model_dump()
    return str(o)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=True)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
# The C encoder, made once (json.dumps builds one per call): same output as _ENCODER without
# its circular-reference check; whatever it cannot do falls back to _ENCODER (which raises
# on a circular detail).
_fast_encode = (
    _c_make_encoder(None, _default, escape, None, ":", ",", True, False, True) if _c_make_encoder is not None
    else None
)


def canonical_json(value: Any) -> str:
    """The one canonical JSON text of ``value`` (fast C path when it can, same output either way)."""
    if _fast_encode is not None:
        try:
            return "".join(_fast_encode(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError):
        return _ENCODER.encode(_plain_keys(value))


def _plain_keys(o: Any) -> Any:
    """Slow path for details whose dict keys JSON cannot sort or encode: keys become text."""
    if isinstance(o, dict):
        return {(k if isinstance(k, str) else _key_text(k)): _plain_keys(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain_keys(v) for v in o]
    return o


def _key_text(k: Any) -> str:
    if k is None or isinstance(k, bool | int | float):
        return json.dumps(k)
    d = _default(k)
    return d if isinstance(d, str) else json.dumps(d)
