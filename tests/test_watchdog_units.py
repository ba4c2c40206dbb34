"""The watchdog's parts without processes: its verdicts, the run record, the heartbeat's freshness,
the lock probe, and how a starting engine makes way for the watchdog (on an injected clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cockpit.engine_run import EngineRun
from cockpit.halt_latch import HaltLatch, read_latch, write_latch
from cockpit.run_record import RUN_FILE, RunFile, RunRecord, read_run
from cockpit.state_lock import Probe, StateDirBusy, StateLock
from cockpit.watchdog.heartbeat import StatusFile, read_status
from cockpit.watchdog.verdict import DIED, HUNG, Watch, follow, on_free_lock, on_held_lock
from core.config import Settings

T0 = "2026-12-02T15:00:00+00:00"


def rec(state: str = "running", traded: bool = True, clean: bool | None = None, run: str = "r1") -> RunRecord:
    return RunRecord(run=run, pid=7, host="box", started_at=T0, state=state, trading_since=T0 if traded else None,
                     clean=clean)


@pytest.mark.parametrize(("record", "verdict"), [
    (None, None),  # no engine ever ran here
    (rec("starting", traded=False), None),  # died while starting: it never traded
    (rec("stopped", traded=False, clean=False), None),  # a refused or failed start
    (rec("running"), DIED),  # SIGKILL, OOM, a power cut
    (rec("stopped", clean=False), DIED),  # a run that failed after trading
    (rec("stopping"), DIED),  # killed during its stop (docker's stop_grace_period, systemd's TimeoutStopSec)
    (rec("stopped", clean=True), None),  # SIGTERM, q, the replay's end
])
def test_a_free_lock_is_a_death_only_after_trading_without_a_clean_stop(record: RunRecord | None,
                                                                         verdict: str | None) -> None:
    assert on_free_lock(record, handled=False) == verdict
    assert on_free_lock(record, handled=True) is None  # each run is answered once


def test_hung_is_silence_for_hung_seconds_since_the_last_answer() -> None:
    watch = Watch("r1", since=100.0)
    assert on_held_lock(watch, 159.9, 60, handled=False) is None
    assert on_held_lock(watch, 160.0, 60, handled=False) == HUNG
    watch.last_answer = 150.0
    assert on_held_lock(watch, 209.0, 60, handled=False) is None and on_held_lock(watch, 210, 60, False) == HUNG
    assert on_held_lock(watch, 1e9, 0, handled=False) is None  # hung_seconds = 0: never judged hung
    assert on_held_lock(watch, 1e9, 60, handled=True) is None
    assert follow(watch, rec(run="r1")) is watch
    assert follow(watch, rec(run="r2")) is None  # a new run: a new watch
    assert follow(watch, rec("starting", traded=False)) is None  # not trading yet: nothing to judge
    assert follow(watch, rec("stopping", run="r1")) is None  # its socket closes on purpose: not a hang


def test_the_run_record_goes_starting_running_stopped(tmp_path: Path) -> None:
    f = RunFile(tmp_path)
    f.starting()
    assert read_run(tmp_path) == f.record and not f.record.traded
    f.running()
    assert read_run(tmp_path).died_trading  # as a SIGKILL would leave it
    f.stopping()
    assert read_run(tmp_path).state == "stopping" and read_run(tmp_path).died_trading  # not stopped yet
    f.stopped(clean=True, reason="a stop was requested")
    got = read_run(tmp_path)
    assert got is not None and got.clean_stop and not got.died_trading and got.reason == "a stop was requested"
    assert (tmp_path / RUN_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / RUN_FILE).write_text("{not json")
    assert read_run(tmp_path) is None
    (tmp_path / RUN_FILE).write_text(json.dumps({"run": "x", "pid": "seven"}))
    assert read_run(tmp_path) is None


def test_the_heartbeat_is_fresh_for_stale_after_seconds(tmp_path: Path) -> None:
    status = StatusFile(tmp_path, "watchdog:ops@box", stale_after=15)
    status.beat()
    got = read_status(tmp_path)
    assert got is not None and got.beats == 1
    at = datetime.fromisoformat(got.at)
    assert got.alive(at + timedelta(seconds=15)) and not got.alive(at + timedelta(seconds=15.1))
    assert not got.alive(at - timedelta(seconds=16))  # a clock that jumped: not trusted either way
    status.acting("r1")
    status.handled("r1", DIED, "died: emergency flatten done: flat")
    again = StatusFile(tmp_path, "watchdog:ops@box", stale_after=15)  # a restarted watchdog keeps what it handled
    assert again.status.has_handled("r1") and again.status.acting is None


def test_the_probe_never_takes_what_an_engine_holds(tmp_path: Path) -> None:
    with Probe(tmp_path) as probe:
        assert not probe.free  # no lock file: no engine ever ran here
    with StateLock(tmp_path):
        with Probe(tmp_path) as probe:
            assert not probe.free and not probe.take()
    with Probe(tmp_path) as probe:
        assert probe.free and probe.take()
        with pytest.raises(StateDirBusy):
            StateLock(tmp_path, wait_seconds=0).__enter__()  # the watchdog's response holds the state dir
    with StateLock(tmp_path, wait_seconds=0):
        pass  # released with the probe


def settings(tmp_path: Path, **engine: object) -> Settings:
    return Settings(engine={"state_dir": tmp_path, **engine}, watchdog={"handoff_seconds": 30})


def test_the_halt_at_start_names_who_asked_first(tmp_path: Path) -> None:
    assert EngineRun(settings(tmp_path)).halt() is None
    flag = EngineRun(settings(tmp_path), start_halted=True).halt()
    assert flag is not None and flag.actor.startswith("cli:") and flag.reason == "start halted: --start-halted"
    config = EngineRun(settings(tmp_path, start_halted=True)).halt()
    assert config is not None and config.actor == "engine" and "[engine] start_halted = true" in config.reason
    write_latch(tmp_path, HaltLatch(run="r1", actor="watchdog:ops@box", reason="the engine died", at=T0))
    with EngineRun(settings(tmp_path, start_halted=True), start_halted=True) as run:
        halt = run.halt()
        assert halt is not None and halt.actor == "watchdog:ops@box"
        assert halt.reason == ("start halted: the engine died; start halted: --start-halted; start halted: "
                               "[engine] start_halted = true")
        run.started()
    assert read_latch(tmp_path) is None  # spent once the engine started


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in self.on_sleep:
            hook()


def _dead_run_and_a_watchdog(tmp_path: Path) -> StatusFile:
    with StateLock(tmp_path):
        dead = RunFile(tmp_path)
        dead.starting()
        dead.running()  # then SIGKILLed: the kernel lets go of its lock
    watchdog = StatusFile(tmp_path, "watchdog:ops@box", stale_after=3600)
    watchdog.beat()
    return watchdog


def test_a_start_waits_for_the_watchdog_to_handle_the_dead_run_and_lets_go_of_the_lock(tmp_path: Path) -> None:
    watchdog = _dead_run_and_a_watchdog(tmp_path)
    dead = read_run(tmp_path)
    assert dead is not None
    clock = FakeTime()

    def the_watchdog_looks() -> None:  # what it can do while the engine waits: take the state dir
        with Probe(tmp_path) as probe:
            assert probe.free and probe.take(), "the waiting engine must not hold the state lock"
        if len(clock.sleeps) == 3:
            watchdog.handled(dead.run, DIED, "died: emergency flatten done: flat")

    clock.on_sleep.append(the_watchdog_looks)
    with EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep) as run:
        assert len(clock.sleeps) == 3 and run.overdue is None and run.previous == dead
        assert read_run(tmp_path).run != dead.run  # its own record now


def test_a_watchdog_that_never_handles_the_dead_run_means_a_halted_start(tmp_path: Path) -> None:
    _dead_run_and_a_watchdog(tmp_path)
    clock = FakeTime()
    with EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep) as run:
        assert clock.now >= 30 and run.overdue is not None
        halt = run.halt()
        assert halt is not None and "did not deal with it within 30 s" in halt.reason


def test_without_a_running_watchdog_a_dead_run_does_not_hold_up_the_start(tmp_path: Path) -> None:
    dead = RunFile(tmp_path)
    dead.starting()
    dead.running()
    clock = FakeTime()
    with EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep) as run:
        assert clock.sleeps == [] and run.halt() is None  # systemd's way: it restarts and trades
    stale = StatusFile(tmp_path, "watchdog:ops@box", stale_after=1)
    stale.beat()
    data = json.loads((tmp_path / "watchdog.json").read_text())
    data["at"] = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    (tmp_path / "watchdog.json").write_text(json.dumps(data))
    dead = RunFile(tmp_path)
    dead.starting()
    dead.running()
    with EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep):
        assert clock.sleeps == []  # a watchdog whose heartbeat is stale is not waited for


def test_a_start_while_the_watchdog_holds_the_state_dir_waits_then_takes_it(tmp_path: Path) -> None:
    watchdog = _dead_run_and_a_watchdog(tmp_path)
    watchdog.acting(read_run(tmp_path).run)
    clock = FakeTime()
    probe = Probe(tmp_path).__enter__()
    assert probe.take()  # the watchdog's response holds the lock

    def response_ends() -> None:
        if len(clock.sleeps) == 2:
            watchdog.handled(watchdog.status.acting, DIED, "done")
            probe.__exit__()

    clock.on_sleep.append(response_ends)
    with EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep):
        assert len(clock.sleeps) == 2
    with pytest.raises(StateDirBusy), StateLock(tmp_path), \
            EngineRun(settings(tmp_path), monotonic=clock.monotonic, sleep=clock.sleep):
        pass  # another engine, not the watchdog: busy as ever


def test_the_state_files_are_names_no_config_path_may_take() -> None:
    from cockpit.halt_latch import LATCH_FILE
    from cockpit.watchdog.heartbeat import STATUS_FILE
    from core.common.input_checks import RESERVED_STATE_NAMES
    from core.config import ConfigError, load_config
    from tests.conftest import CONFIG

    assert {RUN_FILE, STATUS_FILE, LATCH_FILE} <= RESERVED_STATE_NAMES
    for name in (RUN_FILE, STATUS_FILE, LATCH_FILE):
        with pytest.raises(ConfigError, match="one of the engine's own files"):
            load_config(CONFIG, overrides={"api": {"socket": name}})


def test_with_no_watchdog_a_run_that_was_trading_when_the_machine_restarted_starts_halted(tmp_path: Path) -> None:
    """systemd's OnFailure= never fires for a power cut: nothing was flattened, and the book went
    unwatched while the machine was down. The next start is halted, as the docker watchdog makes it."""
    from cockpit.run_record import current_boot_id

    if current_boot_id() is None:
        pytest.skip("this machine's boot id cannot be read")
    (tmp_path / RUN_FILE).write_text(json.dumps({**rec().as_dict(), "boot_id": "0000-another-boot"}))
    with EngineRun(settings(tmp_path)) as run:
        halt = run.halt()
        assert halt is not None and halt.actor == "engine"
        assert "was trading when the machine restarted" in halt.reason and "cockpit resume" in halt.reason
    # The same boot: a crash here is the emergency unit's (its latch), not a reboot: no halt of this kind.
    (tmp_path / RUN_FILE).write_text(json.dumps({**rec().as_dict(), "boot_id": current_boot_id()}))
    with EngineRun(settings(tmp_path)) as run:
        assert run.halt() is None
    # A record from before boot ids were kept: unknown, so not judged a reboot.
    (tmp_path / RUN_FILE).write_text(json.dumps(rec().as_dict() | {"boot_id": None}))
    with EngineRun(settings(tmp_path)) as run:
        assert run.halt() is None
