"""The simulator's bytes, without sockets: framing, version negotiation text, every outgoing
layout decoded by ib_async's own Decoder at every server version from 157 to 178, and
placeOrder as ib_async's Client really writes it, parsed back."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from ib_async import Contract, LimitOrder, MarketOrder, Order, Stock, TagValue
from ib_async.client import Client
from ib_async.decoder import Decoder
from ib_async.order import PriceCondition

from brokers.ibkr import convert
from brokers.ibsim import messages as m
from brokers.ibsim.contracts import contract_info
from brokers.ibsim.requests import BadRequest, parse_place_order
from brokers.ibsim.state import SimExecution, SimOrder, SimPosition
from brokers.ibsim.wire import (
    UNSET_DOUBLE,
    WireError,
    encode_fields,
    fmt,
    frame,
    parse_version_range,
    read_frame,
    split_payload,
)
from core.domain.model import Order as EngineOrder
from core.domain.model import OrderType, Side, TimeInForce

VERSIONS = list(range(157, 179))
AAPL = contract_info("AAPL", 265598)


# --------------------------------------------------------------------------- framing


def test_fmt_renders_fields_as_tws_does() -> None:
    assert fmt(None) == ""
    assert fmt(True) == "1" and fmt(False) == "0"
    assert fmt(Decimal("150.00")) == "150"
    assert fmt(Decimal("0.10")) == "0.1"
    assert fmt(Decimal("1E+2")) == "100"
    assert fmt(Decimal("-0.005")) == "-0.005"
    assert fmt(7) == "7" and fmt(1.5) == "1.5" and fmt("x") == "x"


async def test_frames_round_trip_through_a_stream() -> None:
    reader = asyncio.StreamReader()
    payload = encode_fields([9, 1, 42])
    data = frame(payload) + frame(encode_fields(["4", 2, -1, 2104, "ok", ""]))
    reader.feed_data(data[:3])
    reader.feed_data(data[3:])
    reader.feed_eof()
    assert split_payload(await read_frame(reader)) == ["9", "1", "42"]
    assert split_payload(await read_frame(reader)) == ["4", "2", "-1", "2104", "ok", ""]
    assert await read_frame(reader) is None


async def test_a_truncated_frame_is_a_wire_error() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(b"9\x001\x00")[:-2])
    reader.feed_eof()
    with pytest.raises(WireError):
        await read_frame(reader)


def test_version_announcements() -> None:
    assert parse_version_range("v157..178") == (157, 178)
    assert parse_version_range("v100..176 +PACEAPI") == (100, 176)
    assert parse_version_range("v170") == (170, 170)
    for bad in ("", "157..178", "vx..y", "v178..157"):
        with pytest.raises(WireError):
            parse_version_range(bad)


# --------------------------------------------------------------------------- layouts


class Recorder:
    """A wrapper that records every call the Decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

        class _IB:
            TimezoneTWS = ""

        self.ib = _IB()
        self.defaultTimezone = timezone.utc

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


class _Raise(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise AssertionError(f"decoder error: {record.getMessage()} {record.exc_info}")


def decode(version: int, msg: list[object]) -> tuple[str, tuple[Any, ...]]:
    """Run one message through ib_async's Decoder; return the single wrapper call it made."""
    rec = Recorder()
    dec = Decoder(rec, version)
    dec.logger.addHandler(handler := _Raise())
    try:
        dec.interpret(split_payload(encode_fields(msg)))
    finally:
        dec.logger.removeHandler(handler)
    assert len(rec.calls) == 1, rec.calls
    return rec.calls[0]


def _order(**kw: Any) -> SimOrder:
    base: dict[str, Any] = dict(
        order_id=12, client_id=3, perm_id=1100000042, symbol="AAPL", con_id=265598, exchange="SMART",
        action="BUY", total_qty=Decimal(100), order_type="LMT", lmt_price=Decimal("150.25"), tif="GTC",
        account="DU1234567", order_ref="cid-77", status="Submitted", filled=Decimal(40),
        avg_fill_price=Decimal("150.2"), last_fill_price=Decimal("150.2"), placed_at=1_760_000_000.0,
        completed_at=1_760_000_100.0, completed_status="Filled",
    )
    base.update(kw)
    return SimOrder(**base)


def _open_order_len(v: int) -> int:
    """Fields the decoder reads from an openOrder without optional blocks (127 at 178)."""
    n = 127
    n += 1 if v < 177 else 0  # faProfile
    n -= 5 if v < 170 else 0  # PEG fields
    n -= 1 if v < 162 else 0  # autoCancelParent
    n -= 1 if v < 160 else 0  # postToAts
    n -= 1 if v < 159 else 0  # duration
    return n


@pytest.mark.parametrize("v", VERSIONS)
def test_open_order_layout(v: int) -> None:
    msg = m.open_order(v, _order(), AAPL)
    assert len(msg) == _open_order_len(v)
    name, (order_id, contract, order, state) = decode(v, msg)
    assert name == "openOrder" and order_id == 12
    assert (contract.conId, contract.symbol, contract.exchange, contract.secType) == (265598, "AAPL", "SMART", "STK")
    assert (order.orderRef, order.permId, order.clientId, order.orderId) == ("cid-77", 1100000042, 3, 12)
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice, order.tif) == (
        "BUY", 100.0, "LMT", 150.25, "GTC")
    assert order.auxPrice == float(UNSET_DOUBLE)
    assert state.status == "Submitted" and not order.whatIf
    assert order.account == "DU1234567"


