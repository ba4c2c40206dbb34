"""`cockpit watchdog`, docker's process watchdog, with real parts: `cockpit ib-sim` on loopback,
`cockpit --no-ui` and `cockpit watchdog` as child processes on one state dir, SIGKILL / SIGTERM /
SIGSTOP, and a local HTTP server standing in for Discord.

- the engine SIGKILLed: the watchdog flattens at the simulator with its own client id (the
  account ends flat, no order working), the stand-in gets the emergency flatten's alert, the
  audit trail has the watchdog as actor, and the next start comes up HALTED by the watchdog;
- the engine SIGTERMed (a clean stop): nothing is flattened, nothing alerted, nothing latched;
- docker's quick restart: a new engine that takes the state dir before the watchdog noticed the
  death waits for it (never trading against the flatten), then starts halted;
- hung (SIGSTOP): flattened after hung_seconds of silence; when it answers again it is halted;
- the paper broker: an alert (nothing outside the engine to flatten), the next start halted,
  `cockpit resume` trades again;
- preflight's "dead-man and watchdog" passes while the watchdog's heartbeat is fresh.

Waits poll the other processes' files and sockets with deadlines; nothing sleeps for a timer.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokers.ibsim.state import SimState, load_state
from cockpit.control.client import ApiRefused, ControlClient, NoEngine
from cockpit.halt_latch import read_latch
from cockpit.run_record import read_run
from cockpit.watchdog.heartbeat import WatchdogStatus, read_status
from tests.conftest import CONFIG, ROOT
from tests.test_deploy_emergency import DiscordStandIn, discord  # noqa: F401  (the fixture)
from tests.test_ibkr_sigkill import start_sim
from tests.test_ibkr_wiring import ibkr_config

pytestmark = pytest.mark.slow

CLIENT_ID = 27
WATCHDOG_ID = 98  # [watchdog] client_id's default: its flatten never uses the engine's session


# ---- processes and what they leave in the state dir -------------------------------------------


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # polling another process: it runs on its own clock


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("a") as err:
        return subprocess.Popen([sys.executable, "-m", "cockpit", *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def status(state: Path) -> WatchdogStatus | None:
    return read_status(state)


def beats(state: Path) -> int:
    s = status(state)
    return s.beats if s is not None else 0


def polls_go_by(state: Path, n: int = 5) -> None:
    """The watchdog looked at the state dir ``n`` more times (its heartbeat counts its polls)."""
    start = beats(state)
    wait_for(lambda: beats(state) >= start + n, f"{n} more watchdog polls")


def handled(state: Path, run: str) -> Any:
    s = status(state)
    return next((h for h in s.handled if h.run == run), None) if s is not None else None


def api_status(state: Path) -> dict[str, Any] | None:
    try:
        return ControlClient(state / "control.sock", timeout=5).get("/status")
    except NoEngine:
        return None


def ready(state: Path) -> bool:
    s = api_status(state)
    return bool(s and s["broker"]["connected"] and s["hold"] is None)


def order(state: Path, **body: str) -> bool:
    try:
        ControlClient(state / "control.sock", timeout=5).post("/orders", **body)
        return True
    except (ApiRefused, NoEngine):  # no fresh quote yet: the gate says no, try again
        return False


def sim_state(tmp: Path) -> SimState:
    st = load_state(tmp / "sim.json")
    assert st is not None
    return st


def sim_positions(tmp: Path) -> dict[str, Decimal]:
    return {s: p.qty for s, p in sim_state(tmp).positions.items() if p.qty}


def sim_working(tmp: Path) -> list[str]:
    return [o.order_ref for o in sim_state(tmp).orders.values() if o.working]


def audit_rows(state: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [(actor, json.loads(detail)) for actor, detail in
                db.execute("SELECT actor, detail FROM audit WHERE kind = ? ORDER BY seq", (kind,))]
    finally:
        db.close()


def log_says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


@pytest.fixture
def rig(clean_env: dict[str, str], tmp_path: Path, discord: DiscordStandIn) -> Iterator[dict[str, Any]]:  # noqa: F811
    """The simulator, an IBKR config on it, the environment both units get (the alert secret), and
    whatever processes the test starts (stopped at the end)."""
    sim, port = start_sim(tmp_path / "sim.json")
    config = ibkr_config(tmp_path, port, client_id=CLIENT_ID, reconnect=(0.02, 0.2), settle=0.2)
    env = {**clean_env, "COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": discord.url, "COCKPIT_ENGINE__FLUSH_INTERVAL_MS": "20",
           "COCKPIT_WATCHDOG__POLL_SECONDS": "0.1", "COCKPIT_WATCHDOG__STALE_SECONDS": "60",
           "COCKPIT_WATCHDOG__WAIT_SECONDS": "15", "COCKPIT_WATCHDOG__HUNG_SECONDS": "0"}
    procs: list[subprocess.Popen] = []
    r = {"tmp": tmp_path, "config": config, "state": tmp_path / "state", "env": env, "discord": discord, "sim": sim,
         "procs": procs}
    try:
        yield r
    finally:
        for p in reversed(procs):
            stop(p)
        stop(sim)
        for pipe in (sim.stdout, sim.stderr):
            if pipe is not None:
                pipe.close()


def start(r: dict[str, Any], what: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    args = ["watchdog"] if what == "watchdog" else ["--no-ui"]
    proc = spawn([*args, "--config", str(r["config"]), *extra], env or r["env"], r["tmp"] / f"{what}.log")
    r["procs"].append(proc)
    if what == "watchdog":
        wait_for(lambda: beats(r["state"]) > 0 or proc.poll() is not None, "the watchdog's first heartbeat")
        assert proc.poll() is None, (r["tmp"] / "watchdog.log").read_text()
    return proc


def trade(r: dict[str, Any]) -> None:
    """The engine holds AAPL 7 and MSFT -3 at the simulator and rests a limit order."""
    state, tmp = r["state"], r["tmp"]
    wait_for(lambda: order(state, side="buy", symbol="AAPL", qty="7"), "the AAPL buy accepted")
    wait_for(lambda: order(state, side="sell", symbol="MSFT", qty="3"), "the MSFT sell accepted")
    wait_for(lambda: sim_positions(tmp) == {"AAPL": Decimal(7), "MSFT": Decimal(-3)}, "AAPL 7 and MSFT -3 at the sim")
    aapl = Decimal(sim_state(tmp).prices["AAPL"]["price"])
    limit = str((aapl * Decimal("0.95")).quantize(Decimal("0.01")))
    wait_for(lambda: order(state, side="buy", symbol="AAPL", qty="2", limit=limit), "a resting AAPL limit")
    wait_for(lambda: len(sim_working(tmp)) == 1, "the resting order working at the simulator")


def engine_up(r: dict[str, Any], engine: subprocess.Popen) -> str:
    state = r["state"]
    wait_for(lambda: engine.poll() is not None or ready(state), "the engine connected and reconciled")
    assert engine.poll() is None, (r["tmp"] / "engine.log").read_text()[-3000:]
    record = wait_for(lambda: (rec := read_run(state)) is not None and rec.state == "running" and rec, "running")
    assert record.pid == engine.pid
    return record.run


# ---- the engine dies ------------------------------------------------------------------------


def test_sigkill_the_watchdog_flattens_alerts_and_the_next_start_is_halted(rig: dict[str, Any]) -> None:
    r = rig
    state, tmp, stand_in = r["state"], r["tmp"], r["discord"]
    start(r, "watchdog")
    engine = start(r, "engine")
    run = engine_up(r, engine)
    trade(r)

    engine.send_signal(signal.SIGKILL)
    assert engine.wait(10) == -signal.SIGKILL
    done = wait_for(lambda: handled(state, run), "the watchdog's response", timeout=90)
    assert done.verdict == "died" and done.outcome == "died: emergency flatten done: flat", done
    assert sim_positions(tmp) == {} and sim_working(tmp) == []

    [alert] = [e for e in stand_in.embeds() if "Emergency flatten" in e["title"]]
    assert alert["title"].endswith("Emergency flatten: everything cancelled and flat")
    fields = {f["name"]: f["value"] for f in alert["fields"]}
    assert fields["by"].startswith("watchdog:") and fields["exit code"] == "0"
    assert fields["trigger"] == f"the engine (pid {engine.pid}, run {run}) failed (died without a clean stop (was " \
                                "killed or crashed))"
    assert f"as client {WATCHDOG_ID}" in fields["gateway"]
    text = alert["description"]
    assert "AAPL: flat, from 7" in text and "MSFT: flat, from -3" in text and "1 open order(s) cancelled" in text

    # Audited with who did it: the watchdog held the state dir, so the rows are in the engine's trail.
    [(actor, verdict)] = audit_rows(state, "watchdog.response")
    assert actor.startswith("watchdog:") and verdict["verdict"] == "died" and verdict["pid"] == engine.pid
    [(actor, flatten)] = audit_rows(state, "operator.flatten_direct")
    assert actor.startswith("watchdog:") and f"run {run}" in flatten["reason"]
    assert [d["flat"] for _, d in audit_rows(state, "flatten_direct.done")] == [True]
    latch = read_latch(state)
    assert latch is not None and latch.run == run and latch.actor.startswith("watchdog:")

    # Docker's restart policy starts the engine again: it comes up halted, by the watchdog.
    again = start(r, "engine")
    wait_for(lambda: again.poll() is not None or ((s := api_status(state)) and s["broker"]["connected"]),
             "the engine started again")
    s = api_status(state)
    assert s is not None and s["trading_state"] == "HALTED", s
    assert s["trading_reason"].startswith("operator halt by watchdog:") and run in s["trading_reason"]
    assert read_latch(state) is None  # spent: the halt is in the store now
    [(actor, halt)] = audit_rows(state, "operator.halt")
    assert actor.startswith("watchdog:")
    # The flatten's fills came from the watchdog's client id: the engine's book still holds them (breaks).
    wait_for(lambda: {b["symbol"] for b in (api_status(state) or {"breaks": []})["breaks"]} == {"AAPL", "MSFT"},
             "the flattened symbols found as breaks")
    assert order(state, side="buy", symbol="SPY", qty="1") is False  # halted: refused
    again.terminate()
    assert again.wait(30) == 0
    polls_go_by(state)
    assert len(status(state).handled) == 1  # the clean stop after it is not a death


def test_sigterm_is_a_clean_stop_nothing_is_flattened(rig: dict[str, Any]) -> None:
    r = rig
    state, tmp, stand_in = r["state"], r["tmp"], r["discord"]
    start(r, "watchdog")
    engine = start(r, "engine")
    engine_up(r, engine)
    wait_for(lambda: order(state, side="buy", symbol="AAPL", qty="5"), "the AAPL buy accepted")
    wait_for(lambda: sim_positions(tmp) == {"AAPL": Decimal(5)}, "AAPL 5 at the simulator")

    engine.terminate()  # docker stop, systemctl stop, `q` in the cockpit
    assert engine.wait(30) == 0
    record = read_run(state)
    assert record is not None and record.clean_stop and record.reason == "a stop was requested"
    polls_go_by(state, 10)
    assert status(state).handled == () and read_latch(state) is None
    assert sim_positions(tmp) == {"AAPL": Decimal(5)}  # still held: a stop is not a flatten
    assert stand_in.embeds() == [] or all("Emergency" not in e["title"] for e in stand_in.embeds())
    assert not log_says(tmp / "watchdog.log", "emergency response")


def test_a_quick_restart_waits_for_the_watchdog_then_starts_halted(rig: dict[str, Any]) -> None:
    """Docker restarts the engine within a second of a SIGKILL; here the new engine even takes the
    state dir before the watchdog looks (the watchdog is SIGSTOPped meanwhile). It must not trade
    against the flatten: it finds the last run dead and not handled, and waits for the watchdog."""
    r = rig
    state, tmp = r["state"], r["tmp"]
    # A slower poll: the SIGSTOP below lands in its sleep, not inside its lock probe (which would keep
    # the shared lock while stopped: the new engine would then find the state dir busy and exit).
    watchdog = start(r, "watchdog", env={**r["env"], "COCKPIT_WATCHDOG__POLL_SECONDS": "1"})
    engine = start(r, "engine")
    run = engine_up(r, engine)
    wait_for(lambda: order(state, side="buy", symbol="AAPL", qty="4"), "the AAPL buy accepted")
    wait_for(lambda: sim_positions(tmp) == {"AAPL": Decimal(4)}, "AAPL 4 at the simulator")

    watchdog.send_signal(signal.SIGSTOP)
    engine.send_signal(signal.SIGKILL)
    engine.wait(10)
    fresh = spawn(["--no-ui", "--config", str(r["config"])], r["env"], tmp / "fresh.log")
    r["procs"].append(fresh)
    wait_for(lambda: log_says(tmp / "fresh.log", "waiting for the watchdog"), "the new engine waiting")
    assert fresh.poll() is None and api_status(state) is None  # no control socket answers: not started
    assert sim_positions(tmp) == {"AAPL": Decimal(4)} and read_run(state).run == run  # nothing done, nothing written

    watchdog.send_signal(signal.SIGCONT)
    wait_for(lambda: handled(state, run), "the watchdog's response", timeout=90)
    assert sim_positions(tmp) == {}
    s = wait_for(lambda: (s := api_status(state)) and s["broker"]["connected"] and s, "the new engine up")
    assert s["trading_state"] == "HALTED" and s["trading_reason"].startswith("operator halt by watchdog:"), s
    assert read_run(state).pid == fresh.pid


def test_a_start_while_the_watchdog_flattens_waits_for_the_state_dir(rig: dict[str, Any]) -> None:
    """The other order: the watchdog holds the state dir for its flatten (here slowed down by a
    SIGSTOPped gateway) when the new engine starts: it waits rather than failing or trading."""
    r = rig
    state, tmp, sim = r["state"], r["tmp"], r["sim"]
    env = {**r["env"], "COCKPIT_IBKR__CONNECT_TIMEOUT": "60"}
    start(r, "watchdog", env=env)
    engine = start(r, "engine")
    run = engine_up(r, engine)
    wait_for(lambda: order(state, side="buy", symbol="MSFT", qty="2"), "the MSFT buy accepted")
    wait_for(lambda: sim_positions(tmp) == {"MSFT": Decimal(2)}, "MSFT 2 at the simulator")

    sim.send_signal(signal.SIGSTOP)  # the gateway stops answering: the flatten's connect waits
    engine.send_signal(signal.SIGKILL)
    engine.wait(10)
    wait_for(lambda: (s := status(state)) is not None and s.acting == run, "the watchdog responding")
    fresh = spawn(["--no-ui", "--config", str(r["config"])], r["env"], tmp / "fresh.log")
    r["procs"].append(fresh)
    wait_for(lambda: log_says(tmp / "fresh.log", "the watchdog is responding to the previous run"),
             "the new engine waiting for the state dir")
    assert fresh.poll() is None
    sim.send_signal(signal.SIGCONT)
    wait_for(lambda: handled(state, run), "the watchdog's response", timeout=90)
    assert sim_positions(tmp) == {}
    s = wait_for(lambda: (s := api_status(state)) and s["broker"]["connected"] and s, "the new engine up")
    assert s["trading_state"] == "HALTED", s


def test_a_hung_engine_is_flattened_then_halted_when_it_answers_again(rig: dict[str, Any]) -> None:
    r = rig
    state, tmp, stand_in = r["state"], r["tmp"], r["discord"]
    env = {**r["env"], "COCKPIT_WATCHDOG__HUNG_SECONDS": "2", "COCKPIT_WATCHDOG__PING_TIMEOUT_SECONDS": "0.5"}
    start(r, "watchdog", env=env)
    engine = start(r, "engine")
    run = engine_up(r, engine)
    wait_for(lambda: order(state, side="sell", symbol="AAPL", qty="6"), "the AAPL sell accepted")
    wait_for(lambda: sim_positions(tmp) == {"AAPL": Decimal(-6)}, "AAPL -6 at the simulator")
    polls_go_by(state, 10)
    assert status(state).handled == ()  # answering: not hung

    engine.send_signal(signal.SIGSTOP)  # its loop stops: it holds the lock but answers nothing
    done = wait_for(lambda: handled(state, run), "the watchdog's response to the hang", timeout=90)
    assert done.verdict == "hung" and "flat" in done.outcome, done
    assert sim_positions(tmp) == {}
    [alert] = [e for e in stand_in.embeds() if "Emergency flatten" in e["title"]]
    assert "no answer on its control socket for 2 s" in {f["name"]: f["value"] for f in alert["fields"]}["trigger"]
    assert log_says(tmp / "watchdog.log", "audit: NOT written: an engine holds the state dir")  # its store left alone

    engine.send_signal(signal.SIGCONT)  # it wakes up: halted at once, so it cannot trade against the flatten
    s = wait_for(lambda: (s := api_status(state)) and s["trading_state"] == "HALTED" and s, "the engine halted")
    assert "watchdog:" in s["trading_reason"] and "hung" in s["trading_reason"], s
    assert read_latch(state) is not None and read_latch(state).run == run  # and a restart would come up halted


# ---- the paper broker ----------------------------------------------------------------------------


def test_paper_engine_killed_alert_then_halted_start_and_resume(clean_env: dict[str, str], tmp_path: Path,
                                                                 discord: DiscordStandIn) -> None:  # noqa: F811
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": discord.url, "COCKPIT_WATCHDOG__POLL_SECONDS": "0.1",
           "COCKPIT_FEED__SPEED": "3600", "COCKPIT_DEADMAN__ENABLED": "false"}
    common = ["--config", str(CONFIG), "--state-dir", str(state)]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(spawn(["watchdog", *common], env, tmp_path / "watchdog.log"))
        wait_for(lambda: beats(state) > 0, "the watchdog's first heartbeat")
        procs.append(engine := spawn(["--no-ui", *common], env, tmp_path / "engine.log"))
        wait_for(lambda: (rec := read_run(state)) is not None and rec.state == "running" and api_status(state),
                 "the paper engine trading")
        run = read_run(state).run
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        done = wait_for(lambda: handled(state, run), "the watchdog's response")
        assert done.outcome == "died: paper broker, nothing outside the engine to flatten; the next start is halted"
        [alert] = wait_for(lambda: [e for e in discord.embeds() if "Engine died" in e["title"]], "the alert")
        assert alert["title"] == "CRITICAL · Engine died without a clean stop (was killed or crashed)"
        assert {f["name"]: f["value"] for f in alert["fields"]}["by"].startswith("watchdog:")

        procs.append(again := spawn(["--no-ui", *common], env, tmp_path / "engine.log"))
        s = wait_for(lambda: api_status(state), "the paper engine up again")
        assert s["trading_state"] == "HALTED" and s["trading_reason"].startswith("operator halt by watchdog:"), s
        resumed = subprocess.run([sys.executable, "-m", "cockpit", "resume", "--reason", "checked the book", *common],
                                 env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert resumed.returncode == 0 and "trading ACTIVE (was HALTED)" in resumed.stdout, resumed
        assert api_status(state)["trading_state"] == "ACTIVE"
        again.terminate()
        assert again.wait(30) == 0
    finally:
        for p in reversed(procs):
            stop(p)


def test_preflight_counts_a_running_watchdog(clean_env: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_WATCHDOG__POLL_SECONDS": "0.1", "COCKPIT_WATCHDOG__STALE_SECONDS": "1"}
    common = ["--config", str(CONFIG), "--state-dir", str(state)]

    def check() -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "cockpit", "preflight", "--json", *common], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        return next(c for c in json.loads(out.stdout)["checks"] if c["name"] == "dead-man and watchdog")

    def alive() -> int:
        return subprocess.run([sys.executable, "-m", "cockpit", "watchdog", "--check", *common], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60).returncode

    before = check()
    assert not before["ok"] and "no process watchdog" in before["detail"] and "watchdog service" in before["fix"]
    assert alive() == 1
    watchdog = spawn(["watchdog", *common], env, tmp_path / "watchdog.log")
    try:
        wait_for(lambda: beats(state) > 0, "the watchdog's first heartbeat")
        assert alive() == 0
        during = check()
        assert during["ok"] and "`cockpit watchdog` (pid" in during["detail"], during
    finally:
        stop(watchdog)
    wait_for(lambda: alive() == 1, "the stopped watchdog's heartbeat going stale")
    assert not check()["ok"]


def test_watchdog_check_says_why_in_one_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "cockpit", "watchdog", "--check", "--config", str(CONFIG),
                          "--state-dir", str(tmp_path / "none")], env=clean_env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("watchdog: none: no heartbeat at ") and not out.stdout
    assert "Traceback" not in out.stderr and os.path.basename(out.stderr.strip()) == "watchdog.json"
