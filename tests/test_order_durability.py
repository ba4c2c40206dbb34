"""[engine] order_durability: what a commit survives, the checkpoints that keep fsyncs off the
commits, and what the engine does when the store comes back without its last commits (a power cut
with "process", or a restored backup) while the broker still has the orders: ids continue above
the broker's, a filled order without a row is an alert, an open one a reconciliation break."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.ibkr import IbkrConfig
from brokers.ibkr.broker import IbkrBroker
from brokers.ibsim import IBGatewaySim
from core.audit.verify import check
from core.common.bus import Bus
from core.common.clock import LiveClock
from core.config import ConfigError, DeadmanConfig, EngineConfig, ReconcileConfig, Settings, validate_config
from core.domain.events import EngineError
from core.domain.model import Bar, OrderStatus, Quote
from core.kernel.engine import Engine
from core.persistence import checkpoint
from core.persistence.store import Store
from core.strategy.base import Strategy

pytest.register_assert_rewrite("tests.ibsim_fixtures")
from tests.ibsim_fixtures import IBLogGuard, eventually  # noqa: E402 - imported after register_assert_rewrite

pytest_plugins = ["tests.ibsim_fixtures"]

UPSERT = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"


async def test_process_means_normal_and_power_means_full_and_the_default_is_process(tmp_path: Path) -> None:
    assert EngineConfig().order_durability == "process"
    for durability, level in (("process", 1), ("power", 2)):
        store = Store(tmp_path / f"{durability}.sqlite", durability=durability)
        await store.open()
        assert (await store.fetchone("PRAGMA synchronous"))[0] == level
        assert (await store.fetchone("PRAGMA wal_autocheckpoint"))[0] == 0  # the checkpointer's job
        await store.close()
    with pytest.raises(ConfigError, match=r"engine\.order_durability.*'process' or 'power'"):
        validate_config({"engine": {"order_durability": "disk"}})
    with pytest.raises(ValueError, match="durability must be one of process, power"):
        Store(tmp_path / "x.sqlite", durability="disk")


async def test_checkpoints_run_beside_the_commits_and_move_them_into_the_database_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    for n in range(checkpoint.EVERY_COMMITS + 5):
        store.put(("meta", "n"), UPSERT, ("n", str(n)))
        store.append("INSERT INTO meta (key, value) VALUES (?, ?)", (f"row{n}", "x"))
        await store.flush()
    await store.checkpointer.close()  # waits for the one in flight
    assert store.checkpointer.checkpoints >= 1 and store.checkpointer.failures == 0
    # The database file alone (no WAL beside it) holds what the checkpoint copied: a checkpoint
    # after commit 100 moved at least the first 100 rows out of the WAL.
    alone = tmp_path / "alone" / "s.sqlite"
    alone.parent.mkdir()
    shutil.copyfile(tmp_path / "s.sqlite", alone)
    with sqlite3.connect(alone) as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'row%'").fetchone()[0] >= checkpoint.EVERY_COMMITS
    store.put(("meta", "n"), UPSERT, ("n", "after"))  # the store goes on after its checkpointer closed
    await store.close()
    assert not (tmp_path / "s.sqlite-wal").exists()  # the last connection checkpointed and removed the WAL
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'n'").fetchone()[0] == "after"


class PushFeed:
    """Quotes the test hands in, one a batch, stamped with the wall clock."""

    name = "push"
    symbols = ["AAPL"]

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Decimal | None] = asyncio.Queue()

    def load(self) -> None:
        pass

    def fingerprint(self) -> str:
        return "push"

    def bars_before(self, cursor: Any) -> list[Bar]:
        return []

    async def stream(self, after: Any, speed: float | str, stop: asyncio.Event) -> AsyncIterator[list[Quote]]:
        while (price := await self.queue.get()) is not None:
            yield [Quote("AAPL", datetime.now(UTC), price - Decimal("0.01"), price + Decimal("0.01"), price)]


class OrderEachQuote(Strategy):
    """On each quote the next order of ``plan``: (qty, limit or None for a market order)."""

    def __init__(self, plan: list[tuple[int, Decimal | None]]) -> None:
        super().__init__("each", ["AAPL"], {})
        self.plan = list(plan)

    def on_quote(self, quote: Quote) -> None:
        if self.plan:
            qty, limit = self.plan.pop(0)
            self.buy("AAPL", qty, limit=limit)


def ibkr_engine(sim: IBGatewaySim, state: Path, plan: list[tuple[int, Decimal | None]]) -> tuple[Engine, PushFeed]:
    settings = Settings(engine=EngineConfig(state_dir=state), deadman=DeadmanConfig(enabled=False),
                        reconcile=ReconcileConfig(settle_seconds=0))
    clock = LiveClock()
    engines: list[Engine] = []
    broker = IbkrBroker(IbkrConfig(port=sim.port, client_id=3, restart_window="", connect_timeout=5.0,
                                   reconnect_min_seconds=0.01, reconnect_max_seconds=0.05,
                                   id_state_file=state / "ibkr_order_ids.json"), clock,
                        on_connection_change=lambda up, why: engines[0].broker_connection_changed(up, why)
                        if engines else None)
    feed = PushFeed()
    engine = Engine(settings=settings, store=Store(state / "cockpit.sqlite"), clock=clock, bus=Bus(), broker=broker,
                    feed=feed, strategies=[OrderEachQuote(plan)], new_id=lambda: "t1")
    engines.append(engine)
    return engine, feed


async def test_a_store_without_its_last_commits_continues_ids_above_the_brokers_and_flags_the_lost_orders(
        sim: IBGatewaySim, ib_log: IBLogGuard, tmp_path: Path, clean_env: dict[str, str]) -> None:
    ib_log.allow("Peer closed connection", "Connection reset by peer")
    await sim.set_price("AAPL", 100)
    state = tmp_path / "state"
    state.mkdir()
    disk = tmp_path / "disk-before-the-cut.sqlite"
    engine, feed = ibkr_engine(sim, state, [(1, None), (2, None), (5, Decimal(95))])
    await engine.start()
    run = asyncio.create_task(engine.run())
    try:
        assert engine.oms is not None
        oms = engine.oms
        await feed.queue.put(Decimal(100))
        await eventually(lambda: engine.portfolio.position("AAPL").qty == 1, what="order t1-1 filled")
        await engine.commit()
        # What the disk holds when the power goes: every commit up to here (a consistent prefix)...
        with sqlite3.connect(state / "cockpit.sqlite") as live, sqlite3.connect(disk) as copy:
            live.backup(copy)
        # ...and these two orders reach IB, but their rows only the page cache: t1-2 fills, t1-3 rests.
        await feed.queue.put(Decimal(100))
        await feed.queue.put(Decimal(100))
        await eventually(lambda: engine.portfolio.position("AAPL").qty == 3, what="order t1-2 filled")
        await eventually(lambda: oms.orders.get("t1-3") is not None and oms.orders["t1-3"].status
                         is OrderStatus.ACCEPTED, what="order t1-3 resting at IB")
    finally:
        await feed.queue.put(None)
        await asyncio.wait_for(run, 5)
        await engine.shutdown()
    for suffix in ("", "-wal", "-shm"):
        (state / f"cockpit.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copyfile(disk, state / "cockpit.sqlite")  # the power cut: the store lost t1-2 and t1-3

    again, feed = ibkr_engine(sim, state, [(7, None)])
    errors: list[str] = []
    again.bus.subscribe(EngineError, lambda e: errors.append(e.message))
    await again.start()
    run = asyncio.create_task(again.run())
    try:
        assert again.oms is not None
        # ids: IB knows t1-3, so the next order is t1-4 (t1-2 again would tie IB's old order to a new one)
        assert any("knows order t1-3" in e and "continue at 4" in e for e in errors), errors
        # t1-2's fill is booked once, under 'external', and said so (an alert, once the store was asked);
        # the position agrees with IB's
        await eventually(lambda: any("order t1-2 was sent by this engine and filled" in e for e in errors),
                         what=f"the alert on t1-2's fill without its order (errors: {errors})")
        assert sum("t1-2" in e for e in errors) == 1
        assert again.portfolio.position("AAPL").qty == 3 == sim.position("AAPL")
        assert again.portfolio.owner_qty("external", "AAPL") == 2 and again.portfolio.owner_qty("each", "AAPL") == 1
        # t1-3 is open at IB and unknown to the engine: a break that blocks AAPL until the operator resolves it
        brk = again.reconciler.breaks["AAPL"]
        assert [(d.kind, d.key) for d in brk.differences] == [("unknown_order", "t1-3")]
        assert "AAPL" in again.gate.blocked_symbols
        result = await again.controls.resolve_break("AAPL", "adopt", actor="test")
        assert "resolved" in result.message and "AAPL" not in again.gate.blocked_symbols
        await feed.queue.put(Decimal(100))
        await eventually(lambda: "t1-4" in again.oms.orders if again.oms else False, what="a new order t1-4")
        assert again.oms.orders["t1-4"].qty == 7
    finally:
        await feed.queue.put(None)
        await asyncio.wait_for(run, 5)
        await again.shutdown()
    with sqlite3.connect(state / "cockpit.sqlite") as conn:  # the audit chain goes on from the last durable row
        report = check(conn)
    assert report.problems == [] and report.rows > 0


async def test_the_next_block_of_ib_order_ids_is_written_before_the_current_one_runs_out(tmp_path: Path) -> None:
    import json

    from brokers.ibkr.order_ids import OrderIdAllocator

    path = tmp_path / "ids.json"
    ids = OrderIdAllocator(path, client_id=1, block=10)
    await ids.load()
    assert [await ids.allocate() for _ in range(6)] == [1, 2, 3, 4, 5, 6]  # 4 of the block 1-10 left
    ahead = ids._ahead
    assert ahead is not None
    await ahead  # written in the background meanwhile
    assert json.loads(path.read_text())["clients"]["1"] == 20
    assert [await ids.allocate() for _ in range(9)] == list(range(7, 16))  # inside what is durable: no write
    assert ids._ahead is ahead and json.loads(path.read_text())["clients"]["1"] == 20
    assert await ids.allocate() == 16  # half of 11-20 used: the block after it goes ahead
    assert ids._ahead is not ahead
    await ids._ahead
    assert json.loads(path.read_text())["clients"]["1"] == 30
