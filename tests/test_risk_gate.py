"""The risk gate, check by check: each passes at its limit and refuses just beyond it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from core.config import ConfigError, RiskConfig
from core.domain.model import OrderType, Side
from core.risk.gate import LIQUIDATION_SOURCE, OrderRequest, RiskGate, TradingState

T0 = datetime(2020, 1, 2, 14, 30, tzinfo=timezone.utc)

# Every limit out of the way, so that a test can bring just the one it is about into play.
LOOSE = dict(
    max_order_qty=D(10**9), max_order_notional=D(10**12), max_position_qty=D(10**9),
    max_gross_exposure=D(10**15), max_net_exposure=D(10**15), price_collar_pct=D(1000),
    quote_max_age_seconds=3600, daily_loss_limit=D(10**12), max_orders_per_minute_per_strategy=10**6,
    max_orders_per_minute_total=10**6, duplicate_window_seconds=0.000001,
)


def gate(state: TradingState = TradingState.ACTIVE, **limits: object) -> RiskGate:
    return RiskGate(RiskConfig(**{**LOOSE, **limits}), state)


@dataclass
class View:
    """The engine's side of the gate, as plain dicts and a clock the test moves."""

    t: datetime = T0
    positions: dict[str, D] = field(default_factory=dict)
    open_orders: dict[str, tuple[D, D]] = field(default_factory=dict)
    quotes: dict[str, tuple[D, datetime]] = field(default_factory=lambda: {"AAPL": (D(40), T0)})
    marks: dict[str, D] = field(default_factory=lambda: {"AAPL": D(40)})
    pnl: D = D(0)

    def now(self) -> datetime:
        return self.t

    def position(self, symbol: str) -> D:
        return self.positions.get(symbol, D(0))

    def working(self, symbol: str) -> tuple[D, D]:
        return self.open_orders.get(symbol, (D(0), D(0)))

    def quote(self, symbol: str) -> tuple[D, datetime] | None:
        return self.quotes.get(symbol)

    def mark(self, symbol: str) -> D | None:
        return self.marks.get(symbol)

    def symbols(self) -> Iterable[str]:
        return {*self.positions, *self.open_orders}

    def day_pnl(self) -> D:
        return self.pnl

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def order(side: Side = Side.BUY, qty: int | str = 100, symbol: str = "AAPL", limit: str | None = None,
          strategy: str = "s", reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(strategy, symbol, side, D(qty), OrderType.LIMIT if limit else OrderType.MARKET,
                        D(limit) if limit else None, reduce_only=reduce_only)


def test_within_limits_passes() -> None:
    g = RiskGate(RiskConfig())  # the shipped defaults
    assert g.check(order(Side.BUY, 1000), View()) is None
    assert g.check(order(Side.SELL, 500, limit="40.50"), View(positions={"AAPL": D(1500)})) is None


@pytest.mark.parametrize(
    ("limits", "view", "at_limit", "beyond", "reason"),
    [
        (dict(max_order_qty=D(1000)), {}, order(qty=1000), order(qty=1001), "qty 1001 exceeds max_order_qty 1000"),
        (dict(max_order_notional=D(50000)), {}, order(qty=1250), order(qty=1251),
         "notional 50040.00 exceeds max_order_notional 50000"),
        (dict(max_order_notional=D(50000)), {}, order(qty=1000, limit="50"), order(qty=1000, limit="50.01"),
         "notional 50010.00 exceeds max_order_notional 50000"),  # a limit order is valued at its price
        (dict(price_collar_pct=D(10)), {}, order(limit="44"), order(limit="44.01"),
         "limit 44.01 is 10.025% from the quote 40, beyond price_collar_pct 10"),
        (dict(price_collar_pct=D(10)), {}, order(Side.SELL, limit="36"), order(Side.SELL, limit="35.99"),
         "limit 35.99 is 10.025% from the quote 40, beyond price_collar_pct 10"),
        (dict(max_position_qty=D(1500)), dict(positions={"AAPL": D(1000)}), order(qty=500), order(qty=501),
         "position AAPL would reach 1501 (now 1000, working +0/-0), beyond max_position_qty 1500"),
        (dict(max_position_qty=D(1500)), dict(open_orders={"AAPL": (D(1000), D(0))}), order(qty=500),
         order(qty=501), "would reach 1501 (now 0, working +1000/-0)"),  # same-side working orders count
        (dict(max_position_qty=D(1500)), dict(positions={"AAPL": D(-1000)}, open_orders={"AAPL": (D(0), D(400))}),
         order(Side.SELL, 100), order(Side.SELL, 101), "would reach -1501 (now -1000, working +0/-400)"),
        (dict(max_position_qty=D(1500)), dict(positions={"AAPL": D(1000)}), order(Side.SELL, 2500),
         order(Side.SELL, 2501), "would reach -1501"),  # a flip counts on the far side
    ],
)
def test_each_limit_passes_at_and_refuses_beyond(limits: dict, view: dict, at_limit: OrderRequest,
                                                 beyond: OrderRequest, reason: str) -> None:
    assert gate(**limits).check(at_limit, View(**view)) is None
    refusal = gate(**limits).check(beyond, View(**view))
    assert refusal is not None and reason in refusal and "\n" not in refusal


def book() -> View:
    # AAPL +100 @ 40 (4000), MSFT -50 @ 100 (5000): gross 9000, net -1000.
    return View(positions={"AAPL": D(100), "MSFT": D(-50)},
                marks={"AAPL": D(40), "MSFT": D(100)},
                quotes={"AAPL": (D(40), T0), "MSFT": (D(100), T0)})


def test_gross_exposure() -> None:
    g = gate(max_gross_exposure=D(10000))
    assert g.check(order(qty=25), book()) is None  # 9000 + 25 x 40 = 10000
    assert g.check(order(qty=26), book()) == (
        "gross exposure would reach 10040.00 (now 9000.00), beyond max_gross_exposure 10000")
    # Working orders count at their worst case: a working MSFT sell of 10 is 1000 more.
    v = book()
    v.open_orders["MSFT"] = (D(0), D(10))
    assert "gross exposure would reach 10040.00 (now 10000.00)" in (g.check(order(qty=1, strategy="x"), v) or "")
    # Selling AAPL down does not grow gross, so it passes even over the limit.
    assert gate(max_gross_exposure=D(100)).check(order(Side.SELL, 100), book()) is None
    # Selling past flat grows it on the short side: -60 x 40 = 2400 > 100 x 40? no: 4000 stays the max.
    assert gate(max_gross_exposure=D(100)).check(order(Side.SELL, 200), book()) is None
    assert "max_gross_exposure" in (gate(max_gross_exposure=D(100)).check(order(Side.SELL, 201), book()) or "")


def test_net_exposure_both_directions() -> None:
    g = gate(max_net_exposure=D(2000))
    assert g.check(order(qty=75), book()) is None  # net long worst case: -1000 + 75 x 40 = 2000
    assert g.check(order(qty=76), book()) == (
        "net exposure would reach 2040.00 (now 1000.00), beyond max_net_exposure 2000")
    # Short side: selling AAPL takes the net to -1000 - q x 40.
    assert g.check(order(Side.SELL, 25), book()) is None  # -2000
    assert "net exposure would reach 2040.00" in (g.check(order(Side.SELL, 26), book()) or "")
    # Buying when the net short is already beyond the limit: the worst case does not grow.
    assert gate(max_net_exposure=D(500)).check(order(qty=10), book()) is None


def test_exposure_needs_marks() -> None:
    v = book()
    del v.marks["MSFT"]
    assert gate().check(order(), v) == "no mark for MSFT to value max_gross_exposure / max_net_exposure"
    v = book()
    del v.marks["AAPL"]  # the order's own symbol falls back to its quote
    assert gate(max_gross_exposure=D(10000)).check(order(qty=25), v) is None
    assert "10040.00" in (gate(max_gross_exposure=D(10000)).check(order(qty=26), v) or "")


def test_quote_freshness_applies_to_every_new_order() -> None:
    g = gate(quote_max_age_seconds=5)
    v = View()
    v.advance(5)
    assert g.check(order(qty=1), v) is None
    assert g.check(order(qty=2, limit="40"), v) is None
    v.advance(0.000001)
    assert g.check(order(qty=3), v) == "quote for AAPL is 5.000001 s old, beyond quote_max_age_seconds 5"
    assert "beyond quote_max_age_seconds 5" in (g.check(order(qty=3, limit="40"), v) or "")
    assert g.check(order(symbol="MSFT"), View()) == (
        "no quote for MSFT: a new order needs one no older than quote_max_age_seconds 5")
    assert "no quote for AAPL" in (g.check(order(), View(quotes={"AAPL": (D(0), T0)})) or "")


def test_allowed_symbols() -> None:
    v = View(quotes={"AAPL": (D(40), T0), "MSFT": (D(40), T0)})
    assert gate(allowed_symbols=["msft"]).check(order(symbol="MSFT"), v) is None
    assert gate(allowed_symbols=["MSFT"]).check(order(), v) == "AAPL is not in allowed_symbols (MSFT)"
    assert gate(allowed_symbols=[]).check(order(), v) is None  # empty: every symbol


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (order(qty=0), "quantity must be positive, got 0"),
        (order(qty=-5), "quantity must be positive, got -5"),
        (order(qty="NaN"), "quantity must be positive, got NaN"),
        (order(qty="Infinity"), "quantity must be positive, got Infinity"),
        (order(qty="1.5"), "quantity must be whole shares, got 1.5"),
        (order(limit="0"), "limit order needs a positive limit price, got 0"),
        (OrderRequest("s", "AAPL", Side.BUY, D(1), OrderType.LIMIT), "limit order needs a positive limit price, got None"),
    ],
)
def test_bad_input(req: OrderRequest, reason: str) -> None:
    assert gate().check(req, View()) == reason


def test_reducing_an_oversized_position_is_allowed() -> None:
    # Over every limit already (e.g. the limits were lowered): a reducing order must still pass.
    g = gate(max_position_qty=D(1500), max_gross_exposure=D(1000), max_net_exposure=D(1000))
    v = View(positions={"AAPL": D(3000)})
    assert g.check(order(Side.SELL, 500), v) is None
    assert "max_position_qty" in (g.check(order(Side.BUY, 1), v) or "")


def test_halted_refuses_everything_new() -> None:
    g = gate(TradingState.HALTED)
    v = View(positions={"AAPL": D(100)})
    assert g.check(order(Side.SELL, 10), v) == "trading HALTED (initial state): no new orders, only cancels"
    assert g.check(order(Side.SELL, 10, reduce_only=True), v) is not None


def test_reducing_state_lets_only_reducing_orders_through() -> None:
    g = gate()
    g.set_state(TradingState.REDUCING, reason="operator")
    long = View(positions={"AAPL": D(100)}, open_orders={"AAPL": (D(0), D(60))})
    assert g.check(order(Side.SELL, 40), long) is None  # 100 - 60 working = 40 left to reduce
    assert g.check(order(Side.SELL, 41, strategy="x"), long) == (
        "trading REDUCING (operator): SELL 41 AAPL is more than the 40 left to reduce"
        " (position 100, working +0/-60)")
    assert g.check(order(Side.BUY, 1), long) == "trading REDUCING (operator): BUY 1 AAPL does not reduce position 100"
    short = View(positions={"AAPL": D(-30)})
    assert g.check(order(Side.BUY, 30), short) is None
    assert "more than the 30 left" in (g.check(order(Side.BUY, 31), short) or "")
    assert "does not reduce position 0" in (g.check(order(Side.SELL, 1), View()) or "")


