"""The engine's run record, ``engine.run`` in the state dir: how the last run went.

Written only by the engine process, while it holds the state lock (one writer): ``starting``
when it takes the state dir, ``running`` once it trades, ``stopping`` when its stop begins (its
control socket closes first: a long shutdown is not a hang), ``stopped`` when its shutdown is done,
with ``clean`` true for a stop it was asked for (SIGTERM, ``q``, the replay's end) and false
for a run that failed. A run killed (SIGKILL, OOM, a power cut) stays ``running``: that is what
the process watchdog (``cockpit watchdog``) reads as an unclean death (or, from another boot,
one that went down with the machine); so does one killed while
``stopping`` (a stop that outlasted docker's stop_grace_period). A clean stop is the record
``stopped``/``clean``; nothing else is.

Each record keeps the machine's boot id (``/proc/sys/kernel/random/boot_id``, the host's inside
a container too), so the watchdog can tell a run that died with the machine (a power cut, a
reboot: not an engine crash) from one that died on this boot; None where it cannot be read.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cockpit.state_files import read_json, write_json

RUN_FILE = "engine.run"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # read only, never written
STARTING, RUNNING, STOPPING, STOPPED = "starting", "running", "stopping", "stopped"


@dataclass(frozen=True, slots=True)
class RunRecord:
    run: str  # this run's id (random): the watchdog handles each run once
    pid: int
    host: str
    started_at: str
    state: str = STARTING
    trading_since: str | None = None  # set once the engine trades: a run that never traded needs no flatten
    stopped_at: str | None = None
    clean: bool | None = None
    reason: str = ""
    boot_id: str | None = None  # the machine's boot this run started in (None: unknown)

    @property
    def traded(self) -> bool:
        return self.trading_since is not None

    @property
    def clean_stop(self) -> bool:
        return self.state == STOPPED and self.clean is True

    @property
    def died_trading(self) -> bool:
        """It traded and has no clean stop recorded: killed, crashed, or it failed."""
        return self.traded and not self.clean_stop

    def other_boot(self, boot_id: str | None) -> bool:
        """This run started in another boot of the machine than ``boot_id`` (both known): it
        ended with the machine, not by itself."""
        return self.boot_id is not None and boot_id is not None and self.boot_id != boot_id

    def name(self) -> str:
        """``the engine (pid 7, run 3fa2c1)``: how alerts and logs name this run."""
        return f"the engine (pid {self.pid}, run {self.run})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_run(state_dir: Path) -> RunRecord | None:
    """The last run's record, or None (no engine ran here yet, or the file is not ours)."""
    data = read_json(Path(state_dir) / RUN_FILE)
    if data is None:
        return None
    try:
        record = RunRecord(run=str(data["run"]), pid=int(data["pid"]), host=str(data["host"]),
                           started_at=str(data["started_at"]), state=str(data.get("state", STARTING)),
                           trading_since=data.get("trading_since"), stopped_at=data.get("stopped_at"),
                           clean=data.get("clean"), reason=str(data.get("reason", "")),
                           boot_id=_boot_text(data.get("boot_id")))
    except (KeyError, TypeError, ValueError):
        return None
    if record.state not in (STARTING, RUNNING, STOPPING, STOPPED):
        return None
    return record


def _boot_text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text[:64] or None


def current_boot_id(path: Path = BOOT_ID) -> str | None:
    """This boot's id (a random UUID the kernel makes at each boot), or None where unreadable
    (not Linux, a sandbox hiding /proc): then nobody can tell a reboot from a crash."""
    try:
        return _boot_text(path.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunFile:
    """The writer: one per engine run, used while the state lock is held."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / RUN_FILE
        self.record = RunRecord(run=secrets.token_hex(6), pid=os.getpid(), host=socket.gethostname()[:100],
                                started_at=_now(), boot_id=current_boot_id())

    def _write(self, **changes: Any) -> None:
        self.record = replace(self.record, **changes)
        write_json(self.path, self.record.as_dict())

    def starting(self) -> None:
        self._write()

    def running(self) -> None:
        self._write(state=RUNNING, trading_since=_now())

    def stopping(self) -> None:
        self._write(state=STOPPING)

    def stopped(self, *, clean: bool, reason: str) -> None:
        self._write(state=STOPPED, stopped_at=_now(), clean=clean, reason=reason[:300])