@pytest.mark.parametrize("v", [157, 170, 178])
def test_what_if_open_order_carries_margins(v: int) -> None:
    rows = {"initMarginChange": "3750.5", "commission": "1", "commissionCurrency": "USD"}
    name, (_, _, order, state) = decode(v, m.open_order(v, _order(perm_id=0), AAPL, "PreSubmitted", rows))
    assert order.whatIf and state.initMarginChange == "3750.5" and state.commission == 1.0


@pytest.mark.parametrize("v", VERSIONS)
def test_completed_order_layout(v: int) -> None:
    msg = m.completed_order(v, _order(status="Filled", filled=Decimal(100)), AAPL)
    assert len(msg) == 96 + (1 if v < 177 else 0) - (5 if v < 170 else 0)
    name, (contract, order, state) = decode(v, msg)
    assert name == "completedOrder"
    assert (contract.conId, order.orderRef, order.permId, order.filledQuantity) == (265598, "cid-77", 1100000042, 100.0)
    assert state.status == "Filled" and state.completedStatus == "Filled"
    assert state.completedTime.startswith("20251009 ")


@pytest.mark.parametrize("v", VERSIONS)
def test_contract_details_layout(v: int) -> None:
    msg = m.contract_details(v, 7, AAPL, "SMART")
    assert len(msg) == (40 if v >= 163 else 39)  # 163: version + mdSizeMultiplier + suggestedSizeIncrement
    name, (req_id, cd) = decode(v, msg)
    assert name == "contractDetails" and req_id == 7
    c = cd.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency) == (
        265598, "AAPL", "STK", "SMART", "NASDAQ", "USD")
    assert cd.minTick == 0.01 and cd.longName == "AAPL COMMON STOCK (SIMULATED)" and cd.stockType == "COMMON"
    if v >= 164:
        assert cd.sizeIncrement == 0.0001 and cd.suggestedSizeIncrement == 100


@pytest.mark.parametrize("v", VERSIONS)
def test_exec_details_layout(v: int) -> None:
    e = SimExecution(
        exec_id="00000001.0000002a.01.01", order_id=12, client_id=3, perm_id=1100000042, symbol="AAPL",
        con_id=265598, side="BOT", shares=Decimal(40), price=Decimal("150.2"), time=1_760_000_000.0,
        cum_qty=Decimal(40), avg_price=Decimal("150.2"), order_ref="cid-77", account="DU1234567",
        exchange="NASDAQ", commission=Decimal("1.00"), realized_pnl=None,
    )
    msg = m.exec_details(v, -1, e, AAPL)
    assert len(msg) == (32 if v >= 178 else 31)
    name, (req_id, contract, ex) = decode(v, msg)
    assert name == "execDetails" and req_id == -1 and contract.conId == 265598
    assert (ex.execId, ex.orderId, ex.permId, ex.clientId, ex.side, ex.shares, ex.price, ex.cumQty, ex.orderRef) == (
        "00000001.0000002a.01.01", 12, 1100000042, 3, "BOT", 40.0, 150.2, 40.0, "cid-77")
    assert ex.time.timestamp() == 1_760_000_000.0

    name, (report,) = decode(v, m.commission_report(e))
    assert (report.execId, report.commission, report.currency) == ("00000001.0000002a.01.01", 1.0, "USD")
    assert report.realizedPNL == float(UNSET_DOUBLE)  # an opening fill realizes nothing, as IB says


@pytest.mark.parametrize("v", VERSIONS)
def test_error_layout(v: int) -> None:
    msg = m.error(v, 12, 201, "Order rejected - reason:test")
    assert len(msg) == (6 if v >= 166 else 5)
    assert decode(v, msg) == ("error", (12, 201, "Order rejected - reason:test", ""))


