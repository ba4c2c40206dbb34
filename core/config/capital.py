"""``[allocation]``: the capital each strategy may put at risk, as money or a share of equity.

One key per strategy name: ``sma_cross = 50000`` (money) or ``sma_cross = "25%"`` (a
percentage of the account's equity when the engine starts: the paper book's equity, or the
IBKR account's net liquidation). The risk gate refuses an order that would take the
strategy's gross exposure past that amount (core/risk/capital.py). A strategy without a key
is not limited by an allocation (every other limit still applies); ``uncovered_strategies``
names the enabled ones, for the go-live check.

Together the allocations may not exceed the equity at start: percentages are checked at load
(at most 100 %), money against ``paper.starting_cash`` at load with the paper broker (a fresh
paper account's equity), and everything against the real equity when the engine starts.
The package's ``__init__`` imports this module (for ``Settings.allocation``), so it never imports
the package back: only the domain's number wording.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from core.domain.serialize import dec
from core.domain.text import money

__all__ = ["MAX_MONEY", "NONE_WORDS", "Allocation", "parse_allocation", "total_problem", "uncovered_strategies",
           "unknown_names"]

MAX_MONEY = Decimal("1e12")  # as paper.starting_cash: no account holds more
_PLACES = 8  # digits after the point; more is a typo
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
#: What ``cockpit allocation set NAME none`` takes to remove an allocation (then unlimited by it).
NONE_WORDS = frozenset({"none", "off", "-"})
_USAGE = 'give money (e.g. 50000) or a percentage of the equity at start (e.g. "25%")'


@dataclass(frozen=True, slots=True)
class Allocation:
    """One strategy's allocation: exactly one of ``money`` and ``percent`` is set;
    ``given`` is how it was written ("50000", "25%"), which is what is shown and persisted."""

    given: str
    money: Decimal | None = None
    percent: Decimal | None = None

    def amount(self, equity_at_start: Decimal | None) -> Decimal | None:
        """The allocation in money; None for a percentage while the equity at start is unknown."""
        if self.money is not None:
            return self.money
        if equity_at_start is None or self.percent is None:
            return None
        return max(Decimal(0), equity_at_start * self.percent / _HUNDRED)

    def describe(self, equity_at_start: Decimal | None) -> str:
        """``50,000.00`` or ``25% (25,000.00)``, for messages."""
        if self.money is not None:
            return money(self.money)
        amount = self.amount(equity_at_start)
        return self.given if amount is None else f"{self.given} ({money(amount)})"


def parse_allocation(raw: Any) -> Allocation:
    """An allocation from the config or an operator: a number of money or ``"N%"``.

    ValueError (one line, naming what is wrong and the fix) for anything else: a negative
    value, NaN or infinity, more than 1e12, a percentage beyond 100, a bool or a table.
    """
    if isinstance(raw, Allocation):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(f"an allocation is one value: {_USAGE}")
    text = str(raw).strip()
    percent = text.endswith("%")
    number = text.removesuffix("%").strip() if percent else text
    shown = text if len(text) <= 40 else text[:40] + "..."
    try:
        value = Decimal(number)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{shown!r} is not an amount: {_USAGE}") from None
    if not value.is_finite():
        raise ValueError(f"{shown!r} is not a finite amount: {_USAGE}")
    if value < 0:
        raise ValueError(f"{shown!r} is negative: an allocation is 0 (only orders that reduce pass) or more")
    if value.copy_abs() > MAX_MONEY:
        raise ValueError(f"{shown!r} is beyond {money(MAX_MONEY)}: check the number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_PLACES:
        raise ValueError(f"{shown!r} has more than {_PLACES} decimal places: check the number")
    if percent:
        if value > _HUNDRED:
            raise ValueError(f"{shown!r} is beyond 100% of the equity")
        return Allocation(f"{dec(value)}%", percent=value)
    return Allocation(dec(value), money=value)


def total_problem(entries: Mapping[str, Allocation], equity: Decimal | None, equity_name: str) -> str | None:
    """Why ``entries`` together do not fit in the equity at start (one line naming the keys
    and the fix), or None. With ``equity`` None only the percentages are checked."""
    shares = [(name, e) for name, e in sorted(entries.items()) if e.percent is not None]
    pct = sum((e.percent for _, e in shares if e.percent is not None), Decimal(0))
    if pct > _HUNDRED:
        terms = " + ".join(f"{name} {e.given}" for name, e in shares)
        return (f"allocation: {terms} = {dec(pct)}% is beyond 100% of the equity at start: lower them so they sum "
                f"to at most 100%")
    if equity is None:
        return None
    total = Decimal(0)
    terms_list = []
    for name, e in sorted(entries.items()):
        amount = e.amount(equity)
        if amount is None:
            continue
        total += amount.quantize(_CENT, ROUND_DOWN)  # to the cent, as shown: 60% of 99,999.99 fits beside 40,000
        terms_list.append(f"{name} {e.describe(equity)}")
    if total <= equity:
        return None
    return (f"allocation: {' + '.join(terms_list)} = {money(total)} is beyond {equity_name} {money(equity)}: lower "
            f"them so they sum to at most {money(equity)}, or give them as percentages of the equity at start "
            f'(e.g. "25%")')


def uncovered_strategies(strategies: Mapping[str, Any], allocation: Mapping[str, Allocation]) -> list[str]:
    """The enabled strategies no allocation covers, sorted (the go-live check fails on any):
    ``strategies`` is ``Settings.strategies`` (each with ``enabled``) or name -> enabled."""
    return sorted(name for name, s in strategies.items()
                  if (s if isinstance(s, bool) else getattr(s, "enabled", True)) and name not in allocation)


def unknown_names(allocation: Iterable[str], strategies: Iterable[str]) -> str | None:
    """One line for allocation keys that name no strategy, or None."""
    known = sorted(strategies)
    unknown = sorted(set(allocation) - set(known))
    if not unknown:
        return None
    first = unknown[0][:64]
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    return (f"allocation.{first}: no strategy named {first!r}{more} (strategies: {', '.join(known) or 'none'}); "
            f"remove the key or check its spelling")
