"""Operator commands: validated and planned before anyone is asked; a confirmed plan runs only
if it still holds; unknown symbols are refused; overrides are adjustment fills; texts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cockpit.wiring import build_engine
from core.config import load_config
from core.domain.commands import CancelAll, CommandRefused, Halt, ManualOrder, OverridePosition, PlanChanged
from core.domain.model import OPERATOR, OrderType, Side, TimeInForce
from core.risk.gate import OrderRequest
from tests.conftest import CONFIG


@pytest.fixture
async def engine(tmp_path: Path, clean_env):
    settings = load_config(CONFIG, state_dir=tmp_path / "state",
                           overrides={"feed": {"speed": "max", "end": "2008-03-31"}, "deadman": {"enabled": False},
                                      "risk": {"price_collar_pct": "5"}})
    e = build_engine(settings, new_id=lambda: "c0")
    await e.start()
    assert await e.run() is True  # three months replayed: prices for every symbol
    yield e
    await e.shutdown()


async def test_a_confirm_runs_only_the_plan_it_showed(engine) -> None:
    shown = await engine.controls.plan(CancelAll("test"))
    assert shown.effect == {"cancel": []} and "there are none" in shown.text
    for symbol in ("AAPL", "ORCL"):  # orders placed while the operator reads the prompt
        price = engine.oms.last_prices[symbol]
        engine.oms.submit(OrderRequest("sma_cross", symbol, Side.BUY, Decimal(1), OrderType.LIMIT,
                                       (price * Decimal("0.97")).quantize(Decimal("0.01"))), TimeInForce.GTC)
    await engine.oms.send_pending()
    with pytest.raises(PlanChanged) as changed:
        await engine.controls.execute(CancelAll("test"), shown)
    assert len(changed.value.plan.effect["cancel"]) == 2 and "CANCEL ALL 2 working order(s)" in changed.value.plan.text
    assert len(engine.oms.open_orders) == 2  # nothing was cancelled on the stale plan
    result = await engine.controls.execute(CancelAll("test"), changed.value.plan)
    assert result.data["cancelled"] and len(result.data["cancelled"]) == 2
    rows = await engine.store.fetchall("SELECT detail FROM audit WHERE kind = 'operator.cancel_all'")
    assert any("plan changed" in r["detail"] for r in rows)  # the refusal is audited too


async def test_halt_plan_counts_the_orders_that_stay(engine) -> None:
    engine.oms.submit(OrderRequest("sma_cross", "SPY", Side.BUY, Decimal(1), OrderType.LIMIT,
                                   (engine.oms.last_prices["SPY"] * Decimal("0.98")).quantize(Decimal("0.01"))),
                      TimeInForce.GTC)
    plan = await engine.controls.plan(Halt("test"))
    assert "1 working order(s) stay working" in plan.text


async def test_bad_input_is_refused_before_the_confirm(engine) -> None:
    handler = engine.controls
    for cmd, why in [
        (ManualOrder("test", side="buy", symbol="ZZZZ", qty="5"), "unknown symbol ZZZZ (traded: AAPL, NVDA, ORCL"),
        (ManualOrder("test", side="buy", symbol="AAPL", qty="abc"), "qty must be a number"),
        (ManualOrder("test", side="buy", symbol="AAPL", qty="-5"), "qty must be positive"),
        (ManualOrder("test", side="buy", symbol="AAPL", qty="2.5"), "whole number"),
        (ManualOrder("test", side="buy", symbol="AAPL", qty="5", limit="1"), "price_collar_pct"),
        (OverridePosition("test", "fix", symbol="ZZZZ", qty="5", avg_cost="10"), "add --new-symbol"),
        (OverridePosition("test", "fix", symbol="AAPL", qty="1e999999", avg_cost="10"), "is beyond"),
        (OverridePosition("test", "fix", symbol="AAPL", qty="nan", avg_cost="10"), "must be a finite"),
        (OverridePosition("test", None, symbol="AAPL", qty="5", avg_cost="10"), "needs a reason"),
    ]:
        with pytest.raises(CommandRefused, match=why.replace("(", r"\(")):
            await handler.plan(cmd)
    with pytest.raises(CommandRefused, match="unknown symbol ZZZZ"):
        await handler.flatten("ZZZZ", actor="test")
    assert (await handler.plan(OverridePosition("test", "new listing", symbol="ZZZZ", qty="5", avg_cost="10",
                                                new_symbol=True))).effect["symbol"] == "ZZZZ"


async def test_an_override_is_an_adjustment_fill_the_books_follow(engine) -> None:
    book = engine.portfolio
    held = book.qty("ORCL")
    cash = book.cash
    strategies = {o: q for (o, s), q in book.owner_positions.items() if s == "ORCL"}
    realized = book.position("ORCL").realized_pnl
    plan = await engine.controls.plan(OverridePosition("test", "broker statement", symbol="ORCL", qty=str(held + 10),
                                                       avg_cost="20"))
    result = await engine.controls.set_position("ORCL", str(held + 10), "20", actor="test", reason="broker statement")
    assert book.qty("ORCL") == held + 10
    assert book.position("ORCL").avg_cost == 20  # the stated average cost...
    assert book.position("ORCL").realized_pnl == realized  # ...and no P&L invented by a correction
    spent = sum((Decimal(q) * Decimal(p) for q, p in plan.effect["fills"]), Decimal(0))
    assert book.cash == cash - spent  # the cash follows the adjustment fills
    assert book.owner_qty(OPERATOR, "ORCL") == 10  # the operator owns the difference
    assert {o: q for (o, s), q in book.owner_positions.items() if s == "ORCL" and o != OPERATOR} == strategies
    assert "adjustment fill" in result.message and "None" not in result.message
    [row] = await engine.store.fetchall("SELECT kind, actor, reason FROM fills WHERE exec_id = ?",
                                        (result.data["exec_id"],))
    assert (row["kind"], row["actor"], row["reason"]) == ("adjustment", "test", "broker statement")
    # Back down below what the strategies hold: the operator's own 10 go first, then the holders.
    down = await engine.controls.set_position("ORCL", str(held - 1), "20", actor="test", reason="sold at the broker")
    assert book.qty("ORCL") == held - 1
    assert book.qty("ORCL") == sum((q for (o, s), q in book.owner_positions.items() if s == "ORCL"), Decimal(0))
    if held > 0:
        assert book.owner_qty(OPERATOR, "ORCL") == 0
    assert "->" in down.message


async def test_a_long_only_strategy_cannot_sell_below_zero(engine) -> None:
    symbol = "NVDA"
    held = engine.position("rsi_reversion", symbol)
    order = engine.oms.submit(OrderRequest("rsi_reversion", symbol, Side.SELL, held + 5, OrderType.MARKET,
                                           may_short=False), TimeInForce.DAY)
    assert order is None
    assert engine.oms.last_refusal.startswith(f"rsi_reversion is long-only: SELL {held + 5} {symbol} would take its "
                                              f"position to -5")
    # The strategies' own path asks the same: the demo strategies declare themselves long-only.
    assert all(not s.may_short for s in engine.strategies)