@pytest.mark.parametrize("v", [157, 175, 176, 178])
def test_symbol_samples_layout(v: int) -> None:
    name, (req_id, descriptions) = decode(v, m.symbol_samples(v, 5, [AAPL]))
    assert name == "symbolSamples" and req_id == 5
    assert descriptions[0].contract.conId == 265598 and descriptions[0].contract.symbol == "AAPL"
    if v >= 176:
        assert descriptions[0].contract.description == AAPL.long_name


@pytest.mark.parametrize("v", [157, 178])
def test_fixed_layouts(v: int) -> None:
    """Messages whose layout does not depend on the version: exact field counts and values."""
    pos = SimPosition("AAPL", 265598, Decimal(-30), Decimal("151.5"), Decimal("12.5"))
    cases: list[tuple[list[object], int, str, tuple[Any, ...] | None]] = [
        (m.tick_price(4, m.BID, Decimal("150.1"), 300), 7, "priceSizeTick", (4, 1, 150.1, 300.0)),
        (m.tick_size(4, m.VOLUME, 1200), 5, "tickSize", (4, 8, 1200.0)),
        (m.order_status(_order()), 12, "orderStatus", None),
        (m.next_valid_id(9), 3, "nextValidId", (9,)),
        (m.managed_accounts(["DU1"]), 3, "managedAccounts", ("DU1",)),
        (m.account_value("NetLiquidation", "1000", "USD", "DU1"), 6, "updateAccountValue",
         ("NetLiquidation", "1000", "USD", "DU1")),
        (m.account_time(1_760_000_000.0), 3, "updateAccountTime", ("08:53",)),
        (m.account_download_end("DU1"), 3, "accountDownloadEnd", ("DU1",)),
        (m.position_end(), 2, "positionEnd", ()),
        (m.open_order_end(), 2, "openOrderEnd", ()),
        (m.completed_orders_end(), 1, "completedOrdersEnd", ()),
        (m.exec_details_end(3), 3, "execDetailsEnd", (3,)),
        (m.contract_details_end(3), 3, "contractDetailsEnd", (3,)),
        (m.current_time(1_760_000_000.9), 3, "currentTime", (1_760_000_000,)),
        (m.account_update_multi(2, "DU1", "NetLiquidation", "5", "USD"), 8, "accountUpdateMulti",
         (2, "DU1", "", "NetLiquidation", "5", "USD")),
        (m.account_update_multi_end(2), 3, "accountUpdateMultiEnd", (2,)),
        (m.account_summary(2, "DU1", "NetLiquidation", "5", "USD"), 7, "accountSummary",
         (2, "DU1", "NetLiquidation", "5", "USD")),
        (m.account_summary_end(2), 3, "accountSummaryEnd", (2,)),
        (m.tick_req_params(4), 5, "tickReqParams", (4, 0.01, "9c0001", 3)),
        (m.tick_snapshot_end(4), 3, "tickSnapshotEnd", (4,)),
        (m.position_multi_end(2), 3, "positionMultiEnd", (2,)),
    ]
    for msg, n, name, args in cases:
        assert len(msg) == n, name
        got_name, got_args = decode(v, msg)
        assert got_name == name
        if args is not None:
            assert got_args == args, name
    name, args = decode(v, m.order_status(_order()))
    assert args == (12, "Submitted", 40.0, 60.0, 150.2, 1100000042, 0, 150.2, 3, "", float(UNSET_DOUBLE))

    msg = m.position("DU1", pos, AAPL)
    assert len(msg) == 16
    name, (account, contract, qty, avg) = decode(v, msg)
    assert (name, account, contract.conId, qty, avg) == ("position", "DU1", 265598, -30.0, 151.5)

    msg = m.portfolio_value(pos, AAPL, Decimal("150"), Decimal("-4500"), Decimal("45"), "DU1")
    assert len(msg) == 20
    name, (contract, qty, mark, value, avg, unreal, real, account) = decode(v, msg)
    assert (contract.symbol, qty, mark, value, avg, unreal, real, account) == (
        "AAPL", -30.0, 150.0, -4500.0, 151.5, 45.0, 12.5, "DU1")

    msg = m.position_multi(2, "DU1", pos, AAPL)
    assert len(msg) == 18
    name, (req_id, account, model, contract, qty, avg) = decode(v, msg)
    assert (name, req_id, account, contract.conId, qty, avg) == ("positionMulti", 2, "DU1", 265598, -30.0, 151.5)


def test_handshake_reply_is_exactly_two_fields() -> None:
    msg = m.handshake(170, 1_760_000_000.0)
    assert split_payload(encode_fields(msg)) == ["170", "20251009 08:53:20 UTC"]


# --------------------------------------------------------------------------- placeOrder as ib_async writes it


