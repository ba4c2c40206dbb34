"""The dead-man switch: trading stops when nobody confirms presence.

Wall-clock time, not market time: a replay at 86,400x still asks a human every N real
seconds. The deadline is ``interval_seconds`` after the last confirmation; the last
``grace_seconds`` before it are the warning window (the cockpit shows a modal). A miss
runs the configured action once and stays "missed" until the operator confirms again.
While disarmed (engine not trading, or the switch disabled) nothing counts down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.common.clock import Clock, TimerHandle
from core.config import DeadmanConfig

log = logging.getLogger("cockpit.deadman")


class DeadmanPhase(StrEnum):
    OFF = "off"  # disabled in the config
    DISARMED = "disarmed"  # enabled, but the engine is not trading
    ARMED = "armed"  # counting down
    WARNING = "warning"  # inside the grace window: confirm now
    MISSED = "missed"  # the action ran; confirm to re-arm


@dataclass(frozen=True, slots=True)
class DeadmanView:
    phase: DeadmanPhase
    seconds_left: float | None
    action: str
    interval_seconds: int

    @property
    def armed(self) -> bool:
        return self.phase in (DeadmanPhase.ARMED, DeadmanPhase.WARNING)


class DeadMan:
    """Counts down on ``wall``; calls ``on_warning`` entering the grace window, ``on_miss`` at 0."""

    def __init__(
        self,
        cfg: DeadmanConfig,
        wall: Clock,
        *,
        on_event: Callable[[str, dict[str, object]], None],
        on_miss: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.wall = wall
        self._on_event = on_event  # (kind, detail): audited and logged by the engine
        self._on_miss = on_miss  # runs the action named in the config
        self.phase = DeadmanPhase.DISARMED if cfg.enabled else DeadmanPhase.OFF
        self.deadline: datetime | None = None
        self._timers: list[TimerHandle] = []

    def view(self) -> DeadmanView:
        left = None
        if self.deadline is not None and self.phase in (DeadmanPhase.ARMED, DeadmanPhase.WARNING):
            left = max(0.0, (self.deadline - self.wall.now()).total_seconds())
        return DeadmanView(self.phase, left, self.cfg.action, self.cfg.interval_seconds)

    def arm(self) -> None:
        """The engine started trading: start counting from now."""
        if self.phase is not DeadmanPhase.DISARMED:
            return
        self._start("armed")

    def disarm(self, reason: str) -> None:
        if self.phase in (DeadmanPhase.OFF, DeadmanPhase.DISARMED):
            return
        self._cancel_timers()
        self.phase, self.deadline = DeadmanPhase.DISARMED, None
        self._on_event("deadman.disarmed", {"reason": reason})

    def confirm(self, actor: str) -> DeadmanView:
        """Presence confirmed: the countdown restarts (a missed switch re-arms)."""
        if self.phase in (DeadmanPhase.OFF, DeadmanPhase.DISARMED):
            self._on_event("deadman.confirmed", {"actor": actor, "phase": str(self.phase)})
            return self.view()
        self._start("confirmed", actor=actor)
        return self.view()

    def _start(self, kind: str, **detail: object) -> None:
        self._cancel_timers()
        now = self.wall.now()
        self.phase = DeadmanPhase.ARMED
        self.deadline = now + timedelta(seconds=self.cfg.interval_seconds)
        warn_at = self.deadline - timedelta(seconds=self.cfg.grace_seconds)
        self._timers = [self.wall.call_at(warn_at, self._warn), self.wall.call_at(self.deadline, self._miss)]
        self._on_event(f"deadman.{kind}", {**detail, "deadline": self.deadline.isoformat()})

    def _warn(self) -> None:
        if self.phase is DeadmanPhase.ARMED:
            self.phase = DeadmanPhase.WARNING
            self._on_event("deadman.warning", {"seconds_left": self.cfg.grace_seconds})

    def _miss(self) -> None:
        if self.phase not in (DeadmanPhase.ARMED, DeadmanPhase.WARNING):
            return
        self._timers = []
        self.phase, self.deadline = DeadmanPhase.MISSED, None
        self._on_event("deadman.missed", {"action": self.cfg.action})
        log.critical("dead-man switch missed: nobody confirmed presence in %ds; running %s",
                     self.cfg.interval_seconds, self.cfg.action)
        self._on_miss(self.cfg.action)

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []
