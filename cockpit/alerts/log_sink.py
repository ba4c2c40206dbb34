"""The log as an alert sink: one line per alert (digests and resolutions included) at the
alert's severity (a resolution at most WARNING), on the ``cockpit.alert`` logger (the log
file; stderr when headless)."""

from __future__ import annotations

import logging

from core.alerts.model import Alert, Severity
from core.alerts.policy import line

LOGGER = "cockpit.alert"
LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR,
          Severity.CRITICAL: logging.CRITICAL}


class LogSink:
    name = "log"
    immediate = True  # a log call: nothing to wait for

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER)

    async def send(self, alert: Alert) -> None:
        level = LEVELS.get(alert.severity, logging.WARNING)
        if alert.resolved:  # good news: at most a warning (still shown where the alarm was)
            level = min(level, logging.WARNING)
        if not self.logger.isEnabledFor(level):
            return  # the log would drop it: no line to word
        self.logger.log(level, "[%s] %s%s", alert.kind, "RESOLVED " if alert.resolved else "", line(alert))

    async def close(self) -> None:
        """Nothing to close: the log's handlers belong to the process."""
