"""Flatten a symbol a long-only strategy holds, restart, run on: the strategy never sells
what it no longer has, and the account is never short (the default paper config, in-process)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from cockpit.wiring import build_engine
from core.config import load_config
from core.domain.events import FillApplied
from core.domain.model import LIQUIDATION, Side
from tests.conftest import CONFIG

SYMBOL = "YHOO"


def _settings(state: Path):
    return load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max"}, "deadman": {"enabled": False}})


async def test_flatten_takes_the_strategy_book_to_zero_and_survives_a_restart(tmp_path: Path, clean_env) -> None:
    state = tmp_path / "state"
    engine = build_engine(_settings(state), new_id=lambda: "t0")
    await engine.start()
    flattened: dict[str, object] = {}

    def on_fill(event: FillApplied) -> None:
        # The first time rsi_reversion holds YHOO, the operator flattens YHOO.
        if (not flattened and event.strategy == "rsi_reversion" and event.fill.symbol == SYMBOL
                and engine.position("rsi_reversion", SYMBOL) > 0):
            flattened["held"] = engine.position("rsi_reversion", SYMBOL)
            flattened["task"] = asyncio.ensure_future(engine.controls.flatten(SYMBOL, actor="test", reason="t"))
        elif flattened and event.strategy == LIQUIDATION and engine.portfolio.qty(SYMBOL) == 0:
            engine.request_stop()

    engine.bus.subscribe(FillApplied, on_fill)
    await engine.run()
    await flattened["task"]  # type: ignore[misc]
    assert flattened["held"] > 0
    assert engine.portfolio.qty(SYMBOL) == 0
    assert engine.position("rsi_reversion", SYMBOL) == 0 and engine.position("sma_cross", SYMBOL) == 0
    assert SYMBOL in engine.gate.reduce_only_symbols
    await engine.shutdown()

    again = build_engine(_settings(state), new_id=lambda: "t0")
    await again.start()
    try:
        assert again.gate.reduce_only_symbols == {SYMBOL}  # persisted
        assert again.position("rsi_reversion", SYMBOL) == 0  # the strategy's book, rebuilt from the store
        await again.controls.resume(actor="test", reason="flatten done")
        assert again.gate.reduce_only_symbols == set()
        assert await again.run() is True  # the replay ran to its end
        for symbol, pos in again.portfolio.positions.items():
            owners = sum((q for (o, s), q in again.portfolio.owner_positions.items() if s == symbol), Decimal(0))
            assert pos.qty == owners, symbol
    finally:
        await again.shutdown()

    import sqlite3

    db = sqlite3.connect(state / "cockpit.sqlite")
    running: dict[str, Decimal] = defaultdict(Decimal)
    for symbol, side, qty in db.execute("SELECT symbol, side, qty FROM fills ORDER BY seq"):
        running[symbol] += Decimal(qty) * Side(side).sign
        assert running[symbol] >= 0, f"the account went short {symbol}"
    refused = db.execute("SELECT strategy, side, reason FROM risk_events WHERE symbol = ? AND side = 'SELL'",
                         (SYMBOL,)).fetchall()
    assert not [r for r in refused if r[0] == "rsi_reversion"], refused
    db.close()


async def test_the_equity_curve_drawdown_and_orders_survive_a_restart(tmp_path: Path, clean_env) -> None:
    state = tmp_path / "state"
    first = build_engine(load_config(CONFIG, state_dir=state, overrides={
        "feed": {"speed": "max", "end": "2009-06-30"}, "deadman": {"enabled": False}}), new_id=lambda: "t0")
    await first.start()
    assert await first.run() is True
    before = first.snapshot(max_orders=20)
    await first.shutdown()
    assert before.max_drawdown > 0 and len(before.equity_curve) > 10 and before.orders

    again = build_engine(_settings(state), new_id=lambda: "t0")
    await again.start()
    try:
        after = again.snapshot(max_orders=20)
        assert after.max_drawdown == before.max_drawdown
        assert after.equity_curve[-1][1] == before.equity_curve[-1][1]
        assert len(after.equity_curve) == len(before.equity_curve)
        # The orders pane shows the earlier run's orders (a restart may settle the unsent ones).
        assert {o.client_order_id for o in after.orders} == {o.client_order_id for o in before.orders}
    finally:
        await again.shutdown()