def test_reduce_only_in_active() -> None:
    g = gate()
    assert g.check(order(Side.SELL, 10, reduce_only=True), View(positions={"AAPL": D(10)})) is None
    assert g.check(order(Side.SELL, 11, reduce_only=True), View(positions={"AAPL": D(10)}, t=T0)) == (
        "reduce_only: SELL 11 AAPL is more than the 10 left to reduce (position 10, working +0/-0)")


def test_reducing_orders_still_face_the_other_limits() -> None:
    g = gate(TradingState.REDUCING, max_order_qty=D(50))
    assert g.check(order(Side.SELL, 51), View(positions={"AAPL": D(100)})) == "qty 51 exceeds max_order_qty 50"


def test_daily_loss_trips_and_never_rearms_by_itself() -> None:
    changes: list[tuple[TradingState, TradingState, str]] = []
    g = RiskGate(RiskConfig(**{**LOOSE, "daily_loss_limit": D(1000)}),
                 on_state_change=lambda old, new, why: changes.append((old, new, why)))
    v = View(positions={"AAPL": D(100)})
    assert g.observe_pnl(D(-1000), T0) is None  # at the limit: still ACTIVE
    assert g.check(order(Side.BUY, 1), v) is None
    v.pnl = D("-1000.01")
    v.advance(1)
    # check itself sees the breach: the state latches before the order is judged
    refusal = g.check(order(Side.BUY, 2), v)
    assert refusal is not None and refusal.startswith(
        "trading REDUCING (day P&L -1000.01 beyond daily_loss_limit 1000")
    assert g.state is TradingState.REDUCING
    assert [(old, new) for old, new, _ in changes] == [(TradingState.ACTIVE, TradingState.REDUCING)]
    assert g.check(order(Side.SELL, 100), v) is None  # reducing still goes
    # The P&L recovers: nothing re-arms.
    v.pnl = D(5000)
    assert g.observe_pnl(D(5000), v.t) is None
    assert g.state is TradingState.REDUCING
    assert g.check(order(Side.BUY, 3), v) is not None
    # Only the operator resumes.
    g.set_state(TradingState.ACTIVE, reason="operator resume")
    assert g.check(order(Side.BUY, 4), v) is None
    assert len(changes) == 2


def test_daily_loss_action_halted_and_escalation() -> None:
    g = gate(daily_loss_limit=D(1000), daily_loss_action="HALTED")
    assert g.observe_pnl(D(-1500), T0) is TradingState.HALTED
    assert "day P&L -1500 beyond daily_loss_limit 1000" in g.state_reason
    g2 = gate(daily_loss_limit=D(1000))
    assert g2.observe_pnl(D(-1500)) is TradingState.REDUCING
    assert g2.observe_pnl(D(-1600)) is None  # already there
    g2.set_limit("daily_loss_action", "halted")
    assert g2.observe_pnl(D(-1600)) is TradingState.HALTED  # REDUCING escalates
    assert g2.check(order(Side.SELL, 1), View(positions={"AAPL": D(10)}, pnl=D(-1600))) is not None


def test_resume_refused_while_the_loss_is_still_beyond_the_limit() -> None:
    g = gate(daily_loss_limit=D(1000), daily_loss_action="HALTED")
    g.observe_pnl(D(-1500))
    with pytest.raises(ValueError, match="cannot go ACTIVE: day P&L -1500 is beyond daily_loss_limit 1000, which"
                                         " demands HALTED; raise daily_loss_limit"):
        g.set_state(TradingState.ACTIVE, reason="resume")
    assert g.state is TradingState.HALTED
    g.set_limit("daily_loss_action", "REDUCING")
    assert g.set_state(TradingState.REDUCING, reason="flatten") is TradingState.HALTED
    g.set_limit("daily_loss_limit", "2000")
    g.set_state(TradingState.ACTIVE, reason="resume")
    assert g.state is TradingState.ACTIVE
    assert g.check(order(), View(pnl=D(-1500))) is None
    assert g.check(order(qty=5), View(pnl=D("-2000.01"))) is not None


def test_operator_can_halt_and_resume() -> None:
    g = gate()
    assert g.set_state(TradingState.HALTED, reason="operator: kill switch") is TradingState.ACTIVE
    assert g.check(order(), View()) == "trading HALTED (operator: kill switch): no new orders, only cancels"
    g.set_state(TradingState.ACTIVE, reason="operator: resume")
    assert g.check(order(), View()) is None


def test_rate_limit_per_strategy_with_a_moving_clock() -> None:
    g = gate(max_orders_per_minute_per_strategy=3)
    v = View()
    for qty in (1, 2, 3):
        assert g.check(order(qty=qty), v) is None
        v.advance(1)
    assert g.check(order(qty=4), v) == (
        "s already sent 3 orders in the last 60 s, the most max_orders_per_minute_per_strategy 3 allows")
    assert g.check(order(qty=4, strategy="other"), v) is None  # per strategy
    v.t = T0 + timedelta(seconds=59.999999)
    assert g.check(order(qty=5), v) is not None
    v.t = T0 + timedelta(seconds=60)  # the first order leaves the window
    assert g.check(order(qty=5), v) is None
    assert g.check(order(qty=6), v) is not None


def test_rate_limit_total_and_refusals_do_not_count() -> None:
    g = gate(max_orders_per_minute_total=4, max_order_qty=D(100))
    v = View()
    for _ in range(10):
        assert g.check(order(qty=500), v) is not None  # refused: not counted
    for i, strategy in enumerate("abcd"):
        assert g.check(order(qty=i + 1, strategy=strategy), v) is None
    assert g.check(order(qty=9, strategy="e"), v) == (
        "4 orders already sent in the last 60 s, the most max_orders_per_minute_total 4 allows")
    g.set_limit("max_orders_per_minute_total", "5")
    assert g.check(order(qty=9, strategy="e"), v) is None


def test_duplicate_window() -> None:
    g = gate(duplicate_window_seconds=2)
    v = View(quotes={"AAPL": (D(40), T0), "MSFT": (D(40), T0)})
    assert g.check(order(qty=100), v) is None
    v.advance(1.999999)
    assert g.check(order(qty=100, strategy="other", limit="40"), v) == (
        "duplicate of BUY 100 AAPL sent 1.999999 s ago, inside duplicate_window_seconds 2")
    assert g.check(order(qty=101), v) is None
    assert g.check(order(Side.SELL, 100), v) is None
    assert g.check(order(qty=100, symbol="MSFT"), v) is None
    v.t = T0 + timedelta(seconds=2)  # the refused duplicate did not restart the window
    assert g.check(order(qty=100), v) is None
    v.advance(1)
    assert g.check(order(qty=100), v) is not None


def test_set_limit_changes_behaviour_at_run_time() -> None:
    g = gate(max_order_qty=D(1000))
    assert g.check(order(qty=1500), View()) is not None
    assert g.set_limit("max_order_qty", " 2000 ") == (D(1000), D(2000))
    assert g.check(order(qty=1500), View()) is None
    assert g.set_limit("allowed_symbols", "msft, ibm") == ([], ["MSFT", "IBM"])
    assert g.check(order(qty=1), View()) == "AAPL is not in allowed_symbols (MSFT, IBM)"
    assert g.set_limit("allowed_symbols", "*") == (["MSFT", "IBM"], [])
    assert g.set_limit("duplicate_window_seconds", "0.5") == (0.000001, 0.5)


def test_the_time_windows_follow_a_limit_changed_at_run_time() -> None:
    """The quote-age and duplicate windows are made once per limits object: a new limit applies
    from the next check on, not from a cached one."""
    g, view = gate(quote_max_age_seconds=3600), View()
    view.advance(10)
    assert g.check(order(), view) is None
    view.advance(0.2)
    assert g.check(order(), view) is None  # duplicate window 1 us
    g.set_limit("duplicate_window_seconds", "0.5")
    view.advance(0.2)
    assert (g.check(order(), view) or "").startswith("duplicate of BUY 100 AAPL sent 0.2 s ago")
    g.set_limit("quote_max_age_seconds", "5")
    view.advance(1)
    assert (g.check(order(), view) or "").startswith("quote for AAPL is 11.4 s old, beyond quote_max_age_seconds 5")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_qty", "5", "unknown risk limit 'max_qty': use one of max_order_qty, max_order_notional,"),
        ("max_order_qty", "-1", "risk.max_order_qty: Input should be greater than 0 (got '-1'); the limit stays 1000"),
        ("max_order_qty", "lots", "risk.max_order_qty: Input should be a valid decimal (got 'lots')"),
        ("max_order_notional", "NaN", "risk.max_order_notional: Input should be a finite number"),
        ("quote_max_age_seconds", "0", "risk.quote_max_age_seconds: Input should be greater than 0"),
        ("max_orders_per_minute_total", "2.5", "risk.max_orders_per_minute_total: Input should be a valid integer"),
        ("daily_loss_action", "stop", "risk.daily_loss_action: Input should be 'REDUCING' or 'HALTED'"),
        ("allowed_symbols", "AAPL, aapl", "risk.allowed_symbols: symbol(s) listed twice in allowed_symbols: AAPL"),
    ],
)
def test_set_limit_refuses_bad_keys_and_values(key: str, value: str, message: str) -> None:
    g = gate(max_order_qty=D(1000))
    before = g.limits
    with pytest.raises(ConfigError) as info:
        g.set_limit(key, value)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert g.limits == before


def test_limits_dict_round_trips_through_set_limit() -> None:
    g = RiskGate(RiskConfig(allowed_symbols=["AAPL", "MSFT"], duplicate_window_seconds=0.25))
    shown = g.limits_dict()
    assert shown["allowed_symbols"] == "AAPL, MSFT" and shown["duplicate_window_seconds"] == "0.25"
    assert shown["max_order_qty"] == "10000" and shown["daily_loss_action"] == "REDUCING"
    before = g.limits
    for key, value in shown.items():
        g.set_limit(key, value)
    assert g.limits == before
    assert RiskGate(RiskConfig()).limits_dict()["allowed_symbols"] == "*"


