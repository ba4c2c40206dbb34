"""What the watchdog makes of what it sees (pure: no files, no sockets, no clock of its own).

- The state lock is free and the last run traded without a clean stop, and was not handled
  yet: it DIED (SIGKILL, OOM, a crash, a failed run, a stop that took too long and was killed).
- The lock is held, the run record says running, and the control socket has not answered for
  ``hung_seconds``: it is HUNG. A run that is ``stopping`` is never hung (its socket is closed
  on purpose); if its stop outlasts the stop timeout it is killed, and then it DIED.
- The lock is free and such a run started in another boot of the machine (its run record's
  boot id is not this boot's): it went down with the machine (a power cut, a reboot): REBOOTED,
  not DIED. No flatten (systemd's OnFailure= never fires on a reboot either); the next start is
  halted and an alert says so. Either boot id unknown: DIED, as before.
A clean stop (SIGTERM, ``q``, the replay's end) is none of these; nor is a run that never traded (a
refused or failed start), nor one already handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.run_record import RUNNING, RunRecord

DIED, HUNG, REBOOTED = "died", "hung", "rebooted"


def on_free_lock(record: RunRecord | None, handled: bool, boot_id: str | None = None) -> str | None:
    """The lock is free: DIED, REBOOTED (``boot_id``: this boot's, None if unknown), or None
    (nothing to do)."""
    if record is None or handled or not record.died_trading:
        return None
    return REBOOTED if record.other_boot(boot_id) else DIED


@dataclass(slots=True)
class Watch:
    """One running engine as the watchdog follows it: since when, and its last answer (monotonic s)."""

    run: str
    since: float
    last_answer: float | None = None

    def silent_for(self, now: float) -> float:
        return now - (self.last_answer if self.last_answer is not None else self.since)


def follow(watch: Watch | None, record: RunRecord | None) -> Watch | None:
    """The watch for the engine that holds the lock now (a new run starts a new watch), or None
    when there is nothing to judge (no record, or it is not trading yet)."""
    if record is None or record.state != RUNNING:
        return None
    if watch is not None and watch.run == record.run:
        return watch
    return None


def on_held_lock(watch: Watch, now: float, hung_seconds: float, handled: bool) -> str | None:
    """The lock is held by a running engine: HUNG once it has been silent ``hung_seconds``."""
    if handled or hung_seconds <= 0:
        return None
    return HUNG if watch.silent_for(now) >= hung_seconds else None
