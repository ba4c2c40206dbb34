"""Reconciliation: the pure comparison, and a paper engine whose book gains a fill the venue
never made (a missing execution), found, blocked, accepted and then left settled."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from cockpit.wiring import build_engine
from core.config import load_config
from core.domain.model import BrokerPosition, Execution, Order, OrderStatus, OrderType, Side, TimeInForce
from core.execution.reconcile import BrokerBook, DiffKind, EngineBook, compare
from tests.conftest import CONFIG

T = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
D = Decimal


def order(coid: str, status: OrderStatus, symbol: str = "AAPL") -> Order:
    return Order(client_order_id=coid, strategy="s", symbol=symbol, side=Side.BUY, qty=D(10),
                 order_type=OrderType.LIMIT, tif=TimeInForce.DAY, limit_price=D(100), created_at=T, status=status)


def test_compare_names_every_kind_of_difference() -> None:
    engine = EngineBook(
        positions={"AAPL": D(10), "MSFT": D(5)},
        open_orders={"e-1": order("e-1", OrderStatus.ACCEPTED), "e-2": order("e-2", OrderStatus.NEW),
                     "e-3": order("e-3", OrderStatus.ACCEPTED, "SPY")},
        execs_today={"x-1": "AAPL", "x-2": "MSFT"},
    )
    broker = BrokerBook(
        positions={"AAPL": BrokerPosition("AAPL", D(10), D(100)), "NVDA": BrokerPosition("NVDA", D(-3), D(50))},
        open_orders={"e-1": order("e-1", OrderStatus.ACCEPTED), "ib-perm-9": order("ib-perm-9", OrderStatus.ACCEPTED, "TSLA")},
        executions=[Execution("x-1", "e-1", "AAPL", Side.BUY, D(10), D(100), D(1), T)],
    )
    got = {(d.symbol, d.kind, d.key) for d in compare(engine, broker)}
    assert got == {
        ("MSFT", DiffKind.POSITION, "MSFT"),  # engine 5, broker none
        ("NVDA", DiffKind.POSITION, "NVDA"),  # broker -3, engine none
        ("TSLA", DiffKind.UNKNOWN_ORDER, "ib-perm-9"),
        ("SPY", DiffKind.MISSING_ORDER, "e-3"),  # e-2 is NEW: never sent, not expected at the broker
        ("MSFT", DiffKind.MISSING_EXECUTION, "x-2"),
    }
    same = EngineBook({"AAPL": D(10)}, {"e-1": order("e-1", OrderStatus.ACCEPTED)}, {"x-1": "AAPL"})
    assert compare(same, BrokerBook({"AAPL": BrokerPosition("AAPL", D(10), D(100))},
                                    {"e-1": order("e-1", OrderStatus.ACCEPTED)}, broker.executions)) == []


async def test_missing_execution_break_is_accepted_and_stays_settled(tmp_path: Path, clean_env) -> None:
    settings = load_config(CONFIG, state_dir=tmp_path, overrides={"feed": {"speed": "max", "end": "2008-02-29"}})
    settings.reconcile.settle_seconds = 0
    engine = build_engine(settings)
    await engine.start()
    try:
        assert engine.reconciler.last is not None and engine.reconciler.last.differences == []
        await engine.run()
        now = engine.clock.now()
        engine.store.append("INSERT INTO fills (exec_id, client_order_id, strategy, symbol, side, qty, price,"
                            " commission, realized_pnl, ts) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            ("ghost-1", "nobody-1", "x", "SPY", "BUY", "1", "100", "0", "0", now.isoformat()))
        result = await engine.controls.reconcile(actor="test")
        assert [(d["kind"], d["key"]) for d in result.data["pass"]["differences"]] == [("missing_execution", "ghost-1")]
        assert engine.gate.blocked_symbols.keys() == {"SPY"}
        done = await engine.controls.resolve_break("SPY", "accept", actor="test", reason="venue is right")
        assert done.data["accepted_missing_execs"] == ["ghost-1"] and not engine.gate.blocked_symbols
        again = await engine.controls.reconcile(actor="test")
        assert again.data["pass"]["differences"] == [] and engine.reconciler.breaks == {}
    finally:
        await engine.shutdown()
