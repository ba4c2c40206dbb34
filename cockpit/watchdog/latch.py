"""The halt-on-start latch, ``halt-on-start.json`` in the state dir.

The watchdog writes it when it responds to a run that died or hung (before its emergency
flatten, so a watchdog that dies half-way still leaves it); the next engine to start reads it,
starts halted with the watchdog as the halt's actor (``cockpit resume`` trades again), and
removes it once that halt is committed to the store (a halt persists, so later starts stay
halted without it). Both sides touch it only while holding the state lock.

It is docker's answer to systemd's ``Conflicts=``: there the emergency unit stops the engine
for good; here the restart policy brings the engine back at once, so it comes back halted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
