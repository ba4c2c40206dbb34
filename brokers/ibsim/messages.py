"""Server -> client messages, in the layout of the negotiated server version (157..178).

Each builder returns the list of fields of one message; ``wire.encode_fields`` renders
them. Layouts follow the TWS API decoder (ib_async 2.1.0 ``decoder.py``), including the
places where it branches on the server version: error's reject JSON (>=166), contract
details' version field and mdSizeMultiplier (<164) and size rules (163 / >=164), the
faProfile of open/completed orders (<177), duration/postToAts/autoCancelParent (159/160/
162), the PEG fields (>=170), execDetails' pendingPriceRevision (178) and symbol samples'
description/issuerId (>=176).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from brokers.ibsim.contracts import ContractInfo
from brokers.ibsim.state import SimExecution, SimOrder, SimPosition
from brokers.ibsim.wire import UNSET_DOUBLE, UNSET_INTEGER

MIN_VERSION = 157
MAX_VERSION = 178

# Server -> client message ids.
TICK_PRICE = 1
TICK_SIZE = 2
ORDER_STATUS = 3
ERR_MSG = 4
OPEN_ORDER = 5
ACCT_VALUE = 6
PORTFOLIO_VALUE = 7
ACCT_UPDATE_TIME = 8
NEXT_VALID_ID = 9
CONTRACT_DATA = 10
EXECUTION_DATA = 11
MANAGED_ACCTS = 15
CURRENT_TIME = 49
CONTRACT_DATA_END = 52
OPEN_ORDER_END = 53
ACCT_DOWNLOAD_END = 54
EXECUTION_DATA_END = 55
TICK_SNAPSHOT_END = 57
MARKET_DATA_TYPE = 58
COMMISSION_REPORT = 59
POSITION_DATA = 61
POSITION_END = 62
ACCOUNT_SUMMARY = 63
ACCOUNT_SUMMARY_END = 64
POSITION_MULTI = 71
POSITION_MULTI_END = 72
ACCOUNT_UPDATE_MULTI = 73
ACCOUNT_UPDATE_MULTI_END = 74
SYMBOL_SAMPLES = 79
TICK_REQ_PARAMS = 81
COMPLETED_ORDER = 101
COMPLETED_ORDERS_END = 102

# Tick types.
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, HIGH, LOW, VOLUME, CLOSE = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9

Fields = list[object]


def ib_time(epoch: float) -> str:
    """``YYYYMMDD HH:MM:SS UTC``: the form with a zone name, which clients parse zone-aware."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")


def handshake(version: int, now: float) -> Fields:
    """The reply to ``API\\0v<min>..<max>``: exactly two fields."""
    return [version, ib_time(now)]


