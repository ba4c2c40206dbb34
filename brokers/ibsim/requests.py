"""Client -> server messages: the request ids and the decoders for the ones with a body.

placeOrder has no version field and a layout that depends on the server version and on
the order itself (delta-neutral, scale, hedge, algo, PEG BENCH and condition blocks), so
it is read with a cursor that mirrors the client's writer field by field; a message that
runs short raises :class:`BadRequest` instead of being half-understood. Every other request
the simulator acts on is decoded here too (``decode_fields``), into a small typed body, so
that the handlers never read a raw field and a malformed request is refused in one place.
Numbers go through ``fields`` (Java-sized ints, bounded decimals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from brokers.ibsim.fields import BadRequest, parse_int, parse_number

__all__ = [
    "AccountSummary",
    "AccountUpdates",
    "BadRequest",
    "CancelOrder",
    "ClientMessage",
    "ContractDetailsRequest",
    "ContractSpec",
    "ExecFilter",
    "Flag",
    "MarketDataType",
    "MatchingSymbols",
    "MktDataRequest",
    "PlaceOrder",
    "ReqId",
    "StartApi",
    "decode_fields",
    "parse_contract_details_request",
    "parse_exec_filter",
    "parse_mkt_data",
    "parse_place_order",
]

# Client -> server message ids.
REQ_MKT_DATA = 1
CANCEL_MKT_DATA = 2
PLACE_ORDER = 3
CANCEL_ORDER = 4
REQ_OPEN_ORDERS = 5
REQ_ACCT_DATA = 6
REQ_EXECUTIONS = 7
REQ_IDS = 8
REQ_CONTRACT_DATA = 9
REQ_MKT_DEPTH = 10
REQ_AUTO_OPEN_ORDERS = 15
REQ_ALL_OPEN_ORDERS = 16
REQ_MANAGED_ACCTS = 17
REQ_HISTORICAL_DATA = 20
REQ_CURRENT_TIME = 49
REQ_REAL_TIME_BARS = 50
REQ_GLOBAL_CANCEL = 58
REQ_MARKET_DATA_TYPE = 59
REQ_POSITIONS = 61
REQ_ACCOUNT_SUMMARY = 62
CANCEL_ACCOUNT_SUMMARY = 63
CANCEL_POSITIONS = 64
START_API = 71
REQ_POSITIONS_MULTI = 74
CANCEL_POSITIONS_MULTI = 75
REQ_ACCOUNT_UPDATES_MULTI = 76
CANCEL_ACCOUNT_UPDATES_MULTI = 77
REQ_MATCHING_SYMBOLS = 81
REQ_HEAD_TIMESTAMP = 87
REQ_PNL = 92
REQ_PNL_SINGLE = 94
REQ_HISTORICAL_TICKS = 96
REQ_TICK_BY_TICK_DATA = 97
REQ_COMPLETED_ORDERS = 99

class _Cursor:
    """Reads a request field by field; running short or a malformed number is a BadRequest."""

    def __init__(self, fields: list[str], start: int) -> None:
        self.fields = fields
        self.i = start

    def text(self) -> str:
        if self.i >= len(self.fields):
            raise BadRequest(f"message ended after {len(self.fields)} fields")
        v = self.fields[self.i]
        self.i += 1
        return v

    def opt_text(self) -> str:
        """A trailing field older clients leave out."""
        return self.text() if self.i < len(self.fields) else ""

    def integer(self, default: int = 0) -> int:
        v = self.text()
        return parse_int(v, f"field {self.i - 1}") if v else default

    def number(self) -> Decimal | None:
        v = self.text()
        return parse_number(v, f"field {self.i - 1}") if v else None

    def flag(self) -> bool:
        return self.integer() != 0

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.text()


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The 12 contract fields a client sends (conId .. tradingClass)."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str

    @classmethod
    def read(cls, cur: _Cursor) -> ContractSpec:
        con_id = cur.integer()
        symbol = cur.text()
        sec_type = cur.text()
        cur.skip(4)  # lastTradeDateOrContractMonth, strike, right, multiplier
        exchange = cur.text()
        primary = cur.text()
        currency = cur.text()
        local_symbol = cur.text()
        cur.skip(1)  # tradingClass
        return cls(con_id, symbol.strip().upper(), sec_type.upper(), exchange.upper(), primary.upper(),
                   currency.upper(), local_symbol.strip().upper())


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """The parts of a placeOrder the simulator acts on."""

    order_id: int
    contract: ContractSpec
    action: str
    total_qty: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    good_till_date: str
    what_if: bool
    conditions: int


def parse_place_order(fields: list[str], version: int) -> PlaceOrder:
    """Decode placeOrder as the client writes it at ``version`` (see ib_async ``Client.placeOrder``)."""
    cur = _Cursor(fields, 1)
    order_id = cur.integer()
    contract = ContractSpec.read(cur)
    cur.skip(2)  # secIdType, secId
    action = cur.text().upper()
    qty = cur.number()
    order_type = cur.text().upper()
    lmt = cur.number()
    aux = cur.number()
    tif = cur.text().upper()
    cur.skip(1)  # ocaGroup
    account = cur.text()
    cur.skip(2)  # openClose, origin
    order_ref = cur.text()
    transmit_field = cur.text()
    transmit = transmit_field != "0"  # empty means the default, which is to transmit
    parent_id = cur.integer()
    cur.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = cur.flag()
    cur.skip(1)  # hidden
    if contract.sec_type == "BAG":
        legs = cur.integer()
        cur.skip(8 * legs)
        cur.skip(cur.integer())  # order combo leg prices
        cur.skip(2 * cur.integer())  # smart combo routing params
    cur.skip(3)  # deprecated sharesAllocation, discretionaryAmt, goodAfterTime
    good_till_date = cur.text()
    cur.skip(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        cur.skip(1)  # faProfile
    cur.skip(20)  # modelCode .. overridePercentageConstraints
    cur.skip(2)  # volatility, volatilityType
    dn_type = cur.text()
    cur.skip(1)  # deltaNeutralAuxPrice
    if dn_type:
        cur.skip(8)
    cur.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = cur.number()
    if increment is not None and increment > 0:
        cur.skip(7)
    cur.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if cur.text():  # hedgeType
        cur.skip(1)
    cur.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if cur.flag():  # delta-neutral contract
        cur.skip(3)
    if cur.text():  # algoStrategy
        cur.skip(2 * cur.integer())
    cur.skip(1)  # algoId
    what_if = cur.flag()
    cur.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        cur.skip(5)
    conditions = cur.integer()
    if qty is None:
        raise BadRequest("order without a quantity")
    return PlaceOrder(
        order_id=order_id,
        contract=contract,
        action=action,
        total_qty=qty,
        order_type=order_type,
        lmt_price=lmt,
        aux_price=aux,
        tif=tif or "DAY",
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        good_till_date=good_till_date,
        what_if=what_if,
        conditions=conditions,
    )


@dataclass(frozen=True, slots=True)
class MktDataRequest:
    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool


def parse_mkt_data(fields: list[str]) -> MktDataRequest:
    """reqMktData: ``1,11,reqId,<12 contract>,[BAG legs],dnc,...,genericTicks,snapshot,...``."""
    cur = _Cursor(fields, 2)
    req_id = cur.integer()
    contract = ContractSpec.read(cur)
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.integer())
    if cur.flag():
        cur.skip(3)
    generic = cur.text()
    snapshot = cur.flag()
    return MktDataRequest(req_id, contract, generic, snapshot)


@dataclass(frozen=True, slots=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractSpec


def parse_contract_details_request(fields: list[str]) -> ContractDetailsRequest:
    """reqContractDetails: ``9,8,reqId,<12 contract>,includeExpired,secIdType,secId[,issuerId]``."""
    cur = _Cursor(fields, 2)
    req_id = cur.integer()
    return ContractDetailsRequest(req_id, ContractSpec.read(cur))


@dataclass(frozen=True, slots=True)
class ExecFilter:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def parse_exec_filter(fields: list[str]) -> ExecFilter:
    """reqExecutions: ``7,3,reqId,clientId,acctCode,time,symbol,secType,exchange,side``."""
    cur = _Cursor(fields, 2)
    return ExecFilter(
        req_id=cur.integer(),
        client_id=cur.integer(),
        account=cur.text(),
        time=cur.text(),
        symbol=cur.text().upper(),
        sec_type=cur.text().upper(),
        exchange=cur.text().upper(),
        side=cur.text().upper(),
    )


# --------------------------------------------------------------------------- the other bodies


@dataclass(frozen=True, slots=True)
class StartApi:
    """``71,2,clientId,optionalCapabilities``."""

    client_id: int
    capabilities: str


@dataclass(frozen=True, slots=True)
class ReqId:
    """A request that carries only its request id (cancels, multi subscriptions, no-data requests)."""

    req_id: int


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """``4,1,orderId[,manualOrderCancelTime]``."""

    order_id: int


@dataclass(frozen=True, slots=True)
class AccountUpdates:
    """``6,2,subscribe,acctCode``."""

    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class Flag:
    """``15,1,bAutoBind``."""

    on: bool


@dataclass(frozen=True, slots=True)
class MarketDataType:
    """``59,1,marketDataType``."""

    kind: int


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """``62,1,reqId,group,tags``."""

    req_id: int
    group: str
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class MatchingSymbols:
    """``81,reqId,pattern`` (no version field)."""

    req_id: int
    pattern: str


Body = (StartApi | ReqId | CancelOrder | AccountUpdates | Flag | MarketDataType | AccountSummary | MatchingSymbols
        | PlaceOrder | MktDataRequest | ContractDetailsRequest | ExecFilter)


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One decoded client message: its id, its raw fields, and the typed body of the requests
    the simulator acts on (``None`` for requests without fields it reads, and unknown ids)."""

    msg_id: int
    fields: list[str]
    body: Body | None


