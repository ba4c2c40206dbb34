"""The daily P&L summary of a real engine in-process (paper broker, bundled bars, SQLite):
one per exchange session at its simulated close, consistent with the book and the store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from cockpit.wiring import build_engine
from core.config import load_config
from core.data.calendar import ExchangeSession
from core.domain.commands import CancelAll, ManualOrder
from core.domain.daily_summary import DailySummary
from core.domain.events import DailySummaryReady, EquityRecorded
from tests.conftest import CONFIG


def sessions(first: date, last: date) -> list[tuple[date, datetime]]:
    table = ExchangeSession("XNYS").sessions(first, last)
    return sorted((date.fromordinal(o), datetime.fromtimestamp(c, UTC)) for o, (_, c) in table.items()
                  if first.toordinal() <= o <= last.toordinal())


END = "2008-06-30"


def settings_for(state: Path) -> Any:
    return load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max", "end": END},
                                                           "deadman": {"enabled": False}})


async def replay(state: Path, stop_after_batches: int | None = None) -> tuple[list[DailySummary], bool, Any]:
    """Run an engine on ``state`` (optionally asking it to stop after that many batches: the
    engine keeps one equity point per batch); its summaries, whether the feed ran out, the engine."""
    engine = build_engine(settings_for(state))
    published: list[DailySummary] = []
    engine.bus.subscribe(DailySummaryReady, lambda e: published.append(e.summary))
    if stop_after_batches is not None:
        points: list[EquityRecorded] = []

        def count(e: EquityRecorded) -> None:
            points.append(e)
            if len(points) == stop_after_batches:
                engine.request_stop()

        engine.bus.subscribe(EquityRecorded, count)
    await engine.start()
    try:
        finished = await engine.run()
        await engine.store.flush()  # what the run left in the buffer, too
    except BaseException:
        await engine.shutdown()
        raise
    return published, finished, engine


@dataclass
class Uninterrupted:
    days: list[DailySummary]
    fills: list[Any]
    orders: list[Any]
    held: dict[str, D]
    equity: D
    state: Path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Uninterrupted:
    state = tmp_path_factory.mktemp("uninterrupted")

    async def run() -> Uninterrupted:
        days, finished, engine = await replay(state)
        assert finished
        try:
            fills = await engine.store.fetchall("SELECT ts, strategy, kind FROM fills ORDER BY seq")
            orders = await engine.store.fetchall("SELECT created_at FROM orders")
            held = {r["symbol"]: D(r["qty"]) for r in await engine.store.fetchall("SELECT symbol, qty FROM positions")}
            return Uninterrupted(days, fills, orders, held, engine.portfolio.equity(), state)
        finally:
            await engine.shutdown()

    return asyncio.run(run())


def test_every_session_is_summarised_at_its_close_and_adds_up(uninterrupted: Uninterrupted) -> None:
    u = uninterrupted
    days, fills, orders, held, equity = u.days, u.fills, u.orders, u.held, u.equity
    expected = sessions(date(2008, 1, 1), date(2008, 6, 30))
    assert [(s.date, s.session_close) for s in days] == expected  # one per session, at its close
    previous_close: datetime | None = None
    equity_before = D(100000)  # the paper account's starting cash
    for s in days:
        assert s.equity_open == equity_before  # chained: each day opens at the previous close
        assert s.net == s.equity_close - s.equity_open
        assert abs(s.realized + s.unrealized - s.commissions - s.net) < D("1e-9")  # average-cost division noise
        assert abs(sum((r.net for r in s.strategies), D(0)) - s.net) < D("1e-9")  # the owners' rows add up
        window = [f for f in fills if (previous_close is None or datetime.fromisoformat(f["ts"]) > previous_close)
                  and datetime.fromisoformat(f["ts"]) <= s.session_close]
        assert s.fills == len([f for f in window if f["kind"] == "trade"]), s.date
        assert s.orders == len([o for o in orders if (previous_close is None or datetime.fromisoformat(
            o["created_at"]) > previous_close) and datetime.fromisoformat(o["created_at"]) <= s.session_close])
        assert s.alerts[0] == ("info", s.fills)  # each fill is an info line in the alerts pane
        assert s.engine_starts == (1 if s is days[0] else 0)
        s_alert = DailySummaryReady(s).alert()
        assert s_alert.kind == "daily.summary" and s_alert.html
        equity_before, previous_close = s.equity_close, s.session_close
    assert days[-1].equity_close == equity  # the replay ended at the last close: that day is in
    assert {p.symbol: p.qty for p in days[-1].positions} == {k: v for k, v in held.items() if v}
    assert sum(s.fills for s in days) == len([f for f in fills if f["kind"] == "trade"]) > 10
    with sqlite3.connect(u.state / "cockpit.sqlite") as conn:
        stored = conn.execute("SELECT date, summary FROM daily_reports ORDER BY date").fetchall()
        version = conn.execute("SELECT version FROM schema_migrations WHERE component = 'reports'").fetchone()
    assert [r[0] for r in stored] == [d.isoformat() for d, _ in expected] and version == (2,)  # v2: report_curves
    assert json.loads(stored[-1][1]) == days[-1].to_json()


COMPARED = ("date", "equity_open", "equity_close", "realized", "unrealized", "commissions", "net", "orders", "fills",
            "refusals", "rejected", "trades_closed", "best_trade", "worst_trade", "positions", "strategies")


async def test_a_stop_mid_session_and_a_restart_give_the_days_an_uninterrupted_run_gives(
        uninterrupted: Uninterrupted, tmp_path: Path, clean_env) -> None:
    """The engine stops at the end of a batch inside a session that already had fills (the 4th
    batch ends at the close of 2008-04-29, after two fills at its open), and the operator sends
    and cancels an order before it goes down; the restart reads that session's fills and orders
    back from the store, and publishes each day once."""
    first, finished, engine = await replay(tmp_path, stop_after_batches=4)
    try:
        assert not finished and first[-1].date == date(2008, 4, 28)
        last = engine.read_model.snapshot().positions  # a far limit: it never fills, then it is cancelled
        price = next(p.last for p in last if p.symbol == "AAPL")
        await engine.controls.execute(ManualOrder("test", side="BUY", symbol="AAPL", qty="1",
                                                  limit=str(round(price * D("0.95"), 2))))
        await engine.controls.execute(CancelAll("test"))
    finally:
        await engine.shutdown()
    second, finished, engine = await replay(tmp_path)
    await engine.shutdown()
    assert finished and second[0].date == date(2008, 4, 29)
    resumed = second[0]
    assert resumed.engine_starts == 1 and resumed.fills == 2  # both before the restart, from the store
    both = [d.to_json() for d in first + second]
    assert [d["date"] for d in both] == [d.date.isoformat() for d in uninterrupted.days]  # each day once
    for mine, theirs in zip(both, (d.to_json() for d in uninterrupted.days), strict=True):
        if mine["date"] == "2008-04-29":  # the operator's order, from the store
            assert mine["orders"] == theirs["orders"] + 1
            operator = [s for s in mine["strategies"] if s["strategy"] == "operator"]
            assert len(operator) == 1 and operator[0]["orders"] == 1 and operator[0]["net"] == "0"
            mine = {**mine, "orders": theirs["orders"], "strategies": [s for s in mine["strategies"]
                                                                         if s["strategy"] != "operator"]}
        assert {k: mine[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}, mine["date"]
    third, finished, engine = await replay(tmp_path)
    await engine.shutdown()
    assert finished and third == []  # nothing left: the last day is in already, not published again
