"""Overrides and accepted breaks reach the stated book without inventing realized P&L."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.model import OPERATOR, Execution, Side
from core.portfolio.adjustment import adjustment_fills
from core.portfolio.book import Portfolio

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def book_at(qty: int, avg: D) -> Portfolio:
    pf = Portfolio(D(100000))
    if qty:
        side = Side.BUY if qty > 0 else Side.SELL
        pf.apply_fill(Execution("seed", "", "X", side, D(abs(qty)), avg, D(0), WHEN),
                      pf.allocate("strat", "X", D(qty)))
    return pf


def apply(pf: Portfolio, fills) -> None:
    for n, f in enumerate(fills):
        side = Side.BUY if f.signed_qty > 0 else Side.SELL
        pf.apply_fill(Execution(f"adj{n}", "", "X", side, abs(f.signed_qty), f.price, D(0), WHEN),
                      pf.allocate(OPERATOR, "X", f.signed_qty))


@settings(max_examples=300, deadline=None)
@given(st.integers(-500, 500), st.integers(1, 10000), st.integers(-500, 500), st.integers(1, 10000))
def test_the_book_reaches_the_target_and_realizes_nothing(held: int, avg_c: int, target: int, cost_c: int) -> None:
    avg, cost = D(avg_c) / 100, D(cost_c) / 100
    if held == target:
        assert adjustment_fills(D(held), avg, D(target), cost) == ()  # the handler refuses it: nothing to book
        return
    pf = book_at(held, avg)
    try:
        fills = adjustment_fills(D(held), avg if held else D(0), D(target), cost)
    except ValueError:
        assert held and target and (held > 0) == (target > 0) and abs(target) > abs(held)
        return
    apply(pf, fills)
    pos = pf.position("X")
    assert pos.qty == target
    assert pos.realized_pnl == 0  # nothing realized by a correction
    if target and not (held and (held > 0) == (target > 0) and abs(target) < abs(held)):
        assert abs(pos.avg_cost - cost) < D("1e-20")  # the stated cost, unless it was a reduction
    if held and target and (held > 0) == (target > 0) and abs(target) < abs(held):
        assert pos.avg_cost == avg
    assert pf.qty("X") == sum((q for (o, s), q in pf.owner_positions.items() if s == "X"), D(0))


def test_the_reviewers_cases() -> None:
    pf = book_at(100, D(50))
    apply(pf, adjustment_fills(D(100), D(50), D(40), D(60)))
    assert (pf.position("X").qty, pf.position("X").avg_cost, pf.position("X").realized_pnl) == (40, 50, 0)
    pf = book_at(100, D(50))
    apply(pf, adjustment_fills(D(100), D(50), D(150), D(60)))
    assert pf.position("X").avg_cost == 60 and pf.position("X").realized_pnl == 0
    with pytest.raises(ValueError, match="cannot come from adding"):
        adjustment_fills(D(100), D(50), D(110), D(1))
