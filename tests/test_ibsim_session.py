"""Connections to the simulator over real TCP: version negotiation, the start-up sync of a
real ib_async client, client ids, pacing, connectivity status codes, unknown requests."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim
from brokers.ibsim.wire import encode_fields, frame, read_frame, split_payload

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import Connect, IBLogGuard, eventually, status  # noqa: E402 - after register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]


async def raw_handshake(port: int, announce: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + frame(announce))
    await writer.drain()
    payload = await asyncio.wait_for(read_frame(reader), 5)
    assert payload is not None
    return reader, writer, split_payload(payload)


async def read_msg(reader: asyncio.StreamReader) -> list[str]:
    payload = await asyncio.wait_for(read_frame(reader), 5)
    assert payload is not None, "the simulator closed the connection"
    return split_payload(payload)


# --------------------------------------------------------------------------- negotiation


async def test_ib_async_gets_server_version_178_and_syncs_at_once(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect(client_id=1)
    assert ib.client.serverVersion() == 178
    # Every start-up request was answered: a silent one would have cost the 5 s timeout
    # (and raiseSyncErrors would have raised).
    assert ib.connect_seconds < 1.5  # type: ignore[attr-defined]  # a timing the fixture hangs on the client
    assert ib.managedAccounts() == ["DU1234567"]
    startup = {r.msg_id for r in sim.received}
    assert {71, 61, 5, 99, 6, 76, 7} <= startup
    values = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD" and not v.modelCode}
    assert float(values["NetLiquidation"]) == 1_000_000.0
    assert float(values["TotalCashValue"]) == 1_000_000.0
    assert ib.positions() == [] and ib.openTrades() == [] and ib.fills() == []
    assert sim.clients == [1]


async def test_raw_client_announcing_157_to_170_gets_170(sim: IBGatewaySim) -> None:
    reader, writer, reply = await raw_handshake(sim.port, b"v157..170")
    try:
        assert len(reply) == 2 and reply[0] == "170"
        time.strptime(reply[1], "%Y%m%d %H:%M:%S UTC")
        writer.write(frame(encode_fields([71, 2, 9, ""])))
        assert await read_msg(reader) == ["15", "1", "DU1234567"]
        next_id = await read_msg(reader)
        assert next_id[:2] == ["9", "1"] and int(next_id[2]) >= 1 and len(next_id) == 3
        # An error at 170 carries the advanced-reject JSON field (>= 166): 6 fields.
        farm = await read_msg(reader)
        assert farm[:4] == ["4", "2", "-1", "2104"] and len(farm) == 6
        # reqContractDetails at 170 (no issuerId): the reply has no version field (>= 164).
        writer.write(frame(encode_fields([9, 8, 4, 0, "MSFT", "STK", "", 0, "", "", "SMART", "", "USD", "", "", 0, "", ""])))
        while (msg := await read_msg(reader))[0] == "4":
            pass
        assert msg[0] == "10" and msg[1] == "4" and msg[2] == "MSFT" and len(msg) == 40
        assert await read_msg(reader) == ["52", "1", "4"]
    finally:
        writer.close()


@pytest.mark.parametrize(("announce", "expected"), [(b"v157..200", "178"), (b"v160..165", "165"), (b"v176", "176"),
                                                    (b"v100..176 +PACEAPI", "176")])
async def test_negotiated_version_is_min_of_client_max_and_178(sim: IBGatewaySim, announce: bytes, expected: str) -> None:
    reader, writer, reply = await raw_handshake(sim.port, announce)
    writer.close()
    assert reply[0] == expected


async def test_raw_client_below_157_is_closed(sim: IBGatewaySim) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        writer.write(b"API\0" + frame(b"v100..150"))
        assert await asyncio.wait_for(read_frame(reader), 5) is None
    finally:
        writer.close()


@pytest.mark.parametrize("version", [157, 163, 170, 176])
async def test_whole_flow_at_older_server_versions(
    version: int, sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    """ib_async's decoder branches between 157 and 178; every branch must decode cleanly."""
    ib_log.expect(202)
    ib = await connect(client_id=3, max_version=version)
    assert ib.client.serverVersion() == version
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    assert aapl is not None and aapl.conId
    await sim.set_price("AAPL", 100)
    filled = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef=f"v{version}-mkt"))
    await status(filled, "Filled")
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 50, orderRef=f"v{version}-lmt"))
    await status(resting, "Submitted")
    ib.cancelOrder(resting.order)
    await status(resting, "Cancelled")
    completed = await ib.reqCompletedOrdersAsync(False)
    assert {t.order.orderRef for t in completed} == {f"v{version}-mkt", f"v{version}-lmt"}
    fills = await ib.reqExecutionsAsync()
    assert [f.execution.orderRef for f in fills] == [f"v{version}-mkt"]
    await eventually(lambda: len(ib.positions()) == 1, what="position pushed")
    assert ib.positions()[0].position == 10
    assert ib_log.decoder_errors() == []


# --------------------------------------------------------------------------- client ids


