"""Which contracts the simulator knows: any US stock symbol, on SMART (or a US venue), in USD.

A symbol's conId is derived from a hash of the symbol so that it is stable across runs
without a state file, and it is recorded in the state so that a collision, however
unlikely, can never hand one conId to two symbols.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "ContractInfo",
    "US_EXCHANGES",
    "contract_info",
    "derive_con_id",
    "valid_symbol",
]

# Venues a US stock can be requested on; SMART is what a qualified contract comes back with.
US_EXCHANGES = frozenset(
    {"", "SMART", "NYSE", "NASDAQ", "ISLAND", "ARCA", "AMEX", "BATS", "IEX", "NYSEARCA", "EDGX", "BYX"}
)
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[ .][A-Z]{1,2})?$")
_PRIMARY = {"SPY": "ARCA", "QQQ": "NASDAQ", "IWM": "ARCA", "DIA": "ARCA", "GLD": "ARCA"}
_CON_ID_BASE = 100_000
_CON_ID_SPAN = 900_000_000


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """Everything the simulator says about one stock."""

    symbol: str
    con_id: int
    primary_exchange: str

    @property
    def trading_class(self) -> str:
        """IB's trading class: ``NMS`` for NASDAQ listings, the symbol otherwise."""
        return "NMS" if self.primary_exchange == "NASDAQ" else self.symbol

    @property
    def long_name(self) -> str:
        return f"{self.symbol} COMMON STOCK (SIMULATED)"


def valid_symbol(symbol: str) -> bool:
    """Looks like a US stock ticker (``AAPL``, ``BRK B``, ``BF.B``)."""
    return bool(_SYMBOL.match(symbol))


def derive_con_id(symbol: str, salt: int = 0) -> int:
    """A stable conId for ``symbol`` (``salt`` moves it on a collision)."""
    digest = hashlib.sha256(f"{symbol}:{salt}".encode()).digest()
    return _CON_ID_BASE + int.from_bytes(digest[:8], "big") % _CON_ID_SPAN


def _primary_exchange(symbol: str) -> str:
    if symbol in _PRIMARY:
        return _PRIMARY[symbol]
    digest = hashlib.sha256(symbol.encode()).digest()
    return "NASDAQ" if digest[0] % 2 == 0 else "NYSE"


def contract_info(symbol: str, con_id: int) -> ContractInfo:
    """The description of ``symbol`` given its (already allocated) conId."""
    return ContractInfo(symbol=symbol, con_id=con_id, primary_exchange=_primary_exchange(symbol))
