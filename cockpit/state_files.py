"""Small JSON files in the state dir that two processes share (the engine's run record, the
watchdog's heartbeat, its halt-on-start latch): written whole and atomically (a temp file in
the same folder, fsynced, renamed over the old one), 0600, read tolerantly (a missing or
unreadable file is None, never an exception: the reader decides what that means)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

MAX_BYTES = 64_000  # these files are a few hundred bytes; anything bigger is not ours


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` in one step (a reader sees the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_BYTES:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
