"""One engine per state dir: an exclusive lock file, released by the kernel if we die.

The process watchdog (cockpit/watchdog/) looks at the lock with a shared, non-blocking probe
(``Probe``): it never blocks an engine, and an exclusive taker retries for ``LOCK_GRACE``
seconds, so a probe that happens to overlap a start (it lasts microseconds) is not a busy
state dir. When the probe finds the lock free and the last run died, the watchdog takes it
exclusively (``Probe.take``) for its emergency response: no engine starts meanwhile.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = "engine.lock"
LOCK_GRACE = 0.25  # seconds an exclusive taker retries a busy lock before calling it busy


class StateDirBusy(Exception):
    """Another engine holds the state dir."""


def _try(fd: int, how: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # another process's lock: polled, it has no timer of ours


class StateLock:
    def __init__(self, state_dir: Path, wait_seconds: float = LOCK_GRACE) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try(fd, fcntl.LOCK_EX, self.wait_seconds):
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateDirBusy(
                f"another cockpit engine (pid {holder}) is running on {self.path.parent}: "
                "stop it first, or use another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_locked(state_dir: Path) -> bool:
    """True while an engine runs on ``state_dir``."""
    path = Path(state_dir) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class Probe:
    """A shared look at the lock (``free``), upgradable to the exclusive lock (``take``).

    ``with Probe(state_dir) as probe:`` then ``probe.free`` is False while an engine holds the
    state dir (or no engine ever ran there: no lock file). Closing the probe releases whatever
    it holds.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None
        self.free = False
        self.taken = False

    def __enter__(self) -> Probe:
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            self.free = True
        except BlockingIOError:
            pass
        return self

    def take(self) -> bool:
        """Upgrade to the exclusive lock, without waiting; False if an engine took it meanwhile
        (the upgrade may let go of the shared lock first: re-read what you read before)."""
        if not self.free or self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.free = False
            return False
        self.taken = True
        return True

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
