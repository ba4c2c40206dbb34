"""Transport: the API sessions of the simulated gateway.

The asyncio listener's per-socket loop (handshake, framing, one message at a time), the
session lifecycle (startApi, one live session per client id, aborts), TWS's per-client pacing,
and the log of what clients sent with the waits tests build on. What a message means is the
handlers' business (``_dispatch``); what its bytes say is ``decode``'s.

Hostile or broken clients cost one connection at most, never the simulator: a frame that
is not the API's framing (oversize length prefix, garbage instead of the handshake) closes
that connection; a request that does not decode is answered with error 320 and the session
goes on; either is one log line. A socket that has not finished the API handshake (magic,
version, startApi) within ``handshake_timeout`` seconds is closed, and at most
``max_connections`` sockets are open at once (the rest are closed on arrival), so a flood of
idle connections cannot pile up. A started session may stay idle for ever, as ib_async's do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.fields import BadRequest, parse_int
from brokers.ibsim.state import SimState
from brokers.ibsim.wire import (
    MAGIC,
    MAX_HANDSHAKE_FRAME,
    MAX_REQUEST_FRAME,
    TruncatedFrame,
    WireError,
    encode_fields,
    frame,
    parse_version_range,
    read_frame,
    show,
    split_payload,
)

log = logging.getLogger("cockpit.ibsim")

MIN_CLIENT_VERSION = m.MIN_VERSION


@dataclass(frozen=True, slots=True)
class Received:
    """One message a client sent (after the handshake), for assertions."""

    client_id: int | None
    fields: list[str]
    at: float

    @property
    def msg_id(self) -> int:
        try:
            return int(self.fields[0])
        except (IndexError, ValueError):
            return -1


@dataclass(eq=False)
class Conn:
    """One API connection."""

    writer: asyncio.StreamWriter
    peer: str
    version: int = 0
    client_id: int | None = None
    ready: bool = False
    closed: bool = False
    mkt: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    last_bid: dict[int, Decimal] = field(default_factory=dict)  # reqId -> the bid last sent (tick order)
    acct_updates: bool = False
    positions: bool = False
    acct_multi: set[int] = field(default_factory=set)
    pos_multi: set[int] = field(default_factory=set)
    summaries: dict[int, frozenset[str]] = field(default_factory=dict)
    auto_open: bool = False
    market_data_type: int = 1
    times: deque[float] = field(default_factory=deque)
    dropped: int = 0
    known: set[int] = field(default_factory=set)  # permIds this session has had an openOrder for

    def send(self, fields: list[object]) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(frame(encode_fields(fields)))

    def abort(self) -> None:
        """Drop the socket without a goodbye, as a crashing gateway or a network cut does."""
        self.closed = True
        self.writer.transport.abort()

    def close(self) -> None:
        """Close after what was written has gone out."""
        self.closed = True
        self.writer.close()


class Transport:
    """Mixin of :class:`~brokers.ibsim.server.IBGatewaySim`: connections, framing, sessions, pacing."""

    account: str
    state: SimState
    max_version: int
    pacing_limit: int | None
    pacing_disconnect_after: int | None
    handshake_timeout: float | None
    max_connections: int | None
    refused_connections: int
    _refused_at_limit: int
    clock: Callable[[], float]
    received: deque[Received]
    handler_errors: list[str]
    _conns: set[Conn]
    _by_client: dict[int, Conn]
    _conn_tasks: set[asyncio.Task[None]]
    _link_up: bool
    _changed: asyncio.Event

    # provided by the request handlers
    _dispatch: Callable[[Conn, rq.ClientMessage], None]

    @property
    def clients(self) -> list[int]:
        """Client ids with a live API session."""
        return sorted(cid for cid, c in self._by_client.items() if not c.closed)

    def _notify(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every message and control."""

        async def until() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    def count_received(self, msg_id: int, client_id: int | None = None) -> int:
        """How many messages with ``msg_id`` arrived (from ``client_id``, if given)."""
        return sum(
            1 for r in self.received if r.msg_id == msg_id and (client_id is None or r.client_id == client_id)
        )

    async def wait_received(self, msg_id: int, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` messages with ``msg_id`` have arrived."""
        await self.wait_for(lambda: self.count_received(msg_id) >= count, timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        if self.max_connections is not None and len(self._conns) >= self.max_connections:
            self._refuse(writer, str(peer))
            return
        if task is not None:
            self._conn_tasks.add(task)
        conn = Conn(writer=writer, peer=str(peer))
        self._conns.add(conn)
        try:
            if await self._open_session(reader, conn):
                while not conn.closed:
                    payload = await read_frame(reader, MAX_REQUEST_FRAME)
                    if payload is None:
                        break
                    self._on_payload(conn, payload)
        except TruncatedFrame as e:
            if not conn.closed:
                log.info("connection %s (client %s) ended: %s", conn.peer, conn.client_id, e)
        except WireError as e:
            if not conn.closed:
                log.warning("connection %s (client %s) sent what is not the API's framing: %s; closing",
                            conn.peer, conn.client_id, e)
                if conn.version:
                    conn.send(m.error(conn.version, -1, 320, f"Error reading request: {e}"))
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            if not conn.closed:
                log.info("connection %s (client %s) ended: %s", conn.peer, conn.client_id, e)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a simulator bug: drop this connection, keep serving the others
            log.exception("connection %s (client %s) failed", conn.peer, conn.client_id)
            self.handler_errors.append(f"connection: {type(e).__name__}: {e}")
        finally:
            self._forget(conn)
            if not conn.closed:
                conn.close()
            if task is not None:
                self._conn_tasks.discard(task)
            self._notify()

    def _refuse(self, writer: asyncio.StreamWriter, peer: str) -> None:
        """Over ``max_connections``: close at once. One log line when the limit is reached, one when it is left."""
        self.refused_connections += 1
        self._refused_at_limit += 1
        if self._refused_at_limit == 1:
            log.warning("%d connections are open, the limit (max_connections): refusing new connections "
                        "(the first from %s) until one closes", len(self._conns), peer)
        writer.transport.abort()

    def _forget(self, conn: Conn) -> None:
        self._conns.discard(conn)
        if conn.client_id is not None and self._by_client.get(conn.client_id) is conn:
            del self._by_client[conn.client_id]
        if self._refused_at_limit and (self.max_connections is None or len(self._conns) < self.max_connections):
            log.warning("below the connection limit again: %d connection(s) were refused meanwhile",
                        self._refused_at_limit)
            self._refused_at_limit = 0

    def _abort_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
            self._forget(conn)
        self._notify()

    async def _open_session(self, reader: asyncio.StreamReader, conn: Conn) -> bool:
        """The API handshake up to startApi, within ``handshake_timeout``; False if the connection is done."""
        try:
            async with asyncio.timeout(self.handshake_timeout):
                if not await self._handshake(reader, conn):
                    return False
                while not conn.ready and not conn.closed:
                    payload = await read_frame(reader, MAX_REQUEST_FRAME)
                    if payload is None:
                        return False
                    self._on_payload(conn, payload)
        except TimeoutError:
            log.warning("connection %s did not complete the API handshake within %gs: closing",
                        conn.peer, self.handshake_timeout)
            conn.close()
            return False
        return not conn.closed

    async def _handshake(self, reader: asyncio.StreamReader, conn: Conn) -> bool:
        magic = await reader.readexactly(len(MAGIC))
        if magic != MAGIC:
            raise WireError(f"expected the API magic, got {show(magic)}")
        payload = await read_frame(reader, MAX_HANDSHAKE_FRAME)
        if payload is None:
            return False
        announced = split_payload(payload)
        low, high = parse_version_range(announced[0] if announced else "")
        version = min(high, self.max_version)
        if version < max(low, MIN_CLIENT_VERSION):
            log.warning(
                "client %s announced v%d..%d; the simulator speaks v%d..%d: closing",
                conn.peer, low, high, MIN_CLIENT_VERSION, self.max_version,
            )
            conn.close()
            return False
        conn.version = version
        conn.send(m.handshake(version, self.clock()))
        return True

    def _client_conn(self, client_id: int) -> Conn | None:
        c = self._by_client.get(client_id)
        return c if c is not None and not c.closed else None

    def _on_payload(self, conn: Conn, payload: bytes) -> None:
        """One frame of a handshaken connection: paced, decoded, then startApi or a request."""
        fields = split_payload(payload)
        self.received.append(Received(conn.client_id, fields, self.clock()))
        try:
            if not self._pace(conn):
                return
            try:
                msg = rq.decode_fields(fields, conn.version)
            except BadRequest as e:
                self._bad_request(conn, fields, e)
                return
            if msg.msg_id == rq.START_API:
                self._start_api(conn, msg)
            elif not conn.ready:
                log.warning("client %s sent message %d before startApi: ignored", conn.peer, msg.msg_id)
            else:
                self._dispatch(conn, msg)
        finally:
            self._notify()

    def _bad_request(self, conn: Conn, fields: list[str], e: BadRequest) -> None:
        """Error 320, as TWS answers a request it cannot read; an unreadable startApi also closes."""
        head = fields[0] if fields else ""
        what = head if head.isascii() and head.isdigit() and len(head) <= 10 else show(head, 16)
        req_id = -1
        if head == str(rq.PLACE_ORDER) and len(fields) > 1:  # the order's own id, so its client's trade sees it
            try:
                req_id = parse_int(fields[1], "the order id")
            except BadRequest:
                pass
        log.warning("client %s sent a malformed request %s: %s", conn.client_id if conn.ready else conn.peer, what, e)
        conn.send(m.error(conn.version, req_id, 320, f"Error reading request: message {what}: {e}"))
        if head == str(rq.START_API) and not conn.ready:
            conn.close()

    def _pace(self, conn: Conn) -> bool:
        """Enforce TWS's 50 messages/second: an excess message is answered with error 100 and dropped."""
        if self.pacing_limit is None:
            return True
        now = asyncio.get_running_loop().time()
        q = conn.times
        while q and now - q[0] >= 1.0:
            q.popleft()
        if len(q) < self.pacing_limit:
            q.append(now)
            return True
        conn.dropped += 1
        conn.send(m.error(
            conn.version, -1, 100,
            f"Max rate of messages per second has been exceeded:max={self.pacing_limit} rec={len(q) + 1} (1)",
        ))
        if self.pacing_disconnect_after is not None and conn.dropped >= self.pacing_disconnect_after:
            log.warning("client %s kept breaching the pacing limit: disconnecting", conn.client_id)
            conn.close()
            self._forget(conn)
        return False

    def _start_api(self, conn: Conn, msg: rq.ClientMessage) -> None:
        if conn.ready:
            return
        assert isinstance(msg.body, rq.StartApi)
        client_id = msg.body.client_id
        if self._client_conn(client_id) is not None:
            conn.send(m.error(
                conn.version, -1, 326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            ))
            conn.close()
            return
        conn.client_id = client_id
        conn.ready = True
        self._by_client[client_id] = conn
        conn.send(m.managed_accounts([self.account]))
        conn.send(m.next_valid_id(self.state.next_valid_id))
        if self._link_up:
            farms = [(2104, "Market data farm connection is OK:usfarm"),
                     (2106, "HMDS data farm connection is OK:ushmds"),
                     (2158, "Sec-def data farm connection is OK:secdefnj")]
        else:
            farms = [(2103, "Market data farm connection is broken:usfarm")]
        for code, text in farms:
            conn.send(m.error(conn.version, -1, code, text))
        log.info("client %d connected from %s at server version %d", client_id, conn.peer, conn.version)

    def _to_client(self, client_id: int, make: Callable[[int], list[object]]) -> None:
        """Send a (version-dependent) message to ``client_id``'s live session, if any."""
        conn = self._client_conn(client_id)
        if conn is not None:
            conn.send(make(conn.version))

    def _ready_conns(self) -> list[Conn]:
        return [c for c in self._conns if c.ready and not c.closed]
