"""The IBKR adapter's parts that need no gateway: config and restart window, backoff, pacing
(on a fake clock), order-id persistence, and the ordering of reports."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from brokers.ibkr import IbkrConfig, RestartWindow
from brokers.ibkr.backoff import Backoff
from brokers.ibkr.order_ids import OrderIdAllocator
from brokers.ibkr.outbox import Outbox
from brokers.ibkr.throttle import Throttle
from core.domain.model import Execution, OrderStatus, OrderUpdate, Side

UTC = timezone.utc


def test_config_defaults_and_validation() -> None:
    cfg = IbkrConfig()
    assert (cfg.host, cfg.port, cfg.client_id, cfg.account) == ("127.0.0.1", 4002, 1, "")
    assert cfg.max_messages_per_second == 45 and cfg.window is not None
    assert str(cfg.window) == "23:45-00:15 America/New_York"
    assert IbkrConfig(restart_window="").window is None
    for bad in ({"reconnect_min_seconds": 5, "reconnect_max_seconds": 1}, {"restart_window": "23:45"},
                {"restart_window": "25:00-01:00"}, {"restart_tz": "Mars/Olympus"}, {"max_messages_per_second": 50},
                {"port": 0}, {"nonsense": 1}):
        with pytest.raises(ValidationError):
            IbkrConfig(**bad)


def test_restart_window_wraps_midnight_in_new_york_time() -> None:
    w = RestartWindow.parse("23:45-00:15", "America/New_York")
    assert w is not None
    ny = w.tz
    assert w.contains(datetime(2026, 1, 5, 23, 45, tzinfo=ny))
    assert w.contains(datetime(2026, 1, 6, 0, 14, 59, tzinfo=ny))
    assert not w.contains(datetime(2026, 1, 6, 0, 15, tzinfo=ny))
    assert not w.contains(datetime(2026, 1, 5, 23, 44, 59, tzinfo=ny))
    # the same wall time in UTC moves with daylight saving
    assert w.contains(datetime(2026, 1, 6, 4, 50, tzinfo=UTC))  # EST: 23:50
    assert w.contains(datetime(2026, 7, 6, 3, 50, tzinfo=UTC))  # EDT: 23:50
    assert not w.contains(datetime(2026, 7, 6, 4, 50, tzinfo=UTC))  # EDT: 00:50
    day = RestartWindow.parse("01:00-02:00", "UTC")
    assert day is not None and day.contains(datetime(2026, 1, 1, 1, 30, tzinfo=UTC))
    assert not day.contains(datetime(2026, 1, 1, 2, 30, tzinfo=UTC))


@given(st.floats(0.001, 10), st.floats(1, 100), st.integers(1, 200), st.integers(0, 2**32))
def test_backoff_is_capped_exponential_with_bounded_jitter(lo: float, ratio: float, attempt: int, seed: int) -> None:
    b = Backoff(lo, lo * ratio, random.Random(seed))
    step = b.step(attempt)
    assert step == min(lo * ratio, lo * 2 ** min(attempt - 1, 60))
    assert step / 2 <= b.delay(attempt) <= step
    assert b.step(attempt + 1) >= step


class FakeTime:
    """A clock for the throttle that moves only when the throttle sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 49), st.lists(st.floats(0, 0.3), min_size=1, max_size=300))
async def test_throttle_never_lets_more_than_the_limit_into_any_window(limit: int, gaps: list[float]) -> None:
    ft = FakeTime()
    th = Throttle(limit, time=ft.time, sleep=ft.sleep)
    sent: list[float] = []
    for gap in gaps:
        ft.now += gap
        await th.acquire()
        sent.append(ft.now)
    j = 0
    for i, t in enumerate(sent):
        while t - sent[j] >= th.window:
            j += 1
        assert i - j + 1 <= limit
    assert all(b - a >= th.min_gap - 1e-9 for a, b in zip(sent, sent[1:], strict=False))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 49), st.lists(st.tuples(st.floats(0, 0.3), st.booleans()), min_size=1, max_size=300))
async def test_throttle_takes_at_once_exactly_when_acquire_would_not_wait(
        limit: int, steps: list[tuple[float, bool]]) -> None:
    """``try_acquire`` (the order path's send without awaiting) takes a slot exactly when ``acquire``
    would have returned at once, so mixing the two keeps every limit."""
    ft = FakeTime()
    th = Throttle(limit, time=ft.time, sleep=ft.sleep)
    sent: list[float] = []
    for gap, at_once in steps:
        ft.now += gap
        ready = th.ready()
        if at_once:
            took = th.try_acquire()
            assert took == ready
            if took:
                sent.append(ft.now)
        else:
            before = ft.now
            await th.acquire()
            assert (ft.now == before) == ready  # it waited exactly when it was not ready
            sent.append(ft.now)
    j = 0
    for i, t in enumerate(sent):
        while t - sent[j] >= th.window:
            j += 1
        assert i - j + 1 <= limit
    assert all(b - a >= th.min_gap - 1e-9 for a, b in zip(sent, sent[1:], strict=False))


