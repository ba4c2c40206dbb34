"""The Interactive Brokers adapter (IB Gateway / TWS through ib_async's async API).

Only ``IbkrConfig`` (defined in ``core.config.ibkr``) is imported eagerly; ``IbkrBroker`` and ``IbkrFeed`` load on first use.
"""

from __future__ import annotations

from typing import Any

from brokers.ibkr.config import IbkrConfig, RestartWindow

__all__ = ["IbkrBroker", "IbkrConfig", "IbkrFeed", "RestartWindow"]


def __getattr__(name: str) -> Any:
    if name == "IbkrBroker":
        from brokers.ibkr.broker import IbkrBroker

        return IbkrBroker
    if name == "IbkrFeed":
        from brokers.ibkr.feed import IbkrFeed

        return IbkrFeed
    raise AttributeError(name)
