"""Capital allocation per strategy: the risk gate's check that no strategy grows its gross
exposure past the capital it was given (``[allocation]``, core/config/capital.py).

A strategy's gross exposure is the gate's ``max_gross_exposure`` figure over the strategy's
own book: for each symbol it holds or has working orders in, with ``hi = pos + working_buy``
and ``lo = pos - working_sell`` (its own position and its own open orders, the new order added
to its side), ``sum max(|hi|, |lo|) x mark``. The order's symbol is valued at the quote when
it has no mark; any other symbol without one refuses (fail closed). An order is refused when
the exposure with it is beyond the allocation *and* above the exposure without it, so an order
that reduces (or does not grow) the strategy's exposure always passes.

Percentages are of the equity when the engine started (``equity_at_start``), fixed for the
run: one strategy's losses never shrink another's allocation mid-day. The owner of the
allocations is the gate; the engine sets ``equity_at_start`` once at start, and the operator
changes an allocation only through the command handler (``validated`` then ``replace``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from core.config import ConfigError
from core.config.capital import NONE_WORDS, Allocation, parse_allocation, total_problem
from core.domain.model import ZERO, Side
from core.domain.text import money

#: (position, working buy qty, working sell qty) of one strategy in one symbol.
Holding = tuple[Decimal, Decimal, Decimal]


class StrategyBook(Protocol):
    """What the allocation check reads of the book (``RiskView`` has these)."""

    def strategy_holdings(self, strategy: str) -> Mapping[str, Holding]:
        """Per symbol: the strategy's own signed position and its own open buy / sell quantity."""
        ...

    def mark(self, symbol: str) -> Decimal | None: ...


def worst_case(pos: Decimal, buy: Decimal, sell: Decimal) -> Decimal:
    """|position| at its worst over any partial fill of the working orders."""
    return max(abs(pos + buy), abs(pos - sell))


def gross_exposure(holdings: Mapping[str, Holding], mark: Mapping[str, Decimal | None]) -> Decimal | None:
    """Sum of the worst-case positions x mark; None when a symbol with something in it has no mark."""
    total = ZERO
    for symbol, (pos, buy, sell) in holdings.items():
        if pos == 0 and buy == 0 and sell == 0:
            continue
        price = mark.get(symbol)
        if price is None:
            return None
        total += worst_case(pos, buy, sell) * price
    return total


@dataclass(frozen=True, slots=True)
class CapitalRow:
    """One strategy's allocation as the read model shows it (money None: no allocation)."""

    strategy: str
    given: str | None
    allocation: Decimal | None
    used: Decimal | None  # gross exposure; None when a symbol it holds has no mark yet

    @property
    def remaining(self) -> Decimal | None:
        if self.allocation is None or self.used is None:
            return None
        return self.allocation - self.used

    @property
    def used_pct(self) -> Decimal | None:
        if self.allocation is None or self.used is None or self.allocation <= 0:
            return None
        return self.used * 100 / self.allocation


