"""Run a replay in process and fingerprint what it traded: the fills and the orders, as stored.

The fingerprint is a sha256 of the sorted rows as the store holds them (exact text: a price
written as 10.50 instead of 10.5 is a difference too). Order ids are left out: their instance
part is random per state dir. ``tests/test_replay_same_trades.py`` compares these with the
figures taken on the commit before the replay was made faster (issue 14), so a speed-up that
changes one fill, one order status or one timestamp fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cockpit.wiring import build_engine, db_path
from core.config import Settings, load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"

FILL_COLUMNS = "ts, symbol, side, qty, price, commission"
ORDER_COLUMNS = ("strategy, symbol, side, qty, order_type, tif, limit_price, status, filled_qty, avg_fill_price,"
                 " created_at, updated_at, reason")

# The bench's files (bench/replay_bench.py), the same strategy it runs.
BENCH_FILES = {
    "orcl": {"path": "bundled:daily/ORCL_1995-2014_yahoo.csv", "tz": "America/New_York", "bar_time": "end",
             "bar_seconds": None, "calendar": "XNYS"},
    "fesx": {"path": "bundled:intraday/backtrader_2006-01-02-volume-min-001.txt", "tz": "Europe/Berlin",
             "bar_time": "end", "bar_seconds": 60, "calendar": None},
}


@dataclass(frozen=True)
class Traded:
    fills: int
    fills_sha: str
    orders: int
    orders_sha: str


def _sha(rows: list[tuple[object, ...]]) -> str:
    text = "\n".join("|".join("" if v is None else str(v) for v in row) for row in sorted(rows, key=repr))
    return hashlib.sha256(text.encode()).hexdigest()


def traded(db: Path) -> Traded:
    """The fingerprint of the fills and orders in the store at ``db``."""
    con = sqlite3.connect(db)
    try:
        fills = con.execute(f"SELECT {FILL_COLUMNS} FROM fills").fetchall()
        orders = con.execute(f"SELECT {ORDER_COLUMNS} FROM orders").fetchall()
    finally:
        con.close()
    return Traded(len(fills), _sha(fills), len(orders), _sha(orders))


def default_settings(state: Path) -> Settings:
    """The bundled config.toml, at speed max, on ``state``."""
    return load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max"}})


def bench_settings(which: str, quotes_per_bar: int, state: Path) -> Settings:
    """The replay bench's SMA(10/30) run on one of its files."""
    return Settings(
        engine={"state_dir": str(state), "instance_name": "bench"},
        broker={"kind": "paper"},
        feed={"kind": "replay", "speed": "max", "start": None, "end": None, "quotes_per_bar": quotes_per_bar,
              "files": [{"symbol": "BENCH", **BENCH_FILES[which]}]},
        strategies={"sma_cross": {"kind": "sma_cross", "enabled": True, "symbols": ["BENCH"],
                                  "params": {"fast": 10, "slow": 30, "notional": "10000"}}},
        logging={"level": "WARNING"},
    )


async def _run(settings: Settings) -> None:
    engine = build_engine(settings, alert_sinks=())
    await engine.start()
    try:
        await engine.run()
    finally:
        await engine.shutdown()


def run_and_fingerprint(settings: Settings) -> Traded:
    """Replay ``settings`` to the end in this process; the fingerprint of what it traded."""
    asyncio.run(_run(settings))
    return traded(db_path(settings))


if __name__ == "__main__":  # print the figures (to take them on a base commit)
    import logging
    import sys
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"default": default_settings(Path(tmp) / "default")}
        for which in BENCH_FILES:
            for q in (1, 2, 4):
                cases[f"{which}-q{q}"] = bench_settings(which, q, Path(tmp) / f"{which}-{q}")
        for name, settings in cases.items():
            if len(sys.argv) > 1 and name not in sys.argv[1:]:
                continue
            print(name, run_and_fingerprint(settings), flush=True)
