"""IBKR mode as a user configures it: `[broker] kind = "ibkr"`, `[feed] kind = "ibkr"` and
`[ibkr]`, built by cockpit.wiring, trading against the simulator over TCP. Reconciliation
finds a break (an order placed by another client, a position the engine does not know),
blocks the symbol, and the operator resolves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import LimitOrder, Stock

from brokers.ibsim import IBGatewaySim
from cockpit.wiring import build_engine
from core.common.clock import SimClock
from core.config import ConfigError, Settings, load_config
from core.control.deadman import DeadmanPhase
from core.control.handler import CommandRefused
from core.domain.model import OrderStatus
from core.kernel.engine import Engine

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import Connect, IBLogGuard, eventually  # noqa: E402 - imported after pytest.register_assert_rewrite, on purpose

pytest_plugins = ["tests.ibsim_fixtures"]

D = Decimal


def ibkr_config(tmp_path: Path, port: int, *, symbols: str = '["AAPL", "MSFT"]', extra: str = "",
                client_id: int = 11, reconnect: tuple[float, float] = (0.01, 0.05), settle: float = 0,
                name: str = "config.toml") -> Path:
    """An IBKR-mode config.toml against the simulator on ``port`` (also used by test_ibkr_cli)."""
    path = tmp_path / name
    path.write_text(f"""
