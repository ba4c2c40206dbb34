"""Parse the one-line forms of the cockpit's operator prompts into command arguments.

Pure functions: the prompt screen collects text, these split it, core.control.handler validates
and runs the command. A line that does not parse raises ValueError with the usage.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.control.handler import Controls

ORDER_USAGE = "buy|sell SYMBOL QTY [LIMIT]   e.g.  buy AAPL 100   or   sell SPY 20 450.50"
POSITION_USAGE = "SYMBOL QTY AVG_COST REASON...   e.g.  AAPL 100 187.25 broker statement shows 100"
LIMIT_USAGE = "KEY VALUE   e.g.  max_order_qty 500"
ALLOCATION_USAGE = "allocation STRATEGY VALUE   e.g.  allocation sma_cross 50000   or   ... 25%   or   ... none"
RESOLVE_USAGE = "SYMBOL accept|adopt|flatten   e.g.  AAPL accept"
RESOLUTIONS = Controls.RESOLUTIONS


@dataclass(frozen=True, slots=True)
class OrderLine:
    side: str
    symbol: str
    qty: str
    limit: str | None


@dataclass(frozen=True, slots=True)
class PositionLine:
    symbol: str
    qty: str
    avg_cost: str
    reason: str


def parse_order(line: str) -> OrderLine:
    parts = line.split()
    if len(parts) not in (3, 4) or parts[0].lower() not in ("buy", "sell"):
        raise ValueError(f"usage: {ORDER_USAGE}")
    return OrderLine(parts[0].lower(), parts[1].upper(), parts[2], parts[3] if len(parts) == 4 else None)


def parse_position(line: str) -> PositionLine:
    parts = line.split(maxsplit=3)
    if len(parts) < 4:
        raise ValueError(f"usage: {POSITION_USAGE} (a reason is required)")
    return PositionLine(parts[0].upper(), parts[1], parts[2], parts[3])


def parse_limit(line: str) -> tuple[str, str]:
    parts = line.split(maxsplit=1)
    if len(parts) != 2:
        raise ValueError(f"usage: {LIMIT_USAGE}")
    return parts[0], parts[1]


def parse_allocation(line: str) -> tuple[str, str] | None:
    """``allocation STRATEGY VALUE`` as (strategy, value); None when the line is not about an
    allocation (a risk limit's ``KEY VALUE``)."""
    parts = line.split()
    if not parts or parts[0].lower() != "allocation":
        return None
    if len(parts) != 3:
        raise ValueError(f"usage: {ALLOCATION_USAGE}")
    return parts[1], parts[2]


def parse_resolve(line: str) -> tuple[str, str]:
    parts = line.split()
    if len(parts) != 2 or parts[1].lower() not in RESOLUTIONS:
        raise ValueError(f"usage: {RESOLVE_USAGE}")
    return parts[0].upper(), parts[1].lower()
