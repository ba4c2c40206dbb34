"""The cockpit's alerts pane as an alert sink: alerts land in a bounded buffer that the pane
draws from at its own pace (4 Hz), so the router never waits for the screen.

No Textual here: the buffer is plain data, the pane (``cockpit/tui/widgets/alerts_pane.py``)
reads it. Besides the router's alerts, the app may ``note`` its own state (the engine failed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from core.alerts.model import Alert, Severity
from core.alerts.policy import line
from core.alerts.router import UNDELIVERED_KIND


@dataclass(frozen=True, slots=True)
class PaneLine:
    created: float  # wall time
    severity: Severity  # a resolution keeps its alarm's, so the level filter shows both
    kind: str
    message: str
    resolved: bool = False


class AlertBuffer:
    """The newest ``capacity`` lines, and how many alerts could not be delivered so far."""

    def __init__(self, capacity: int = 1000) -> None:
        self.items: deque[PaneLine] = deque(maxlen=capacity)
        self.version = 0
        self._noticed = 0  # the count the router's latest notice carried
        self.counter: Callable[[], int] | None = None  # the router's live count, when the app wires it

    @property
    def undelivered(self) -> int:
        """Alerts never delivered (earlier runs included): live from the router when wired,
        else as its latest notice said (notices are digested, so that may lag)."""
        return self.counter() if self.counter is not None else self._noticed

    def add(self, alert: Alert) -> None:
        if alert.kind == UNDELIVERED_KIND:
            try:
                self._noticed = max(self._noticed, int(dict(alert.fields).get("undelivered", "0")))
            except ValueError:
                pass
        self.items.append(PaneLine(time.time(), alert.severity, alert.kind, line(alert), alert.resolved))
        self.version += 1

    def note(self, severity: Severity, kind: str, message: str) -> None:
        """A line of the cockpit's own (not an engine event): the engine failed, the replay ended."""
        self.items.append(PaneLine(time.time(), severity, kind, message))
        self.version += 1


class TuiSink:
    """Delivery is appending to the buffer: it never fails and never waits."""

    name = "tui"
    immediate = True  # the lane hands alerts over at once

    def __init__(self, buffer: AlertBuffer) -> None:
        self.buffer = buffer

    async def send(self, alert: Alert) -> None:
        self.buffer.add(alert)

    async def close(self) -> None:
        """The pane outlives the engine's stop: nothing to close."""
