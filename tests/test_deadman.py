"""The dead-man switch on a simulated wall clock: warning, miss, confirm, disarm; and the
engine's actions on a miss. No sleeping: the clock is moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.common.clock import SimClock
from core.config import DeadmanConfig
from core.control.deadman import DeadMan, DeadmanPhase

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


def make(action: str = "cancel_and_reduce", enabled: bool = True):
    wall = SimClock(T0)
    events: list[str] = []
    misses: list[str] = []
    dm = DeadMan(DeadmanConfig(enabled=enabled, interval_seconds=300, grace_seconds=30, action=action), wall,
                 on_event=lambda kind, detail: events.append(kind), on_miss=misses.append)
    return dm, wall, events, misses


def test_counts_down_warns_in_grace_and_misses_once() -> None:
    dm, wall, events, misses = make()
    assert dm.view().phase is DeadmanPhase.DISARMED and dm.view().seconds_left is None
    dm.arm()
    assert dm.view().armed and dm.view().seconds_left == 300
    wall.advance(timedelta(seconds=269))
    assert dm.view().phase is DeadmanPhase.ARMED and dm.view().seconds_left == 31
    wall.advance(timedelta(seconds=1))
    assert dm.view().phase is DeadmanPhase.WARNING and dm.view().seconds_left == 30
    assert misses == []
    wall.advance(timedelta(seconds=30))
    assert dm.view().phase is DeadmanPhase.MISSED and misses == ["cancel_and_reduce"]
    wall.advance(timedelta(hours=1))
    assert misses == ["cancel_and_reduce"]  # once; it stays missed until someone confirms
    assert events == ["deadman.armed", "deadman.warning", "deadman.missed"]


def test_confirm_restarts_the_countdown_and_rearms_after_a_miss() -> None:
    dm, wall, events, misses = make()
    dm.arm()
    wall.advance(timedelta(seconds=290))
    assert dm.view().phase is DeadmanPhase.WARNING
    dm.confirm("tui:alice")
    assert dm.view().phase is DeadmanPhase.ARMED and dm.view().seconds_left == 300
    wall.advance(timedelta(seconds=299))
    assert misses == []  # the old deadline's timers were cancelled
    wall.advance(timedelta(seconds=1))
    assert misses == ["cancel_and_reduce"]
    dm.confirm("cli:bob")
    assert dm.view().phase is DeadmanPhase.ARMED
    wall.advance(timedelta(seconds=300))
    assert len(misses) == 2


def test_disarmed_or_disabled_never_fires() -> None:
    dm, wall, events, misses = make()
    dm.arm()
    dm.disarm("engine stopped")
    wall.advance(timedelta(hours=2))
    assert misses == [] and dm.view().phase is DeadmanPhase.DISARMED
    off, wall2, _, misses2 = make(enabled=False)
    off.arm()
    wall2.advance(timedelta(hours=2))
    assert misses2 == [] and off.view().phase is DeadmanPhase.OFF and not off.view().armed


def test_grace_must_fit_inside_the_interval() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="grace_seconds 300 must be less than interval_seconds 300"):
        DeadmanConfig(interval_seconds=300, grace_seconds=300)
