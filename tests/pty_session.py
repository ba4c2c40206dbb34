"""`cockpit` in a real pseudo-terminal, the way a trader runs it over ssh.

Used by the end-to-end TUI tests and by bench/tui_first_paint.py. The child gets a pty of
a given size as its controlling terminal; we type into the master side and read what the
app painted (escape sequences included).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07]*\x07")


class PtySession:
    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], size: tuple[int, int] = (160, 50)) -> None:
        self.started = time.perf_counter()
        master, slave = pty.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**env, "TERM": env.get("TERM", "xterm-256color"), "COLUMNS": str(cols), "LINES": str(rows)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cockpit", *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.raw = bytearray()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.raw.extend(chunk)
        return bool(chunk)

    @property
    def text(self) -> str:
        """What was painted, escape sequences removed (good enough to find words)."""
        return _ESCAPES.sub(b"", bytes(self.raw)).decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Read until ``pattern`` (a regex) shows on screen; fail with the screen if it never does."""
        deadline = time.monotonic() + timeout
        start = len(self.raw)
        while time.monotonic() < deadline:
            match = re.search(pattern, _ESCAPES.sub(b"", bytes(self.raw[start:])).decode("utf-8", "replace"))
            if match:
                return match
            if not self._read(0.05) and self.proc.poll() is not None:
                break
        raise AssertionError(f"{pattern!r} never appeared; exit={self.proc.poll()}; screen tail:\n{self.text[-3000:]}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        while self._read(0.01):  # drain what the app wrote on its way out
            pass
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
