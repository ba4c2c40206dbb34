"""The one home of each symbol's mark: the last price and when it was seen (engine time).

The engine's loop writes it once per event (``Portfolio.mark``); the risk gate reads the price
and its age (the collar, the quote age), the book values positions at it, the liquidation
retries on a newer one. ``price`` and ``ts`` are plain dicts so the hot loop writes them with
two stores; no one else writes them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


class Marks:
    __slots__ = ("price", "ts")

    def __init__(self) -> None:
        self.price: dict[str, Decimal] = {}
        self.ts: dict[str, datetime] = {}

    def get(self, symbol: str) -> tuple[Decimal, datetime] | None:
        price, ts = self.price.get(symbol), self.ts.get(symbol)
        return None if price is None or ts is None else (price, ts)
