"""Log lines written when the event loop's current step ends, not in the middle of it.

A log line through the cockpit's handlers costs 30-80 us on a small VM (a record, a format for
the rotation check and one for the write, two ``stat`` calls, a write and a flush): two of them
on the order path (the order, the fill before it) were most of a tick's budget. The OMS notes
its INFO lines here instead; they are written, in the order noted, by a callback scheduled for
right after the step that made them, so the order reaches the broker first and the log still
says everything, a few microseconds later. Warnings and errors are written at once, after the
lines noted before them (the file keeps the order things happened in). Without a running loop
(a script, a synchronous test) every line is written at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any


class StepLog:
    """``info`` notes a line for the end of the loop step; ``warning``/``error`` write at once."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._lines: list[tuple[str, tuple[Any, ...]]] = []

    def info(self, msg: str, *args: Any) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self._lines.append((msg, args))
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: nothing to wait for
                self.flush()

    def warning(self, msg: str, *args: Any) -> None:
        self.flush()
        self.logger.warning(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.flush()
        self.logger.error(msg, *args)

    def flush(self) -> None:
        """Write the lines noted so far (idempotent: the scheduled call finds none left)."""
        lines, self._lines = self._lines, []
        for msg, args in lines:
            self.logger.info(msg, *args)
