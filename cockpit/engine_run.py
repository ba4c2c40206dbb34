"""One engine run on a state dir, as both faces (`cockpit --no-ui`, the cockpit app) take it:
the state lock, the run record (``engine.run``: cockpit/run_record.py), and the halt it starts
with.

Taking the state dir, it makes way for the process watchdog (cockpit/watchdog/). When the
last run died while trading and a watchdog is running (its heartbeat is fresh) that has not
dealt with that run yet, or is dealing with it right now (holding the lock for its emergency
flatten), the new engine waits for it instead of trading against the flatten: docker's
restart policy brings an engine back within a second of a SIGKILL, and the watchdog may not
have noticed yet. It waits at most ``[watchdog] handoff_seconds``, then starts halted anyway.

It starts halted (the operator's halt command, audited with its actor) for any of: the
watchdog's latch (after an emergency response; the watchdog is the actor), the last run
trading when the machine restarted with no watchdog here (a power cut under systemd: nothing
flattened, the book unwatched while the machine was down), ``--start-halted``
(the operator), ``[engine] start_halted = true`` (the config). ``cockpit resume`` trades.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from cockpit.halt_latch import HaltLatch, clear_latch, read_latch
from cockpit.identity import operator_id
from cockpit.run_record import RUNNING, RunFile, RunRecord, current_boot_id, read_run
from cockpit.state_lock import StateDirBusy, StateLock
from cockpit.watchdog.heartbeat import WatchdogStatus, read_status
from core.config import Settings
from core.domain.commands import Halt

log = logging.getLogger("cockpit.run")

WAIT_POLL = 0.2  # seconds between two looks at the watchdog's file while waiting for it


class EngineRun:
    def __init__(self, settings: Settings, *, start_halted: bool = False,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._say = say  # where a wait is told besides the log (the cockpit app: its terminal, before it draws)
        self.state_dir = settings.state_dir
        self.flag = start_halted
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock: StateLock | None = None
        self.record: RunFile | None = None
        self.latch: HaltLatch | None = None
        self.previous: RunRecord | None = None
        self.overdue: str | None = None  # the watchdog did not deal with a dead run in time: why we halt
        self.rebooted: str | None = None  # the last run was trading when the machine restarted: why we halt

    # ---- the state dir ---------------------------------------------------------------

    def __enter__(self) -> EngineRun:
        self._lock = self._acquire()
        try:
            self.latch = read_latch(self.state_dir)
            self.record = RunFile(self.state_dir)
            self.record.starting()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def _acquire(self) -> StateLock:
        deadline = self._monotonic() + self.settings.watchdog.handoff_seconds
        said: set[str] = set()

        def once(key: str, message: str) -> None:
            if key not in said:
                said.add(key)
                log.warning("%s", message)
                if self._say is not None:
                    self._say(message)

        while True:
            lock = StateLock(self.state_dir)
            try:
                lock.__enter__()
            except StateDirBusy:
                watchdog = self._watchdog()
                if watchdog is None or watchdog.acting is None or self._monotonic() >= deadline:
                    raise
                once("acting", f"the watchdog is responding to the previous run ({watchdog.acting}): it holds the "
                               f"state dir for its emergency flatten; waiting for it")
                self._sleep(WAIT_POLL)
                continue
            previous = read_run(self.state_dir)
            self.previous = previous
            if previous is None or not previous.died_trading:
                return lock
            watchdog = self._watchdog()
            if watchdog is None:
                log.warning("%s ended without a clean stop (%s); no process watchdog runs here", previous.name(),
                            previous.reason or f"last seen {previous.state}")
                if previous.other_boot(current_boot_id()):
                    # A power cut or a reboot (systemd's OnFailure= never fires for one): nothing was
                    # flattened, the book went unwatched for as long as the machine was down. The same
                    # answer as the docker watchdog's (cockpit/watchdog/reboot.py): halted, not flattened.
                    self.rebooted = (f"{previous.name()} was trading when the machine restarted (a power cut or "
                                     "a reboot): check the book, then `cockpit resume`")
                    log.error("%s: starting HALTED", self.rebooted)
                return lock
            if watchdog.has_handled(previous.run):
                return lock
            if self._monotonic() >= deadline:
                self.overdue = (f"{previous.name()} died without a clean stop and the watchdog did not deal with it "
                                f"within {self.settings.watchdog.handoff_seconds:g} s")
                log.error("%s: starting HALTED", self.overdue)
                return lock
            once("wait", f"{previous.name()} ended without a clean stop: waiting for the watchdog (pid "
                         f"{watchdog.pid}) to deal with it before trading")
            lock.__exit__(None, None, None)  # the watchdog takes the state dir for its response
            self._sleep(WAIT_POLL)

    def _watchdog(self) -> WatchdogStatus | None:
        """The watchdog's status if one is running (a fresh heartbeat), else None."""
        status = read_status(self.state_dir)
        return status if status is not None and status.alive(datetime.now(UTC)) else None

    # ---- what the host asks ------------------------------------------------------------

    def halt(self) -> Halt | None:
        """The halt this run starts with, if any: one command, its actor the one who asked first."""
        asked: list[tuple[str, str]] = []
        if self.latch is not None:
            asked.append((self.latch.actor, f"start halted: {self.latch.reason}"))
        if self.overdue is not None:
            asked.append(("engine", f"start halted: {self.overdue}"))
        if self.rebooted is not None:
            asked.append(("engine", f"start halted: {self.rebooted}"))
        if self.flag:
            asked.append((operator_id("cli"), "start halted: --start-halted"))
        if self.settings.engine.start_halted:
            where = f" in {self.settings.config_path}" if self.settings.config_path else ""
            asked.append(("engine", f"start halted: [engine] start_halted = true{where}"))
        if not asked:
            return None
        return Halt(asked[0][0], "; ".join(reason for _, reason in asked)[:500])

    def started(self) -> None:
        """The engine started (its halt, if any, committed): the watchdog's latch is spent."""
        if self.latch is not None:
            clear_latch(self.state_dir)
            self.latch = None

    def running(self) -> None:
        assert self.record is not None
        self.record.running()

    def stopping(self) -> None:
        """The stop begins (a trading run only). Never raises."""
        if self.record is None or self.record.record.state != RUNNING:
            return
        try:
            self.record.stopping()
        except OSError as exc:
            log.error("cannot record the stop's start in %s: %s", self.record.path, exc)

    def stopped(self, *, clean: bool, reason: str) -> None:
        """Never raises: the stop goes on whatever happens to this file (a full disk)."""
        if self.record is None:
            return
        try:
            self.record.stopped(clean=clean, reason=reason)
        except OSError as exc:
            log.error("cannot record the stop in %s: %s (the watchdog will read this run as unclean)",
                      self.record.path, exc)
