"""TWS API framing: length-prefixed NUL-separated ASCII fields, and the handshake.

Kept free of any trading logic so that the byte layout can be checked on its own: every
message is ``uint32 big-endian length`` + ``field\\0field\\0...``, except the client's
opening ``API\\0`` magic. Values are rendered the way TWS renders them: bools ``1``/``0``,
unset as the empty string, decimals without exponent.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Iterable
from decimal import Decimal

__all__ = [
    "MAGIC",
    "MAX_FRAME",
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "WireError",
    "encode_fields",
    "fmt",
    "frame",
    "parse_version_range",
    "read_frame",
    "split_payload",
]

MAGIC = b"API\0"
MAX_FRAME = 16 * 1024 * 1024  # a real client never sends anything near this
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"

_LEN = struct.Struct(">I")
_VERSION_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s.*)?$", re.S)


class WireError(Exception):
    """The peer sent bytes that are not the TWS API protocol."""


def fmt(value: object) -> str:
    """One field as TWS writes it (``None`` -> empty, bool -> 1/0, Decimal without exponent)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".") or "0"
        return text
    if isinstance(value, float):
        return repr(value)
    return str(value)


def encode_fields(fields: Iterable[object]) -> bytes:
    """The payload of one message: every field NUL-terminated."""
    return "".join(fmt(f) + "\0" for f in fields).encode("ascii", errors="replace")


def frame(payload: bytes) -> bytes:
    """Length-prefix a payload."""
    return _LEN.pack(len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload (the trailing NUL leaves an empty last element, dropped)."""
    fields = payload.decode("ascii", errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next payload, or ``None`` on a clean end of stream between frames."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise WireError("connection closed inside a length prefix") from e
        return None
    (size,) = _LEN.unpack(header)
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes refused")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as e:
        raise WireError("connection closed inside a frame") from e


def parse_version_range(text: str) -> tuple[int, int]:
    """``v157..178`` (optionally followed by `` +options``) -> (157, 178); ``v100`` -> (100, 100)."""
    m = _VERSION_RANGE.match(text)
    if not m:
        raise WireError(f"bad version announcement {text!r}")
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    if high < low:
        raise WireError(f"bad version range {text!r}")
    return low, high
