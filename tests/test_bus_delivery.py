"""How the bus hands an event to its subscribers: a non-critical one's error is logged and the
others still get the event (no wrapper per subscriber: ``Bus.forgives``), a critical one's error
reaches the publisher, and an event held with ``hold_new`` is made when it is handed out, in
its place among the held ones (core/common/bus.py)."""

from __future__ import annotations

import logging

import pytest

from core.common.bus import Bus


class Ev:
    def __init__(self, n: int) -> None:
        self.n = n


def test_a_non_critical_subscriber_that_raises_is_logged_and_the_next_ones_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = Bus(), []

    def pane(e: Ev) -> None:
        raise ValueError("pane broke")

    bus.subscribe(Ev, lambda e: seen.append(("first", e.n)))
    bus.subscribe(Ev, pane, critical=False)
    bus.subscribe(Ev, lambda e: seen.append(("last", e.n)))
    with caplog.at_level(logging.ERROR, logger="cockpit.bus"):
        bus.publish(Ev(1))
        bus.hold(Ev(2))
        bus.release()
    assert seen == [("first", 1), ("last", 1), ("first", 2), ("last", 2)]
    assert [r.getMessage().endswith("failed on Ev (ignored)") for r in caplog.records] == [True, True]
    assert "pane broke" in caplog.text


def test_a_critical_subscriber_that_raises_stops_the_publisher() -> None:
    bus, seen = Bus(), []

    def store(e: Ev) -> None:
        raise RuntimeError("disk full")

    bus.subscribe(Ev, store)
    bus.subscribe(Ev, lambda e: seen.append(e.n), critical=False)
    with pytest.raises(RuntimeError, match="disk full"):
        bus.publish(Ev(1))
    assert seen == []
    handler = bus.handlers(Ev)[0]
    try:
        handler(Ev(2))
    except RuntimeError:
        assert not bus.forgives(handler, Ev(2))  # a hot path calling the list itself raises it too


def test_a_non_critical_subscriber_can_be_unsubscribed() -> None:
    bus, seen = Bus(), []

    def pane(e: Ev) -> None:
        seen.append(e.n)

    bus.subscribe(Ev, pane, critical=False)
    bus.publish(Ev(1))
    bus.unsubscribe(Ev, pane)
    bus.publish(Ev(2))
    assert seen == [1]
    assert not bus.forgives(pane, Ev(3))


def test_an_event_held_with_hold_new_is_made_at_the_release_in_its_place() -> None:
    bus, seen, made = Bus(), [], []

    def make(n: int, *, tag: str) -> Ev:
        made.append(n)
        e = Ev(n)
        e.tag = tag  # type: ignore[attr-defined]
        return e

    bus.subscribe(Ev, lambda e: seen.append((e.n, getattr(e, "tag", None))))
    bus.hold(Ev(1))
    bus.hold_new(make, 2, tag="new")
    bus.hold(Ev(3))
    assert made == [] and bus.holding
    bus.publish(Ev(4))
    assert made == [2]
    assert seen == [(1, None), (2, "new"), (3, None), (4, None)]
