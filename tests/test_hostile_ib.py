"""Hostile input at the IB Gateway simulator, over real TCP: huge integers, numbers TWS would
not parse, missing fields, NUL-only and invalid UTF-8 payloads, an oversize length prefix, a
truncated frame, garbage and silence instead of the handshake, a flood of connections. Each
costs the sender an error 320 or its own connection, in one log line; the simulator never
raises and a well-behaved ib_async client connected at the same time trades on. Plus the pure
decoder the fuzzing campaign calls (``brokers.ibsim.decode.decode_client_frame``)."""

from __future__ import annotations

import asyncio
import logging
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim
from brokers.ibsim.wire import encode_fields, frame, read_frame, split_payload

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.conftest import ROOT  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import Connect, IBLogGuard, check_sim, eventually, status  # noqa: E402 - on purpose

pytest_plugins = ["tests.ibsim_fixtures"]

HUGE = "9" * 5000  # Python's int() refuses more than 4300 digits with ValueError
CONTRACT = [0, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", ""]


class Raw:
    """A hand-written API client: handshake, startApi, then whatever bytes the test sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, client_id: int | None = 50) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = cls(reader, writer)
        writer.write(b"API\0" + frame(b"v157..178"))
        assert (await raw.read())[0] == "178"
        if client_id is not None:
            raw.send(71, 2, client_id, "")
            while (await raw.read())[0] != "9":  # managedAccounts, then nextValidId
                pass
        return raw

    def send(self, *fields: object) -> None:
        self.writer.write(frame(encode_fields(fields)))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, timeout: float = 5.0) -> list[str]:
        payload = await asyncio.wait_for(read_frame(self.reader), timeout)
        assert payload is not None, "the simulator closed the connection"
        return split_payload(payload)

    async def error(self, timeout: float = 5.0) -> list[str]:
        """The next error message (``4,2,reqId,code,text,json``), skipping farm notices."""
        while True:
            msg = await self.read(timeout)
            if msg[0] == "4" and not msg[3].startswith("21"):
                return msg

    async def alive(self) -> None:
        """reqCurrentTime is answered: the session goes on."""
        self.send(49, 1)
        while (await self.read())[0] != "49":
            pass

    async def closed(self, timeout: float = 5.0) -> bool:
        """The simulator hangs up (whatever it sent before is skipped)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except (ConnectionError, OSError):
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def place_order_fields(order_id: object, qty: object = 10, lmt: object = "", order_type: str = "MKT") -> list[object]:
    """A placeOrder as ib_async writes it at 178, with the given order id, quantity and limit."""
    from ib_async.client import Client

    sent: list[str] = []
    client = Client(wrapper=None)
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.sendMsg = sent.append  # type: ignore[method-assign]  # the test swaps in a probe
    client.placeOrder(7, Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 10, orderRef="hostile"))
    fields: list[object] = list(sent[0].split("\0")[:-1])
    fields[1], fields[17], fields[18], fields[19] = order_id, qty, order_type, lmt
    return fields


@pytest.fixture
async def good(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> AsyncIterator[IB]:
    """A well-behaved ib_async client, connected throughout; it must trade at the end."""
    ib = await connect(client_id=1)
    yield ib
    assert ib.isConnected()
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef=f"good-{time.monotonic_ns()}"))
    await status(trade, "Filled")
    check_sim(sim)


def one_line_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "cockpit.ibsim" and r.levelno >= logging.WARNING]
    for r in caplog.records:
        if r.name == "cockpit.ibsim":
            assert r.exc_info is None, f"a traceback for hostile input: {r.getMessage()}"
            assert "\n" not in r.getMessage() and len(r.getMessage()) < 400, r.getMessage()[:200]
    return lines


# --------------------------------------------------------------------------- field-level: error 320, the session goes on


HOSTILE_REQUESTS = {
    "5000-digit request id in a no-data request": [20, HUGE, *CONTRACT, 0, "", "1 D", "1 min", "TRADES", 1, 1, 0, ""],
    "5000-digit order id to cancel": [4, 1, HUGE, ""],
    "5000-digit message id": [HUGE, 1],
    "5000-digit market data type": [59, 1, HUGE],
    "5000-digit request id of account summary": [62, 1, HUGE, "All", "NetLiquidation"],
    "order id beyond 32 bits": [4, 1, 2**31, ""],
    "non-numeric request id": [63, 1, "abc"],
    "unicode digits": [59, 1, "\u0663"],
    "underscores in a number": [74, 1, "1_0", "", ""],
    "missing fields": [62, 1],
    "missing request id": [77],
    "NUL-only payload": ["", "", ""],
    "invalid UTF-8": [b"\xff\xfe\xfd", b"\xc3("],
    "message id with spaces": [" 49 ", 1],
}


