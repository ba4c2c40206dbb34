"""Fixtures for the IB Gateway simulator tests: a simulator on port 0, ib_async clients, and a
guard that fails the test if ib_async logged an error nobody expected (a decoder error
above all: ib_async swallows decoder exceptions and only logs them).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from ib_async import IB, Trade

from brokers.ibsim import IBGatewaySim

_ERROR_CODE = re.compile(r"^(?:Error|Warning) (-?\d+), reqId")


class IBLogGuard(logging.Handler):
    """Collects ERROR records of the ``ib_async`` loggers (Decoder, client, wrapper, ib)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected_codes: set[int] = set()
        self.allowed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, *codes: int) -> None:
        """These IB error codes are part of the scenario (e.g. 202 after a cancel)."""
        self.expected_codes.update(codes)

    def allow(self, *fragments: str) -> None:
        """ib_async client/ib messages containing these fragments are expected (e.g. a dropped socket)."""
        self.allowed.extend(fragments)

    def decoder_errors(self) -> list[str]:
        return [self._text(r) for r in self.records if r.name == "ib_async.Decoder"]

    def error_codes(self) -> list[int]:
        codes = []
        for r in self.records:
            m = _ERROR_CODE.match(r.getMessage())
            if m:
                codes.append(int(m.group(1)))
        return codes

    def unexpected(self) -> list[str]:
        out = []
        for r in self.records:
            text = r.getMessage()
            if r.name == "ib_async.Decoder":
                out.append(self._text(r))
                continue
            m = _ERROR_CODE.match(text)
            if m and int(m.group(1)) in self.expected_codes:
                continue
            if not m and any(f in text for f in self.allowed):
                continue
            out.append(f"{r.name}: {text}")
        return out

    @staticmethod
    def _text(r: logging.LogRecord) -> str:
        exc = f" ({r.exc_info[1]!r})" if r.exc_info else ""
        return f"{r.name}: {r.getMessage()}{exc}"


@pytest.fixture
def ib_log() -> Iterator[IBLogGuard]:
    guard = IBLogGuard()
    logger = logging.getLogger("ib_async")
    logger.addHandler(guard)
    try:
        yield guard
    finally:
        logger.removeHandler(guard)
    bad = guard.unexpected()
    assert not bad, "ib_async logged unexpected errors:\n" + "\n".join(bad)


def check_sim(sim: IBGatewaySim) -> None:
    assert not sim.handler_errors, f"simulator handler errors: {sim.handler_errors}"
    assert not sim.save_errors, f"simulator could not save: {sim.save_errors}"


@pytest.fixture
async def sim(ib_log: IBLogGuard, tmp_path: Path) -> AsyncIterator[IBGatewaySim]:
    s = IBGatewaySim(tmp_path / "ibsim-state.json", seed=7)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
    check_sim(s)


Connect = Callable[..., Awaitable[IB]]


@pytest.fixture
async def connect(ib_log: IBLogGuard, sim: IBGatewaySim) -> AsyncIterator[Connect]:
    """``await connect(client_id=1, max_version=None, port=None)`` -> a synced ib_async ``IB``.

    ``raiseSyncErrors`` makes the connect fail if the simulator left any start-up request
    (positions, open/completed orders, account updates, executions) unanswered.
    """
    made: list[IB] = []

    async def factory(client_id: int = 1, *, max_version: int | None = None, port: int | None = None,
                      timeout: float = 5.0, **kwargs: object) -> IB:
        ib = IB()
        if max_version is not None:
            ib.client.MaxClientVersion = max_version
        made.append(ib)
        t0 = time.monotonic()
        await ib.connectAsync("127.0.0.1", port or sim.port, clientId=client_id, timeout=timeout,
                              raiseSyncErrors=True, **kwargs)
        ib.connect_seconds = time.monotonic() - t0  # type: ignore[attr-defined]  # a timing the fixture hangs on the client
        return ib

    try:
        yield factory
    finally:
        for ib in made:
            ib.disconnect()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait for network I/O to make ``predicate`` true (polled every 2 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.002)


async def status(trade: Trade, wanted: str, timeout: float = 5.0) -> None:
    """Wait for ``trade`` to reach ``wanted`` (trade events are not latched, so poll the status)."""
    await eventually(lambda: trade.orderStatus.status == wanted, timeout,
                     what=f"status {wanted} of {trade.order.orderRef!r} (now {trade.orderStatus.status})")
