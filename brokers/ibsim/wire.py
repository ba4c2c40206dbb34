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
    "MAX_HANDSHAKE_FRAME",
    "MAX_REQUEST_FRAME",
    "ProtocolError",
    "TruncatedFrame",
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "WireError",
    "encode_fields",
    "fmt",
    "frame",
    "parse_version_range",
    "read_frame",
    "show",
    "split_payload",
    "unframe",
]

MAGIC = b"API\0"
MAX_FRAME = 16 * 1024 * 1024  # the protocol's limit (EClient's MAX_MSG_LEN): what a client accepts from us
# What the simulator accepts from a client. The largest request a real client writes (placeOrder
# with algo, scale and condition blocks) is a few KB; a longer one is hostile, and the cap bounds
# what one connection can make the simulator buffer.
MAX_REQUEST_FRAME = 1024 * 1024
MAX_HANDSHAKE_FRAME = 1024  # "v157..178 +PACEAPI" is 18 bytes
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"

_LEN = struct.Struct(">I")
_VERSION_RANGE = re.compile(r"^v(\d{1,6})(?:\.\.(\d{1,6}))?(?:\s.*)?$", re.S | re.A)


class ProtocolError(Exception):
    """A client sent something that is not a valid TWS API message (the base of both kinds)."""


class WireError(ProtocolError):
    """The bytes are not the TWS API framing: the stream cannot be read on, so the connection closes."""


class TruncatedFrame(WireError):
    """The stream ended inside a frame: the peer went away mid-message (nobody left to answer)."""


def show(text: str | bytes, limit: int = 40) -> str:
    """``repr`` of a client's value, cut to ``limit`` characters: hostile input stays one short log line."""
    r = repr(text)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(text)} chars)"


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


def unframe(data: bytes, limit: int = MAX_FRAME) -> bytes:
    """The payload of exactly one whole frame (``frame``'s inverse); anything else is a WireError."""
    if len(data) < _LEN.size:
        raise WireError(f"{len(data)} bytes: shorter than a length prefix")
    (size,) = _LEN.unpack_from(data)
    if size > limit:
        raise WireError(f"frame of {size} bytes refused (at most {limit})")
    body = len(data) - _LEN.size
    if body != size:
        raise WireError(f"length prefix says {size} bytes, the frame has {body}")
    return data[_LEN.size:]


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload (the trailing NUL leaves an empty last element, dropped).

    Never raises: bytes that are not ASCII (invalid UTF-8 included) come out as ``\\xNN``."""
    fields = payload.decode("ascii", errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes | None:
    """The next payload, or ``None`` on a clean end of stream between frames.

    A length prefix above ``limit`` is refused before anything is buffered."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise TruncatedFrame("connection closed inside a length prefix") from e
        return None
    (size,) = _LEN.unpack(header)
    if size > limit:
        raise WireError(f"frame of {size} bytes refused (at most {limit})")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as e:
        raise TruncatedFrame("connection closed inside a frame") from e


def parse_version_range(text: str) -> tuple[int, int]:
    """``v157..178`` (optionally followed by `` +options``) -> (157, 178); ``v100`` -> (100, 100)."""
    m = _VERSION_RANGE.match(text)
    if not m:
        raise WireError(f"bad version announcement {show(text)}")
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else low
    if high < low:
        raise WireError(f"bad version range {show(text)}")
    return low, high
