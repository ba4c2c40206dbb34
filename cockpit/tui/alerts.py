"""Engine log records become alerts: a bounded buffer the UI drains at its own pace."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Alert:
    created: float
    level: int
    source: str
    message: str


class AlertBuffer(logging.Handler):
    """Keeps the newest ``capacity`` records at or above ``level``; never blocks the engine."""

    def __init__(self, capacity: int = 1000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.items: deque[Alert] = deque(maxlen=capacity)
        self.version = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not take the engine down
            message = str(record.msg)
        self.items.append(Alert(record.created, record.levelno, record.name, message))
        self.version += 1
