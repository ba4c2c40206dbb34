"""Reconnect delays: exponential, capped, with jitter.

Exponential so that a gateway that is down for a while is not hammered; capped so that a
gateway back after a long outage is found within ``max_seconds``; jittered ("equal
jitter": half the step fixed, half random) so that several clients do not retry in step,
while never retrying faster than half the step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    min_seconds: float
    max_seconds: float
    rng: random.Random = field(default_factory=random.Random)

    def step(self, attempt: int) -> float:
        """The un-jittered delay before retry number ``attempt`` (1-based)."""
        exponent = min(max(attempt, 1) - 1, 60)
        return min(self.max_seconds, self.min_seconds * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        """The delay before retry ``attempt``: in [step/2, step]."""
        base = self.step(attempt)
        return base / 2 + self.rng.uniform(0.0, base / 2)
