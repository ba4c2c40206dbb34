"""Average-cost accounting: partial closes, flips, commissions, and many random fills
checked against an independent FIFO-free recomputation."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.model import Execution, Side
from core.portfolio.book import Portfolio, Position

T0 = datetime(2020, 1, 2, tzinfo=timezone.utc)
D = Decimal


def fill(side: str, qty: int | str, price: str, commission: str = "0", n: int = 0) -> Execution:
    return Execution(f"x{n}-{side}-{qty}-{price}", "c1", "AAPL", Side(side), D(qty), D(price), D(commission), T0)


def test_open_add_and_average_cost() -> None:
    pf = Portfolio(D(10000))
    pf.apply_fill(fill("BUY", 100, "10"))
    pf.apply_fill(fill("BUY", 100, "12", n=1))
    pos = pf.positions["AAPL"]
    assert pos.qty == 200 and pos.avg_cost == D(11) and pos.realized_pnl == 0
    assert pf.cash == D(10000) - D(1000) - D(1200)


def test_partial_close_long_realizes_on_closed_qty_only() -> None:
    pf = Portfolio()
    pf.apply_fill(fill("BUY", 100, "10"))
    pf.apply_fill(fill("SELL", 40, "15", "1.00", n=1))
    pos = pf.positions["AAPL"]
    assert pos.qty == 60
    assert pos.avg_cost == D(10)  # a partial close keeps the average cost
    assert pos.realized_pnl == D(200)  # (15 - 10) * 40 * +1
    assert pos.commissions == D("1.00")
    assert pf.pnl().net == D(200) - D("1.00")  # no mark yet: last price = first fill price 10 -> 0 unrealized


def test_short_close_direction_is_minus_one() -> None:
    pf = Portfolio()
    pf.apply_fill(fill("SELL", 50, "20"))
    pf.apply_fill(fill("BUY", 20, "18", n=1))
    pos = pf.positions["AAPL"]
    assert pos.qty == -30 and pos.avg_cost == D(20)
    assert pos.realized_pnl == D(40)  # (18 - 20) * 20 * -1


def test_flip_opens_remainder_at_fill_price() -> None:
    pf = Portfolio()
    pf.apply_fill(fill("BUY", 100, "10"))
    pf.apply_fill(fill("SELL", 150, "12", n=1))
    pos = pf.positions["AAPL"]
    assert pos.qty == -50
    assert pos.avg_cost == D(12)
    assert pos.realized_pnl == D(200)
    pf.mark("AAPL", D(11), T0)
    assert pos.unrealized_pnl == D(50)  # short 50 from 12, now 11


def test_close_to_flat_resets_average_cost() -> None:
    pf = Portfolio()
    pf.apply_fill(fill("BUY", 10, "10"))
    pf.apply_fill(fill("SELL", 10, "9", "2", n=1))
    pos = pf.positions["AAPL"]
    assert pos.qty == 0 and pos.avg_cost == 0 and pos.unrealized_pnl == 0
    assert pf.pnl().net == D(-10) - D(2)


def test_net_is_realized_plus_unrealized_minus_commissions() -> None:
    pf = Portfolio(D(1000))
    pf.apply_fill(fill("BUY", 10, "10", "1"))
    pf.mark("AAPL", D(13), T0)
    pnl = pf.pnl()
    assert (pnl.realized, pnl.unrealized, pnl.commissions, pnl.net) == (D(0), D(30), D(1), D(29))
    assert pf.equity() == D(1000) - D(100) - D(1) + D(130)


def recompute(fills: list[tuple[int, Decimal, Decimal]], last: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Independent P&L: every fill as cash flow; total P&L = cash + qty * last."""
    cash = Decimal(0)
    qty = Decimal(0)
    commissions = Decimal(0)
    for signed, price, comm in fills:
        cash -= signed * price
        qty += signed
        commissions += comm
    return cash + qty * last, commissions, qty


fills_strategy = st.lists(
    st.tuples(
        st.integers(min_value=-500, max_value=500).filter(lambda q: q != 0),
        st.decimals(min_value="0.01", max_value="999.99", places=2),
        st.decimals(min_value="0", max_value="5", places=2),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(fills=fills_strategy, last=st.decimals(min_value="0.01", max_value="999.99", places=2))
def test_many_fills_reconcile_with_cash_flow_recomputation(fills, last) -> None:
    pos = Position("X")
    for signed, price, comm in fills:
        pos.apply(Decimal(signed), price, comm)
    pos.last_price = last
    total, commissions, qty = recompute([(Decimal(s), p, c) for s, p, c in fills], last)
    assert pos.qty == qty
    assert pos.commissions == commissions
    # realized + unrealized equals the cash-flow P&L to far better than a cent
    assert abs(pos.realized_pnl + pos.unrealized_pnl - total) < Decimal("0.000001")
