"""The alert router with real parts: a SQLite store, the bus, sinks that fail, refuse, hang or
are slow, on a simulated clock (timeouts, backoff and rate limits never make a test sleep)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cockpit import readers
from core.alerts.model import Alert, Severity
from core.alerts.router import UNDELIVERED_KIND, AlertRouter
from core.alerts.sink import SinkError
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import AlertsConfig
from core.domain.events import EngineError
from core.persistence.store import Store

T0 = datetime(2026, 3, 2, 15, tzinfo=UTC)
EVERYTHING = {"kinds": ["*"], "min_severity": "info"}


class Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[Alert] = []
        self.closed = False

    async def send(self, alert: Alert) -> None:
        self.got.append(alert)

    async def close(self) -> None:
        self.closed = True


class Failing(Recording):
    """Every attempt fails as ``error()`` says (recorded first)."""

    def __init__(self, name: str, error: Callable[[], Exception]) -> None:
        super().__init__(name)
        self.error = error

    async def send(self, alert: Alert) -> None:
        self.got.append(alert)
        raise self.error()


class Hung(Recording):
    """A real hung coroutine: it awaits an event nobody ever sets."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.never = asyncio.Event()

    async def send(self, alert: Alert) -> None:
        self.got.append(alert)
        await self.never.wait()


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


def failed(router: AlertRouter, sink: str, n: int) -> Callable[[], bool]:
    """``n`` attempts of ``sink`` failed (and the lane is waiting on the clock for the next)."""
    return lambda: router.stats.sinks[sink].failed_tries == n


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def store(tmp_path: Path):
    s = Store(tmp_path / "cockpit.sqlite")
    await s.open()
    yield s
    await s.close()


def config(**kw: object) -> AlertsConfig:
    routes = {name: EVERYTHING for name in ("rec", "bad", "hung", "flaky", "slow")}
    values: dict[str, object] = {"routes": routes, "backoff_seconds": 2, "max_tries": 3, "send_timeout_seconds": 10,
                                 "drain_seconds": 0}
    values.update(kw)
    return AlertsConfig.model_validate(values)


async def router_with(store: Store, *sinks: Recording, **kw: object) -> tuple[AlertRouter, Bus, SimClock]:
    bus, clock = Bus(), SimClock(T0)
    router = AlertRouter(config(**kw), bus, store, clock, sinks)
    await router.start()
    return router, bus, clock


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = readers.connect_readonly(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


async def test_a_failing_sink_retries_with_backoff_then_the_alert_is_undelivered_in_the_store(
        store: Store, tmp_path: Path) -> None:
    bad = Failing("bad", lambda: SinkError("HTTP 500 from the far side"))
    rec = Recording("rec")
    router, bus, clock = await router_with(store, bad, rec)
    bus.publish(EngineError("reconcile", "the broker answered nonsense"))
    await until(lambda: failed(router, "bad", 1)() and len(rec.got) == 1, "the first attempts")
    clock.advance(timedelta(seconds=1.9))
    await settle()
    assert len(bad.got) == 1  # backoff 2 s: not yet
    clock.advance(timedelta(seconds=0.1))
    await until(failed(router, "bad", 2), "the second try after 2 s")
    clock.advance(timedelta(seconds=4))  # doubled
    await until(lambda: len(bad.got) == 3, "the third try after 4 more")
    await until(lambda: router.stats.undelivered == 1, "given up after max_tries")
    clock.advance(timedelta(hours=1))
    await settle()
    assert len(bad.got) == 3
    # The other sinks hear that an alert was not delivered (not the failing one itself).
    notices = [a for a in rec.got if a.kind == UNDELIVERED_KIND]
    assert len(notices) == 1 and "not delivered to bad" in notices[0].text
    assert dict(notices[0].fields)["undelivered"] == "1"
    assert all(a.kind != UNDELIVERED_KIND for a in bad.got)
    await router.stop()
    await store.flush()
    shown = readers.alerts(readers.connect_readonly(store.path))
    [lost] = shown["undelivered"]
    assert (lost["kind"], lost["sink"], lost["tries"]) == ("engine.error", "bad", 3)
    assert lost["reason"] == "gave up after 3 tries: HTTP 500 from the far side"
    delivered = {(d["sink"], d["status"]) for a in shown["recent"] for d in a["deliveries"]}
    assert ("rec", "sent") in delivered


async def test_retry_after_is_honoured_and_permanent_is_not_retried(store: Store) -> None:
    limited = Failing("flaky", lambda: SinkError("429", retry_after=7.5))
    refused = Failing("bad", lambda: SinkError("401 unauthorized", permanent=True))
    router, bus, clock = await router_with(store, limited, refused)
    bus.publish(EngineError("x", "y"))
    await until(lambda: failed(router, "flaky", 1)() and router.stats.sinks["bad"].undelivered == 1,
                "first attempts")
    clock.advance(timedelta(seconds=7))
    await settle()
    assert len(limited.got) == 1  # retry_after 7.5 beats the 2 s backoff
    clock.advance(timedelta(seconds=0.5))
    await until(lambda: len(limited.got) == 2, "the retry after retry_after")
    assert len(refused.got) == 1  # permanent: never again
    await router.stop()
    await store.flush()
    [row] = rows(store.path, "SELECT status, tries, reason FROM alert_deliveries WHERE sink = 'bad'")
    assert tuple(row) == ("undelivered", 1, "refused for good: 401 unauthorized")


async def test_a_sink_that_raises_anything_is_a_failed_attempt(store: Store) -> None:
    broken = Failing("bad", lambda: RuntimeError("bug in the sink"))
    router, bus, clock = await router_with(store, broken, max_tries=1)
    bus.publish(EngineError("x", "y"))  # returns: a subscriber that cannot fail the engine
    await until(lambda: router.stats.undelivered == 1, "undelivered")
    assert router.stats.sinks["bad"].last_error == "RuntimeError: bug in the sink"
    await router.stop()


async def test_a_hung_sink_times_out_on_the_clock_and_never_holds_up_another_sink(store: Store) -> None:
    hung, rec = Hung("hung"), Recording("rec")
    router, bus, clock = await router_with(store, hung, rec, max_tries=2)
    for n in range(5):
        bus.publish(EngineError(f"where{n}", "boom"))
    await until(lambda: len(rec.got) == 5, "the other sink got all five at once")
    assert len(hung.got) == 1  # the hung one is still on its first
    clock.advance(timedelta(seconds=10))  # send_timeout_seconds
    await until(failed(router, "hung", 1), "the first try timed out")
    clock.advance(timedelta(seconds=2))  # the backoff
    await until(lambda: len(hung.got) == 2, "the second try")
    clock.advance(timedelta(seconds=10))
    await until(lambda: router.stats.sinks["hung"].undelivered == 1, "the first alert given up on")
    assert router.stats.sinks["hung"].last_error == "no answer within send_timeout_seconds 10"
    await router.stop()  # the four still queued are recorded, not lost
    await store.flush()
    reasons = [r["reason"] for r in rows(store.path, "SELECT reason FROM alert_deliveries WHERE sink = 'hung'"
                                                     " AND status = 'undelivered' ORDER BY rowid")]
    assert reasons[0] == "gave up after 2 tries: no answer within send_timeout_seconds 10"
    assert reasons[1:] == ["the engine stopped before it was sent"] * 4
    assert hung.closed and rec.closed


async def test_a_full_queue_is_counted_and_recorded_never_silently_dropped(store: Store) -> None:
    hung = Hung("hung")
    router, bus, _clock = await router_with(store, hung, queue_size=3)
    started = time.perf_counter()
    for n in range(10):
        bus.publish(EngineError(f"where{n}", "boom"))
    assert time.perf_counter() - started < 0.5  # the bus never waits for a sink
    await until(lambda: len(hung.got) == 1, "the first in flight")
    stats = router.stats  # all ten came before the worker took one: three queued, seven refused
    assert stats.overflow == 7 and stats.sinks["hung"].overflow == 7 and stats.undelivered == 7
    await store.flush()
    full = rows(store.path, "SELECT reason FROM alert_deliveries WHERE status = 'undelivered'")
    assert len(full) == 7 and all(r["reason"] == "queue full (3 waiting for hung)" for r in full)
    assert len(rows(store.path, "SELECT id FROM alerts WHERE kind = 'engine.error'")) == 10
    await router.stop()


async def test_the_rate_limit_holds_sends_back_on_the_clock(store: Store) -> None:
    slow = Recording("slow")
    router, bus, clock = await router_with(store, slow, rate_per_minute={"slow": 6})  # burst 5, then one per 10 s
    for n in range(8):
        bus.publish(EngineError(f"where{n}", "boom"))
    await until(lambda: len(slow.got) == 5, "the burst")
    await settle()
    assert len(slow.got) == 5
    clock.advance(timedelta(seconds=10))
    await until(lambda: len(slow.got) == 6, "one more after 10 s")
    clock.advance(timedelta(seconds=20))
    await until(lambda: len(slow.got) == 8, "the rest")
    await router.stop()


async def test_routes_pick_kinds_and_severity(store: Store) -> None:
    rec, other = Recording("rec"), Recording("slow")
    routes = {"rec": {"kinds": ["engine.*"], "min_severity": "error"},
              "slow": {"kinds": ["fill"], "min_severity": "info"}}
    router, bus, _clock = await router_with(store, rec, other, routes=routes)
    bus.publish(EngineError("x", "y"))
    router.submit(Alert(kind="engine.started", severity=Severity.INFO, title="t", text="t", key="k", at=T0))
    await until(lambda: len(rec.got) == 1, "the error")
    await settle()
    assert [a.kind for a in rec.got] == ["engine.error"] and other.got == []
    await router.stop()


async def test_undelivered_alerts_of_an_earlier_run_are_announced_at_start(store: Store) -> None:
    bad = Failing("bad", lambda: SinkError("down", permanent=True))
    router, bus, _clock = await router_with(store, bad)
    bus.publish(EngineError("x", "y"))
    await until(lambda: router.stats.undelivered == 1, "undelivered")
    await router.stop()
    await store.flush()
    rec = Recording("rec")
    again, _bus, _clock = await router_with(store, rec)
    await until(lambda: len(rec.got) == 1, "the notice")
    assert rec.got[0].kind == UNDELIVERED_KIND and "1 alert(s) of the last 24 h" in rec.got[0].text
    assert again.stats.undelivered_before == 1
    await again.stop()


async def test_a_daily_summary_event_in_the_domain_is_followed_without_wiring(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metrics part adds ``DailySummaryReady`` to core.domain.events: the router follows it."""
    from dataclasses import dataclass

    from core.domain import events

    @dataclass(frozen=True)
    class DailySummaryReady:
        date: str
        text: str

    monkeypatch.setattr(events, "DailySummaryReady", DailySummaryReady, raising=False)
    rec = Recording("rec")
    _router, bus, _clock = await router_with(store, rec)
    bus.publish(DailySummaryReady("2026-03-02", "net +1,234.56"))
    await until(lambda: len(rec.got) == 1, "the summary")
    assert (rec.got[0].kind, rec.got[0].text) == ("daily.summary", "net +1,234.56")
    await _router.stop()
