"""Client -> server messages: the request ids and the decoders for the ones with a body.

placeOrder has no version field and a layout that depends on the server version and on
the order itself (delta-neutral, scale, hedge, algo, PEG BENCH and condition blocks), so
it is read with a cursor that mirrors the client's writer field by field; a message that
runs short raises :class:`BadRequest` instead of being half-understood.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "BadRequest",
    "ContractSpec",
    "ExecFilter",
    "MktDataRequest",
    "PlaceOrder",
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

_UNSET_DOUBLE = 1.7976931348623157e308


class BadRequest(Exception):
    """A request whose fields do not parse."""


class _Cursor:
    def __init__(self, fields: list[str], start: int) -> None:
        self.fields = fields
        self.i = start

    def str(self) -> str:
        if self.i >= len(self.fields):
            raise BadRequest(f"message ended after {len(self.fields)} fields")
        v = self.fields[self.i]
        self.i += 1
        return v

    def int(self, default: int = 0) -> int:
        v = self.str()
        try:
            return int(v) if v else default
        except ValueError as e:
            raise BadRequest(f"field {self.i - 1} is not an integer: {v!r}") from e

    def float(self) -> float | None:
        v = self.str()
        if not v:
            return None
        try:
            return float(v)
        except ValueError as e:
            raise BadRequest(f"field {self.i - 1} is not a number: {v!r}") from e

    def decimal(self) -> Decimal | None:
        v = self.str()
        if not v:
            return None
        try:
            d = Decimal(v)
        except InvalidOperation as e:
            raise BadRequest(f"field {self.i - 1} is not a number: {v!r}") from e
        if not d.is_finite() or d >= Decimal("1.7976931348623157E308"):
            return None
        return d

    def bool(self) -> bool:
        return self.int() != 0

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.str()


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
        con_id = cur.int()
        symbol = cur.str()
        sec_type = cur.str()
        cur.skip(4)  # lastTradeDateOrContractMonth, strike, right, multiplier
        exchange = cur.str()
        primary = cur.str()
        currency = cur.str()
        local_symbol = cur.str()
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
    order_id = cur.int()
    contract = ContractSpec.read(cur)
    cur.skip(2)  # secIdType, secId
    action = cur.str().upper()
    qty = cur.decimal()
    order_type = cur.str().upper()
    lmt = cur.decimal()
    aux = cur.decimal()
    tif = cur.str().upper()
    cur.skip(1)  # ocaGroup
    account = cur.str()
    cur.skip(2)  # openClose, origin
    order_ref = cur.str()
    transmit_field = cur.str()
    transmit = transmit_field != "0"  # empty means the default, which is to transmit
    parent_id = cur.int()
    cur.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = cur.bool()
    cur.skip(1)  # hidden
    if contract.sec_type == "BAG":
        legs = cur.int()
        cur.skip(8 * legs)
        cur.skip(cur.int())  # order combo leg prices
        cur.skip(2 * cur.int())  # smart combo routing params
    cur.skip(3)  # deprecated sharesAllocation, discretionaryAmt, goodAfterTime
    good_till_date = cur.str()
    cur.skip(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        cur.skip(1)  # faProfile
    cur.skip(20)  # modelCode .. overridePercentageConstraints
    cur.skip(2)  # volatility, volatilityType
    dn_type = cur.str()
    cur.skip(1)  # deltaNeutralAuxPrice
    if dn_type:
        cur.skip(8)
    cur.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = cur.float()
    if increment is not None and 0 < increment < _UNSET_DOUBLE:
        cur.skip(7)
    cur.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if cur.str():  # hedgeType
        cur.skip(1)
    cur.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if cur.bool():  # delta-neutral contract
        cur.skip(3)
    if cur.str():  # algoStrategy
        cur.skip(2 * cur.int())
    cur.skip(1)  # algoId
    what_if = cur.bool()
    cur.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        cur.skip(5)
    conditions = cur.int()
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
    req_id = cur.int()
    contract = ContractSpec.read(cur)
    if contract.sec_type == "BAG":
        cur.skip(4 * cur.int())
    if cur.bool():
        cur.skip(3)
    generic = cur.str()
    snapshot = cur.bool()
    return MktDataRequest(req_id, contract, generic, snapshot)


def parse_contract_details_request(fields: list[str]) -> tuple[int, ContractSpec]:
    """reqContractDetails: ``9,8,reqId,<12 contract>,includeExpired,secIdType,secId[,issuerId]``."""
    cur = _Cursor(fields, 2)
    req_id = cur.int()
    return req_id, ContractSpec.read(cur)


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
        req_id=cur.int(),
        client_id=cur.int(),
        account=cur.str(),
        time=cur.str(),
        symbol=cur.str().upper(),
        sec_type=cur.str().upper(),
        exchange=cur.str().upper(),
        side=cur.str().upper(),
    )
