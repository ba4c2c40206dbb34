"""The watchdog's own file, ``watchdog.json`` in the state dir: its heartbeat and what it did.

Written only by the watchdog (one writer), every poll. Read by ``cockpit preflight`` (a fresh
heartbeat is a process watchdog in force, as systemd's is), by ``cockpit watchdog --check``
(the container's health check), and by an engine that starts: while the watchdog is ``acting``
on a run (an emergency flatten, holding the state lock) or has not yet handled a run that died,
the engine waits for it instead of trading against it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cockpit.state_files import read_json, write_json

STATUS_FILE = "watchdog.json"
KEEP_HANDLED = 20  # the last runs it handled (each run is handled once)


@dataclass(frozen=True, slots=True)
class Handled:
    run: str
    verdict: str  # "died", "hung" or "rebooted"
    at: str
    outcome: str  # one line: what the response did


@dataclass(frozen=True, slots=True)
class WatchdogStatus:
    pid: int
    host: str
    actor: str
    started_at: str
    at: str  # the last heartbeat (UTC)
    stale_after: float  # seconds: a heartbeat older than this means the watchdog is not running
    beats: int = 0
    acting: str | None = None  # the run it is responding to right now
    handled: tuple[Handled, ...] = field(default_factory=tuple)

    def age(self, now: datetime) -> float:
        try:
            at = datetime.fromisoformat(self.at)
        except ValueError:
            return float("inf")
        return (now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds()

    def alive(self, now: datetime) -> bool:
        return -self.stale_after <= self.age(now) <= self.stale_after

    def has_handled(self, run: str) -> bool:
        return any(h.run == run for h in self.handled)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "actor": self.actor, "started_at": self.started_at, "at": self.at,
                "stale_after": self.stale_after, "beats": self.beats, "acting": self.acting,
                "handled": [{"run": h.run, "verdict": h.verdict, "at": h.at, "outcome": h.outcome}
                            for h in self.handled]}


def read_status(state_dir: Path) -> WatchdogStatus | None:
    data = read_json(Path(state_dir) / STATUS_FILE)
    if data is None:
        return None
    try:
        handled = tuple(Handled(str(h["run"]), str(h["verdict"]), str(h["at"]), str(h.get("outcome", "")))
                        for h in data.get("handled", []))
        return WatchdogStatus(pid=int(data["pid"]), host=str(data["host"]), actor=str(data["actor"]),
                              started_at=str(data["started_at"]), at=str(data["at"]),
                              stale_after=float(data["stale_after"]), beats=int(data.get("beats", 0)),
                              acting=data.get("acting"), handled=handled)
    except (KeyError, TypeError, ValueError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StatusFile:
    """The watchdog's writer. A write that fails (a full disk) is reported, never raised: the
    watchdog goes on watching (and flattening) without its file."""

    def __init__(self, state_dir: Path, actor: str, stale_after: float) -> None:
        self.path = Path(state_dir) / STATUS_FILE
        previous = read_status(state_dir)
        now = _now()
        self.status = WatchdogStatus(pid=os.getpid(), host=socket.gethostname()[:100], actor=actor, started_at=now,
                                     at=now, stale_after=stale_after,
                                     handled=previous.handled if previous is not None else ())
        self.error: str | None = None

    def _write(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)
        try:
            write_json(self.path, self.status.as_dict())
            self.error = None
        except OSError as exc:
            self.error = f"cannot write {self.path}: {exc.strerror or exc}"

    def beat(self) -> None:
        self._write(at=_now(), beats=self.status.beats + 1)

    def acting(self, run: str | None) -> None:
        self._write(at=_now(), acting=run)

    def handled(self, run: str, verdict: str, outcome: str) -> None:
        done = (*self.status.handled, Handled(run, verdict, _now(), outcome[:300]))[-KEEP_HANDLED:]
        self._write(at=_now(), acting=None, handled=done)
