"""Capital allocation in a real engine (paper, the bundled data, SQLite), in process: a strategy
that reaches its allocation is refused and the refusal is audited; the status JSON, the
Prometheus gauges and `cockpit metrics`' reader show it; a change through the command handler
is audited, on the bus and persisted; at start the allocations are measured against the
account's equity, stored changes that no longer fit are dropped with an alert, and allocations
beyond the equity refuse to start."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cockpit import readers
from cockpit.capital_reader import allocation_args
from cockpit.control.inprocess import InProcessApi
from cockpit.control.status_model import StatusOut
from cockpit.wiring import build_engine, db_path
from core.config import ConfigError, load_config
from core.domain.commands import CommandRefused
from core.domain.events import AllocationChanged, EngineError
from tests.test_allocation_config import allocated_config

SHORT = {"feed": {"speed": "max", "end": "2008-06-30"}}


def engine_for(tmp_path: Path, allocation: str, **overrides: dict[str, object]):
    settings = load_config(allocated_config(tmp_path, allocation), state_dir=tmp_path / "state",
                           overrides={**SHORT, **overrides})
    return build_engine(settings, new_id=lambda: "abc123")


def audit_rows(engine, kind: str) -> list[dict]:
    with sqlite3.connect(db_path(engine.settings)) as conn:
        return [{"actor": a, "subject": s, **json.loads(d)} for a, s, d in
                conn.execute("SELECT actor, subject, detail FROM audit WHERE kind = ? ORDER BY seq", (kind,))]


async def test_a_strategy_at_its_allocation_is_refused_audited_and_shown(tmp_path: Path, clean_env) -> None:
    engine = engine_for(tmp_path, 'sma_cross = 15000\nrsi_reversion = "30%"')
    await engine.start()
    try:
        api = InProcessApi(engine)  # before the run: the Prometheus counters follow the bus from here
        await engine.run()
        await engine.store.flush()
        refused = [r for r in audit_rows(engine, "gate.refuse") if r["reason"].startswith("allocation: ")]
        assert refused and {r["strategy"] for r in refused} <= {"sma_cross", "rsi_reversion"}
        first = next(r for r in refused if r["strategy"] == "sma_cross")
        assert first["reason"].startswith("allocation: sma_cross gross exposure ")
        assert " would exceed its allocation 15,000.00 (now " in first["reason"]
        [started] = audit_rows(engine, "allocation.start")
        assert started["equity_at_start"] == "100000" and started["allocations"] == {"sma_cross": "15000",
                                                                                      "rsi_reversion": "30%"}
        # every strategy stayed within: the gate never let one grow past its allocation
        view = engine.oms.view
        assert engine.gate.capital.exposure("sma_cross", view) <= D(15000)

        status = (await api.request("GET", "/status")).body
        StatusOut.model_validate(status)
        alloc = status["allocation"]
        assert alloc["equity_at_start"] == "100000" and alloc["uncovered"] == []
        sma = alloc["strategies"]["sma_cross"]
        assert sma["allocation"] == "15000" and sma["given"] == "15000"
        assert D(sma["used"]) + D(sma["remaining"]) == D(15000)
        assert D(sma["used"]) == engine.gate.capital.exposure("sma_cross", view)
        rsi = alloc["strategies"]["rsi_reversion"]
        assert rsi["allocation"] == "30000" and rsi["given"] == "30%"
        assert (await api.request("GET", "/allocation")).body == alloc

        fams = {f.name: f for f in text_string_to_metric_families((await api.request("GET", "/metrics")).raw.decode())}
        gauges = {s.labels["strategy"]: s.value for s in fams["cockpit_strategy_allocation_dollars"].samples}
        used = {s.labels["strategy"]: s.value for s in fams["cockpit_strategy_allocation_used_dollars"].samples}
        assert gauges == {"sma_cross": 15000.0, "rsi_reversion": 30000.0}
        assert used["sma_cross"] == pytest.approx(float(sma["used"]))
        kinds = {s.labels["reason"]: s.value for s in fams["cockpit_gate_refusals"].samples}
        assert kinds["allocation"] == len([r for r in audit_rows(engine, "gate.refuse")
                                           if r["reason"].startswith("allocation: ")])

        # `cockpit metrics` reads the same from the store, without the engine
        with readers.connect_readonly(db_path(engine.settings)) as conn:
            perf = readers.performance(conn, warn=lambda _: None, **allocation_args(engine.settings))
        assert perf["allocation"]["strategies"]["sma_cross"]["used"] == sma["used"]
        assert perf["allocation"]["strategies"]["rsi_reversion"]["allocation"] == "30000"
        assert perf["strategies"]["sma_cross"]["allocated"] == "15000"
    finally:
        await engine.shutdown()


async def test_a_change_is_planned_audited_on_the_bus_and_survives_a_restart(tmp_path: Path, clean_env) -> None:
    engine = engine_for(tmp_path, "sma_cross = 15000")
    changes: list[AllocationChanged] = []
    engine.bus.subscribe(AllocationChanged, changes.append)
    await engine.start()
    try:
        plan = await engine.controls.plan(_set("sma_cross", "40%"))
        assert plan.lines[0] == "SET allocation.sma_cross: 15,000.00 -> 40% (40,000.00) (persisted, survives a restart)."
        result = await engine.controls.set_allocation("sma_cross", "40%", actor="tester", reason="more room",
                                                      plan=plan)
        assert result.data == {"strategy": "sma_cross", "old": "15000", "new": "40%", "allocation": "40000"}
        assert changes == [AllocationChanged("sma_cross", "15000", "40%", D(40000), "tester", "more room")]
        for _ in range(3):  # the alert router words what came in on the loop's next turn
            await asyncio.sleep(0)
        await engine.store.flush()
        alert = await engine.store.fetchone("SELECT title, text FROM alerts WHERE kind = 'allocation.changed'")
        assert alert["title"] == "Allocation sma_cross: 15000 -> 40%"
        assert alert["text"] == "allocation of sma_cross: 15000 -> 40% = 40,000.00 by tester (more room)"
        for value, why in (("-1", "is negative"), ("NaN", "not a finite amount"), ("61%", "beyond 100%"),
                           ("60001", "is beyond the equity at start (the paper account's equity) 100,000.00")):
            with pytest.raises(CommandRefused, match=re.escape(why)):
                await engine.controls.set_allocation("rsi_reversion", value, actor="tester")
        with pytest.raises(CommandRefused, match="no strategy named 'nope'"):
            await engine.controls.set_allocation("nope", "1", actor="tester")
        assert {n: a.given for n, a in engine.gate.capital.entries.items()} == {"sma_cross": "40%"}
        assert len(changes) == 1  # refusals change nothing
        await engine.controls.set_allocation("rsi_reversion", "60000", actor="tester")
        [op, *_] = [r for r in audit_rows(engine, "operator.allocation_set") if "refused" not in r]
        assert op["actor"] == "tester" and op["before"] == "15000" and op["after"] == "40%"
        assert op["reason"] == "more room"
        refusals = [r for r in audit_rows(engine, "operator.allocation_set") if "refused" in r]
        assert len(refusals) == 5
    finally:
        await engine.shutdown()

    again = engine_for(tmp_path, "sma_cross = 15000")
    await again.start()
    try:
        assert {n: a.given for n, a in again.gate.capital.entries.items()} == {"sma_cross": "40%",
                                                                               "rsi_reversion": "60000"}
    finally:
        await again.shutdown()


async def test_stored_changes_that_no_longer_fit_are_dropped_with_an_alert(tmp_path: Path, clean_env) -> None:
    engine = engine_for(tmp_path, "sma_cross = 10000")
    await engine.start()
    try:
        await engine.controls.set_allocation("sma_cross", "90000", actor="tester")
    finally:
        await engine.shutdown()
    # The config now gives rsi_reversion 20,000 too: with the stored 90,000 that is beyond the equity.
    again = engine_for(tmp_path, "sma_cross = 10000\nrsi_reversion = 20000")
    errors: list[EngineError] = []
    again.bus.subscribe(EngineError, errors.append)
    await again.start()
    try:
        assert {n: a.given for n, a in again.gate.capital.entries.items()} == {"sma_cross": "10000",
                                                                               "rsi_reversion": "20000"}
        assert len(errors) == 1 and "the allocation of sma_cross changed at run time (90000) cannot be taken" in \
            errors[0].message
        [row] = [r for r in audit_rows(again, "config.allocation") if r["actor"] == "engine"]
        assert row["subject"] == "sma_cross" and row["before"] == "90000" and row["after"] == "10000"
        stored = await again.store.fetchone("SELECT value FROM settings WHERE key = 'allocation.sma_cross'")
        assert stored["value"] == "10000"  # the settings say what is in force
    finally:
        await again.shutdown()


async def test_allocations_beyond_the_equity_at_start_scale_down_with_positions_and_refuse_without(
        tmp_path: Path, clean_env) -> None:
    engine = engine_for(tmp_path, "")
    await engine.start()
    try:  # a loss: the book now holds NVDA bought far above its price (an override at that cost)
        await engine.run()
        await engine.controls.set_position("NVDA", "1000", "95", actor="tester", reason="a loss for the test")
        equity = engine.portfolio.equity()
        assert equity < D(50000)
    finally:
        await engine.shutdown()
    # Positions to manage: refusing would leave them alone after a loss and a restart; it starts scaled down.
    held = engine_for(tmp_path, 'sma_cross = 50000\nrsi_reversion = "10%"')
    errors: list[EngineError] = []
    held.bus.subscribe(EngineError, errors.append)
    await held.start()
    try:
        eq = held.gate.capital.equity_at_start
        assert eq is not None and eq < D(50000)
        scaled = held.gate.capital.amount("sma_cross")
        assert scaled is not None and scaled == (eq * D("0.9")).quantize(D("0.01"), rounding="ROUND_DOWN")
        assert [e.where for e in errors] == ["allocation"]
        assert "the book holds positions, so the engine starts with the money allocations scaled by" in errors[0].message
        await held.store.flush()
        assert [(r["actor"], r["subject"]) for r in audit_rows(held, "engine.error")] == [("engine", "allocation")]
    finally:
        await held.shutdown()
    # Nothing to manage (a new state dir; its equity as a real account might report after a loss):
    # the config is wrong, and the engine says so without starting.
    (tmp_path / "flat").mkdir()
    again = engine_for(tmp_path / "flat", "sma_cross = 50000")

    async def after_a_loss() -> tuple[D, str]:
        return D("40000"), "the test account's net liquidation"

    again._equity_at_start = after_a_loss  # type: ignore[method-assign]
    with pytest.raises(ConfigError) as refused:
        await again.start()
    await again.shutdown()
    message = str(refused.value)
    assert message.startswith("allocation: sma_cross 50,000.00 = 50,000.00 is beyond the equity at start (the test "
                              "account's net liquidation) 40,000.00")
    assert message.endswith("(the allocations in force when the engine starts must fit in its equity: edit "
                            "[allocation])")
    fits = engine_for(tmp_path, 'sma_cross = "50%"')  # a percentage always fits
    await fits.start()
    try:
        assert fits.gate.capital.amount("sma_cross") == fits.gate.capital.equity_at_start / 2
    finally:
        await fits.shutdown()


def _set(strategy: str, value: str):
    from core.domain.commands import SetAllocation

    return SetAllocation("tester", "more room", strategy=strategy, value=value)