[engine]
state_dir = "state"
[broker]
kind = "ibkr"
[ibkr]
port = {port}
client_id = {client_id}
restart_window = ""
reconnect_min_seconds = {reconnect[0]}
reconnect_max_seconds = {reconnect[1]}
[feed]
kind = "ibkr"
symbols = {symbols}
[reconcile]
settle_seconds = {settle}
[deadman]
enabled = false
{extra}
""")
    return path


async def started(settings: Settings, wall_clock: SimClock | None = None) -> tuple[Engine, asyncio.Task[bool]]:
    engine = build_engine(settings, wall_clock=wall_clock)
    await engine.start()
    return engine, asyncio.create_task(engine.run())


async def stopped(engine: Engine, run: asyncio.Task[bool]) -> None:
    engine.request_stop()
    await asyncio.wait_for(run, 5)
    await engine.shutdown()


def test_config_refuses_mixed_broker_and_feed(tmp_path: Path) -> None:
    path = ibkr_config(tmp_path, 4002)
    path.write_text(path.read_text().replace('kind = "ibkr"\nsymbols', 'kind = "replay"\nsymbols'))
    with pytest.raises(ConfigError, match="needs IB's live prices"):
        load_config(path)
    path.write_text(ibkr_config(tmp_path, 4002).read_text().replace('[broker]\nkind = "ibkr"', '[broker]\nkind = "paper"'))
    with pytest.raises(ConfigError, match="set broker.kind = 'ibkr'"):
        load_config(path)
    with pytest.raises(ConfigError, match="needs symbols"):
        load_config(ibkr_config(tmp_path, 4002, symbols="[]"))


async def test_ibkr_mode_trades_and_an_unknown_order_is_a_break_until_adopted(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    await sim.set_price("AAPL", 100)
    await sim.set_price("MSFT", 300)
    # An order of our own client id that the engine's store does not know (placed by hand
    # with the engine's client id, or a store restored from an older backup).
    earlier = await connect(client_id=11)
    [msft] = await earlier.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    foreign = earlier.placeOrder(msft, LimitOrder("BUY", 5, 250.0))
    await eventually(lambda: foreign.orderStatus.status == "Submitted", what="the unknown order works")
    earlier.disconnect()
    await eventually(lambda: 11 not in sim.clients, what="client 11 gone")

    engine, run = await started(load_config(ibkr_config(tmp_path, sim.port)))
    try:
        snap = engine.snapshot()
        assert (snap.broker_kind, snap.broker_connected, snap.mode) == ("ibkr", True, "LIVE")
        assert snap.breaks == ("MSFT",)
        [diff] = engine.reconciler.breaks["MSFT"].differences
        assert diff.kind == "unknown_order" and "BUY 5 LIMIT @ 250" in diff.broker
        await eventually(lambda: "AAPL" in engine.quote_ts and "MSFT" in engine.quote_ts, what="IB quotes")

        with pytest.raises(CommandRefused, match="reconciliation break"):
            await engine.controls.manual_order("buy", "MSFT", "1", actor="test")
        ok = await engine.controls.manual_order("buy", "AAPL", "10", actor="test")  # other symbols trade on
        assert "AAPL" in ok.message
        await eventually(lambda: engine.portfolio.position("AAPL").qty == 10, what="AAPL filled")

        result = await engine.controls.resolve_break("MSFT", "adopt", actor="test", reason="mine after all")
        assert result.data["resolved"] and engine.snapshot().breaks == ()
        [adopted] = [o for o in engine.oms.open_orders.values() if o.symbol == "MSFT"]
        assert adopted.strategy == "adopted" and adopted.qty == 5
        await sim.fill_order(perm_id=foreign.order.permId)
        await eventually(lambda: adopted.status is OrderStatus.FILLED, what="the adopted order's fill booked")
        assert engine.portfolio.position("MSFT").qty == 5 == sim.position("MSFT")
        again = await engine.controls.reconcile(actor="test")
        assert again.data["pass"]["differences"] == [] and "books agree" in again.message
    finally:
        await stopped(engine, run)


async def test_position_break_blocks_until_the_broker_view_is_accepted(
    sim: IBGatewaySim, connect: Connect, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    await sim.set_price("AAPL", 100)
    engine, run = await started(load_config(ibkr_config(tmp_path, sim.port)))
    try:
        account = await engine.broker.account()
        assert engine.portfolio.cash == account.cash > 0  # a new book starts from the account, not paper's cash
        await eventually(lambda: "AAPL" in engine.quote_ts, what="an IB quote")
        await engine.controls.manual_order("buy", "AAPL", "20", actor="test")
        await eventually(lambda: engine.portfolio.position("AAPL").qty == 20, what="filled")
        # The book is made wrong on purpose (an override with a mistaken quantity).
        await engine.controls.set_position("AAPL", "25", "100", actor="test", reason="typo")
        result = await engine.controls.reconcile(actor="test")
        assert engine.snapshot().breaks == ("AAPL",)
        [diff] = result.data["breaks"][0]["differences"]
        assert diff["kind"] == "position" and diff["engine"] == "25" and diff["broker"].startswith("20")
        with pytest.raises(CommandRefused, match="blocked by a reconciliation break"):
            await engine.controls.manual_order("sell", "AAPL", "5", actor="test")
        rows = await engine.store.fetchall("SELECT kind, subject FROM audit WHERE kind = 'reconcile.break'")
        assert [(r["kind"], r["subject"]) for r in rows] == [("reconcile.break", "AAPL")]

        done = await engine.controls.resolve_break("AAPL", "accept", actor="test", reason="broker is right")
        assert D(done.data["position_after"]["qty"]) == 20
        assert engine.portfolio.position("AAPL").qty == 20 and engine.snapshot().breaks == ()
        sold = await engine.controls.manual_order("sell", "AAPL", "5", actor="test")
        assert "AAPL" in sold.message
        await eventually(lambda: sim.position("AAPL") == 15, what="the sell filled at the broker")
    finally:
        await stopped(engine, run)


async def test_disconnect_holds_orders_and_the_reconnect_reconciles(
    sim: IBGatewaySim, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    ib_log.allow("Peer closed connection", "Connection reset by peer")
    await sim.set_price("AAPL", 100)
    engine, run = await started(load_config(ibkr_config(tmp_path, sim.port)))
    try:
        await eventually(lambda: "AAPL" in engine.quote_ts, what="an IB quote")
        passes = engine.reconciler.passes
        await sim.drop_connections()
        await eventually(lambda: engine.gate.hold is not None, what="the gate holds")
        await eventually(lambda: engine.broker.connected and engine.gate.hold is None
                         and engine.reconciler.passes > passes, what="reconnected and reconciled")
        assert engine.reconciler.last is not None and engine.reconciler.last.reason == "reconnect"
        kinds = [r["kind"] for r in await engine.store.fetchall(
            "SELECT kind FROM audit WHERE kind LIKE 'broker.%' ORDER BY seq")]
        assert kinds[-2:] == ["broker.down", "broker.up"]
    finally:
        await stopped(engine, run)


async def test_unreachable_gateway_refuses_to_start_with_a_clear_reason(tmp_path: Path, clean_env: dict[str, str],
                                                                       unused_tcp_port: int) -> None:
    settings = load_config(ibkr_config(tmp_path, unused_tcp_port, extra=""))
    settings.ibkr.connect_timeout = 1
    engine = build_engine(settings)
    with pytest.raises(ConnectionError):
        await engine.start()
    await engine.shutdown()


async def test_live_deadman_is_armed_only_in_the_exchange_session(
    sim: IBGatewaySim, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """XNYS: Tuesday 2026-11-24 opens 14:30 UTC and closes 21:00; Thanksgiving (Thursday) is
    closed and Friday is a half day (closes 18:00 UTC). The wall clock is simulated."""
    await sim.set_price("AAPL", 100)
    path = ibkr_config(tmp_path, sim.port)
    path.write_text(path.read_text().replace("[deadman]\nenabled = false", "[deadman]\nenabled = true\n"
                                             "interval_seconds = 600\ngrace_seconds = 60"))
    wall = SimClock(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # before the open
    engine, run = await started(load_config(path), wall)

    async def present_until(when: datetime) -> None:
        """The operator confirms now and every 9 minutes until ``when``."""
        await engine.controls.confirm(actor="test")
        while wall.now() + timedelta(minutes=9) < when:
            wall.advance(timedelta(minutes=9))
            await engine.controls.confirm(actor="test")
        wall.advance_to(when)

    try:
        await eventually(lambda: engine.trading, what="trading")
        assert engine.deadman.phase is DeadmanPhase.DISARMED
        wall.advance_to(datetime(2026, 11, 24, 14, 30, tzinfo=UTC))
        assert engine.deadman.phase is DeadmanPhase.ARMED
        wall.advance(timedelta(minutes=9, seconds=30))  # into the grace window
        assert engine.deadman.phase is DeadmanPhase.WARNING
        await present_until(datetime(2026, 11, 24, 21, 0, tzinfo=UTC))  # the close
        assert engine.deadman.phase is DeadmanPhase.DISARMED
        wall.advance_to(datetime(2026, 11, 25, 14, 29, tzinfo=UTC))  # the night: nobody asked
        assert engine.deadman.phase is DeadmanPhase.DISARMED
        wall.advance_to(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
        await present_until(datetime(2026, 11, 25, 21, 0, tzinfo=UTC))  # Wednesday
        wall.advance_to(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))  # Thanksgiving: closed all day
        assert engine.deadman.phase is DeadmanPhase.DISARMED
        wall.advance_to(datetime(2026, 11, 27, 14, 30, tzinfo=UTC))  # Friday's open
        assert engine.deadman.phase is DeadmanPhase.ARMED
        await present_until(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))  # the half day's early close
        assert engine.deadman.phase is DeadmanPhase.DISARMED
        assert engine.gate.state == "ACTIVE"  # no miss: nothing was missed outside the session
    finally:
        await stopped(engine, run)
