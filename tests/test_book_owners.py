"""The book is the only writer of positions and cash, and every fill belongs to owners.

Property: over any sequence of strategy fills, manual orders, liquidation closes, overrides
(adjustments) and fills the engine never ordered, for every symbol the book position equals
the sum of its owners' positions, cash equals the starting cash minus what the fills cost, and
a closing fill by a non-strategy owner never leaves a strategy holding more than before.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.model import EXTERNAL, LIQUIDATION, OPERATOR, Execution, Side
from core.portfolio.book import Portfolio

SYMBOLS = ["AAPL", "ORCL"]
STRATEGIES = ["sma_cross", "rsi_reversion"]
START = Decimal(100000)
WHEN = datetime(2009, 3, 2, 15, tzinfo=UTC)

step = st.tuples(
    st.sampled_from(["strategy", "manual", "flatten", "override", "external"]),
    st.sampled_from(SYMBOLS),
    st.sampled_from(STRATEGIES),
    st.integers(min_value=-500, max_value=500).filter(bool),
    st.integers(min_value=1, max_value=40000).map(lambda c: Decimal(c) / 100),
)

generated: Counter[str] = Counter()


def _fill(n: int, symbol: str, signed: int | Decimal, price: Decimal, commission: Decimal = Decimal(0)) -> Execution:
    side = Side.BUY if signed > 0 else Side.SELL
    return Execution(f"e{n}", "", symbol, side, Decimal(abs(signed)), price, commission, WHEN)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=1, max_size=60))
def test_book_position_is_the_sum_of_its_owners_at_every_step(steps: list[tuple[str, str, str, int, Decimal]]) -> None:
    book = Portfolio(START)
    spent = Decimal(0)
    for n, (kind, symbol, strategy, qty, price) in enumerate(steps):
        generated[kind] += 1
        before = {o: book.owner_qty(o, symbol) for o in STRATEGIES}
        if kind == "strategy":
            owner, signed = strategy, Decimal(qty)
        elif kind == "manual":
            owner, signed = OPERATOR, Decimal(qty)
        elif kind == "external":
            owner, signed = EXTERNAL, Decimal(qty)
        elif kind == "flatten":
            owner, signed = LIQUIDATION, -book.qty(symbol)
        else:  # an override to ``qty``: the difference, booked as an adjustment fill
            owner, signed = OPERATOR, Decimal(qty) - book.qty(symbol)
        if signed == 0:
            continue
        commission = Decimal("1.00") if kind in ("strategy", "manual") else Decimal(0)
        allocation = book.allocate(owner, symbol, signed)
        assert sum(q for _, q in allocation) == signed
        book.apply_fill(_fill(n, symbol, signed, price, commission), allocation)
        spent += signed * price + commission
        for s in SYMBOLS:
            owners = sum((q for (o, sym), q in book.owner_positions.items() if sym == s), Decimal(0))
            assert book.qty(s) == owners, (s, dict(book.owner_positions))
        assert book.cash == START - spent
        if owner != strategy or kind != "strategy":
            for o in STRATEGIES:  # another owner's fill only ever closes a strategy, never grows it
                after = book.owner_qty(o, symbol)
                assert abs(after) <= abs(before[o]) and after * before[o] >= 0, (kind, o, before[o], after)
        if kind == "flatten":
            assert book.qty(symbol) == 0 and all(book.owner_qty(o, symbol) == 0 for o in [*STRATEGIES, OPERATOR,
                                                                                         EXTERNAL])


def test_the_property_test_generated_every_kind() -> None:
    """Run after the property: every kind of step was drawn many times (see the note on the issue)."""
    if not generated:
        test_book_position_is_the_sum_of_its_owners_at_every_step()
    print(f"property test drew {sum(generated.values())} steps: {dict(generated)}")
    assert all(generated[k] > 100 for k in ("strategy", "manual", "flatten", "override", "external")), generated


def test_a_flatten_closes_every_holder_and_an_operator_sell_its_own_position_first() -> None:
    book = Portfolio(START)
    book.apply_fill(_fill(1, "YHOO", 304, Decimal("18.46")), book.allocate("rsi_reversion", "YHOO", Decimal(304)))
    book.apply_fill(_fill(2, "YHOO", 100, Decimal("18.50")), book.allocate("sma_cross", "YHOO", Decimal(100)))
    book.apply_fill(_fill(3, "YHOO", 10, Decimal("18.50")), book.allocate(OPERATOR, "YHOO", Decimal(10)))
    # The operator sells 50: its own 10 first, then the largest holder.
    assert book.allocate(OPERATOR, "YHOO", Decimal(-50)) == ((OPERATOR, Decimal(-10)), ("rsi_reversion", Decimal(-40)))
    # Offsetting books (one long, one short) go flat with the account too.
    other = Portfolio(START)
    other.apply_fill(_fill(5, "ORCL", 2, Decimal(1)), other.allocate("sma_cross", "ORCL", Decimal(2)))
    other.apply_fill(_fill(6, "ORCL", -1, Decimal(1)), other.allocate("rsi_reversion", "ORCL", Decimal(-1)))
    assert dict(other.allocate(LIQUIDATION, "ORCL", Decimal(-1))) == {"sma_cross": Decimal(-2),
                                                                      "rsi_reversion": Decimal(1)}
    flat = book.allocate(LIQUIDATION, "YHOO", -book.qty("YHOO"))
    assert dict(flat) == {"rsi_reversion": Decimal(-304), "sma_cross": Decimal(-100), OPERATOR: Decimal(-10)}
    book.apply_fill(_fill(4, "YHOO", -414, Decimal("18.00")), flat)
    assert book.qty("YHOO") == 0 and book.holders("YHOO") == {}
