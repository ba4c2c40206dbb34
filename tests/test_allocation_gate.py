"""The gate's capital allocation check (11a): a strategy's own worst-case gross exposure, with
its working orders, may not grow past its allocation; what does not grow it always passes; the
reason names the strategy, the exposure and the allocation. Run-time changes are validated
against the equity at start and change nothing when refused."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal as D

import pytest

from core.config import ConfigError, RiskConfig
from core.config.capital import parse_allocation
from core.domain.model import OrderType, Side
from core.risk.capital import CapitalAllocation
from core.risk.gate import LIQUIDATION_SOURCE, OrderRequest, RiskGate
from tests.test_risk_gate import LOOSE, View, order


@dataclass
class StrategyView(View):
    """The gate test's view with each strategy's own book (strategy -> symbol -> holding)."""

    books: dict[str, dict[str, tuple[D, D, D]]] = field(default_factory=dict)

    def strategy_holdings(self, strategy: str) -> Mapping[str, tuple[D, D, D]]:
        return self.books.get(strategy, {})


def gated(equity: D | None = D(100000), **allocation: object) -> RiskGate:
    capital = CapitalAllocation({k: parse_allocation(v) for k, v in allocation.items()}, ("s", "t"))
    capital.equity_at_start = equity
    return RiskGate(RiskConfig(**LOOSE), capital=capital)


def test_an_order_past_the_allocation_is_refused_with_the_reason() -> None:
    g = gated(s=5000)
    view = StrategyView()  # AAPL at 40
    assert g.check(order(qty=125), view) is None  # 125 x 40 = 5,000: at the allocation passes
    view.books["s"] = {"AAPL": (D(100), D(0), D(0))}  # 4,000 held
    assert g.check(order(qty=25), view) is None  # 5,000 again
    assert g.check(order(qty=26), view) == ("allocation: s gross exposure 5,040.00 would exceed its allocation "
                                            "5,000.00 (now 4,000.00)")


def test_working_orders_count_at_their_worst_case_and_other_symbols_add_up() -> None:
    g = gated(s=10000)
    view = StrategyView(marks={"AAPL": D(40), "MSFT": D(100)})
    view.books["s"] = {"AAPL": (D(0), D(100), D(0)), "MSFT": (D(50), D(0), D(0))}  # 4,000 working + 5,000 held
    assert g.check(order(qty=25), view) is None  # 10,000
    refused = g.check(order(qty=26), view)
    assert refused == "allocation: s gross exposure 10,040.00 would exceed its allocation 10,000.00 (now 9,000.00)"


def test_orders_that_reduce_or_do_not_grow_the_exposure_always_pass() -> None:
    g = gated(s=1000)  # far below what the strategy holds already
    view = StrategyView(positions={"AAPL": D(500)})
    view.books["s"] = {"AAPL": (D(500), D(0), D(0))}  # 20,000
    assert g.check(order(Side.SELL, 500), view) is None  # to flat
    view.books["s"] = {"AAPL": (D(500), D(0), D(200))}  # a sell working: a second one up to the rest passes too
    assert g.check(order(Side.SELL, 300), view) is None
    refused = g.check(order(Side.SELL, 1101), view)  # flipping to a short bigger than the long grows it
    assert refused is not None and refused.startswith("allocation: s gross exposure 32,040.00")  # 801 short
    assert g.check(order(Side.BUY, 1), view) is not None  # any buy grows it


def test_each_strategy_has_its_own_and_others_are_not_limited() -> None:
    g = gated(s=1000)
    view = StrategyView()
    view.books["t"] = {"AAPL": (D(10000), D(0), D(0))}  # t holds a lot: it is not s's
    assert g.check(order(qty=25, strategy="s"), view) is None
    assert g.check(order(qty=10000, strategy="t"), view) is None  # no allocation: not limited by one
    assert g.check(OrderRequest("operator", "AAPL", Side.BUY, D(1000), OrderType.MARKET, source="operator"), view) is None
    liquidation = OrderRequest("operator:flatten", "AAPL", Side.SELL, D(10), OrderType.MARKET, source=LIQUIDATION_SOURCE,
                               reduce_only=True)
    view.positions["AAPL"] = D(10)
    assert g.check(liquidation, view) is None


def test_a_percentage_is_of_the_equity_at_start() -> None:
    g = gated(D(200000), s="2.5%")  # 5,000
    assert g.check(order(qty=125), StrategyView()) is None
    assert g.check(order(qty=126), StrategyView()) == ("allocation: s gross exposure 5,040.00 would exceed its "
                                                       "allocation 2.5% (5,000.00) (now 0.00)")
    unknown = gated(None, s="2.5%")
    assert unknown.check(order(qty=1), StrategyView()) == (
        "allocation: s has 2.5% of the equity at start, which is not known yet: no new orders for it until the engine "
        "has started")


def test_a_held_symbol_without_a_mark_fails_closed_and_zero_allows_only_reducing() -> None:
    view = StrategyView(marks={"AAPL": D(40)})
    view.books["s"] = {"ZZZ": (D(10), D(0), D(0))}
    assert gated(s=10**6).check(order(qty=1), view) == "allocation: no mark for ZZZ to value s's gross exposure"
    view.books["s"] = {"AAPL": (D(10), D(0), D(0))}
    view.positions["AAPL"] = D(10)
    zero = gated(s=0)
    assert zero.check(order(qty=1), view) is not None
    assert zero.check(order(Side.SELL, 10), view) is None


def test_a_rounded_exposure_never_looks_within_the_allocation() -> None:
    g = gated(s="5000")
    view = StrategyView(quotes={"AAPL": (D("50.00001"), View().t)}, marks={})
    refused = g.check(order(qty=100), view)
    assert refused is not None and "gross exposure 5,000.00100 would exceed its allocation 5,000.00" in refused


def test_run_time_changes_are_validated_and_change_nothing_when_refused() -> None:
    capital = CapitalAllocation({"s": parse_allocation(40000)}, ("s", "t"))
    capital.equity_at_start = D(100000)
    for strategy, value, why in (
            ("nope", "1", "allocation: no strategy named 'nope' (known: s, t)"),
            ("t", "-1", "allocation.t: '-1' is negative"),
            ("t", "NaN", "allocation.t: 'NaN' is not a finite amount"),
            ("t", "60001", "allocation: s 40,000.00 + t 60,001.00 = 100,001.00 is beyond the equity at start"),
            ("t", "60.01%", "= 100,010.00 is beyond the equity at start")):
        with pytest.raises(ConfigError, match=re.escape(why)):
            capital.validated(strategy, value)
        assert set(capital.entries) == {"s"}
    old, new = capital.validated("t", "60%")
    assert old is None and new == parse_allocation("60%")
    capital.replace("t", new)
    assert capital.amount("t") == D(60000)
    old, new = capital.validated("s", "none")
    assert old == parse_allocation(40000) and new is None
    assert capital.uncovered(["s", "t"]) == []


def test_stored_changes_are_taken_at_start_only_if_they_fit() -> None:
    capital = CapitalAllocation({"s": parse_allocation(10000), "t": parse_allocation(20000)}, ("s", "t"))
    assert capital.start(D(100000), "the paper account's equity", {"s": "50%", "t": "none"}) == []
    assert capital.entries == {"s": parse_allocation("50%")} and capital.amount("s") == D(50000)

    capital = CapitalAllocation({"s": parse_allocation(10000), "t": parse_allocation(20000)}, ("s", "t"))
    dropped = capital.start(D(100000), "x", {"s": "90000", "gone": "5", "t": "bad"})
    assert [(n, t) for n, t, _ in dropped] == [("gone", "5"), ("t", "bad"), ("s", "90000")]  # 90,000 + 20,000
    assert capital.entries == {"s": parse_allocation(10000), "t": parse_allocation(20000)}  # the config's
    assert capital.problem() is None
    assert capital.start(D(25000), "x", {}) == [] and capital.problem() is not None  # a loss since: too much
