"""One client frame in, one decoded request out: the simulator's whole reading of a client.

The session (``transport``) reads a frame off the socket and hands its payload to
:func:`decode_payload`; :func:`decode_client_frame` takes the same step from a whole frame
(length prefix included). Both are pure: no I/O, no state, no logging, so a fuzzing campaign
can call them a million times, and what they accept is exactly what a session acts on.

They raise only :class:`~brokers.ibsim.wire.ProtocolError`:

- :class:`~brokers.ibsim.wire.WireError`: the bytes are not one TWS API frame (a length prefix
  that disagrees with the bytes, or above ``MAX_REQUEST_FRAME``). A session closes the connection.
- :class:`~brokers.ibsim.fields.BadRequest`: the fields do not make the request their message id
  names (empty, a non-integer id, a number TWS would not parse or out of range, a message that
  runs short). A session answers error 320 and goes on.
"""

from __future__ import annotations

from brokers.ibsim.fields import BadRequest
from brokers.ibsim.messages import MAX_VERSION, MIN_VERSION
from brokers.ibsim.requests import ClientMessage, decode_fields
from brokers.ibsim.wire import MAX_REQUEST_FRAME, ProtocolError, WireError, split_payload, unframe

__all__ = ["BadRequest", "ClientMessage", "ProtocolError", "WireError", "decode_client_frame", "decode_payload"]


def decode_payload(payload: bytes, version: int = MAX_VERSION) -> ClientMessage:
    """The request in one frame's payload, as a session at server ``version`` reads it."""
    return decode_fields(split_payload(payload), version)


def decode_client_frame(data: bytes, version: int = MAX_VERSION) -> ClientMessage:
    """Decode one whole client frame (``uint32 length`` + NUL-terminated fields).

    ``version`` is the negotiated server version (157..178; placeOrder's layout depends on it).
    Returns the :class:`ClientMessage` (``msg_id``, ``fields``, typed ``body``); raises
    :class:`WireError` or :class:`BadRequest`, both :class:`ProtocolError`, and nothing else.
    """
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"server version must be {MIN_VERSION}..{MAX_VERSION}, not {version}")
    return decode_payload(unframe(data, MAX_REQUEST_FRAME), version)
