"""The alerts pane's buffer: the engine's events (through core.control.alert_text) and its own
error log records become alerts, in a bounded buffer the UI drains at its own pace. Library log
lines (ib_async's retries) are not alerts: the handler is attached to the cockpit's loggers
only, for errors."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

from core.common.bus import Bus
from core.control.alert_text import EVENT_TYPES, describe


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
        except Exception:
            message = str(record.msg)
        self.items.append(Alert(record.created, record.levelno, record.name, message))
        self.version += 1

    def follow(self, bus: Bus) -> None:
        """Subscribe to the engine's events: each one worth an alert becomes a line."""
        for event_type in EVENT_TYPES:
            bus.subscribe(event_type, self.on_event, critical=False)

    def on_event(self, event: object) -> None:
        described = describe(event)
        if described is None:
            return
        level, source, message = described
        self.items.append(Alert(time.time(), level, source, message))
        self.version += 1
