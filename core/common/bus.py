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

    def subscribe(self, event_type: type[E], handler: Callable[[E], None], *, critical: bool = True) -> None:
        """``critical`` subscribers (the store, the audit trail, the engine's own) raise into the
        publisher: their failure must stop the engine rather than let state drift. A subscriber
        that only shows or sends (a pane, a sink) subscribes with ``critical=False``: what it
        raises is logged, and neither the engine nor the other subscribers notice."""
        if not critical:
            inner = handler

            def guarded(event: E) -> None:
                try:
                    inner(event)
                except Exception:
                    log.exception("subscriber %r failed on %s (ignored)", inner, type(event).__name__)

            handler = guarded
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
