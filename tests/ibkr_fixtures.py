"""Fixtures for the IBKR adapter tests: an IbkrBroker wired to the IB Gateway simulator over
real TCP, a recorder of what it reports, and order builders. The simulator fixtures (and
the guard that fails a test on any ib_async decoder error) come from ``tests.ibsim_fixtures``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from brokers.ibkr import IbkrConfig
from brokers.ibkr.broker import IbkrBroker
from brokers.ibsim import IBGatewaySim
from core.common.clock import Clock, LiveClock
from core.domain.model import Execution, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from core.domain.order_states import IllegalTransition, check_transition
from core.execution.broker import Report

UTC = timezone.utc
_seq = itertools.count(1)


class Recorder:
    """Everything the broker reported, in order, plus its connection changes; awaitable."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.changes: list[tuple[bool, str]] = []
        self.downstream: Callable[[Report], None] | None = None
        self._changed = asyncio.Event()

    def __call__(self, report: Report) -> None:
        self.reports.append(report)
        if self.downstream is not None:
            self.downstream(report)
        self._poke()

    def on_connection_change(self, up: bool, reason: str) -> None:
        self.changes.append((up, reason))
        self._poke()

    def _poke(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    @property
    def executions(self) -> list[Execution]:
        return [r for r in self.reports if isinstance(r, Execution)]

    def updates(self, coid: str | None = None) -> list[OrderUpdate]:
        return [r for r in self.reports if isinstance(r, OrderUpdate) and (coid is None or r.client_order_id == coid)]

    def statuses(self, coid: str) -> list[OrderStatus]:
        return [u.status for u in self.updates(coid)]

    def last_status(self, coid: str) -> OrderStatus | None:
        s = self.statuses(coid)
        return s[-1] if s else None

    def filled(self, coid: str) -> Decimal:
        return sum((e.qty for e in self.executions if e.client_order_id == coid), Decimal(0))

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Until ``predicate()`` holds; re-checked after every report and connection change."""

        async def until() -> None:
            while not predicate():
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    async def status(self, coid: str, status: OrderStatus, timeout: float = 5.0) -> None:
        await self.wait(lambda: status in self.statuses(coid), timeout, f"{coid} {status} (has {self.statuses(coid)})")


class MiniOms:
    """The OMS's rules for broker reports (core/oms.py), to check the adapter against them:
    fills deduped by exec_id, every status change through the order state machine. Anything
    the real OMS would refuse or log as an error is collected instead."""

    def __init__(self, broker: IbkrBroker, rec: Recorder) -> None:
        self.broker = broker
        self.orders: dict[str, Order] = {}
        self.seen: set[str] = set()
        self.problems: list[str] = []
        rec.downstream = self.on_report

    def place(self, order: Order) -> None:
        order.status = OrderStatus.SUBMITTED
        self.orders[order.client_order_id] = order
        self.broker.place(order)

    def cancel(self, coid: str) -> None:
        order = self.orders[coid]
        if order.status is OrderStatus.PENDING_CANCEL:
            return
        if order.status is not OrderStatus.UNKNOWN:
            if not self._move(order, OrderStatus.PENDING_CANCEL, quiet=True):
                return
        self.broker.cancel(coid)

    def _move(self, order: Order, status: OrderStatus, quiet: bool = False) -> bool:
        try:
            check_transition(order.client_order_id, order.status, status)
        except IllegalTransition as exc:
            if not quiet:
                self.problems.append(str(exc))
            return False
        order.status = status
        return True

    def on_report(self, report: Report) -> None:
        if isinstance(report, Execution):
            if report.exec_id in self.seen:
                self.problems.append(f"execution {report.exec_id} reported twice")
                return
            self.seen.add(report.exec_id)
            order = self.orders.get(report.client_order_id)
            if order is None:
                self.problems.append(f"execution {report.exec_id} for unknown order {report.client_order_id}")
                return
            order.filled_qty += report.qty
            if order.filled_qty > order.qty:
                self.problems.append(f"{order.client_order_id} overfilled")
            if not order.status.is_terminal:
                self._move(order, OrderStatus.FILLED if order.filled_qty >= order.qty else OrderStatus.PARTIALLY_FILLED)
            return
        order = self.orders.get(report.client_order_id)
        if order is None:
            self.problems.append(f"update for unknown order {report.client_order_id}")
        elif order.status is not report.status:
            self._move(order, report.status)


def make_order(symbol: str = "AAPL", side: Side = Side.BUY, qty: int | str | Decimal = 10,
               limit: str | Decimal | None = None, *, tif: TimeInForce = TimeInForce.DAY,
               coid: str | None = None) -> Order:
    return Order(
        client_order_id=coid or f"t-{next(_seq)}",
        strategy="test",
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        tif=tif,
        limit_price=Decimal(limit) if limit is not None else None,
        created_at=datetime.now(UTC),
        status=OrderStatus.SUBMITTED,
    )


async def no_wait(delay: float) -> None:
    """A backoff sleep that only yields: reconnect tests do not wait seconds."""
    await asyncio.sleep(0)


MakeBroker = Callable[..., Awaitable[tuple[IbkrBroker, Recorder]]]


@pytest.fixture
async def make_broker(sim: IBGatewaySim) -> AsyncIterator[MakeBroker]:
    """``await make_broker(connect=True, clock=None, sleep=no_wait, **config)`` -> (broker, recorder).

    Defaults: the simulator's port, client id 1, no restart window, 10-50 ms backoff.
    """
    made: list[IbkrBroker] = []

    async def factory(*, connect: bool = True, clock: Clock | None = None,
                      sleep: Callable[[float], Awaitable[None]] | None = None, **cfg: Any) -> tuple[IbkrBroker, Recorder]:
        values: dict[str, Any] = dict(port=sim.port, client_id=1, restart_window="", connect_timeout=5.0,
                                      reconnect_min_seconds=0.01, reconnect_max_seconds=0.05)
        values.update(cfg)
        rec = Recorder()
        broker = IbkrBroker(IbkrConfig(**values), clock or LiveClock(), sleep=sleep or asyncio.sleep,
                            on_connection_change=rec.on_connection_change)
        broker.set_report_handler(rec)
        made.append(broker)
        if connect:
            await broker.connect()
        return broker, rec

    try:
        yield factory
    finally:
        for b in made:
            await b.disconnect()
