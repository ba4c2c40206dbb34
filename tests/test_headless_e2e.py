"""`cockpit --no-ui` as a real subprocess over the bundled real data.

- the book reconciles: positions equal the sum of fills; P&L recomputed independently
  from the fills matches the stored P&L to the cent; the engine's book matches the
  paper venue's account;
- a run stopped by SIGTERM/SIGINT, or killed with SIGKILL, and then resumed trades
  exactly what an uninterrupted run trades: nothing twice, nothing lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections import defaultdict
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow
CENT = Decimal("0.01")


def run_engine(cmd: list[str], state: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, "--config", str(CONFIG), "--state-dir", str(state), "--no-ui", *extra],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def read_json(cmd: list[str], state: Path, env: dict[str, str], what: str, *extra: str):
    out = subprocess.run(
        [*cmd, what, "--json", "--config", str(CONFIG), "--state-dir", str(state), *extra],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(out.stdout)


def fill_keys(fills: list[dict]) -> list[tuple]:
    # Order ids are <instance>-<seq>; the instance differs per state dir, the sequence must not.
    return [(f["client_order_id"].split("-")[1], f["symbol"], f["side"], f["qty"], f["price"], f["commission"], f["time"])
            for f in fills]


def interrupt_after_fills(cmd: list[str], state: Path, env: dict[str, str], n_fills: int,
                          sig: signal.Signals, *extra: str) -> tuple[int, str]:
    """Start the engine, wait until it has logged ``n_fills`` fills, then send ``sig``."""
    proc = subprocess.Popen(
        [*cmd, "--config", str(CONFIG), "--state-dir", str(state), "--no-ui", *extra],
        env=env, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    seen = 0
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if " cockpit.oms: fill " in line:
            seen += 1
            if seen >= n_fills:
                proc.send_signal(sig)
                break
    rest = proc.stderr.read()
    code = proc.wait(timeout=60)
    return code, "".join(lines) + rest


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One uninterrupted run of the default config at max speed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    cmd = [os.environ.get("PYTHON", __import__("sys").executable), "-m", "cockpit"]
    state = tmp_path_factory.mktemp("reference")
    done = run_engine(cmd, state, env, "--speed", "max")
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "state": state,
        "stderr": done.stderr,
        "fills": read_json(cmd, state, env, "fills"),
        "positions": read_json(cmd, state, env, "positions", "--all"),
        "pnl": read_json(cmd, state, env, "pnl"),
        "orders": read_json(cmd, state, env, "orders"),
    }


def test_run_trades_and_exits_zero_when_the_replay_is_exhausted(reference: dict) -> None:
    assert "replay finished" in reference["stderr"]
    assert len(reference["fills"]) > 200
    assert {f["symbol"] for f in reference["fills"]} == {"AAPL", "NVDA", "ORCL", "SPY", "YHOO"}
    assert {f["strategy"] for f in reference["fills"]} == {"sma_cross", "rsi_reversion"}
    statuses = {o["status"] for o in reference["orders"]}
    assert "FILLED" in statuses and "CANCELLED" in statuses  # DAY limit orders expire
    # SPY's two bad Yahoo rows were dropped with a warning, never traded on
    assert reference["stderr"].count("SPY_2007-2017_yahoo.csv: line") == 2
    assert (reference["state"] / "logs" / "cockpit.log").stat().st_size > 0


def test_json_shapes_use_decimal_strings(reference: dict) -> None:
    fill = reference["fills"][0]
    for key in ("symbol", "side", "qty", "price", "commission", "time"):
        assert isinstance(fill[key], str)
    assert fill["side"] in ("BUY", "SELL")
    for pos in reference["positions"]:
        for key in ("symbol", "qty", "avg_cost", "realized_pnl", "unrealized_pnl"):
            assert isinstance(pos[key], str)
            if key != "symbol":
                Decimal(pos[key])
    for key in ("realized", "unrealized", "commissions", "net"):
        assert isinstance(reference["pnl"][key], str)
        Decimal(reference["pnl"][key])


def test_positions_equal_sum_of_fills_and_pnl_recomputes_to_the_cent(reference: dict) -> None:
    qty: dict[str, Decimal] = defaultdict(Decimal)
    flow: dict[str, Decimal] = defaultdict(Decimal)
    commissions = Decimal(0)
    for f in reference["fills"]:
        signed = Decimal(f["qty"]) * (1 if f["side"] == "BUY" else -1)
        qty[f["symbol"]] += signed
        flow[f["symbol"]] -= signed * Decimal(f["price"])
        commissions += Decimal(f["commission"])
    positions = {p["symbol"]: p for p in reference["positions"]}
    gross = Decimal(0)
    for symbol, q in qty.items():
        pos = positions[symbol]
        assert Decimal(pos["qty"]) == q, symbol
        last = Decimal(pos["last"]) if pos["last"] is not None else Decimal(0)
        independent = flow[symbol] + q * last  # everything P&L is, from cash flows alone
        stored = Decimal(pos["realized_pnl"]) + Decimal(pos["unrealized_pnl"])
        assert abs(independent - stored) < CENT, symbol
        gross += independent
    pnl = reference["pnl"]
    assert Decimal(pnl["commissions"]) == commissions
    assert abs(Decimal(pnl["realized"]) + Decimal(pnl["unrealized"]) - gross) < CENT
    assert abs(Decimal(pnl["net"]) - (gross - commissions)) < CENT
    expected_cash = Decimal(pnl["starting_cash"]) + sum(flow.values()) - commissions
    assert abs(Decimal(pnl["cash"]) - expected_cash) < CENT


def test_engine_book_matches_the_paper_venue_account(reference: dict) -> None:
    with closing(sqlite3.connect(f"file:{reference['state'] / 'cockpit.sqlite'}?mode=ro", uri=True)) as conn:
        venue_pos = {s: Decimal(q) for s, q in conn.execute("SELECT symbol, qty FROM paper_positions")}
        venue_cash = Decimal(conn.execute("SELECT value FROM paper_account WHERE key='cash'").fetchone()[0])
        venue_execs = conn.execute("SELECT count(*) FROM paper_executions").fetchone()[0]
    book = {p["symbol"]: Decimal(p["qty"]) for p in reference["positions"]}
    assert {s: q for s, q in venue_pos.items() if q} == {s: q for s, q in book.items() if q}
    assert venue_cash == Decimal(reference["pnl"]["cash"])
    assert venue_execs == len(reference["fills"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_by_signal_then_resume_trades_exactly_like_one_run(
    reference: dict, tmp_path: Path, cockpit_cmd: list[str], clean_env: dict[str, str], sig: signal.Signals
) -> None:
    code, log = interrupt_after_fills(cockpit_cmd, tmp_path, clean_env, 60, sig, "--speed", "max")
    assert code == 0, log[-3000:]
    assert "stopping after the events in hand" in log and "stopped after" in log
    partial = read_json(cockpit_cmd, tmp_path, clean_env, "fills")
    assert 60 <= len(partial) < len(reference["fills"])
    assert fill_keys(partial) == fill_keys(reference["fills"][: len(partial)])
    again = run_engine(cockpit_cmd, tmp_path, clean_env, "--speed", "max")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming replay after" in again.stderr
    assert fill_keys(read_json(cockpit_cmd, tmp_path, clean_env, "fills")) == fill_keys(reference["fills"])
    assert read_json(cockpit_cmd, tmp_path, clean_env, "pnl") == reference["pnl"]


def test_sigkill_mid_run_then_resume_loses_and_doubles_nothing(
    reference: dict, tmp_path: Path, cockpit_cmd: list[str], clean_env: dict[str, str]
) -> None:
    code, log = interrupt_after_fills(cockpit_cmd, tmp_path, clean_env, 120, signal.SIGKILL, "--speed", "max")
    assert code == -signal.SIGKILL
    again = run_engine(cockpit_cmd, tmp_path, clean_env, "--speed", "max")
    assert again.returncode == 0, again.stderr[-3000:]
    assert fill_keys(read_json(cockpit_cmd, tmp_path, clean_env, "fills")) == fill_keys(reference["fills"])
    assert read_json(cockpit_cmd, tmp_path, clean_env, "positions", "--all") == reference["positions"]


def test_paced_run_stops_cleanly_and_a_finished_replay_restarts_to_nothing(
    tmp_path: Path, cockpit_cmd: list[str], clean_env: dict[str, str]
) -> None:
    # ~60 simulated days a second: the strategies trade within a couple of seconds.
    code, log = interrupt_after_fills(cockpit_cmd, tmp_path, clean_env, 3, signal.SIGINT, "--speed", "5000000")
    assert code == 0, log[-3000:]
    before = read_json(cockpit_cmd, tmp_path, clean_env, "fills")
    assert len(before) >= 3
    clean_env = {**clean_env, "COCKPIT_FEED__END": "2008-06-30"}
    first = run_engine(cockpit_cmd, tmp_path, clean_env, "--speed", "max")
    assert first.returncode == 0 and "replay finished" in first.stderr
    after_first = read_json(cockpit_cmd, tmp_path, clean_env, "fills")
    second = run_engine(cockpit_cmd, tmp_path, clean_env, "--speed", "max")
    assert second.returncode == 0 and "after 0 events" in second.stderr
    assert read_json(cockpit_cmd, tmp_path, clean_env, "fills") == after_first
