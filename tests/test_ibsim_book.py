"""The simulator's arithmetic and persistence without sockets: commission, average cost and
realized P&L through opens, adds, partial closes and flips; account values; the state file
round trip, its atomic writes and its refusal of foreign files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.ibsim.book import Book, commission_for
from brokers.ibsim.prices import PriceBook
from brokers.ibsim.state import SimOrder, SimState, StateError, load_state, save_state

D = Decimal


def test_commission_is_ib_fixed_pricing() -> None:
    assert commission_for(D(100), D(150)) == D("1.00")  # minimum
    assert commission_for(D(1000), D(150)) == D("5.00")  # half a cent a share
    assert commission_for(D(1000), D("0.50")) == D("5.00")  # 1% of 500 caps it at 5
    assert commission_for(D(1000), D("0.05")) == D("0.50")  # 1% of value below the minimum
    assert commission_for(D(333), D(10)) == D("1.67")


def _book() -> Book:
    clock = iter(range(1_760_000_000, 1_760_100_000)).__next__
    return Book(SimState(), PriceBook(seed=0), clock=lambda: float(clock()))


def _order(book: Book, action: str, qty: int, order_id: int = 1) -> SimOrder:
    o = SimOrder(
        order_id=order_id, client_id=1, perm_id=book.next_perm_id(), symbol="AAPL",
        con_id=book.contract("AAPL").con_id, exchange="SMART", action=action, total_qty=D(qty),
        order_type="MKT", lmt_price=None, tif="DAY", account="DU1234567", order_ref=f"r{order_id}",
        status="Submitted",
    )
    book.add_order(o)
    return o


def test_long_round_trip_with_partial_close() -> None:
    book = _book()
    book.fill(_order(book, "BUY", 1000), D(1000), D("10.00"))  # commission 5.00
    pos = book.state.positions["AAPL"]
    assert (pos.qty, pos.avg_cost) == (D(1000), D("10.005"))
    assert book.state.cash == D(1_000_000) - D(10_000) - D(5)

    fill = book.fill(_order(book, "SELL", 400, 2), D(400), D("11.00"))  # commission 2.00
    assert fill.execution.realized_pnl == (D("11.00") - D("10.005")) * 400 - 2
    assert (pos.qty, pos.avg_cost) == (D(600), D("10.005"))

    fill = book.fill(_order(book, "SELL", 600, 3), D(600), D("9.00"))  # commission 3.00
    assert fill.execution.realized_pnl == (D("9.00") - D("10.005")) * 600 - 3
    assert (pos.qty, pos.avg_cost) == (D(0), D(0))
    assert book.state.realized_pnl == pos.realized_pnl == D("396.00") + D("-606.00")
    assert book.state.cash == D(1_000_000) - D(10_005) + D(4_398) + D(5_397)


def test_flip_from_long_to_short() -> None:
    book = _book()
    book.fill(_order(book, "BUY", 100), D(100), D("50"))  # avg 50.01
    fill = book.fill(_order(book, "SELL", 300, 2), D(300), D("60"))  # commission 1.50, 0.50 closes
    assert fill.execution.realized_pnl == (D(60) - D("50.01")) * 100 - D("0.50")
    pos = book.state.positions["AAPL"]
    assert pos.qty == D(-200)
    assert pos.avg_cost == D(60) - D("1.00") / 200  # a short's cost is price minus commission
    add = book.fill(_order(book, "SELL", 200, 3), D(200), D(58))  # add to the short: no realized P&L
    assert add.execution.realized_pnl is None
    assert pos.avg_cost == (D(200) * (D(60) - D("0.005")) + D(200) * 58 - 1) / 400


def test_partial_fills_build_the_average_price() -> None:
    book = _book()
    order = _order(book, "BUY", 100)
    f1 = book.fill(order, D(30), D("10.00"))
    assert (order.status, order.filled, f1.execution.cum_qty) == ("Submitted", D(30), D(30))
    f2 = book.fill(order, D(1000), D("11.00"))  # clipped to the remainder
    assert (order.status, order.filled, f2.execution.shares) == ("Filled", D(100), D(70))
    assert order.avg_fill_price == (D(300) + D(770)) / 100
    assert f2.execution.avg_price == order.avg_fill_price
    assert f1.execution.exec_id != f2.execution.exec_id


def test_account_values_add_up() -> None:
    book = _book()
    book.prices.set_price("AAPL", D(100))
    book.fill(_order(book, "BUY", 100), D(100), D(100))  # commission 1
    book.prices.set_price("AAPL", D(110))
    values = {k: D(v) for k, v, cur in book.account_values() if cur == "USD" and k != "Currency"}
    assert values["StockMarketValue"] == D(11_000)
    assert values["TotalCashValue"] == D(1_000_000) - D(10_001)
    assert values["NetLiquidation"] == values["TotalCashValue"] + values["StockMarketValue"]
    assert values["UnrealizedPnL"] == (D(110) - D("100.01")) * 100
    assert values["GrossPositionValue"] == D(11_000)
    [(pos, mark, value, unreal)] = book.portfolio()
    assert (pos.qty, mark, value, unreal) == (D(100), D(110), D(11_000), D("999.00"))


def test_con_ids_never_collide() -> None:
    book = _book()
    ids = {book.contract(f"S{i}").con_id for i in range(2000)}
    assert len(ids) == 2000
    assert book.symbol_for_con_id(book.contract("S7").con_id) == "S7"


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    book = _book()
    book.fill(_order(book, "BUY", 100), D(40), D("10.25"))
    book.state.prices = book.prices.cursors()
    path = tmp_path / "state.json"
    save_state(path, book.state)
    loaded = load_state(path)
    assert loaded == book.state
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_missing_file_is_a_new_state_and_foreign_files_are_refused(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(StateError, match="not a simulator state"):
        load_state(bad)
    bad.write_text(json.dumps({"schema": 99}))
    with pytest.raises(StateError, match="schema"):
        load_state(bad)
    with pytest.raises(StateError, match="cannot write"):
        save_state(tmp_path / "no-such-dir" / "s.json", SimState())


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    save_state(path, SimState(next_valid_id=5))
    import brokers.ibsim.state as state_mod

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state_mod.os, "replace", boom)
    with pytest.raises(StateError):
        save_state(path, SimState(next_valid_id=6))
    monkeypatch.undo()
    assert load_state(path).next_valid_id == 5
    assert list(tmp_path.iterdir()) == [path]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 2000),
                          st.decimals("0.05", "500", places=2)), min_size=1, max_size=12),
       st.decimals("0.05", "500", places=2))
def test_pnl_is_conserved(trades: list[tuple[str, int, Decimal]], mark: Decimal) -> None:
    """Whatever the fills: cash moves by exactly the trades and commissions, and realized +
    unrealized P&L equals the change in net liquidation (to the cent per closing fill)."""
    book = _book()
    commissions = D(0)
    flow = D(0)
    for i, (action, qty, price) in enumerate(trades):
        fill = book.fill(_order(book, action, qty, i + 1), D(qty), price)
        commissions += fill.execution.commission
        flow += (1 if action == "BUY" else -1) * qty * price
    assert book.state.cash == D(1_000_000) - flow - commissions
    book.prices.set_price("AAPL", mark)
    pos = book.state.positions["AAPL"]
    netliq = book.state.cash + pos.qty * mark
    unrealized = (mark - pos.avg_cost) * pos.qty
    assert abs(book.state.realized_pnl + unrealized - (netliq - D(1_000_000))) <= D("0.01") * len(trades)
    assert pos.qty == sum((1 if a == "BUY" else -1) * q for a, q, _ in trades)