def managed_accounts(accounts: list[str]) -> Fields:
    return [MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> Fields:
    return [NEXT_VALID_ID, 1, order_id]


def error(v: int, req_id: int, code: int, text: str, advanced_json: str = "") -> Fields:
    f: Fields = [ERR_MSG, 2, req_id, code, text]
    if v >= 166:
        f.append(advanced_json)
    return f


def current_time(epoch: float) -> Fields:
    return [CURRENT_TIME, 1, int(epoch)]


# --------------------------------------------------------------------------- market data


def tick_price(req_id: int, tick_type: int, price: Decimal, size: int | None, attr_mask: int = 0) -> Fields:
    return [TICK_PRICE, 6, req_id, tick_type, price, size if size is not None else "", attr_mask]


def tick_size(req_id: int, tick_type: int, size: int) -> Fields:
    return [TICK_SIZE, 6, req_id, tick_type, size]


def tick_req_params(req_id: int, min_tick: str = "0.01", bbo_exchange: str = "9c0001", snapshot_perms: int = 3) -> Fields:
    return [TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, snapshot_perms]


def tick_snapshot_end(req_id: int) -> Fields:
    return [TICK_SNAPSHOT_END, 1, req_id]


def market_data_type(req_id: int, data_type: int) -> Fields:
    return [MARKET_DATA_TYPE, 1, req_id, data_type]


# --------------------------------------------------------------------------- contracts


def contract_details(v: int, req_id: int, c: ContractInfo, exchange: str) -> Fields:
    f: Fields = [CONTRACT_DATA]
    if v < 164:
        f.append(8)  # the message version field, dropped at 164
    f += [
        req_id, c.symbol, "STK", "", 0, "", exchange, "USD", c.symbol, c.trading_class,
        c.trading_class, c.con_id, 0.01,
    ]
    if v < 164:
        f.append(1)  # mdSizeMultiplier
    f += [
        "",  # multiplier
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,IOC,LIT,LMT,MKT,MOC,MTL,NONALGO,OCA,STP,STPLMT,TRAIL,WHATIF",
        "SMART,AMEX,NYSE,ARCA,BATS,IEX,NASDAQ,ISLAND,EDGX,BYX",
        1,  # priceMagnifier
        0,  # underConId
        c.long_name,
        c.primary_exchange,
        "",  # contractMonth
        "Simulated", "Simulated", "Simulated",  # industry, category, subcategory
        "US/Eastern",
        "20260101:0930-20260101:1600",  # tradingHours (nominal: the simulator never closes)
        "20260101:0930-20260101:1600",  # liquidHours
        "", "",  # evRule, evMultiplier
        0,  # no secIds
        1,  # aggGroup
        "", "",  # underSymbol, underSecType
        "26,26,26,26,26,26,26,26,26,26",  # marketRuleIds, one per valid exchange
        "",  # realExpirationDate
        "COMMON",  # stockType
    ]
    if v == 163:
        f.append("100")  # suggestedSizeIncrement
    if v >= 164:
        f += ["0.0001", "0.0001", "100"]  # minSize, sizeIncrement, suggestedSizeIncrement
    return f


def contract_details_end(req_id: int) -> Fields:
    return [CONTRACT_DATA_END, 1, req_id]


def symbol_samples(v: int, req_id: int, contracts: list[ContractInfo]) -> Fields:
    f: Fields = [SYMBOL_SAMPLES, req_id, len(contracts)]
    for c in contracts:
        f += [c.con_id, c.symbol, "STK", c.primary_exchange, "USD", 0]
        if v >= 176:
            f += [c.long_name, ""]
    return f


# --------------------------------------------------------------------------- orders


def _order_contract(o: SimOrder, c: ContractInfo) -> Fields:
    """conId .. tradingClass as open orders carry them (no primaryExchange)."""
    return [c.con_id, c.symbol, "STK", "", 0, "", "", o.exchange, "USD", c.symbol, c.trading_class]


def _lmt(o: SimOrder) -> object:
    return o.lmt_price if o.lmt_price is not None else UNSET_DOUBLE


def order_status(o: SimOrder, status: str | None = None) -> Fields:
    return [
        ORDER_STATUS, o.order_id, status or o.status, o.filled, o.remaining, o.avg_fill_price,
        o.perm_id, 0, o.last_fill_price, o.client_id, "", UNSET_DOUBLE,
    ]


def open_order(
    v: int,
    o: SimOrder,
    c: ContractInfo,
    status: str | None = None,
    what_if: dict[str, str] | None = None,
) -> Fields:
    """openOrder: the order as the gateway holds it, with its state (``what_if`` margin rows)."""
    st = what_if or {}
    f: Fields = [OPEN_ORDER, o.order_id, *_order_contract(o, c)]
    f += [
        o.action, o.total_qty, o.order_type, _lmt(o), UNSET_DOUBLE, o.tif, "", o.account,
        "O", 0, o.order_ref, o.client_id, o.perm_id, o.outside_rth, False, 0, "", "",
        "", "", "",  # faGroup, faMethod, faPercentage
    ]
    if v < 177:
        f.append("")  # faProfile
    f += [
        "", "", "", UNSET_DOUBLE, "", 0, "", -1, 0,  # modelCode .. auctionStrategy
        UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE,  # startingPrice .. stockRangeUpper
        0, False, False, False, "", 3, False, False, UNSET_DOUBLE,  # displaySize .. nbboPriceCap
        0, 0, UNSET_DOUBLE, 0, "", UNSET_DOUBLE,  # parentId .. deltaNeutralAuxPrice (no DN order)
        False, 0, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "", "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        False, "", "IB", False, False,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, no DN contract
        "",  # algoStrategy
        False, what_if is not None, status or o.status,
        st.get("initMarginBefore", ""), st.get("maintMarginBefore", ""), st.get("equityWithLoanBefore", ""),
        st.get("initMarginChange", ""), st.get("maintMarginChange", ""), st.get("equityWithLoanChange", ""),
        st.get("initMarginAfter", ""), st.get("maintMarginAfter", ""), st.get("equityWithLoanAfter", ""),
        st.get("commission", UNSET_DOUBLE), st.get("minCommission", UNSET_DOUBLE),
        st.get("maxCommission", UNSET_DOUBLE), st.get("commissionCurrency", ""), "",  # warningText
        False, False,  # randomizeSize, randomizePrice
        0,  # conditions
        "", UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, 0,  # adjusted*
        "", "", "",  # soft dollar tier
        UNSET_DOUBLE, False, False, False, "",  # cashQty .. usePriceMgmtAlgo
    ]
    if v >= 159:
        f.append(UNSET_INTEGER)  # duration
    if v >= 160:
        f.append(UNSET_INTEGER)  # postToAts
    if v >= 162:
        f.append(False)  # autoCancelParent
    if v >= 170:
        f += [UNSET_INTEGER, UNSET_INTEGER, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE]
    return f


def open_order_end() -> Fields:
    return [OPEN_ORDER_END, 1]


def completed_order(v: int, o: SimOrder, c: ContractInfo) -> Fields:
    f: Fields = [COMPLETED_ORDER, *_order_contract(o, c)]
    f += [
        o.action, o.total_qty, o.order_type, _lmt(o), UNSET_DOUBLE, o.tif, "", o.account,
        "O", 0, o.order_ref, o.perm_id, o.outside_rth, False, 0, "",
        "", "", "",  # faGroup, faMethod, faPercentage
    ]
    if v < 177:
        f.append("")  # faProfile
    f += [
        "", "", "", UNSET_DOUBLE, "", 0, "", -1,  # modelCode .. exemptCode
        UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE,  # startingPrice .. stockRangeUpper
        0, False, False, "", 3, 0, UNSET_DOUBLE, 0, "", UNSET_DOUBLE,  # displaySize .. deltaNeutralAuxPrice
        False, 0, UNSET_DOUBLE, UNSET_DOUBLE, "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scale sizes and increment
        "",  # hedgeType
        "", "IB", False, False,  # clearingAccount, clearingIntent, notHeld, no DN contract
        "",  # algoStrategy
        False, o.status, False, False,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, False, False, "",  # trailStopPrice .. autoCancelDate
        o.filled, 0, False, "", False, False, 0,  # filledQuantity .. parentPermId
        ib_time(o.completed_at or o.placed_at), o.completed_status,
    ]
    if v >= 170:
        f += [UNSET_INTEGER, UNSET_INTEGER, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE]
    return f


def completed_orders_end() -> Fields:
    return [COMPLETED_ORDERS_END]


# --------------------------------------------------------------------------- executions


def exec_details(v: int, req_id: int, e: SimExecution, c: ContractInfo) -> Fields:
    f: Fields = [
        EXECUTION_DATA, req_id, e.order_id,
        c.con_id, c.symbol, "STK", "", 0, "", "", e.exchange, "USD", c.symbol, c.trading_class,
        e.exec_id, ib_time(e.time), e.account, e.exchange, e.side, e.shares, e.price,
        e.perm_id, e.client_id, 0, e.cum_qty, e.avg_price, e.order_ref, "", "", "", 1,
    ]
    if v >= 178:
        f.append(False)  # pendingPriceRevision
    return f


def exec_details_end(req_id: int) -> Fields:
    return [EXECUTION_DATA_END, 1, req_id]


def commission_report(e: SimExecution) -> Fields:
    realized = e.realized_pnl if e.realized_pnl is not None else UNSET_DOUBLE
    return [COMMISSION_REPORT, 1, e.exec_id, e.commission, "USD", realized, UNSET_DOUBLE, ""]


# --------------------------------------------------------------------------- account


def position(account: str, p: SimPosition, c: ContractInfo) -> Fields:
    return [
        POSITION_DATA, 3, account, c.con_id, c.symbol, "STK", "", 0, "", "", c.primary_exchange,
        "USD", c.symbol, c.trading_class, p.qty, p.avg_cost,
    ]


def position_end() -> Fields:
    return [POSITION_END, 1]


def position_multi(req_id: int, account: str, p: SimPosition, c: ContractInfo, model_code: str = "") -> Fields:
    return [
        POSITION_MULTI, 1, req_id, account, c.con_id, c.symbol, "STK", "", 0, "", "",
        c.primary_exchange, "USD", c.symbol, c.trading_class, p.qty, p.avg_cost, model_code,
    ]


def position_multi_end(req_id: int) -> Fields:
    return [POSITION_MULTI_END, 1, req_id]


def account_value(key: str, value: str, currency: str, account: str) -> Fields:
    return [ACCT_VALUE, 2, key, value, currency, account]


def portfolio_value(
    p: SimPosition, c: ContractInfo, mark: Decimal, value: Decimal, unrealized: Decimal, account: str
) -> Fields:
    return [
        PORTFOLIO_VALUE, 8, c.con_id, c.symbol, "STK", "", 0, "", "", c.primary_exchange, "USD",
        c.symbol, c.trading_class, p.qty, mark, value, p.avg_cost, unrealized, p.realized_pnl, account,
    ]


def account_time(epoch: float) -> Fields:
    return [ACCT_UPDATE_TIME, 1, datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M")]


def account_download_end(account: str) -> Fields:
    return [ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str, model_code: str = "") -> Fields:
    return [ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    return [ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return [ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    return [ACCOUNT_SUMMARY_END, 1, req_id]

