"""Transport: the API sessions of the simulated gateway.

The asyncio listener's per-socket loop (handshake, framing, one message at a time), the
session lifecycle (startApi, one live session per client id, aborts), TWS's per-client pacing,
and the log of what clients sent with the waits tests build on. What a message means is the
handlers' business (``_dispatch``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from brokers.ibsim import messages as m
from brokers.ibsim import requests as rq
from brokers.ibsim.state import SimState
from brokers.ibsim.wire import (
    MAGIC,
    WireError,
    encode_fields,
    frame,
    parse_version_range,
    read_frame,
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
    clock: Callable[[], float]
    received: deque[Received]
    handler_errors: list[str]
    _conns: set[Conn]
    _by_client: dict[int, Conn]
    _conn_tasks: set[asyncio.Task[None]]
    _link_up: bool
    _changed: asyncio.Event

    # provided by the request handlers
    _dispatch: Callable[[Conn, int, list[str]], None]

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
        if task is not None:
            self._conn_tasks.add(task)
        peer = writer.get_extra_info("peername")
        conn = Conn(writer=writer, peer=str(peer))
        self._conns.add(conn)
        try:
            if await self._handshake(reader, conn):
                while not conn.closed:
                    payload = await read_frame(reader)
                    if payload is None:
                        break
                    fields = split_payload(payload)
                    if fields:
                        self._on_message(conn, fields)
        except (WireError, ConnectionError, OSError, asyncio.IncompleteReadError) as e:
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

    def _forget(self, conn: Conn) -> None:
        self._conns.discard(conn)
        if conn.client_id is not None and self._by_client.get(conn.client_id) is conn:
            del self._by_client[conn.client_id]

    def _abort_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
            self._forget(conn)
        self._notify()

    async def _handshake(self, reader: asyncio.StreamReader, conn: Conn) -> bool:
        magic = await reader.readexactly(len(MAGIC))
        if magic != MAGIC:
            raise WireError(f"expected the API magic, got {magic!r}")
        payload = await read_frame(reader)
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

    def _on_message(self, conn: Conn, fields: list[str]) -> None:
        self.received.append(Received(conn.client_id, fields, self.clock()))
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s sent a message without an id: %r", conn.client_id, fields[:3])
            return
        try:
            if not self._pace(conn):
                return
            if msg_id == rq.START_API:
                self._start_api(conn, fields)
            elif not conn.ready:
                log.warning("client %s sent message %d before startApi: ignored", conn.peer, msg_id)
            else:
                self._dispatch(conn, msg_id, fields)
        finally:
            self._notify()

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

    def _start_api(self, conn: Conn, fields: list[str]) -> None:
        if conn.ready:
            return
        try:
            client_id = int(fields[2])
        except (IndexError, ValueError):
            conn.send(m.error(conn.version, -1, 320, f"Error reading request: startApi {fields[1:]!r}"))
            conn.close()
            return
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
