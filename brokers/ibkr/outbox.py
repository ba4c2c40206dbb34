"""Reports to the engine, in the gateway's order, each execution once with its final commission.

An execution is held until its commission report arrives (the OMS dedupes on exec_id, so
a fill reported early could never get its commission later). Reports of the same order
queued behind a held execution wait for it, so that the engine never sees "cancelled"
before the partial fill that preceded it; other orders' reports are not held up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.execution.broker import Report


@dataclass(slots=True)
class _Item:
    client_order_id: str
    report: Report | None  # None: an execution waiting for its commission
    key: str = ""


class Outbox:
    def __init__(self, emit: Callable[[Report], None]) -> None:
        self._emit = emit
        self._items: list[_Item] = []
        self._held: dict[str, _Item] = {}
        self._flushing = False

    @property
    def held(self) -> list[str]:
        """Keys (exec ids) of executions still waiting for their commission."""
        return list(self._held)

    def undelivered(self) -> list[Report | None]:
        """Reports not yet handed to the engine (None: an execution still waiting)."""
        return [item.report for item in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def put(self, client_order_id: str, report: Report) -> None:
        self._items.append(_Item(client_order_id, report))
        self.flush()

    def hold(self, key: str, client_order_id: str) -> None:
        """Reserve the place of a report that is not complete yet (``complete`` fills it in)."""
        item = _Item(client_order_id, None, key)
        self._held[key] = item
        self._items.append(item)

    def complete(self, key: str, report: Report) -> None:
        item = self._held.pop(key)
        item.report = report
        self.flush()

    def flush(self) -> None:
        if self._flushing:
            return  # an emit led to a put: the running flush picks it up
        self._flushing = True
        try:
            while self._emit_next():
                pass
        finally:
            self._flushing = False

    def _emit_next(self) -> bool:
        blocked: set[str] = set()
        for i, item in enumerate(self._items):
            if item.report is None:
                blocked.add(item.client_order_id)
            elif item.client_order_id not in blocked:
                del self._items[i]
                self._emit(item.report)
                return True
        return False
