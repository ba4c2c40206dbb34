"""The adapter's counters: for the status line, the logs and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    """Figures for the status line, the logs and the tests."""

    connects: int = 0
    reconnect_seconds: list[float] = field(default_factory=list)  # socket lost -> synced again
    pacing_errors: int = 0
    resubscriptions: int = 0
    unknown_after_sync: int = 0
    duplicate_id_retries: int = 0
    commission_timeouts: int = 0
