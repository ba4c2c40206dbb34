"""The gateway's raw word on orders and fills, tapped below ib_async's Trade bookkeeping.

Why not ib_async's events: ``orderStatusEvent`` also fires from ``error()``, where ib_async
marks a trade Cancelled on codes that are mere warnings (10349 "TIF set to DAY", ib_async
#191) and a repeated identical orderStatus is swallowed; ``execDetailsEvent`` and
``commissionReportEvent`` fire only for trades the session already holds, so a fill of an
order placed before a reconnect can go unseen. The decoder looks wrapper methods up by name
on every message, so chaining an instance attribute sees every decoded message, after
ib_async has updated its own state (managedAccounts too: its ids are masked in the logs
from then on, before any message that carries one). A failing sink is logged on our logger and never
reaches ib_async's decoder (which would only log it as a decoder error).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ib_async import IB

log = logging.getLogger("cockpit.ibkr")

TAPPED = ("openOrder", "orderStatus", "completedOrder", "execDetails", "commissionReport", "managedAccounts")


class RawSink(Protocol):
    def raw_openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None: ...
    def raw_orderStatus(self, orderId: int, status: str, filled: float, remaining: float, avgFillPrice: float,
                        permId: int, parentId: int, lastFillPrice: float, clientId: int, whyHeld: str,
                        mktCapPrice: float = 0.0) -> None: ...
    def raw_completedOrder(self, contract: Any, order: Any, orderState: Any) -> None: ...
    def raw_execDetails(self, reqId: int, contract: Any, execution: Any) -> None: ...
    def raw_commissionReport(self, commissionReport: Any) -> None: ...
    def raw_managedAccounts(self, accountsList: str) -> None: ...


def install(ib: IB, sink: RawSink) -> None:
    """Chain ``sink.raw_<name>`` after each tapped wrapper method of ``ib`` (once per IB object)."""
    wrapper = ib.wrapper
    if getattr(wrapper, "_cockpit_tapped", False):
        return
    for name in TAPPED:
        setattr(wrapper, name, _chain(getattr(wrapper, name), getattr(sink, f"raw_{name}"), name))
    wrapper._cockpit_tapped = True  # type: ignore[attr-defined]  # our mark on ib_async's wrapper: tapped once


def _chain(original: Callable[..., None], tap: Callable[..., None], name: str) -> Callable[..., None]:
    def chained(*args: Any) -> None:
        original(*args)
        try:
            tap(*args)
        except Exception:
            log.exception("ibkr adapter failed on %s", name)

    chained.__name__ = name
    return chained