def test_config_defaults() -> None:
    c = RiskConfig()
    assert (c.max_order_qty, c.max_order_notional, c.max_position_qty) == (D(10000), D(100000), D(20000))
    assert c.allowed_symbols == [] and c.daily_loss_action == "REDUCING"
    with pytest.raises(ValueError, match="greater than 0"):
        RiskConfig(max_gross_exposure=D(0))


def test_reduce_only_symbols_after_a_flatten() -> None:
    g = gate()
    g.reduce_only_symbols.add("AAPL")
    v = View(positions={"AAPL": D(100), "MSFT": D(5)}, quotes={"AAPL": (D(40), T0), "MSFT": (D(40), T0)},
             marks={"AAPL": D(40), "MSFT": D(40)})
    assert g.check(order(Side.BUY, 1), v) == (
        "AAPL is reduce-only after a flatten until the operator resumes: BUY 1 AAPL does not reduce position 100")
    assert g.check(order(Side.SELL, 100), v) is None
    assert g.check(order(Side.BUY, 1, symbol="MSFT"), v) is None  # other symbols trade on
    g.reduce_only_symbols.clear()
    assert g.check(order(Side.BUY, 1), v) is None


def test_liquidation_orders_pass_halted_and_skip_the_rate_and_duplicate_guards() -> None:
    g = gate(TradingState.HALTED, max_orders_per_minute_total=1, duplicate_window_seconds=5, max_order_qty=D(60))
    v = View(positions={"AAPL": D(100)})

    def liquidate(qty: int, reduce_only: bool = True) -> str | None:
        return g.check(OrderRequest("liquidation", "AAPL", Side.SELL, D(qty), OrderType.MARKET,
                                    reduce_only=reduce_only, source=LIQUIDATION_SOURCE), v)

    assert liquidate(50) is None
    assert liquidate(50) is None  # the same size again, and over the total rate: still goes
    assert liquidate(61) == "qty 61 exceeds max_order_qty 60"  # every other check applies
    assert "trading HALTED" in (liquidate(10, reduce_only=False) or "")  # only reduce-only ones
    v.open_orders["AAPL"] = (D(0), D(100))
    assert "more than the 0 left to reduce" in (liquidate(1) or "")
    # An operator order with the same look is not a liquidation.
    assert "trading HALTED" in (g.check(order(Side.SELL, 1, reduce_only=True), v) or "")
    # Its passes count for the others' rate limit once trading resumes.
    g.set_state(TradingState.ACTIVE, reason="resume")
    assert "max_orders_per_minute_total 1" in (g.check(order(Side.SELL, 1), View(positions={"AAPL": D(100)})) or "")


def test_refusals_never_round_a_value_to_look_allowed() -> None:
    g = gate(max_order_notional=D(50000))
    assert g.check(order(qty=1000, limit="50.00001"), View()) == (
        "notional 50000.01 exceeds max_order_notional 50000")
    assert g.check(order(qty=10000, limit="5.0000001"), View()) == (
        "notional 50000.0010000 exceeds max_order_notional 50000")


def test_duplicate_memory_stays_bounded_and_exact_inside_the_window() -> None:
    g = gate(duplicate_window_seconds=2)
    v = View()
    for qty in range(1, 10001):  # one order a millisecond for 10 s, every one a new size
        v.advance(0.001)
        assert g.check(order(qty=qty), v) is None
    assert len(g._last_sent) <= 4096
    assert "sent 1.5 s ago" in (g.check(order(qty=8500), v) or "")  # inside the window: remembered
    assert g.check(order(qty=7000), v) is None  # 3 s ago: forgotten or expired, either way it passes


def test_state_listener_hears_every_change_once() -> None:
    heard: list[tuple[str, str, str]] = []
    g = RiskGate(RiskConfig(), on_state_change=lambda old, new, why: heard.append((old, new, why)))
    g.set_state(TradingState.ACTIVE, reason="no-op")
    g.set_state(TradingState.HALTED, reason="operator: halt")
    g.set_state(TradingState.HALTED, reason="again")
    assert heard == [("ACTIVE", "HALTED", "operator: halt")]
    assert g.state_reason == "operator: halt"