def written_by_ib_async(version: int, order_id: int, contract: Contract, order: Order) -> list[str]:
    """The fields ib_async's Client sends for placeOrder at ``version``."""
    sent: list[str] = []
    client = Client(wrapper=None)
    client.connState = Client.CONNECTED
    client._serverVersion = version
    client.sendMsg = sent.append  # type: ignore[method-assign]  # the test swaps in a probe
    client.placeOrder(order_id, contract, order)
    assert len(sent) == 1
    return sent[0].split("\0")[:-1]


def _orders() -> list[Order]:
    plain = LimitOrder("BUY", 100, 150.25, orderRef="cid-1", tif="GTC")
    algo = LimitOrder("SELL", 10, 99.5, orderRef="cid-algo", algoStrategy="Adaptive",
                      algoParams=[TagValue("adaptivePriority", "Normal")], hedgeType="D", hedgeParam="0.5")
    scale = LimitOrder("BUY", 50, 10, orderRef="cid-scale", scalePriceIncrement=0.05, scaleInitLevelSize=10)
    dn = MarketOrder("BUY", 5, orderRef="cid-dn", deltaNeutralOrderType="MKT")
    what_if = MarketOrder("SELL", 7, orderRef="cid-whatif", whatIf=True, outsideRth=True)
    cond = LimitOrder("BUY", 1, 2, orderRef="cid-cond")
    cond.conditions = [PriceCondition(price=100, conId=265598, exch="SMART")]
    return [plain, algo, scale, dn, what_if, cond]


@pytest.mark.parametrize("v", [157, 163, 169, 170, 176, 177, 178])
@pytest.mark.parametrize("order", _orders(), ids=lambda o: o.orderRef)
def test_place_order_as_ib_async_writes_it(v: int, order: Order) -> None:
    contract = Stock("AAPL", "SMART", "USD")
    fields = written_by_ib_async(v, 31, contract, order)
    req = parse_place_order(fields, v)
    assert req.order_id == 31
    assert (req.contract.symbol, req.contract.sec_type, req.contract.exchange, req.contract.currency) == (
        "AAPL", "STK", "SMART", "USD")
    assert (req.action, req.total_qty, req.order_type, req.order_ref) == (
        order.action, Decimal(str(order.totalQuantity)), order.orderType, order.orderRef)
    unset = order.lmtPrice in (None, float(UNSET_DOUBLE)) or math.isinf(order.lmtPrice)
    expected_lmt = None if unset else Decimal(str(order.lmtPrice))
    assert req.lmt_price == expected_lmt
    assert req.what_if == bool(order.whatIf)
    assert req.outside_rth == bool(order.outsideRth)
    assert req.conditions == len(order.conditions)
    assert req.transmit and req.parent_id == 0


@pytest.mark.parametrize("kind", [OrderType.LIMIT, OrderType.MARKET])
def test_the_adapters_order_and_stock_are_written_as_ib_asyncs_own(kind: OrderType) -> None:
    """SentOrder and SmartStock only change the repr (ib_async formats each Trade into its log at
    every placeOrder and orderStatus, at any level): the same bytes go out as for LimitOrder or
    MarketOrder on a Stock, and the repr still says which order it is."""
    ours = EngineOrder(client_order_id="cid-7", strategy="s", symbol="AAPL", side=Side.SELL, qty=Decimal(3),
                  order_type=kind, tif=TimeInForce.DAY, limit_price=Decimal("101.25") if kind is OrderType.LIMIT else None,
                  created_at=datetime(2026, 12, 3, tzinfo=timezone.utc))
    sent = convert.ib_order(ours, 31, "DU7")
    common = {"orderRef": "cid-7", "tif": "DAY", "orderId": 31, "transmit": True, "account": "DU7"}
    theirs = (LimitOrder("SELL", 3.0, 101.25, **common) if kind is OrderType.LIMIT else MarketOrder("SELL", 3.0, **common))
    for v in (157, 178):
        assert written_by_ib_async(v, 31, convert.stock("AAPL"), sent) == written_by_ib_async(
            v, 31, Stock("AAPL", "SMART", "USD"), theirs)
    shown = repr(sent)
    assert shown.startswith("SentOrder(orderId=31, ") and "action='SELL'" in shown and "orderRef='cid-7'" in shown
    assert ("lmtPrice=101.25" in shown) is (kind is OrderType.LIMIT)
    assert repr(convert.stock("AAPL")) == "SmartStock(conId=0, symbol='AAPL', exchange='SMART', currency='USD')"


def test_a_short_place_order_is_refused() -> None:
    fields = written_by_ib_async(178, 31, Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 2))
    with pytest.raises(BadRequest):
        parse_place_order(fields[:40], 178)
