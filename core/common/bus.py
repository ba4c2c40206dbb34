"""A synchronous in-process event bus: handlers run in subscription order, on the engine loop.

Synchronous on purpose: every state change happens on one loop in the order events
arrived, and a quote costs a few dict look-ups rather than a task switch.

An event may be held (``hold``) and handed to its subscribers a little later, still in order:
at ``release()``, or before the next event anyone publishes. The order manager holds an order's
first event while the order goes to the broker, so that the order leaves before the
bookkeeping; every subscriber still sees every event in the order they were published. A held
event may also be made only when it is handed out (``hold_new``): the order's own events are
then not even built on its way to the broker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

log = logging.getLogger("cockpit.bus")

E = TypeVar("E")


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._every: dict[type, int] = defaultdict(int)  # subscribers that need every event of a type
        # The non-critical subscribers of each type (a list: a handler need not be hashable).
        self._lenient: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._held: list[object] = []  # published, not yet handed out (``hold``), oldest first
        self._releasing = False

    def subscribe(self, event_type: type[E], handler: Callable[[E], None], *, critical: bool = True,
                  every: bool = True) -> None:
        """``critical`` subscribers (the store, the audit trail, the engine's own) raise into the
        publisher: their failure must stop the engine rather than let state drift. A subscriber
        that only shows or sends (a pane, a sink) subscribes with ``critical=False``: what it
        raises is logged, and neither the engine nor the other subscribers notice.

        ``every=False``: the subscriber can do without the events nobody else observes, such as
        the synthetic quotes of a replay with no order working and no strategy listening (the
        paper venue says itself when it needs them; a tick-time metric only times ticks that
        lead to an order). While every subscriber of a type says so, the engine may leave
        those out (core/kernel/driver.py)."""
        if every:
            self._every[event_type] += 1
        if not critical:  # no wrapper around it: the delivery forgives it (``forgives``), no call more per event
            self._lenient[event_type].append(handler)
        self._handlers[event_type].append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Remove ``handler`` (a subscriber made with ``every=True`` keeps counting as one that
        needs every event: the engine stays on the safe side)."""
        handlers = self._handlers.get(event_type)
        if handlers and handler in handlers:
            handlers.remove(handler)
            lenient = self._lenient.get(event_type)
            if lenient and handler in lenient and handler not in handlers:
                lenient.remove(handler)

    def needs_every(self, event_type: type) -> bool:
        """Whether some subscriber of ``event_type`` needs every event (see ``subscribe``)."""
        return self._every.get(event_type, 0) > 0

    def handlers(self, event_type: type) -> list[Callable[[Any], None]]:
        """The live handler list for ``event_type`` (hot paths may hold on to it). A hot path that
        calls them itself asks ``forgives`` about what one raises, as ``publish`` does."""
        return self._handlers[event_type]

    def forgives(self, handler: Callable[[Any], None], event: object) -> bool:
        """Called with the exception ``handler`` raised on ``event`` in hand: True (and the error
        logged) for a subscriber made with ``critical=False``; False for a critical one, whose
        error the caller raises on."""
        if handler not in self._lenient.get(type(event), ()):
            return False
        log.exception("subscriber %r failed on %s (ignored)", handler, type(event).__name__)
        return True

    def publish(self, event: object) -> None:
        if self._held and not self._releasing:
            self.release()  # what was held comes first
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                if not self.forgives(handler, event):
                    raise

    def hold(self, event: object) -> None:
        """Publish ``event`` at the next ``release()`` or before the next ``publish``, whichever
        comes first: its subscribers see it later, in its place among the others. The holder
        changes nothing an event's subscribers read before it is handed out."""
        self._held.append(event)

    def hold_new(self, make: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
        """``hold(make(*args, **kwargs))``, the event made when it is handed out rather than now
        (a frozen event's field-by-field construction costs microseconds on an order's path).
        The arguments are taken now: values that do not change, or objects the holder leaves
        alone until the release (as ``hold`` asks of the event's own)."""
        self._held.append(partial(make, *args, **kwargs))

    def release(self) -> None:
        """Hand out the held events, oldest first. An event a subscriber publishes meanwhile is
        handed out at once, as it would have been had the held ones been published then."""
        if self._releasing:
            return
        self._releasing = True
        try:
            held = self._held
            while held:
                event = held.pop(0)
                if type(event) is partial:  # held by hold_new: made now (no event is a partial)
                    event = event()
                for handler in self._handlers.get(type(event), ()):
                    try:
                        handler(event)
                    except Exception:
                        if not self.forgives(handler, event):
                            raise
        except BaseException:
            self._held.clear()  # as if what came after the failure had not been published
            raise
        finally:
            self._releasing = False

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def held(self) -> list[object]:
        """The live list of held events, oldest first (a hot path may hold on to it and test its
        truth instead of calling ``holding``); only the bus changes it."""
        return self._held