async def test_client_id_in_use_is_refused_with_326(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(326)
    ib_log.allow("Peer closed connection", "API connection failed")
    first = await connect(client_id=5)
    second = IB()
    codes: list[int] = []
    second.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    closed = asyncio.Event()
    second.client.apiError += lambda msg: closed.set()
    attempt = asyncio.create_task(second.connectAsync("127.0.0.1", sim.port, clientId=5, timeout=10))
    try:
        await asyncio.wait_for(closed.wait(), 5)  # the simulator closed the socket after the error
        assert codes == [326]
        assert not second.isConnected()
    finally:
        attempt.cancel()
        with pytest.raises((asyncio.CancelledError, ConnectionError)):
            await attempt
        second.disconnect()
    # The first session is untouched, and the id is free again once it leaves.
    assert first.isConnected() and sim.clients == [5]
    assert await asyncio.wait_for(first.reqCurrentTimeAsync(), 5)
    first.disconnect()
    await sim.wait_for(lambda: sim.clients == [])
    again = await connect(client_id=5)
    assert again.isConnected()


async def test_drop_connections_cuts_every_session(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.allow("Peer closed connection")
    a = await connect(client_id=1)
    b = await connect(client_id=2)
    assert sim.clients == [1, 2]
    await sim.drop_connections()
    await eventually(lambda: not a.isConnected() and not b.isConnected(), what="both clients see the drop")
    assert sim.clients == []
    back = await connect(client_id=1)
    assert back.isConnected() and sim.clients == [1]


# --------------------------------------------------------------------------- robustness


async def test_unknown_and_unsimulated_requests_do_not_break_the_session(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    ib_log.expect(162, 320)
    ib = await connect()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    ib.client.send(9999, 1, "nonsense")  # no such message id
    ib.client.send(3)  # a placeOrder with no fields at all
    bars = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(Stock("AAPL", "SMART", "USD"), "", "1 D", "1 min", "TRADES", True), 5
    )
    assert list(bars) == []  # answered with error 162 instead of hanging
    assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    assert ib.isConnected()
    assert sim.count_received(9999) == 1
    assert codes == [320, 162]  # the empty placeOrder is refused as unreadable


# --------------------------------------------------------------------------- pacing


async def test_burst_above_50_per_second_gets_error_100(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(100)
    ib = await connect()
    answers: list[int] = []
    original = ib.wrapper.currentTime
    ib.wrapper.currentTime = lambda t: (answers.append(t), original(t))  # type: ignore[method-assign]  # the test swaps in a probe
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    ib.client.MaxRequests = 0  # switch off ib_async's own throttle, as a careless client would
    for _ in range(60):
        ib.client.reqCurrentTime()
    await sim.wait_received(49, 60)
    await eventually(lambda: len(answers) + codes.count(100) == 60, what="every request answered or refused")
    assert codes.count(100) >= 10  # 50 per second at most, start-up messages included
    assert len(answers) <= 50
    assert ib.isConnected()  # a single burst is dropped, not punished with a disconnect


async def test_sustained_pacing_breach_disconnects(sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard) -> None:
    ib_log.expect(100)
    ib_log.allow("Peer closed connection")
    sim.pacing_disconnect_after = 5
    ib = await connect()
    ib.client.MaxRequests = 0
    for _ in range(80):
        ib.client.reqCurrentTime()
    await eventually(lambda: not ib.isConnected(), what="the simulator to hang up")
    assert sim.clients == []


# --------------------------------------------------------------------------- connectivity status


async def _barrier(ib: IB) -> None:
    """Once this round trip completes, everything the simulator sent before it has arrived."""
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)


@pytest.mark.parametrize("restored", [1102, 1101])
async def test_connectivity_lost_then_restored(
    restored: int, sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard
) -> None:
    ib_log.expect(1100, restored)
    ib = await connect()
    [c] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code))
    await sim.set_price("MSFT", 200)
    ticker = ib.reqMktData(c)
    await eventually(lambda: ticker.last == 200, what="first tick")

    await sim.send_status(1100)
    await sim.set_price("MSFT", 201)  # no ticks while the link is down
    await _barrier(ib)
    assert seen == [(-1, 1100)] and ticker.last == 200 and ib.isConnected()

    await sim.send_status(restored)
    await _barrier(ib)
    assert seen == [(-1, 1100), (-1, restored)]
    await sim.set_price("MSFT", 202)
    await _barrier(ib)
    if restored == 1102:  # data maintained: the subscription streams again
        assert ticker.last == 202
    else:  # data lost: the client must subscribe again
        assert ticker.last == 200
        ib.cancelMktData(c)
        ticker = ib.reqMktData(c)
        await eventually(lambda: ticker.last == 202, what="ticks after resubscribing")


async def test_client_zero_and_the_master_client(
    tmp_path, ib_log: IBLogGuard, sim: IBGatewaySim, connect: Connect
) -> None:
    """Client 0 binds manual orders (reqAutoOpenOrders) but, like any client, sees only its
    own API orders; a configured master client id sees every client's executions."""
    sim.master_client_id = 99
    worker = await connect(client_id=4)
    [c] = await worker.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = worker.placeOrder(c, MarketOrder("BUY", 3, orderRef="w-1"))
    await status(trade, "Filled")
    zero = await connect(client_id=0)
    assert sim.count_received(15, client_id=0) == 1  # ib_async asks client 0 to bind manual orders
    assert zero.fills() == []
    master = await connect(client_id=99)
    assert [f.execution.orderRef for f in master.fills()] == ["w-1"]
    assert [p.position for p in zero.positions()] == [3.0]  # positions are account-wide


async def test_garbage_instead_of_the_handshake_is_closed(sim: IBGatewaySim, connect: Connect) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    ib = await connect()  # the simulator keeps serving
    assert ib.isConnected()


async def test_account_summary_and_multi_requests(sim: IBGatewaySim, connect: Connect) -> None:
    ib = await connect()
    summary = await asyncio.wait_for(ib.accountSummaryAsync(), 5)
    tags = {v.tag: v.value for v in summary}
    assert float(tags["NetLiquidation"]) == 1_000_000.0 and "BuyingPower" in tags
    multi = {v.tag for v in ib.accountValues() if v.account == "DU1234567"}
    assert {"NetLiquidation", "AvailableFunds", "RealizedPnL"} <= multi
