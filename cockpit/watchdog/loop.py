"""The watchdog's loop: every ``poll_seconds`` a look at the state lock and the run record, a
status request to a running engine, and the response when one died or hung.

The heartbeat (cockpit/watchdog/heartbeat.py) is its own task, so it goes on during a long
emergency flatten. The status request runs in a thread (the control client is blocking); a
response runs on the loop. A hung engine that answers again after the response is halted
through its control API, so it cannot trade against the flatten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cockpit.control.client import ApiRefused, ControlClient, NoEngine
from cockpit.identity import operator_id
from cockpit.run_record import RUNNING, RunRecord, current_boot_id, read_run
from cockpit.state_lock import Probe
from cockpit.watchdog.heartbeat import StatusFile
from cockpit.watchdog.respond import respond
from cockpit.watchdog.verdict import HUNG, Watch, follow, on_free_lock, on_held_lock
from core.config import Settings

log = logging.getLogger("cockpit.watchdog")


class Watchdog:
    def __init__(self, settings: Settings, out: Callable[[str], None], *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.cfg = settings.watchdog
        self.state_dir = settings.state_dir
        self.out = out
        self.actor = operator_id("watchdog")
        self.monotonic = monotonic
        self.boot_id = current_boot_id()  # a run from another boot went down with the machine: no flatten
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.status = StatusFile(self.state_dir, self.actor, self.cfg.stale_seconds)
        self.watch: Watch | None = None
        self.halt_pending: set[str] = set()  # runs judged hung: halt them once they answer again
        self._stop = asyncio.Event()
        self._said_write_error: str | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.out(f"watchdog: watching {self.state_dir} every {self.cfg.poll_seconds:g} s as {self.actor} "
                 f"(hung after {self.cfg.hung_seconds:g} s without an answer; "
                 + ("emergency flatten at IB Gateway with client id " f"{self.cfg.client_id})"
                    if self.settings.broker.kind == "ibkr" else "paper broker: alert and halt only)"))
        beats = asyncio.ensure_future(self._beat())
        try:
            while not self._stop.is_set():
                await self.step()
                await self._pause()
        finally:
            beats.cancel()

    async def _pause(self) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), self.cfg.poll_seconds)
        except TimeoutError:
            pass

    async def _beat(self) -> None:
        while True:
            self.status.beat()
            if self.status.error != self._said_write_error:
                self._said_write_error = self.status.error
                if self.status.error:
                    log.error("watchdog heartbeat: %s (it goes on watching)", self.status.error)
            await asyncio.sleep(self.cfg.poll_seconds)

    async def step(self) -> None:
        """One look; responds at most once per run."""
        handled = self.status.status.has_handled
        with Probe(self.state_dir) as probe:
            if probe.free:
                self.watch = None
                record = read_run(self.state_dir)
                if on_free_lock(record, record is not None and handled(record.run), self.boot_id) and probe.take():
                    record = read_run(self.state_dir)  # again, under the exclusive lock
                    verdict = on_free_lock(record, handled(record.run), self.boot_id) if record is not None else None
                    if record is not None and verdict is not None:
                        await self._respond(record, verdict, lock_held=True)
                return
        record = read_run(self.state_dir)
        self.watch = follow(self.watch, record)
        if record is None or record.state != RUNNING:
            return
        now = self.monotonic()
        if self.watch is None:
            self.watch = Watch(record.run, now)
        answered = await asyncio.to_thread(self._ping)
        now = self.monotonic()
        if answered:
            self.watch.last_answer = now
            if record.run in self.halt_pending:
                await asyncio.to_thread(self._halt, record.run)
            return
        if on_held_lock(self.watch, now, self.cfg.hung_seconds, handled(record.run)) == HUNG:
            await self._respond(record, HUNG, lock_held=False)
            self.halt_pending.add(record.run)

    async def _respond(self, record: RunRecord, verdict: str, *, lock_held: bool) -> None:
        self.status.acting(record.run)
        try:
            outcome = await respond(self.settings, record, verdict, actor=self.actor, lock_held=lock_held,
                                    out=self.out)
        except Exception as exc:  # the response must end in a line and a mark, never in a dead watchdog
            log.exception("the watchdog's response to %s failed", record.name())
            outcome = f"{verdict}: the response failed: {type(exc).__name__}: {exc}"[:300]
        self.status.handled(record.run, verdict, outcome)
        self.out(f"watchdog: {record.name()}: {outcome}")

    def _client(self) -> ControlClient:
        return ControlClient(self.state_dir / self.settings.api.socket, timeout=self.cfg.ping_timeout_seconds)

    def _ping(self) -> bool:
        try:
            self._client().get("/status")
        except ApiRefused:
            return True  # it answered (a refusal is an answer: the loop runs)
        except NoEngine:
            return False
        return True

    def _halt(self, run: str) -> None:
        """The engine judged hung answers again: halted at once, so it cannot trade against the flatten."""
        try:
            result = self._client().post("/halt", actor=self.actor, reason=(
                f"watchdog: the engine (run {run}) was hung for {self.cfg.hung_seconds:g} s and the emergency "
                "response ran"))
        except (NoEngine, ApiRefused) as exc:
            self.out(f"watchdog: the engine (run {run}) answers again but the halt failed: {exc}; trying again")
            return
        self.halt_pending.discard(run)
        self.out(f"watchdog: the engine (run {run}) answers again: {result.get('message', 'halted')}")
