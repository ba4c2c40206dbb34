"""`cockpit flatten --all --direct` against the IB Gateway simulator over real TCP, with no
engine: every client's orders cancelled, long and short positions closed in chunks, a refused
close reported NOT FLAT with IB's reason, nothing to do, an unreachable gateway, a client id in
use, the paper broker refused, the audit rows (and the hung-engine case that must not touch the
store), and the real CLI in a child process."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from brokers.ibsim import IBGatewaySim
from cockpit.direct_flatten import EXIT_FAIL, EXIT_OK, EXIT_REFUSED, Plan, flatten_direct
from cockpit.direct_flatten.audit_sink import AuditSink
from cockpit.direct_flatten.outcome import SymbolOutcome, finish, settled
from cockpit.direct_flatten.plan import CancelItem, Holding, build_plan, quantities, split_positions
from cockpit.state_lock import StateLock
from core.audit.journal import AuditLog, verify
from core.common.clock import LiveClock
from core.config import Settings
from core.persistence.store import DB_FILENAME, Store

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.conftest import ROOT  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose
from tests.ibsim_fixtures import Connect, IBLogGuard, status  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]

D = Decimal


def settings_for(port: int, state_dir: Path, **risk: Any) -> Settings:
    return Settings(
        engine={"state_dir": state_dir},
        broker={"kind": "ibkr"},
        feed={"kind": "ibkr", "symbols": ["AAPL"]},
        ibkr={"port": port, "client_id": 1, "restart_window": "", "connect_timeout": 5.0},
        risk=risk,
    )


def working(sim: IBGatewaySim) -> list[str]:
    return [f"{o.client_id}:{o.order_ref}" for o in sim.orders() if o.working]


async def make_store(state_dir: Path) -> None:
    """A state dir an engine has run on: the store and its audit log exist."""
    store = Store(state_dir / DB_FILENAME)
    await store.open()
    log = AuditLog(store, LiveClock())
    await log.load()
    log.record("engine.start", subject="test")
    await store.close()


def audit_rows(state_dir: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(state_dir / DB_FILENAME)
    try:
        return [tuple(r) for r in conn.execute("SELECT actor, kind, subject FROM audit ORDER BY seq")]
    finally:
        conn.close()


async def place(ib: IB, contract: Any, order: Any, wanted: str) -> None:
    await status(ib.placeOrder(contract, order), wanted)


@pytest.fixture
def env(clean_env: dict[str, str]) -> dict[str, str]:
    return clean_env


async def test_cancels_every_clients_orders_and_closes_long_and_short(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    """The dead engine (client 1) left a long, a short and a resting order; another client (2)
    is still connected with a position and two resting orders. The flatten, as client 1, cancels
    all of them and closes every position; AAPL's 100 go out as 40 + 40 + 20 (max_order_qty 40)."""
    ib_log.expect(202)  # IB's "Order Canceled" for the earlier session's own order
    ib_log.allow("Peer closed connection")
    for sym, px in (("AAPL", 100), ("MSFT", 300), ("TSLA", 200)):
        await sim.set_price(sym, px)
    engine = await connect(client_id=1)
    aapl, msft = await engine.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD"))
    await place(engine, aapl, MarketOrder("BUY", 100, orderRef="eng-1"), "Filled")
    await place(engine, msft, MarketOrder("SELL", 50, orderRef="eng-2"), "Filled")
    await place(engine, aapl, LimitOrder("BUY", 10, 90, orderRef="eng-rest"), "Submitted")
    engine.disconnect()
    await sim.wait_for(lambda: 1 not in sim.clients)
    other = await connect(client_id=2)
    [tsla2] = await other.qualifyContractsAsync(Stock("TSLA", "SMART", "USD"))
    [msft2] = await other.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    await place(other, tsla2, MarketOrder("BUY", 30, orderRef="other-1"), "Filled")
    await place(other, tsla2, LimitOrder("SELL", 5, 250, orderRef="other-rest"), "Submitted")
    await place(other, msft2, LimitOrder("BUY", 7, 280, orderRef="other-rest-2"), "Submitted")
    assert sorted(working(sim)) == ["1:eng-rest", "2:other-rest", "2:other-rest-2"]

    lines: list[str] = []
    plans: list[Plan] = []
    settings = settings_for(sim.port, tmp_path / "state", max_order_qty="40")
    result = await flatten_direct(settings, confirm=lambda p: plans.append(p) or True, out=lines.append,
                                  wait_seconds=5)
    text = "\n".join(lines)
    assert result.exit_code == EXIT_OK and result.error is None, text
    assert working(sim) == [] and result.still_open == []
    assert [sim.position(s) for s in ("AAPL", "MSFT", "TSLA")] == [0, 0, 0]
    [plan] = plans
    assert sorted(c.order_ref for c in plan.cancels) == ["eng-rest", "other-rest", "other-rest-2"]
    assert {c.symbol: (c.position, c.chunks) for c in plan.closes} == {
        "AAPL": (D(100), (D(40), D(40), D(20))), "MSFT": (D(-50), (D(40), D(10))), "TSLA": (D(30), (D(30),))}
    assert {s: (o.start_qty, o.filled, o.final_qty, len(o.orders)) for s, o in result.outcomes.items()} == {
        "AAPL": (D(100), D(100), D(0), 3), "MSFT": (D(-50), D(50), D(0), 2), "TSLA": (D(30), D(30), D(0), 1)}
    ours = [o for o in sim.orders() if o.order_ref.startswith("direct-flatten-")]
    assert len(ours) == 6 and all(o.client_id == 1 and o.order_type == "MKT" for o in ours)
    assert sorted((o.symbol, o.action, o.total_qty) for o in ours) == [
        ("AAPL", "SELL", D(20)), ("AAPL", "SELL", D(40)), ("AAPL", "SELL", D(40)), ("MSFT", "BUY", D(10)),
        ("MSFT", "BUY", D(40)), ("TSLA", "SELL", D(30))]
    assert len({o.order_ref for o in ours}) == 6
    for sym in ("AAPL", "MSFT", "TSLA"):
        assert f"{sym}: flat, from" in text
    assert "SELL 100 AAPL at market (long 100" in text and "BUY 50 MSFT at market (short -50" in text
    assert "cancel 3 open order(s)" in text and "other-rest-2" in text
    assert "final positions: none" in text and "DONE: everything cancelled and flat" in text
    assert sim.account not in text and f"account {sim.account[:2]}****{sim.account[-3:]}" in text  # masked
    assert "no state store" in result.audit  # no engine ever ran on this state dir: nothing to audit into


