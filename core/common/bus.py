"""A synchronous in-process event bus: handlers run in subscription order, on the engine loop.

Synchronous on purpose: every state change happens on one loop in the order events
arrived, and a quote costs a few dict look-ups rather than a task switch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("cockpit.bus")

E = TypeVar("E")


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers[event_type].append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.get(event_type)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def handlers(self, event_type: type) -> list[Callable[[Any], None]]:
        """The live handler list for ``event_type`` (hot paths may hold on to it)."""
        return self._handlers[event_type]

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            handler(event)