def _start_api(fields: list[str], version: int) -> StartApi:
    cur = _Cursor(fields, 2)
    client_id = cur.text()
    if not client_id:
        raise BadRequest("startApi without a client id")
    return StartApi(parse_int(client_id, "the client id"), cur.opt_text())


def _req_id_at(pos: int) -> Callable[[list[str], int], ReqId]:
    def read(fields: list[str], version: int) -> ReqId:
        return ReqId(_Cursor(fields, pos).integer())

    return read


def _cancel_order(fields: list[str], version: int) -> CancelOrder:
    v = _Cursor(fields, 2).text()
    if not v:
        raise BadRequest("cancelOrder without an order id")
    return CancelOrder(parse_int(v, "the order id"))


def _account_updates(fields: list[str], version: int) -> AccountUpdates:
    cur = _Cursor(fields, 2)
    return AccountUpdates(cur.flag(), cur.opt_text())


def _flag(fields: list[str], version: int) -> Flag:
    return Flag(_Cursor(fields, 2).flag())


def _market_data_type(fields: list[str], version: int) -> MarketDataType:
    return MarketDataType(_Cursor(fields, 2).integer())


def _account_summary(fields: list[str], version: int) -> AccountSummary:
    cur = _Cursor(fields, 2)
    req_id = cur.integer()
    group = cur.text()
    tags = frozenset(t.strip() for t in cur.text().split(",") if t.strip())
    return AccountSummary(req_id, group, tags)


