"""The one broker interface every adapter implements (paper, ibkr).

core/ defines it and never imports an adapter: brokers are injected. Order placement is
fire-and-forget; everything the broker says back (acks, fills, cancels, rejects) arrives
through the report handler on the engine's loop, in the order the broker said it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import datetime

from core.domain.model import AccountSnapshot, BrokerPosition, Execution, Order, OrderUpdate

Report = Execution | OrderUpdate
ReportHandler = Callable[[Report], None]


class Broker(ABC):
    kind: str = "abstract"
    #: True when the venue records an order in the engine's own store, in the same
    #: transaction as the engine's order row (the paper broker). Then order and venue
    #: record are durable together or not at all, and the OMS needs no separate
    #: write-ahead commit before sending. False for any real broker: the order is
    #: committed before it leaves.
    records_in_engine_store: bool = False

    def __init__(self) -> None:
        self._handler: ReportHandler | None = None

    def set_report_handler(self, handler: ReportHandler) -> None:
        self._handler = handler

    def _report(self, report: Report) -> None:
        if self._handler is not None:
            self._handler(report)

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @property
    def live_account(self) -> bool:
        """Real money: the go-live check must pass before such an account trades (paper: never)."""
        return False

    @property
    def status(self) -> str:
        """One line for the operator about the connection."""
        return "connected" if self.connected else "disconnected"

    def wants_quotes(self, symbol: str) -> bool:
        """Whether the venue needs the next quote of ``symbol`` on the bus (a simulated venue
        fills its orders against them). Yes unless a broker says otherwise: a replay leaves
        out the synthetic quotes no one needs (core/kernel/driver.py)."""
        return True

    def adopt(self, orders: Iterable[Order]) -> None:
        """Orders the engine's store says are open, from an earlier run, told to the broker
        before it connects so that what it reports about them reaches the engine.

        A broker whose records live in the engine's store (paper) knows them already.
        """
        return None

    def in_flight_symbols(self) -> set[str]:
        """Symbols with something on its way (an execution waiting for its commission report,
        an order queued to send): reconciliation does not judge them in this pass."""
        return set()

    def client_order_ids(self) -> set[str]:
        """The client order ids the broker reports since it connected (open and finished orders,
        executions). The OMS keeps new ids above its own among them, so that an id is never used
        twice even when the store lost its last commits (a power cut with ``[engine]
        order_durability = "process"``) or was restored from an older backup. A broker whose
        records live in the engine's store (paper) rolls back with it: it has none to add."""
        return set()

    def adopt_unknown(self, order: Order) -> bool:
        """Track an order the broker has open but the engine never placed (a reconciliation
        break the operator resolved by adopting it); False if the broker cannot find it."""
        return False

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    def place(self, order: Order) -> None:
        """Send ``order``; it must already be durable in the store."""

    @abstractmethod
    def cancel(self, client_order_id: str) -> None: ...

    @abstractmethod
    def cancel_all(self) -> None: ...

    @abstractmethod
    async def positions(self) -> list[BrokerPosition]: ...

    @abstractmethod
    async def open_orders(self) -> list[Order]: ...

    @abstractmethod
    async def executions_since(self, since: datetime | None) -> list[Execution]: ...

    @abstractmethod
    async def account(self) -> AccountSnapshot: ...
