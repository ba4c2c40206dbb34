"""The halt-on-start latch, ``halt-on-start.json`` in the state dir: "the next engine to start
comes up halted", left by an emergency response.

Written by whoever ran the emergency flatten while no engine ran: the process watchdog
(cockpit/watchdog/, before its flatten, so a watchdog that dies half-way still leaves it) and
`cockpit flatten --all --direct` (systemd's cockpit-emergency.service, or the operator). The
next engine to start reads it, starts halted with that actor as the halt's (`cockpit resume`
trades again), and removes it once the halt is committed to the store (a halt persists, so
later starts stay halted without it). Every side touches it only while holding the state lock
(the one exception: the watchdog answering a hung engine, which holds the lock and reads the
latch only at its next start).

The watchdog leaves it too, without the flatten, for a run that went down with the machine (a
power cut, a reboot: cockpit/watchdog/reboot.py).

Docker's restart policy brings the engine back at once and systemd's emergency unit leaves it
stopped until the operator starts it; either way the start after an emergency is halted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cockpit.state_files import read_json, remove, write_json

LATCH_FILE = "halt-on-start.json"


@dataclass(frozen=True, slots=True)
class HaltLatch:
    run: str  # the run that died
    actor: str  # who asks for the halt: the watchdog
    reason: str
    at: str


def write_latch(state_dir: Path, latch: HaltLatch) -> None:
    write_json(Path(state_dir) / LATCH_FILE, asdict(latch))


def read_latch(state_dir: Path) -> HaltLatch | None:
    data = read_json(Path(state_dir) / LATCH_FILE)
    if data is None:
        return None
    try:
        return HaltLatch(run=str(data["run"]), actor=str(data["actor"])[:200], reason=str(data["reason"])[:400],
                         at=str(data["at"]))
    except (KeyError, TypeError):
        return None


def clear_latch(state_dir: Path) -> None:
    remove(Path(state_dir) / LATCH_FILE)


def latch_next_start(state_dir: Path, actor: str, reason: str) -> str:
    """From a command that is not the engine (the direct flatten): the latch, under the state lock.
    One line saying what happened (an engine holding the state dir is left alone)."""
    from cockpit.state_lock import StateDirBusy, StateLock

    try:
        with StateLock(state_dir):
            write_latch(state_dir, HaltLatch(run="", actor=actor, reason=reason[:400],
                                             at=datetime.now(UTC).isoformat(timespec="seconds")))
    except StateDirBusy:
        return "next start: not latched: an engine holds the state dir (alive but hung?); halt it when it answers"
    except OSError as exc:
        return f"next start: not latched: {exc}"
    return "next start: HALTED (the engine comes up reconciled but halted; `cockpit resume` trades again)"

