"""Fuzzing the IB Gateway simulator's reading of clients (hypothesis).

The bulk goes to the pure decoder (``decode_client_frame``): random bytes, and byte- and
field-level mutations of the frames ib_async really writes, raise a ProtocolError or decode
into numbers a book can hold, never anything else. A few hundred go over real TCP to a
simulator that serves a well-behaved ib_async client at the same time: the simulator never
records a handler error, and the good client still trades at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock, TagValue
from ib_async.client import Client

from brokers.ibsim import IBGatewaySim
from brokers.ibsim.decode import ProtocolError, decode_client_frame
from brokers.ibsim.fields import INT_MAX, INT_MIN, MAX_MAGNITUDE
from brokers.ibsim.wire import encode_fields, frame, read_frame, split_payload

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import IBLogGuard  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

AAPL = Stock("AAPL", "SMART", "USD")


def _written(call: Callable[[Client], None]) -> list[str]:
    sent: list[str] = []
    client = Client(wrapper=None)
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.sendMsg = sent.append  # type: ignore[method-assign]  # the test swaps in a probe
    call(client)
    return sent[0].split("\0")[:-1]


SEEDS: list[list[str]] = [_written(c) for c in (
    lambda c: c.reqMktData(5, AAPL, "", False, False, []),
    lambda c: c.cancelMktData(5),
    lambda c: c.placeOrder(31, AAPL, LimitOrder("BUY", 10, 99.5, orderRef="fz-1", tif="GTC")),
    lambda c: c.placeOrder(32, AAPL, MarketOrder("SELL", 3, orderRef="fz-2")),
    lambda c: c.placeOrder(33, AAPL, LimitOrder("BUY", 1, 50, algoStrategy="Adaptive",
                                                algoParams=[TagValue("adaptivePriority", "Normal")])),
    lambda c: c.placeOrder(34, AAPL, MarketOrder("BUY", 2, whatIf=True)),
    lambda c: c.cancelOrder(31, ""),
    lambda c: c.reqOpenOrders(),
    lambda c: c.reqAllOpenOrders(),
    lambda c: c.reqAccountUpdates(True, "DU1234567"),
    lambda c: c.reqExecutions(6, ExecutionFilter()),
    lambda c: c.reqIds(1),
    lambda c: c.reqContractDetails(7, AAPL),
    lambda c: c.reqAutoOpenOrders(True),
    lambda c: c.reqManagedAccts(),
    lambda c: c.reqHistoricalData(8, AAPL, "", "1 D", "1 min", "TRADES", True, 1, False, []),
    lambda c: c.reqRealTimeBars(9, AAPL, 5, "TRADES", True, []),
    lambda c: c.reqCurrentTime(),
    lambda c: c.reqMarketDataType(3),
    lambda c: c.reqPositions(),
    lambda c: c.cancelPositions(),
    lambda c: c.reqAccountSummary(10, "All", "NetLiquidation,BuyingPower"),
    lambda c: c.cancelAccountSummary(10),
    lambda c: c.reqPositionsMulti(11, "DU1234567", ""),
    lambda c: c.cancelPositionsMulti(11),
    lambda c: c.reqAccountUpdatesMulti(12, "DU1234567", "", False),
    lambda c: c.cancelAccountUpdatesMulti(12),
    lambda c: c.reqMatchingSymbols(13, "AA"),
    lambda c: c.reqHeadTimeStamp(14, AAPL, "TRADES", True, 1),
    lambda c: c.reqPnL(15, "DU1234567", ""),
    lambda c: c.reqCompletedOrders(False),
    lambda c: c.reqTickByTickData(16, AAPL, "Last", 0, False),
    lambda c: c.reqGlobalCancel(),
    lambda c: c.startApi(),
)]

HUGE_VALUES = ["9" * 5000, "-" + "9" * 4400, "1" + "0" * 4000, "1e300", "-1e300", "1E-999999", "9" * 64,
               "1" + "0" * 15, "2147483648", "-2147483649", "x" * 3000]
HOSTILE_VALUES = ["", "-1", "0", "2147483647", "0E-9999", "NaN", "Infinite", "inf", "-0", "+7", "1_0", " 5",
                  "\\xff", "BUY", "SELL", "LMT", "MKT", "IOC", "STK", "SMART", "USD", "AAPL", "0.000001",
                  "1.7976931348623157e+308", "99999999999999", "A,B,C", "DU1234567"]

field_value = st.one_of(
    st.sampled_from(HUGE_VALUES),
    st.sampled_from(HOSTILE_VALUES),
    st.integers(-(2**40), 2**40).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(st.characters(blacklist_characters="\0"), max_size=12),
)


@st.composite
def field_mutation(draw: st.DrawFn) -> list[str]:
    """A frame ib_async writes, with some fields replaced, dropped, added or cut off."""
    fields = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("replace", "replace", "replace", "drop", "insert", "truncate")))
        last = max(len(fields) - 1, 0)
        at = draw(st.one_of(st.integers(0, min(3, last)), st.integers(0, last)))  # ids sit up front
        if op == "replace" and fields:
            fields[at] = draw(field_value)
        elif op == "drop" and fields:
            del fields[at]
        elif op == "insert":
            fields.insert(at, draw(field_value))
        elif op == "truncate":
            del fields[at:]
    return fields


def framed(fields: list[str]) -> bytes:
    return frame(b"".join(f.encode("utf-8", "surrogatepass") + b"\0" for f in fields))


@st.composite
def byte_mutation(draw: st.DrawFn) -> bytes:
    """A valid frame with bytes flipped, inserted, deleted, or its length prefix rewritten."""
    data = bytearray(framed(draw(st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "prefix", "cut")))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "prefix":
            data[:4] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
        else:
            del data[at:]
    return bytes(data)


# What a client sends before the first frame: the API magic and a version announcement, or not.
opening = st.one_of(
    st.binary(max_size=48),
    st.one_of(st.binary(max_size=24), st.sampled_from([b"v" + b"9" * 5000, b"v157..178", b"v178..157", b"v1..",
                                                       b"v157..178 +PACEAPI", b"v" + b"1" * 7]))
    .map(lambda v: b"API\0" + frame(v)),
)

any_frame = st.one_of(
    field_mutation().map(framed),
    byte_mutation(),
    st.binary(max_size=200).map(frame),
    st.binary(max_size=64),
)


def _check_bounded(value: Any, path: str = "body") -> None:
    """Every number a decoded request carries is one the book, the prices and the state file can hold."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        assert INT_MIN <= value <= INT_MAX, (path, value)
    elif isinstance(value, Decimal):
        assert value.is_finite() and abs(value) < MAX_MAGNITUDE, (path, value)
        assert len(format(value, "f")) < 80, (path, value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _check_bounded(getattr(value, f.name), f"{path}.{f.name}")


@settings(max_examples=2500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=any_frame, version=st.integers(157, 178))
def test_the_decoder_raises_only_protocol_errors_and_bounds_every_number(data: bytes, version: int) -> None:
    try:
        msg = decode_client_frame(data, version)
    except ProtocolError as e:
        assert "\n" not in str(e) and len(str(e)) < 200, str(e)[:200]
        return
    assert INT_MIN <= msg.msg_id <= INT_MAX
    _check_bounded(msg.body)


def test_every_seed_decodes() -> None:
    for fields in SEEDS:
        assert decode_client_frame(framed(fields)).msg_id == int(fields[0])


# --------------------------------------------------------------------------- over TCP, beside a good client


class SimThread:
    """A simulator and a well-behaved ib_async client on an event loop of their own thread,
    so that a synchronous hypothesis test can drive hostile sockets at them."""

    def __init__(self, state: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ibsim-fuzz", daemon=True)
        self.thread.start()
        self.sim = IBGatewaySim(state, pacing_limit=None)  # pacing would drop the fuzz before the decoder
        self.good = IB()
        self.hostile: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.run(self._start())

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        await self.sim.start()
        await self.good.connectAsync("127.0.0.1", self.sim.port, clientId=1, timeout=5, raiseSyncErrors=True)
        await self.sim.set_price("AAPL", 100)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.sim.port)
        writer.write(b"API\0" + frame(b"v157..178") + frame(encode_fields([71, 2, 50, ""])))
        return reader, writer

    async def send_framed(self, frames: list[bytes]) -> None:
        """Well-framed hostile requests on the hostile session, then a probe it must answer."""
        if self.hostile is None or self.hostile[1].is_closing():
            self.hostile = await self._open()
        reader, writer = self.hostile
        writer.write(b"".join(frames) + frame(encode_fields([49, 1])))
        while True:
            payload = await asyncio.wait_for(read_frame(reader), 5)
            if payload is None:  # a startApi with a client id in use (326) closes: next time, a new session
                writer.close()
                self.hostile = None
                return
            if split_payload(payload)[0] == "49":
                return

    async def send_broken(self, data: bytes, handshake: bool = True) -> None:
        """Bytes that may break the framing, on a fresh socket (after the handshake, or instead of
        it): then end of stream, and the simulator hangs up."""
        if handshake:
            reader, writer = await self._open()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.sim.port)
        writer.write(data)
        writer.write_eof()
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
        writer.close()

    async def trade(self) -> str:
        [c] = await self.good.qualifyContractsAsync(AAPL)
        trade = self.good.placeOrder(c, MarketOrder("BUY", 1, orderRef="good-after-fuzz"))
        for _ in range(1000):
            if trade.orderStatus.status == "Filled":
                break
            await asyncio.sleep(0.005)
        await asyncio.wait_for(self.good.reqCurrentTimeAsync(), 5)
        return trade.orderStatus.status

    async def _stop(self) -> None:
        if self.hostile is not None:
            self.hostile[1].close()
        self.good.disconnect()
        await self.sim.stop()

    def close(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def sim_thread(tmp_path: Path) -> Iterator[SimThread]:
    guard = IBLogGuard()  # the good client's ib_async must log no error at all
    logging.getLogger("ib_async").addHandler(guard)
    st_ = SimThread(tmp_path / "fuzz-state.json")
    try:
        yield st_
    finally:
        st_.close()
        logging.getLogger("ib_async").removeHandler(guard)
    assert not guard.unexpected(), guard.unexpected()


def test_hostile_frames_over_tcp_never_crash_the_simulator_and_a_good_client_trades_on(
    sim_thread: SimThread,
) -> None:
    st_ = sim_thread

    @settings(max_examples=400, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(frames=st.lists(field_mutation().map(framed), min_size=1, max_size=6),
           broken=st.one_of(st.none(), byte_mutation(), st.binary(max_size=64)),
           first=st.one_of(st.none(), opening))
    def hostile(frames: list[bytes], broken: bytes | None, first: bytes | None) -> None:
        errors = st_.sim.handler_errors
        before = len(errors)  # the simulator is shared: this example's own errors shrink to a culprit
        st_.run(st_.send_framed(frames))
        if broken is not None:
            st_.run(st_.send_broken(broken))
        if first is not None:
            st_.run(st_.send_broken(first, handshake=False))
        assert errors[before:] == [], errors[before:]

    hostile()
    assert st_.run(st_.trade()) == "Filled"
    assert st_.good.isConnected() and 1 in st_.sim.clients
    assert st_.sim.handler_errors == [] and st_.sim.save_errors == []
    assert st_.sim.count_received(3) > 20  # mutated orders did reach the order handling