def _matching_symbols(fields: list[str], version: int) -> MatchingSymbols:
    cur = _Cursor(fields, 1)
    req_id = cur.integer()
    return MatchingSymbols(req_id, cur.text().strip().upper())


# Where the request id sits in the requests the simulator answers with a no-data error.
NO_DATA_REQ_ID_AT = {
    REQ_HISTORICAL_DATA: 1, REQ_HEAD_TIMESTAMP: 1, REQ_HISTORICAL_TICKS: 1,
    REQ_REAL_TIME_BARS: 2, REQ_TICK_BY_TICK_DATA: 1, REQ_MKT_DEPTH: 2,
}

_BODIES: dict[int, Callable[[list[str], int], Body]] = {
    START_API: _start_api,
    REQ_MKT_DATA: lambda f, v: parse_mkt_data(f),
    CANCEL_MKT_DATA: _req_id_at(2),
    PLACE_ORDER: parse_place_order,
    CANCEL_ORDER: _cancel_order,
    REQ_ACCT_DATA: _account_updates,
    REQ_EXECUTIONS: lambda f, v: parse_exec_filter(f),
    REQ_CONTRACT_DATA: lambda f, v: parse_contract_details_request(f),
    REQ_AUTO_OPEN_ORDERS: _flag,
    REQ_MARKET_DATA_TYPE: _market_data_type,
    REQ_ACCOUNT_SUMMARY: _account_summary,
    CANCEL_ACCOUNT_SUMMARY: _req_id_at(2),
    REQ_POSITIONS_MULTI: _req_id_at(2),
    CANCEL_POSITIONS_MULTI: _req_id_at(2),
    REQ_ACCOUNT_UPDATES_MULTI: _req_id_at(2),
    CANCEL_ACCOUNT_UPDATES_MULTI: _req_id_at(2),
    REQ_MATCHING_SYMBOLS: _matching_symbols,
    **{msg_id: _req_id_at(pos) for msg_id, pos in NO_DATA_REQ_ID_AT.items()},
}


def decode_fields(fields: list[str], version: int) -> ClientMessage:
    """Decode one client message's fields at server ``version``; raises only :class:`BadRequest`."""
    if not fields:
        raise BadRequest("an empty message")
    msg_id = parse_int(fields[0], "the message id")
    decode = _BODIES.get(msg_id)
    return ClientMessage(msg_id, fields, decode(fields, version) if decode is not None else None)
