"""Property: the working quantities the OMS keeps as orders change are what a recount gives.

The risk gate reads each symbol's unfilled (buy, sell) quantity on every order. The OMS keeps
it per symbol, updated on the order events it writes (an order opens, fills, ends), instead of
summing over every open order at each check. Hypothesis plays sequences of order events on a
real core (SQLite store in a temporary directory, paper venue, OMS): orders of several sizes
(``2.0`` as well as ``2``: the figure must be the same Decimal, digits included), quotes thin
enough to fill in parts, cancels, broker refusals and cancels, fills reported after an order
ended, overfills, an adopted order, one settled as missing. After every event the kept figures
must equal, value and text, the brute-force recount over ``oms.open_orders``.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import PaperConfig, RiskConfig
from core.domain.model import ZERO, Execution, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from core.execution.oms import OrderManager
from core.risk.gate import OrderRequest
from tests.paper_rig import OPEN, make_rig

SYMBOLS = ["AAA", "BBB", "CCC"]
QTYS = ["1", "2", "2.0", "3", "5", "10"]
LIMITS = RiskConfig(price_collar_pct=D(100), max_orders_per_minute_per_strategy=10**6,
                    max_orders_per_minute_total=10**6, duplicate_window_seconds=0.000001)

submit = st.tuples(st.just("submit"), st.sampled_from(SYMBOLS), st.sampled_from(Side), st.sampled_from(QTYS),
                   st.sampled_from(["market", "limit-near", "limit-far"]), st.sampled_from(["s1", "s2"]))
quote = st.tuples(st.just("quote"), st.sampled_from(SYMBOLS), st.sampled_from(["99", "100", "101"]),
                  st.sampled_from(["10", "20", "1000000"]))  # 10 x 0.1: one share a quote
pick = st.integers(min_value=0, max_value=50)
cancel = st.tuples(st.just("cancel"), pick)
refuse = st.tuples(st.just("refuse"), pick, st.sampled_from([OrderStatus.REJECTED, OrderStatus.CANCELLED]))
late_fill = st.tuples(st.just("fill"), pick, st.sampled_from(["1", "2", "7"]))  # 7: beyond most orders (overfill)
adopt = st.tuples(st.just("adopt"), st.sampled_from(SYMBOLS), st.sampled_from(Side), st.sampled_from(QTYS))
settle = st.tuples(st.just("settle"), pick)
step = st.one_of(submit, submit, quote, quote, cancel, refuse, late_fill, adopt, settle)


def recount(oms: OrderManager, symbol: str) -> tuple[D, D]:
    """What ``working_qty`` summed over every open order before it was kept."""
    buy = sell = ZERO
    for o in oms.open_orders.values():
        if o.symbol == symbol:
            if o.side is Side.BUY:
                buy += o.remaining
            else:
                sell += o.remaining
    return buy, sell


def assert_kept_equals_recount(oms: OrderManager) -> None:
    for symbol in [*SYMBOLS, "ZZZ"]:
        kept, again = oms.working_qty(symbol), recount(oms, symbol)
        assert kept == again and tuple(map(str, kept)) == tuple(map(str, again)), (symbol, kept, again)
        for strategy in ("s1", "s2", "adopted"):
            mine = [o for o in oms.open_orders.values() if o.strategy == strategy and o.symbol == symbol]
            assert oms.open_orders_of(strategy, symbol) == mine
            signed = sum((o.signed_remaining for o in mine), ZERO)
            assert str(oms.working_signed(strategy, symbol)) == str(signed)
            sells = sum((o.remaining for o in mine if o.side is Side.SELL), ZERO)
            assert str(oms.view.strategy_working_sells(strategy, symbol)) == str(sells)
    assert set(oms.working_symbols()) == {o.symbol for o in oms.open_orders.values()}


def chosen(oms: OrderManager, n: int, *, open_only: bool) -> Order | None:
    orders = list(oms.open_orders.values() if open_only else oms.orders.values())
    return orders[n % len(orders)] if orders else None


async def play(steps: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory(prefix="oms-working-") as tmp:
        rig = await make_rig(Path(tmp), risk=LIMITS, paper=PaperConfig(slippage_bps=D(0), latency_ms=0))
        oms, at, n = rig.oms, OPEN, 0
        try:
            for s in [*SYMBOLS]:
                rig.quote(s, "100", at)
            for kind, *args in steps:
                at += timedelta(seconds=1)
                n += 1
                if kind == "submit":
                    symbol, side, qty, how, strategy = args
                    limit = None if how == "market" else D("100.5" if how == "limit-near" else "150") * (
                        1 if side is Side.BUY else D("0.5"))
                    oms.submit(OrderRequest(strategy, symbol, side, D(qty),  # type: ignore[arg-type]
                                            OrderType.MARKET if limit is None else OrderType.LIMIT, limit))
                    await oms.send_pending()
                elif kind == "quote":
                    symbol, price, volume = args
                    rig.quote(symbol, price, at, volume)  # type: ignore[arg-type]
                elif kind == "cancel":
                    if (order := chosen(oms, args[0], open_only=True)) is not None:  # type: ignore[arg-type]
                        oms.cancel(order.client_order_id)
                elif kind == "refuse":
                    if (order := chosen(oms, args[0], open_only=True)) is not None:  # type: ignore[arg-type]
                        oms.on_report(OrderUpdate(order.client_order_id, args[1], at))  # type: ignore[arg-type]
                elif kind == "fill":
                    if (order := chosen(oms, args[0], open_only=False)) is not None:  # type: ignore[arg-type]
                        oms.on_report(Execution(f"x-{n}", order.client_order_id, order.symbol, order.side,
                                                D(args[1]), D(100), ZERO, at))  # type: ignore[arg-type]
                elif kind == "adopt":
                    symbol, side, qty = args
                    oms.adopt(Order(client_order_id=f"ext-{n}", strategy="", symbol=symbol, side=side,  # type: ignore[arg-type]
                                    qty=D(qty), order_type=OrderType.LIMIT, tif=TimeInForce.GTC,  # type: ignore[arg-type]
                                    limit_price=D(1), created_at=at, status=OrderStatus.ACCEPTED))
                elif kind == "settle":
                    if (order := chosen(oms, args[0], open_only=True)) is not None:  # type: ignore[arg-type]
                        oms.settle_missing(order.client_order_id, "missing at the broker")
                assert_kept_equals_recount(oms)
        finally:
            await rig.store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
def test_kept_working_quantities_equal_a_recount(steps: list[tuple[object, ...]]) -> None:
    asyncio.run(play(steps))


def test_a_restart_keeps_the_working_quantities_of_the_orders_it_loads(tmp_path: Path) -> None:
    """Orders still open in the store come back with their working figures (``load``)."""

    async def run() -> None:
        rig = await make_rig(tmp_path, risk=LIMITS, paper=PaperConfig(slippage_bps=D(0), latency_ms=0))
        rig.quote("AAA", "100", OPEN)
        rig.oms.submit(OrderRequest("s1", "AAA", Side.BUY, D("2.0"), OrderType.LIMIT, D(50)))
        rig.oms.submit(OrderRequest("s1", "AAA", Side.SELL, D(3), OrderType.LIMIT, D(150)))
        await rig.oms.send_pending()
        await rig.store.close()
        again = await make_rig(tmp_path, risk=LIMITS)
        try:
            assert len(again.oms.open_orders) == 2
            assert tuple(map(str, again.oms.working_qty("AAA"))) == tuple(map(str, recount(again.oms, "AAA")))
            assert again.oms.working_qty("AAA") == (D(2), D(3))
            assert_kept_equals_recount(again.oms)
        finally:
            await again.store.close()

    asyncio.run(run())
