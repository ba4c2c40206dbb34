"""A full disk says so in one line, keeps a consistent prefix, and a restart after freeing
space resumes exactly (issue 11). The store's half runs on SQLite's own page cap (a real
SQLITE_FULL, no mount needed); the whole-process half on a real 1 MB tmpfs state dir."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.persistence.disk_full import DiskFull, is_disk_full
from core.persistence.store import Store
from tests.conftest import CONFIG, ROOT

_FILL_SQL = "INSERT INTO fills (exec_id, client_order_id, strategy, symbol, side, qty, price, commission, " \
            "realized_pnl, ts) VALUES (?, 'c', 's', 'AAPL', 'BUY', '1', '1', '0', '0', '2020-01-01')"


async def test_a_full_database_is_disk_full_not_a_rollback_error(tmp_path: Path) -> None:
    """Before: "cannot rollback - no transaction is active" hid the cause."""
    store = Store(tmp_path / "cockpit.sqlite")
    await store.open()
    store.append(_FILL_SQL, ("kept",))
    await store.flush()
    pages = (await store.fetchone("PRAGMA page_count"))[0]
    # on the connection the store commits on (its writer): SQLite answers SQLITE_FULL past this
    store.writer.execute(f"PRAGMA max_page_count = {pages}")
    for n in range(2000):
        store.append(_FILL_SQL, (f"lost-{n}", ))
    with pytest.raises(DiskFull, match=r"disk full: .* MB free in "):
        await store.flush()
    store.append(_FILL_SQL, ("after",))
    with pytest.raises(DiskFull):  # and it stays refused: nothing lands on top of the hole
        await store.flush()
    await store.close()
    rows = sqlite3.connect(tmp_path / "cockpit.sqlite").execute("SELECT exec_id FROM fills").fetchall()
    assert rows == [("kept",)]  # a consistent prefix


def test_is_disk_full_reads_the_cause_chain() -> None:
    import errno
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("flush failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "denied"))
    assert not is_disk_full(sqlite3.OperationalError("no such table: x"))


# ---- the whole process on a real tmpfs ----------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB tmpfs mounted inside the test's temp dir (needs root and mount rights)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the store-level test above still runs")
    try:
        if not _fill(mount, limit=4 << 20):
            pytest.skip("this machine's tmpfs does not enforce its size (4 MB fit in 1 MB): no full disk to test")
        (mount / "filler").unlink()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _run(state: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                           str(state), "--speed", "max"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**env, "COCKPIT_FEED__END": "2010-12-31"})


def _fills(state: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        return conn.execute("SELECT ts, symbol, side, qty, price, commission FROM fills ORDER BY seq").fetchall()


def test_disk_full_mid_run_is_one_line_then_a_restart_resumes_exactly(tmp_path: Path, small_disk: Path,
                                                                       clean_env) -> None:
    reference = tmp_path / "reference"
    assert _run(reference, clean_env).returncode == 0
    expected = _fills(reference)

    state = small_disk / "state"
    full = _run(state, clean_env)
    assert full.returncode == 1, full.stderr[-2000:]
    assert "disk full:" in full.stderr and f"MB free in {state}" in full.stderr
    assert "Traceback" not in full.stderr and "Logging error" not in full.stderr
    assert "cannot rollback" not in full.stderr
    kept = _fills(state)
    assert kept == expected[:len(kept)]  # a consistent prefix: nothing invented, nothing out of order

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = _run(state, clean_env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _fills(state) == expected  # nothing lost, nothing twice


def _fill(disk: Path, limit: int = 4 << 20) -> bool:
    """Write until the disk refuses (True), or give up after `limit` bytes (False): a sandbox whose
    tmpfs ignores its size must not make this loop forever."""
    written = 0
    with open(disk / "filler", "wb", buffering=0) as out:
        try:
            while written < limit:
                written += out.write(b"\0" * 4096)
        except OSError:
            return True
    return False


def test_a_disk_full_at_start_is_one_line(tmp_path: Path, small_disk: Path, clean_env) -> None:
    assert _fill(small_disk)
    state = small_disk / "state"
    proc = _run(state, clean_env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "disk full:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_the_log_file_on_a_full_disk_says_so_once_and_stops(small_disk: Path, root_logger, capfd) -> None:
    """Before: one "--- Logging error ---" traceback per record on stderr."""
    import logging

    from cockpit.logs import setup_logging

    setup_logging("INFO", small_disk / "logs" / "cockpit.log", stderr=False)
    assert _fill(small_disk)
    for n in range(300):
        logging.getLogger("cockpit.test").info("record %d %s", n, "x" * 200)
    err = capfd.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("is full: logging to that file stopped") == 1


async def test_a_full_disk_at_the_stop_still_ends_the_sessions_and_closes_the_store(tmp_path: Path, clean_env) -> None:
    """An order's write-ahead refused at the stop (the IBKR path) no longer cut the shutdown short:
    before, DiskFull skipped EngineStopped, the alerts' drain, the broker's disconnect and the close."""
    import asyncio
    from datetime import UTC, datetime
    from decimal import Decimal

    from cockpit.wiring import build_engine
    from core.common.clock import SimClock
    from core.config import load_config
    from core.domain.events import EngineStopped
    from core.domain.model import Quote, Side

    settings = load_config(CONFIG, state_dir=tmp_path / "state", overrides={"deadman": {"enabled": False}})
    engine = build_engine(settings, wall_clock=SimClock(datetime(2026, 12, 1, 15, tzinfo=UTC)))
    quotes: list[Quote] = []
    stopped: list[EngineStopped] = []
    engine.bus.subscribe(Quote, quotes.append)
    engine.bus.subscribe(EngineStopped, stopped.append)
    await engine.start()
    run = asyncio.create_task(engine.run())
    for _ in range(1000):
        if len(quotes) > 50:
            break
        await asyncio.sleep(0)  # yield to the replay (speed max), no timer waited for
    engine.request_stop()
    await asyncio.wait_for(run, 10)
    assert quotes, "the replay gave no quote"
    engine.broker.records_in_engine_store = False  # the IBKR path: commit first, then send
    engine.submit_order("manual", quotes[-1].symbol, Side.BUY, Decimal(1))
    assert engine.oms is not None and engine.oms.has_unsent
    engine.store.failed = sqlite3.OperationalError("database or disk is full")
    await engine.shutdown()  # no DiskFull out of it
    assert stopped and not engine.broker.connected and not engine.store.is_open
    assert engine.oms.has_unsent  # never sent without its commit
