"""Tells a full disk apart from other write failures, so the operator reads the cause.

SQLite reports ENOSPC as SQLITE_FULL ("database or disk is full"); the OS as OSError
ENOSPC (or EDQUOT for a quota). Either way the fix is the same: free space, restart.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

_SQLITE_FULL = 13
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(Exception):
    """A write failed because the state dir's disk is full."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        super().__init__(f"disk full: {free_mb(state_dir):.1f} MB free in {state_dir}: "
                         "everything up to the last commit is kept; free some space and start again to resume")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, sqlite3.Error) and (
                getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL
                or "database or disk is full" in str(current)):
            return True
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False


def free_mb(path: Path) -> float:
    """Free space where ``path`` lives, in MB (0 when it cannot be read)."""
    try:
        return shutil.disk_usage(path).free / 1e6
    except OSError:
        return 0.0
