"""Our side: the full production path, as ``cockpit --no-ui`` runs a replay.

``cockpit.wiring.build_engine`` builds the engine from ``Settings`` made in code: the replay
feed at speed ``max`` on a SimClock, the strategy, the risk gate, the OMS, the paper broker
with its fill model (50 ms latency, 1 bp slippage, 2 bp synthetic spread, $0.005/share with
a $1 minimum), the SQLite store (WAL, ``synchronous=FULL``), the hash-chained audit trail,
the daily reports and the alert router with the log sink. Each run gets a new, empty state
dir. The bar cache (when the engine has one) lives in one folder for the whole bench, so only
the first run of each file parses it; ``cold_cache=True`` gives a run a cache of its own.

``backtest=True`` runs the engine as `cockpit backtest` configures it
(``cockpit.research.backtest.backtest_settings`` and its ``build_engine`` call): the same feed,
strategy, gate, OMS, paper fills, store, audit trail and daily reports, but no alert router
(nobody to tell), no dead-man, no backups, fixed ids. The figures then stop where the engine
does: the backtest's own reading of its store (``BacktestResult``, the metrics) is not timed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from cockpit.research.backtest import backtest_settings
from cockpit.wiring import build_engine, db_path
from core.config import FeedConfig, Settings
from replay_peers.common import NOTIONAL, SMA_FAST, SMA_SLOW, SYMBOL, Dataset, Timed

HAS_BAR_CACHE = "bar_cache_dir" in FeedConfig.model_fields


def settings_for(ds: Dataset, quotes_per_bar: int, state_dir: Path, cache_dir: Path | None) -> Settings:
    feed: dict[str, object] = {
        "kind": "replay", "speed": "max", "start": None, "end": None, "quotes_per_bar": quotes_per_bar,
        "files": [{"symbol": SYMBOL, "path": f"bundled:{ds.bundled}", "tz": ds.tz, "bar_time": "end",
                   "bar_seconds": ds.bar_seconds, "calendar": ds.calendar}],
    }
    if HAS_BAR_CACHE and cache_dir is not None:
        feed["bar_cache_dir"] = str(cache_dir)
    return Settings(
        engine={"state_dir": str(state_dir), "instance_name": "bench"},
        broker={"kind": "paper"},
        feed=feed,
        strategies={"sma_cross": {"kind": "sma_cross", "enabled": True, "symbols": [SYMBOL],
                                  "params": {"fast": SMA_FAST, "slow": SMA_SLOW, "notional": str(NOTIONAL)}}},
        logging={"level": "WARNING"},
    )


async def _drive(engine) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    await engine.start()
    t1 = time.perf_counter()
    await engine.run()
    t2 = time.perf_counter()
    await engine.shutdown()
    return t1, t2


def run_ours(ds: Dataset, quotes_per_bar: int, tmp_root: Path, cache_dir: Path | None,
             profiler=None, backtest: bool = False) -> Timed:  # type: ignore[no-untyped-def]
    """One run: build + start (store, file load) + run + shutdown, timed; the run loop alone too."""
    with tempfile.TemporaryDirectory(prefix="ours-", dir=tmp_root) as tmp:
        own_cache = Path(tmp) / "bar-cache" if cache_dir is None else cache_dir
        settings = settings_for(ds, quotes_per_bar, Path(tmp) / "state", own_cache)
        if backtest:
            settings = backtest_settings(settings, Path(tmp) / "state", bar_cache=own_cache)
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        engine = build_engine(settings, new_id=lambda: "bt", alert_sinks=[], alerting=False) if backtest \
            else build_engine(settings)
        t1, t2 = asyncio.run(_drive(engine))
        t3 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        bars = sum(len(b) for b in engine.feed.bars.values())
        con = sqlite3.connect(db_path(settings))
        try:
            orders = con.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
            status = dict(con.execute("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"))
            fills = con.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        finally:
            con.close()
        pnl = engine.portfolio.pnl()
        detail = (f"orders {orders} [{', '.join(f'{k} {v}' for k, v in status.items())}], fills {fills}, "
                  f"net P&L {pnl.net:.2f}, {engine.events_processed} events, {engine.store.commits} commits")
        side = f"ours bt q={quotes_per_bar}" if backtest else f"ours q={quotes_per_bar}"
        return Timed(side, t3 - t0, t2 - t1, bars, orders, fills, detail)
