"""A feed that goes quiet while the engine trades is stale: one event, one alert, one audit row
(the wall clock is simulated: no test waits for a timer)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cockpit.wiring import build_engine
from core.common.clock import SimClock
from core.config import load_config
from core.control.alert_text import describe
from core.domain.events import FeedHealthChanged
from core.domain.model import Quote
from tests.conftest import CONFIG


async def test_a_quiet_feed_is_stale_once_per_episode(tmp_path: Path, clean_env) -> None:
    wall = SimClock(datetime(2026, 12, 1, 15, tzinfo=UTC))
    settings = load_config(CONFIG, state_dir=tmp_path / "state",
                           overrides={"feed": {"speed": 1, "stale_seconds": 30}, "deadman": {"enabled": False}})
    engine = build_engine(settings, wall_clock=wall)
    seen: list[FeedHealthChanged] = []
    first = asyncio.Event()
    engine.bus.subscribe(FeedHealthChanged, seen.append)
    engine.bus.subscribe(Quote, lambda _quote: first.set())
    await engine.start()
    run = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(first.wait(), 10)  # the first quote; the next is hours away at speed 1
        wall.advance(timedelta(seconds=29))
        assert seen == [] and engine.feed_healthy
        wall.advance(timedelta(seconds=17))  # 46 s without data: the check at 45 s finds it stale
        assert [e.healthy for e in seen] == [False] and "no data for 45 s" in seen[0].reason
        wall.advance(timedelta(seconds=120))
        assert len(seen) == 1  # once per episode
        assert engine.read_model.snapshot(max_orders=0).feed_healthy is False
        level, source, line = describe(seen[0])  # type: ignore[misc]
        assert source == "feed" and line.startswith("FEED replay STALE")
    finally:
        engine.request_stop()
        await asyncio.wait_for(run, 10)
        await engine.shutdown()
    import sqlite3

    db = sqlite3.connect(tmp_path / "state" / "cockpit.sqlite")
    assert [r[0] for r in db.execute("SELECT kind FROM audit WHERE kind LIKE 'feed.%'")] == ["feed.stale"]
    db.close()
