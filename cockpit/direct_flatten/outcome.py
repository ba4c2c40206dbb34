"""What a direct flatten achieved, per symbol and as an exit code (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from cockpit.direct_flatten.plan import CancelItem, Plan, qty_text

EXIT_OK, EXIT_FAIL, EXIT_REFUSED = 0, 1, 2


@dataclass(slots=True)
class SymbolOutcome:
    symbol: str
    start_qty: Decimal
    orders: list[str] = field(default_factory=list)
    filled: Decimal = Decimal(0)
    final_qty: Decimal = Decimal(0)
    reasons: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return self.final_qty == 0

    def line(self) -> str:
        outcome = "flat" if self.flat else f"NOT FLAT (position {qty_text(self.final_qty)})"
        text = (f"{self.symbol}: {outcome}, from {qty_text(self.start_qty)}, {len(self.orders)} order(s) "
                f"{', '.join(self.orders) or '-'}, filled {qty_text(self.filled)}")
        return text + (f"; {'; '.join(self.reasons)}" if self.reasons and not self.flat else "")


@dataclass(slots=True)
class DirectFlattenResult:
    exit_code: int
    error: str | None = None  # one line: why nothing (or not everything) could be done
    plan: Plan | None = None
    still_open: list[CancelItem] = field(default_factory=list)
    outcomes: dict[str, SymbolOutcome] = field(default_factory=dict)
    final_positions: dict[str, Decimal] = field(default_factory=dict)
    audit: str = ""

    @property
    def flat(self) -> bool:
        return self.exit_code == EXIT_OK


def settled(stocks: Mapping[str, Decimal], outcomes: Mapping[str, SymbolOutcome],
            done: Mapping[str, str | None]) -> bool:
    """Waiting is over: each symbol is flat at IB, or all its orders are done and one failed.

    ``done``: client order id -> why it ended without filling (None: it filled).
    """
    return all(
        not stocks.get(s) or (all(c in done for c in o.orders) and any(done[c] for c in o.orders))
        for s, o in outcomes.items())


def finish(outcomes: Mapping[str, SymbolOutcome], final: Mapping[str, Decimal], filled: Mapping[str, Decimal],
           done: Mapping[str, str | None], wait_seconds: float) -> None:
    """Fill in each symbol's final position, filled quantity and, when not flat, why."""
    for s, o in outcomes.items():
        o.final_qty = final.get(s, Decimal(0))
        o.filled = sum((filled.get(c, Decimal(0)) for c in o.orders), Decimal(0))
        working = [c for c in o.orders if c not in done]
        o.reasons = [r for c in o.orders if (r := done.get(c))]
        if working and not o.flat:
            o.reasons.append(f"still working at IB after {wait_seconds:g}s (not cancelled): " + ", ".join(working))
        elif not o.flat and not o.reasons:
            o.reasons.append("the orders filled but IB still shows a position")