async def test_a_refused_close_is_not_flat_with_ibs_reason(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    ib_log.expect(201)
    ib_log.allow("Peer closed connection")
    await sim.set_price("AAPL", 100)
    await sim.set_price("MSFT", 300)
    seed = await connect(client_id=3)
    aapl, msft = await seed.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD"))
    await place(seed, aapl, MarketOrder("SELL", 25, orderRef="seed-1"), "Filled")
    await place(seed, msft, MarketOrder("BUY", 10, orderRef="seed-2"), "Filled")
    await sim.refuse_next_order("no market orders for this test")  # the first close: AAPL (sorted)

    lines: list[str] = []
    result = await flatten_direct(settings_for(sim.port, tmp_path), confirm=lambda p: True, out=lines.append,
                                  wait_seconds=5)
    text = "\n".join(lines)
    assert result.exit_code == EXIT_FAIL and result.error is None, text
    aapl_out, msft_out = result.outcomes["AAPL"], result.outcomes["MSFT"]
    assert not aapl_out.flat and aapl_out.final_qty == D(-25) and aapl_out.filled == 0
    assert any("no market orders for this test" in r for r in aapl_out.reasons)
    assert msft_out.flat and sim.position("MSFT") == 0 and sim.position("AAPL") == D(-25)
    assert "AAPL: NOT FLAT (position -25)" in text and "no market orders for this test" in text
    assert "MSFT: flat" in text and "final positions: AAPL -25" in text and "NOT DONE" in text


async def test_nothing_to_do_and_a_hung_engines_store_is_left_alone(
    sim: IBGatewaySim, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    await make_store(state)
    before = audit_rows(state)
    asked: list[Plan] = []
    lines: list[str] = []
    with StateLock(state):  # an engine alive but hung holds the state dir
        result = await flatten_direct(settings_for(sim.port, state), confirm=lambda p: asked.append(p) or True,
                                      out=lines.append, wait_seconds=5)
    text = "\n".join(lines)
    assert result.exit_code == EXIT_OK and result.error is None and asked == []
    assert "nothing to do: IB Gateway shows no open orders and no positions" in text
    assert "audit: NOT written: an engine holds the state dir" in text
    assert audit_rows(state) == before


async def test_not_confirmed_does_nothing(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    ib_log.allow("Peer closed connection")
    await sim.set_price("AAPL", 100)
    seed = await connect(client_id=3)
    [aapl] = await seed.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    await place(seed, aapl, MarketOrder("BUY", 5, orderRef="seed"), "Filled")
    await place(seed, aapl, LimitOrder("BUY", 5, 90, orderRef="rest"), "Submitted")
    lines: list[str] = []
    result = await flatten_direct(settings_for(sim.port, tmp_path), confirm=lambda p: False, out=lines.append,
                                  wait_seconds=5)
    assert result.exit_code == EXIT_REFUSED and "not confirmed" in (result.error or "")
    assert "DIRECT FLATTEN ALL" in "\n".join(lines)  # the plan was shown
    assert working(sim) == ["3:rest"] and sim.position("AAPL") == 5


async def test_gateway_unreachable_and_client_id_in_use_are_one_line(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    ib_log.expect(326)
    ib_log.allow("API connection failed", "Make sure API port", "Peer closed connection")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    result = await flatten_direct(settings_for(free, tmp_path), confirm=lambda p: True, out=lambda s: None,
                                  wait_seconds=5)
    assert result.exit_code == EXIT_FAIL
    assert result.error == (f"cannot flatten: connection refused at 127.0.0.1:{free}: is IB Gateway running "
                            "with the API port open?")

    await connect(client_id=1)  # the hung engine's session
    result = await flatten_direct(settings_for(sim.port, tmp_path), confirm=lambda p: True, out=lambda s: None,
                                  wait_seconds=5)
    assert result.exit_code == EXIT_FAIL and "client id 1 is already in use" in (result.error or "")
    assert "--client-id N" in (result.error or "")


async def test_the_paper_broker_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    result = await flatten_direct(Settings(engine={"state_dir": tmp_path}), confirm=lambda p: True,
                                  out=lambda s: None, wait_seconds=5)
    assert result.exit_code == EXIT_REFUSED
    assert "for the paper broker, run the engine's `cockpit flatten --all`" in (result.error or "")


async def cockpit(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", *args, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_flattens_and_audits(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, env: dict[str, str]
) -> None:
    """The real command in a child process, with the sim in this test's loop; then `audit verify`."""
    ib_log.expect(202)  # the seeding client's resting order, cancelled
    ib_log.allow("Peer closed connection")
    await sim.set_price("AAPL", 100)
    await sim.set_price("SPY", 500)
    seed = await connect(client_id=3)
    aapl, spy = await seed.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"), Stock("SPY", "SMART", "USD"))
    await place(seed, aapl, MarketOrder("BUY", 12, orderRef="seed-1"), "Filled")
    await place(seed, spy, MarketOrder("SELL", 4, orderRef="seed-2"), "Filled")
    await place(seed, spy, LimitOrder("SELL", 4, 600, orderRef="seed-rest"), "Submitted")
    state = tmp_path / "state"
    await make_store(state)
    config = tmp_path / "config.toml"
    config.write_text(f"""
[engine]
state_dir = "state"
[broker]
kind = "ibkr"
[feed]
kind = "ibkr"
symbols = ["AAPL", "SPY"]
[ibkr]
port = {sim.port}
client_id = 1
restart_window = ""
connect_timeout = 5
""")

    usage = await cockpit(env, "flatten", "AAPL", "--direct", "--config", str(config))
    assert usage[0] == 2 and "use `cockpit flatten --all --direct`" in usage[2] and "Traceback" not in usage[2]
    no_tty = await cockpit(env, "flatten", "--all", "--direct", "--config", str(config))
    assert no_tty[0] == 2 and "no terminal to ask on; pass --yes" in no_tty[2], no_tty
    assert "DIRECT FLATTEN ALL" in no_tty[1] and working(sim) == ["3:seed-rest"]

    code, out, err = await cockpit(env, "flatten", "--all", "--direct", "--yes", "--reason", "engine dead",
                                   "--config", str(config))
    assert code == 0 and "Traceback" not in err, (out, err)
    assert "AAPL: flat, from 12" in out and "SPY: flat, from -4" in out and "final positions: none" in out
    assert f"row(s) written to {state / DB_FILENAME}" in out
    assert working(sim) == [] and sim.position("AAPL") == 0 and sim.position("SPY") == 0

    rows = audit_rows(state)
    kinds = [k for _, k, _ in rows]
    assert kinds[0] == "engine.start" and kinds[1] == "operator.flatten_direct"
    assert kinds.count("order.cancel_requested") == 1 and kinds.count("order.sent") == 2
    assert kinds.count("order.fill") == 2 and kinds[-1] == "flatten_direct.done"
    assert all(a.startswith("direct-flatten:") for a, k, _ in rows[1:] if k != "order.fill")
    assert {s for _, k, s in rows if k == "order.sent"} == {o.order_ref for o in sim.orders()
                                                             if o.order_ref.startswith("direct-flatten-")}
    verify = await cockpit(env, "audit", "verify", "--config", str(config))
    assert verify[0] == 0, verify


# ---- the pure parts: plan and outcome; the audit sink on a real store ----------------------------

def test_plan_closes_us_stocks_in_chunks_and_leaves_the_rest() -> None:
    holdings = [
        Holding("AAPL", "STK", "USD", D(100), con_id=1, avg_cost=D(90)),
        Holding("MSFT", "STK", "", D(-50), con_id=2, avg_cost=D(300)),  # no currency given: USD
        Holding("ES", "FUT", "USD", D(1), con_id=3),
        Holding("VOD", "STK", "GBP", D(10), con_id=4),
        Holding("XYZ", "STK", "USD", D(5), con_id=5),
        Holding("XYZ", "STK", "USD", D(3), con_id=6),  # two stocks under one symbol: neither is closed
        Holding("XYZ", "STK", "USD", D(2), con_id=7),
        Holding("IBM", "STK", "USD", D(0), con_id=8),  # flat: not a position
    ]
    cancel = CancelItem(2, 7, 99, "", "XYZ", "BUY", D(5), "LMT", D("250.5"))
    plan = build_plan("IB Gateway here", [cancel], holdings, {1: D("101.5"), 2: D(299)}, D(40))
    assert [(c.symbol, c.side, c.chunks, c.notional, c.price_source) for c in plan.closes] == [
        ("AAPL", "SELL", (D(40), D(40), D(20)), D("10150.00"), "the last mark"),
        ("MSFT", "BUY", (D(40), D(10)), D("14950.00"), "the last mark")]
    assert sum(plan.closes[0].chunks) == 100 and sum(plan.closes[1].chunks) == 50  # exactly the position
    assert [(u.symbol, u.position) for u in plan.untradable] == [
        ("ES", D(1)), ("VOD", D(10)), ("XYZ", D(3)), ("XYZ", D(5)), ("XYZ", D(2))]
    assert cancel.name == "ib-perm-99"
    text = "\n".join(plan.lines())
    assert "cancel 1 open order(s)" in text and "BUY 5 XYZ LMT 250.5 (client 2, permId 99, ref -)" in text
    assert "SELL 100 AAPL at market (long 100, about 10,150.00 USD at the last mark, in 3 orders of at most 40)" in text
    assert "notional about 25,100.00 USD" in text and "NOT closed by this command" in text
    no_mark = build_plan("x", [], holdings[:1], {}, D(1000))
    assert [(c.notional, c.price_source) for c in no_mark.closes] == [(D("9000.00"), "average cost")]
    stocks, _ = split_positions(holdings)
    assert quantities(stocks) == {"AAPL": D(100), "MSFT": D(-50)}
    assert build_plan("x", [], [], {}, D(1)).empty


def test_outcome_settles_and_says_why_a_symbol_is_not_flat() -> None:
    a, m = SymbolOutcome("AAPL", D(100), ["o1", "o2"]), SymbolOutcome("MSFT", D(-5), ["o3"])
    outcomes = {"AAPL": a, "MSFT": m}
    assert not settled({"AAPL": D(60), "MSFT": D(-5)}, outcomes, {"o1": None})
    assert not settled({"AAPL": D(0), "MSFT": D(-5)}, outcomes, {"o3": None})  # o3 filled, IB not yet flat
    assert settled({"AAPL": D(0), "MSFT": D(-5)}, outcomes, {"o3": "o3 rejected: no"})
    finish(outcomes, {"MSFT": D(-5)}, {"o1": D(40), "o2": D(60)}, {"o1": None, "o2": None}, 5)
    assert (a.flat, a.filled, a.reasons) == (True, D(100), [])
    assert (m.flat, m.reasons) == (False, ["still working at IB after 5s (not cancelled): o3"])
    assert m.line().startswith("MSFT: NOT FLAT (position -5), from -5, 1 order(s) o3, filled 0; still working")


async def test_audit_sink_writes_wall_clock_rows_through_the_audit_log(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cockpit.direct_flatten.plan import CloseItem
    from core.domain.model import Execution, OrderStatus, OrderUpdate, Side

    state = tmp_path / "state"
    await make_store(state)
    lines: list[str] = []
    began = datetime.now(UTC)
    sink = AuditSink(state, "direct-flatten:tester@box", lines.append)
    await sink.open()
    try:
        close = CloseItem("AAPL", D(12), (D(12),), None, "average cost")
        sink.command("engine dead", before={"positions": {"AAPL": D(12)}}, after="close", gateway="here")
        sink.cancel_requested(CancelItem(3, 1, 77, "seed-rest", "SPY", "SELL", D(4), "LMT", D(600)))
        sink.cancels_done([])
        sink.order_sent("direct-flatten-1", close, D(12))
        sink.fill(Execution("x1", "direct-flatten-1", "AAPL", Side.SELL, D(12), D(100), D(1), began))
        sink.order_ended(OrderUpdate("direct-flatten-2", OrderStatus.REJECTED, began, reason="no"), "no",
                         rejected=True)
        sink.done(True, [], {}, {"AAPL": "AAPL: flat"})
    finally:
        await sink.close()  # (an open store's thread would keep the test process from exiting)
    ended = datetime.now(UTC)
    assert lines == [f"audit: 7 row(s) written to {state / DB_FILENAME}"] and sink.status == lines[0]
    conn = sqlite3.connect(state / DB_FILENAME)
    try:
        got = conn.execute("SELECT actor, kind, subject, ts, engine_ts FROM audit ORDER BY seq").fetchall()
        assert verify(conn) == []
    finally:
        conn.close()
    assert [(a, k, s) for a, k, s, _, _ in got[1:]] == [
        ("direct-flatten:tester@box", "operator.flatten_direct", ""),
        ("direct-flatten:tester@box", "order.cancel_requested", "seed-rest"),
        ("direct-flatten:tester@box", "cancel_all.done", "reqGlobalCancel"),
        ("direct-flatten:tester@box", "order.sent", "direct-flatten-1"),
        ("broker", "order.fill", "direct-flatten-1"),
        ("broker", "order.rejected", "direct-flatten-2"),
        ("direct-flatten:tester@box", "flatten_direct.done", "direct-flatten")]
    assert all(began <= datetime.fromisoformat(ts) <= ended and engine_ts is None for *_, ts, engine_ts in got[1:])
    with StateLock(state):  # released: the next engine (or flatten) can take the state dir
        pass