class CapitalAllocation:
    """The allocations in force (strategy -> Allocation), the equity at start they are measured
    against, and the strategies they may name."""

    def __init__(self, entries: Mapping[str, Allocation] | None = None, strategies: Iterable[str] = ()) -> None:
        self.entries: dict[str, Allocation] = dict(entries or {})
        self.strategies: tuple[str, ...] = tuple(strategies)
        self.equity_at_start: Decimal | None = None
        self.equity_source = ""  # what equity_at_start is: "the paper account's equity", ...

    # ---- reading ---------------------------------------------------------------------

    def amount(self, strategy: str) -> Decimal | None:
        entry = self.entries.get(strategy)
        return None if entry is None else entry.amount(self.equity_at_start)

    def exposure(self, strategy: str, book: StrategyBook) -> Decimal | None:
        holdings = book.strategy_holdings(strategy)
        return gross_exposure(holdings, {s: book.mark(s) for s in holdings})

    def rows(self, book: StrategyBook) -> list[CapitalRow]:
        """Every known strategy (in config order), then any other allocation's owner."""
        names = list(self.strategies) + sorted(set(self.entries) - set(self.strategies))
        out = []
        for name in names:
            entry = self.entries.get(name)
            out.append(CapitalRow(name, entry.given if entry else None, self.amount(name), self.exposure(name, book)))
        return out

    def uncovered(self, enabled: Iterable[str]) -> list[str]:
        """The ``enabled`` strategies without an allocation (the go-live check fails on any)."""
        return sorted(name for name in enabled if name not in self.entries)

    def problem(self) -> str | None:
        """Why the allocations in force do not fit in the equity at start, or None."""
        return total_problem(self.entries, self.equity_at_start, self._equity_name())

    def _equity_name(self) -> str:
        return f"the equity at start ({self.equity_source})" if self.equity_source else "the equity at start"

    # ---- the gate's check ------------------------------------------------------------

    def refusal(self, strategy: str, symbol: str, side: Side, qty: Decimal, ref: Decimal,
                book: StrategyBook) -> str | None:
        """Why an order of ``strategy`` (``side`` ``qty`` ``symbol``, quote ``ref``) would take its
        gross exposure past its allocation, or None (no allocation, or within it, or not growing it)."""
        entry = self.entries.get(strategy)
        if entry is None:
            return None
        limit = entry.amount(self.equity_at_start)
        if limit is None:
            return (f"allocation: {strategy} has {entry.given} of the equity at start, which is not known yet: "
                    f"no new orders for it until the engine has started")
        holdings = book.strategy_holdings(strategy)
        before = after = ZERO
        for sym in {*holdings, symbol}:
            pos, buy, sell = holdings.get(sym, (ZERO, ZERO, ZERO))
            mark = book.mark(sym)
            if mark is None:
                if sym != symbol:
                    if pos == 0 and buy == 0 and sell == 0:
                        continue
                    return f"allocation: no mark for {sym} to value {strategy}'s gross exposure"
                mark = ref
            before += worst_case(pos, buy, sell) * mark
            if sym == symbol:
                if side is Side.BUY:
                    buy += qty
                else:
                    sell += qty
            after += worst_case(pos, buy, sell) * mark
        if after > limit and after > before:
            return (f"allocation: {strategy} gross exposure {_over(after, limit)} would exceed its allocation "
                    f"{entry.describe(self.equity_at_start)} (now {money(before)})")
        return None

    # ---- changing it (the command handler's, and the engine's at start) ---------------

    def validated(self, strategy: str, raw: str) -> tuple[Allocation | None, Allocation | None]:
        """What setting ``strategy`` to ``raw`` would change: (old, new), new None for a removal
        ("none"). ConfigError (one line naming the problem and the fix) for an unknown
        strategy, a bad value or a sum beyond the equity at start; nothing changes."""
        name = (strategy or "").strip()
        if name not in self.strategies:
            raise ConfigError(f"allocation: no strategy named {name[:64]!r} (known: {', '.join(self.strategies) or 'none'})")
        old = self.entries.get(name)
        kept = f"; the allocation stays {old.describe(self.equity_at_start) if old else 'none'}"
        text = (raw or "").strip() if isinstance(raw, str) else raw
        if isinstance(text, str) and text.lower() in NONE_WORDS:
            return old, None
        try:
            new = parse_allocation(text)
        except ValueError as exc:
            raise ConfigError(f"allocation.{name}: {exc}{kept}") from None
        trial = {**self.entries, name: new}
        problem = total_problem(trial, self.equity_at_start, self._equity_name())
        if problem is not None:
            raise ConfigError(f"{problem}{kept}")
        return old, new

    def replace(self, strategy: str, new: Allocation | None) -> Allocation | None:
        """Put ``new`` in force for ``strategy`` (None: no allocation); returns the old one."""
        old = self.entries.pop(strategy, None)
        if new is not None:
            self.entries[strategy] = new
        return old

    def start(self, equity: Decimal, source: str, stored: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """At engine start: measure against ``equity``, then put the operator's stored run-time
        changes (strategy -> given text, "none" for removed) in force if together they fit.

        Returns what could not be taken: (strategy, stored text, why), the config's value kept.
        A stored value for a strategy that no longer exists, or one that is no longer valid, is
        dropped alone; if the stored values are valid but together do not fit in the equity,
        all of them are dropped (the config's allocations are in force). ``problem()`` then
        says whether what is in force fits."""
        self.equity_at_start = equity
        self.equity_source = source
        dropped: list[tuple[str, str, str]] = []
        trial = dict(self.entries)
        taken: dict[str, str] = {}
        for name, text in sorted(stored.items()):
            if name not in self.strategies:
                dropped.append((name, text, f"no strategy named {name!r} any more"))
                continue
            if text.strip().lower() in NONE_WORDS:
                trial.pop(name, None)
                taken[name] = text
                continue
            try:
                trial[name] = parse_allocation(text)
            except ValueError as exc:
                dropped.append((name, text, str(exc)))
                continue
            taken[name] = text
        problem = total_problem(trial, equity, self._equity_name())
        if problem is not None and taken:
            dropped += [(name, text, problem) for name, text in sorted(taken.items())]
            return dropped
        self.entries = trial
        return dropped

    def fit_to_equity(self) -> Decimal:
        """Scale the money allocations down so that all fit in the equity at start; returns the
        factor (< 1). For a start that must not be refused: the engine holds positions to manage."""
        equity = self.equity_at_start
        assert equity is not None
        pct = sum((e.percent for e in self.entries.values() if e.percent is not None), Decimal(0))
        room = max(Decimal(0), equity - equity * pct / Decimal(100))
        moneyed = {n: e.money for n, e in self.entries.items() if e.money is not None}
        total = sum(moneyed.values(), Decimal(0))
        factor = min(Decimal(1), room / total) if total else Decimal(1)
        for name, amount in moneyed.items():
            scaled = (amount * factor).quantize(Decimal("0.01"), ROUND_DOWN)
            self.entries[name] = Allocation(str(scaled), money=scaled)
        return factor


def _over(value: Decimal, limit: Decimal) -> str:
    """``value`` to the cent, unless rounding would make it look within ``limit``."""
    shown = money(value)
    if Decimal(shown.replace(",", "")) <= limit:
        return f"{value:,f}"
    return shown
