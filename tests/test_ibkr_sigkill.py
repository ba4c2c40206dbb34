"""SIGKILL at random moments in IBKR mode: `cockpit --no-ui` on an IBKR config against
`cockpit ib-sim` (both real processes on 127.0.0.1) is killed a few dozen times, during its
start-up (imports, store, connect, sync, reconcile) or right after orders went out through its
control socket (before or after their acks and fills), and started again each time. The
simulator fills resting orders while the engine is dead, too. At the end, after one clean
run: every execution the simulator made for the engine's client id is in the engine's store
exactly once, with its quantity and price, and the positions agree.

The moments come from a seeded random (``IBKR_KILL_SEED``, printed); ``IBKR_KILLS`` sets how many.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.ibsim.state import SimState, load_state
from cockpit.control.client import ApiRefused, ControlClient, NoEngine
from tests.conftest import ROOT
from tests.test_ibkr_cli import LISTENING
from tests.test_ibkr_wiring import ibkr_config

CLIENT_ID = 41
SYMBOLS = ("AAPL", "MSFT")
KILLS = int(os.environ.get("IBKR_KILLS", "24"))
SEED = int(os.environ.get("IBKR_KILL_SEED", "20261201"))


def start_sim(state: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--state", str(state),
                             "--tick-interval", "0.05", "--seed", "11"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    m = LISTENING.search(proc.stdout.readline())
    assert m, proc.stderr.read() if proc.poll() is not None else "no listening line"
    return proc, int(m.group(1))


def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (seed {SEED})")
        time.sleep(0.02)


def ready(api: ControlClient, engine: subprocess.Popen) -> bool:
    """Connected, reconciled and out of the hold: orders are accepted."""
    assert engine.poll() is None, f"the engine exited with {engine.returncode}"
    try:
        s = api.get("/status")
    except NoEngine:
        return False
    return bool(s["broker"]["connected"]) and s["hold"] is None


def store_fills(state: Path) -> list[tuple[str, str, Decimal, Decimal]]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT exec_id, symbol, qty, price FROM fills WHERE kind = 'trade' ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(e, s, Decimal(q), Decimal(p)) for e, s, q, p in rows]


def store_positions(state: Path) -> dict[str, Decimal]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return {s: Decimal(q) for s, q in db.execute("SELECT symbol, qty FROM positions") if Decimal(q)}
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_doubles_no_fill(clean_env: dict[str, str], tmp_path: Path) -> None:
    with ExitStack() as stack:
        _run(clean_env, tmp_path, stack)


def _run(clean_env: dict[str, str], tmp_path: Path, stack: ExitStack) -> None:
    print(f"\nIBKR SIGKILL test: seed {SEED} (IBKR_KILL_SEED), {KILLS} kills")
    rng = random.Random(SEED)
    sim, port = start_sim(tmp_path / "sim.json")
    config = ibkr_config(tmp_path, port, client_id=CLIENT_ID, symbols=str(list(SYMBOLS)).replace("'", '"'),
                         reconnect=(0.02, 0.2), settle=0.2)
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_ENGINE__FLUSH_INTERVAL_MS": "20"}
    api = ControlClient(state / "control.sock", timeout=5)
    stack.callback(api.__exit__, None, None, None)
    sent = refused = resolved = 0
    at_startup = mid_order = 0

    err_file = tmp_path / "engine.err"  # a file, not a pipe nobody reads while the engine runs

    def spawn() -> subprocess.Popen:
        with err_file.open("w") as err:
            return subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)

    def sim_state() -> SimState:
        st = load_state(tmp_path / "sim.json")
        assert st is not None
        return st

    def order() -> None:
        nonlocal sent, refused
        symbol = rng.choice(SYMBOLS)
        side = rng.choice(("buy", "sell"))
        body = {"side": side, "symbol": symbol, "qty": str(rng.randint(1, 5))}
        limit, away = rng.random() < 0.5, Decimal(rng.randint(-6, 3)) / 1000  # drawn always: the seed replays
        cursor = sim_state().prices.get(symbol)
        if limit and cursor:  # a limit near the touch: some fill at once, some rest for a while
            price = Decimal(cursor["price"]) * (1 + away if side == "buy" else 1 - away)
            body["limit"] = str(price.quantize(Decimal("0.01")))
        try:
            api.post("/orders", **body)
            sent += 1
        except ApiRefused:
            refused += 1  # a limit or a hold: the engine said no, nothing to check
        except NoEngine:
            pass  # the engine died under the request: that is the point

    def resolve_breaks() -> None:
        """As the operator would: an order written into a socket the kill reset has no trace at IB
        (UNKNOWN), a break that blocks its symbol; accept the broker's view and trade on."""
        nonlocal resolved
        for b in api.get("/status")["breaks"]:
            try:
                api.post(f"/breaks/{b['symbol']}/resolve", action="accept", reason="sigkill test")
                resolved += 1
            except (ApiRefused, NoEngine):
                pass

    started = time.monotonic()
    try:
        for n in range(KILLS):
            engine = spawn()
            if rng.random() < 0.4:
                time.sleep(rng.uniform(0.05, 1.8))  # somewhere in start-up: imports, store, connect, sync
                at_startup += 1
            else:
                until(lambda engine=engine: ready(api, engine), 30, f"engine {n} ready")
                resolve_breaks()
                for _ in range(rng.randint(1, 4)):
                    order()
                time.sleep(rng.choice((0, 0, 0.002, 0.01, 0.03)))  # before the ack, between ack and fill, after
                mid_order += 1
            engine.send_signal(signal.SIGKILL)
            engine.wait(timeout=30)
            assert engine.returncode == -signal.SIGKILL, (
                f"engine {n} exited {engine.returncode} before the kill: {err_file.read_text()[-3000:]}")

        # one clean run: reconcile, book what the simulator did meanwhile, stop
        engine = spawn()
        until(lambda: ready(api, engine), 30, "the last engine ready")

        def at_sim() -> list:
            return [e for e in sim_state().executions if e.client_id == CLIENT_ID]

        def lost() -> set[str]:
            return {e.exec_id for e in at_sim()} - {f[0] for f in store_fills(state)}

        try:
            until(lambda: not lost(), 30, "every execution of the simulator in the engine's store")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: lost {sorted(lost())}") from None
        engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=60)
        assert engine.returncode == 0, err_file.read_text()[-3000:]
    finally:
        sim.terminate()
        sim.communicate(timeout=30)

    fills = store_fills(state)
    ours = at_sim()
    ids = [f[0] for f in fills]
    assert len(ids) == len(set(ids)), "a fill booked twice"
    assert set(ids) == {e.exec_id for e in ours}, (
        f"lost: {sorted({e.exec_id for e in ours} - set(ids))}, invented: {sorted(set(ids) - {e.exec_id for e in ours})}")
    by_id = {f[0]: f for f in fills}
    for e in ours:
        assert by_id[e.exec_id][1:] == (e.symbol, e.shares, e.price), (by_id[e.exec_id], e)
    assert store_positions(state) == {s: p.qty for s, p in sim_state().positions.items() if p.qty}
    assert "Traceback" not in (state / "logs" / "cockpit.log").read_text()
    assert len(ours) >= 5 and mid_order >= KILLS // 3 and at_startup >= KILLS // 5, (len(ours), mid_order, at_startup)
    print(f"IBKR SIGKILL test: {KILLS} kills ({at_startup} in start-up, {mid_order} right after orders), "
          f"{sent} orders accepted, {refused} refused, {len(ours)} executions, none lost or doubled, "
          f"{resolved} break(s) of UNKNOWN orders accepted as the operator would, "
          f"in {time.monotonic() - started:.1f}s")