async def test_throttle_sustained_rate_and_slow_down() -> None:
    ft = FakeTime()
    th = Throttle(45, time=ft.time, sleep=ft.sleep)
    th.note(9)  # ib_async's start-up requests
    start = ft.now
    for _ in range(450):
        await th.acquire()
    rate = 450 / (ft.now - start)
    assert 39 < rate <= 45 / 1.1 + 0.5
    th.slow_down(seconds=30)
    assert th.current_limit() == 22
    ft.now += 31
    assert th.current_limit() == 45
    th.reset()
    before = ft.now
    for _ in range(45):
        await th.acquire()
    assert ft.now - before < 0.6  # a fresh connection: a burst goes out at once, only spread


async def test_order_ids_are_persisted_in_blocks_and_never_repeat(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    a = OrderIdAllocator(path, client_id=7, block=10)
    await a.load()
    a.floor(5)
    got = [await a.allocate() for _ in range(12)]
    assert got == list(range(5, 17))
    assert json.loads(path.read_text())["clients"]["7"] == 24  # reserved through the second block
    b = OrderIdAllocator(path, client_id=7, block=10)  # a restarted process, gateway rolled back to 1
    await b.load()
    b.floor(1)
    assert await b.allocate() == 25
    b.skip_past(25)  # error 103 on 25: jump well past it
    assert await b.allocate() == 1025
    other = OrderIdAllocator(path, client_id=8)
    await other.load()
    other.floor(3)
    assert await other.allocate() == 3  # ids are per client id
    assert json.loads(path.read_text())["clients"]["7"] == 1034


async def test_an_id_is_allocated_at_once_only_inside_the_durable_block(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    a = OrderIdAllocator(path, client_id=7, block=10)
    await a.load()
    assert a.try_allocate() is None  # nothing reserved yet: allocate() must write first
    assert await a.allocate() == 1
    got = [a.try_allocate() for _ in range(9)]
    assert got == list(range(2, 11))
    assert a.try_allocate() is None and a.next_id == 11  # the block is used up: nothing taken
    assert a._ahead is not None
    await a._ahead  # the next block, written ahead once half of this one went
    assert json.loads(path.read_text())["clients"]["7"] == 20
    assert a.try_allocate() == 11
    memory = OrderIdAllocator(None, client_id=1)
    assert [memory.try_allocate(), await memory.allocate(), memory.try_allocate()] == [1, 2, 3]


def _ex(eid: str, coid: str) -> Execution:
    return Execution(eid, coid, "AAPL", Side.BUY, Decimal(1), Decimal(1), Decimal(1), datetime.now(UTC))


def _up(coid: str, status: OrderStatus) -> OrderUpdate:
    return OrderUpdate(coid, status, datetime.now(UTC))


def test_outbox_holds_an_order_behind_its_pending_execution_only() -> None:
    out: list = []
    box = Outbox(out.append)
    box.put("a", _up("a", OrderStatus.ACCEPTED))
    box.hold("x1", "a")  # a's fill, waiting for its commission
    box.put("a", _up("a", OrderStatus.CANCELLED))  # must not overtake the fill
    box.put("b", _up("b", OrderStatus.ACCEPTED))  # another order: not held up
    assert [(r.client_order_id, getattr(r, "status", "fill")) for r in out] == [
        ("a", OrderStatus.ACCEPTED), ("b", OrderStatus.ACCEPTED)]
    assert box.held == ["x1"]
    box.complete("x1", _ex("x1", "a"))
    assert [getattr(r, "status", "fill") for r in out[2:]] == ["fill", OrderStatus.CANCELLED]
    assert len(box) == 0 and box.held == []


def test_outbox_put_from_inside_an_emit_keeps_order() -> None:
    out: list = []
    box = Outbox(lambda r: (out.append(r), box.put("c", _up("c", OrderStatus.CANCELLED)) if r.client_order_id == "b"
                            else None))
    box.put("b", _up("b", OrderStatus.ACCEPTED))
    box.put("d", _up("d", OrderStatus.ACCEPTED))
    assert [r.client_order_id for r in out] == ["b", "c", "d"]


def test_order_book_trusts_perm_id_and_order_ref_over_order_ids() -> None:
    from brokers.ibkr.tracking import OrderBook, Tracked
    from tests.ibkr_fixtures import make_order

    book = OrderBook()
    t = Tracked(make_order(coid="ours"))
    book.add(t)
    book.bind(t, order_id=12, perm_id=900)
    assert book.find("", 900) is t and book.find("ours") is t and book.find("", 0, 12) is t
    assert book.find("", 901, 12) is None  # our id, someone else's order (a rolled-back gateway)
    assert book.find("theirs", 0, 12) is None  # an orderRef that is not ours decides
    book.unbind_order_id(t)
    assert book.find("", 0, 12) is None and t.order_id is None
    assert [x.client_order_id for x in book.open()] == ["ours"]