def _raw_frame(fields: list[object]) -> bytes:
    parts = [f if isinstance(f, bytes) else str(f).encode() for f in fields]
    return frame(b"".join(p + b"\0" for p in parts))


@pytest.mark.parametrize("fields", HOSTILE_REQUESTS.values(), ids=HOSTILE_REQUESTS.keys())
async def test_a_malformed_request_gets_320_and_the_session_goes_on(
    sim: IBGatewaySim, good: IB, ib_log: IBLogGuard, fields: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    raw = await Raw.open(sim.port)
    try:
        raw.send_bytes(_raw_frame(fields))
        err = await raw.error()
        assert err[3] == "320" and err[2] == "-1", err
        assert len(err[4]) < 300, "the error text echoes the hostile field whole"
        await raw.alive()
    finally:
        raw.close()
    assert sim.handler_errors == []
    [line] = one_line_records(caplog)
    assert "malformed request" in line


async def test_a_placeorder_with_a_5000_digit_id_or_absurd_numbers_is_refused(
    sim: IBGatewaySim, good: IB, ib_log: IBLogGuard, caplog: pytest.LogCaptureFixture
) -> None:
    """Huge-but-parseable numbers never reach the book: qty 10**4000, 1e300, 1e-999999, a
    5000-digit order id, a limit of 1e300."""
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    await sim.set_price("AAPL", 100)
    raw = await Raw.open(sim.port)
    cases = [
        (place_order_fields(HUGE), "-1"),
        (place_order_fields(31, qty="1" + "0" * 4000), "31"),
        (place_order_fields(32, qty="1e300"), "32"),
        (place_order_fields(33, qty="1E-999999"), "33"),
        (place_order_fields(34, qty="-" + HUGE), "34"),
        (place_order_fields(35, qty=10, lmt="1e300", order_type="LMT"), "35"),
        (place_order_fields(36, qty="NaN"), "36"),
    ]
    try:
        for fields, order_id in cases:
            raw.send_bytes(_raw_frame(fields))
            err = await raw.error()
            assert (err[2], err[3]) == (order_id, "320"), (fields[1:2], fields[17:20], err)
        await raw.alive()
    finally:
        raw.close()
    assert sim.orders() == [] and sim.executions() == [] and sim.state.cash == Decimal(1_000_000)
    assert sim.state.next_valid_id < 2**31
    assert len(one_line_records(caplog)) == len(cases)


# --------------------------------------------------------------------------- framing: that connection closes


async def test_an_oversize_length_prefix_closes_only_that_connection(
    sim: IBGatewaySim, good: IB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    raw = await Raw.open(sim.port)
    raw.send_bytes(struct.pack(">I", 8 * 1024 * 1024) + b"49\0")  # 8 MiB announced: refused before it is buffered
    assert await raw.closed()
    raw.close()
    [line] = one_line_records(caplog)
    assert "framing" in line and "refused" in line
    assert sim.clients == [1] and sim.handler_errors == []


async def test_a_frame_cut_short_and_garbage_handshakes_close_quietly(
    sim: IBGatewaySim, good: IB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    raw = await Raw.open(sim.port)
    raw.send_bytes(frame(b"49\0001\0")[:-3])
    raw.writer.write_eof()
    assert await raw.closed()
    raw.close()
    for opening in (b"API\0" + frame(b"v" + HUGE.encode()), b"API\0" + struct.pack(">I", 1 << 31),
                    b"\x00" * 64, b"API\0" + frame(b"\xff\xfe\0")):
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(opening)
        assert await Raw(reader, writer).closed()
        writer.close()
    assert sim.handler_errors == [] and sim.clients == [1]
    one_line_records(caplog)


# --------------------------------------------------------------------------- silence and floods


async def test_a_connection_that_never_finishes_the_handshake_is_closed(
    tmp_path: Path, ib_log: IBLogGuard, caplog: pytest.LogCaptureFixture
) -> None:
    """Silent, half-handshaken (version but no startApi) and trickling sockets are closed
    after handshake_timeout; a started ib_async session idle for longer stays."""
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    async with IBGatewaySim(tmp_path / "s.json", handshake_timeout=1.0) as sim:  # ib_async needs milliseconds
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5, raiseSyncErrors=True)
        try:
            started = time.monotonic()
            silent = await asyncio.open_connection("127.0.0.1", sim.port)
            half = await Raw.open(sim.port, client_id=None)
            trickle = await asyncio.open_connection("127.0.0.1", sim.port)
            trickle[1].write(b"API")  # the magic's last byte never comes
            for reader, writer in (silent, (half.reader, half.writer), trickle):
                assert await Raw(reader, writer).closed(timeout=10)
                writer.close()
            assert time.monotonic() - started >= 1.0
            lines = [r.getMessage() for r in caplog.records if "did not complete the API handshake" in r.getMessage()]
            assert len(lines) == 3, lines
            assert ib.isConnected() and sim.clients == [1]
            assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        finally:
            ib.disconnect()
        check_sim(sim)


async def test_a_flood_of_connections_is_bounded_and_drains(
    tmp_path: Path, ib_log: IBLogGuard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cockpit.ibsim")
    # 2 s: ample to open 200 sockets on a loaded box before the admitted five time out
    async with IBGatewaySim(tmp_path / "s.json", handshake_timeout=2.0, max_connections=6) as sim:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5, raiseSyncErrors=True)
        try:
            flood = [await asyncio.open_connection("127.0.0.1", sim.port) for _ in range(200)]
            await eventually(lambda: sim.refused_connections == 195, what="all but 5 refused")
            assert len(sim._conns) == 6
            for reader, writer in flood:  # the refused at once, the admitted after the timeout
                assert await Raw(reader, writer).closed(timeout=10)
                writer.close()
            await eventually(lambda: len(sim._conns) == 1, what="the flood drained")
            warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert sum("refusing new connections" in w for w in warnings) == 1, warnings
            assert sum("195 connection(s) were refused" in w for w in warnings) == 1, warnings
            late = IB()  # a slot is free again
            await late.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=5, raiseSyncErrors=True)
            late.disconnect()
            assert ib.isConnected()
        finally:
            ib.disconnect()
        check_sim(sim)


def test_cli_takes_the_limits_and_refuses_bad_ones(tmp_path: Path) -> None:
    for bad in (["--handshake-timeout", "nan"], ["--handshake-timeout", "-1"], ["--max-connections", "-3"]):
        r = subprocess.run([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", *bad], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("cockpit ib-sim: error: --")
        assert "Traceback" not in r.stderr
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--tick-interval", "0",
                             "--handshake-timeout", "0.5", "--max-connections", "2", "--state", str(tmp_path / "s")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split("127.0.0.1:")[1].split()[0])

        async def scenario() -> None:
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            for reader, writer in idle:  # two timed out, one refused
                assert await Raw(reader, writer).closed(timeout=10)
                writer.close()
            raw = await Raw.open(port)  # then a real session, idle past the timeout
            other = await asyncio.open_connection("127.0.0.1", port)
            assert await Raw(*other).closed(timeout=10)
            other[1].close()
            await raw.alive()
            raw.close()

        asyncio.run(scenario())
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.count("did not complete the API handshake") == 3, err
    assert err.count("refusing new connections") == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- the pure decoder


def test_decode_client_frame_reads_what_ib_async_writes_and_refuses_the_rest() -> None:
    from brokers.ibsim import requests as rq
    from brokers.ibsim.decode import BadRequest, ProtocolError, WireError, decode_client_frame

    msg = decode_client_frame(frame(encode_fields(place_order_fields(31, qty=10))))
    assert msg.msg_id == 3 and isinstance(msg.body, rq.PlaceOrder)
    assert (msg.body.order_id, msg.body.total_qty, msg.body.contract.symbol) == (31, Decimal(10), "AAPL")
    assert decode_client_frame(frame(encode_fields([49, 1]))).body is None
    start = decode_client_frame(frame(encode_fields([71, 2, 7, ""])))
    assert start.body == rq.StartApi(7, "")
    for data, kind in [
        (b"", WireError), (b"\0\0\0", WireError), (frame(b"49\0")[:-1], WireError), (frame(b"49\0") + b"x", WireError),
        (struct.pack(">I", 2**32 - 1), WireError), (frame(b""), BadRequest), (frame(HUGE.encode() + b"\0"), BadRequest),
        (_raw_frame([4, 1, HUGE]), BadRequest), (_raw_frame(place_order_fields(1, qty="1e300")), BadRequest),
        (_raw_frame([71, 2]), BadRequest), (_raw_frame([b"\xff"]), BadRequest),
    ]:
        with pytest.raises(kind):
            decode_client_frame(data)
        assert issubclass(kind, ProtocolError)
