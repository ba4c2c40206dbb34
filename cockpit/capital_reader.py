"""Capital allocations read from the store, for `cockpit metrics` (no engine needed).

The allocations in force are the config's ``[allocation]`` with the operator's run-time
changes over them (``allocation.<strategy>`` in the settings table, as the engine takes them at
start); a percentage is of the equity the last start measured them against (meta
``capital.equity_at_start``). What each strategy uses is the gate's figure over the stored book:
its own positions (from the fills and their owners) and its own open orders, worst case, valued
at the positions' last prices (core/risk/capital.py). A value the store holds that cannot be
read is named through ``warn`` and left out, never a traceback.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cockpit import readers

if TYPE_CHECKING:  # the allocation's own modules are imported only when one is in force (they load pydantic)
    from core.config.capital import Allocation
    from core.risk.capital import Holding

ZERO = Decimal(0)
CAPITAL_EQUITY_KEY = "capital.equity_at_start"  # core.persistence.recorder's (tests/test_capital_reader_fast.py)


class StoredBook:
    """The strategies' books as the store has them (``core.risk.capital.StrategyBook``)."""

    def __init__(self, conn: sqlite3.Connection, warn: readers.Warn) -> None:
        self.holdings: dict[str, dict[str, list[Decimal]]] = defaultdict(dict)
        self.marks: dict[str, Decimal | None] = {}
        for symbol_raw, last_price in conn.execute("SELECT symbol, last_price FROM positions"):
            symbol = readers.text(symbol_raw, "positions.symbol", warn) or readers.UNREADABLE
            self.marks[symbol] = readers.number(last_price, f"positions.last_price of {symbol}", warn,
                                                nullable=True)
        shares: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        if readers.has_table(conn, "fill_allocations"):
            for exec_id, owner, qty_raw in conn.execute("SELECT exec_id, owner, qty FROM fill_allocations"):
                shares[exec_id].append((owner, qty_raw))
        # the rows by position (each query's columns in order): a name's lookup per column cost more
        for exec_id, strategy, symbol, side, qty_raw in conn.execute(
                "SELECT exec_id, strategy, symbol, side, qty FROM fills ORDER BY seq"):
            own = shares.get(exec_id)
            if not own:  # fills written before owners were recorded belong to the order's strategy
                qty = readers.number(qty_raw, f"fills.qty of {exec_id}", warn)
                if qty is None:
                    continue
                own = [(strategy, qty if side == "BUY" else -qty)]
            for owner, raw in own:
                qty = readers.number(raw, f"fill_allocations.qty of {exec_id}", warn)
                if qty is not None and isinstance(owner, str):
                    self._at(owner, str(symbol))[0] += qty
        for r in conn.execute("SELECT client_order_id, strategy, symbol, side, qty, filled_qty FROM orders WHERE "
                              "status NOT IN ('FILLED', 'CANCELLED', 'REJECTED')"):
            qty = readers.number(r["qty"], f"orders.qty of {r['client_order_id']}", warn)
            filled = readers.number(r["filled_qty"], f"orders.filled_qty of {r['client_order_id']}", warn)
            if qty is None or filled is None or not isinstance(r["strategy"], str):
                continue
            self._at(r["strategy"], str(r["symbol"]))[1 if r["side"] == "BUY" else 2] += max(ZERO, qty - filled)

    def _at(self, owner: str, symbol: str) -> list[Decimal]:
        return self.holdings[owner].setdefault(symbol, [ZERO, ZERO, ZERO])

    def strategy_holdings(self, strategy: str) -> Mapping[str, Holding]:
        return {s: (h[0], h[1], h[2]) for s, h in self.holdings.get(strategy, {}).items()}

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)


def allocation_args(settings: Any) -> dict[str, Any]:
    """``readers.performance``'s allocation arguments from the config (``Settings``)."""
    return {"allocation": settings.allocation, "strategies": {n: s.enabled for n, s in settings.strategies.items()}}


def _settings(conn: sqlite3.Connection) -> dict[str, Any]:
    if not readers.has_table(conn, "settings"):
        return {}
    return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM settings")}


@readers.exact
def capital_in_force(conn: sqlite3.Connection, allocation: Mapping[str, Allocation], strategies: Mapping[str, bool],
                     warn: readers.Warn) -> dict[str, Any] | None:
    """``capital``'s report, or None when no allocation is in force. With none configured and none
    set at run time (no ``allocation.<strategy>`` in the settings) there can be none: the store is
    read as ``capital`` reads it (the same warnings, in the same order) without the allocation's
    modules."""
    stored = _settings(conn)
    if allocation or any(isinstance(k, str) and k.startswith("allocation.") and k.removeprefix("allocation.")
                         in strategies for k in stored):
        report = capital(conn, allocation, strategies, warn, stored)
        return None if all(row["allocation"] is None for row in report["strategies"].values()) else report
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
    readers.number(meta.get(CAPITAL_EQUITY_KEY), f"meta.{CAPITAL_EQUITY_KEY}", warn, nullable=True)
    StoredBook(conn, warn)
    return None


@readers.exact
def capital(conn: sqlite3.Connection, allocation: Mapping[str, Allocation], strategies: Mapping[str, bool],
            warn: readers.Warn, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The allocation report (the shape of `cockpit allocation --json`) from the store."""
    from core.config.capital import NONE_WORDS, parse_allocation
    from core.control.read_model import CapitalView, allocation_json
    from core.risk.capital import CapitalAllocation

    stored = _settings(conn) if stored is None else stored
    entries = dict(allocation)
    enabled = dict(strategies)
    for key, value in stored.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if key.startswith("strategy.") and key.endswith(".enabled"):
            name = key.removeprefix("strategy.").removesuffix(".enabled")
            if name in enabled:
                enabled[name] = value == "true"
        elif key.startswith("allocation.") and key.removeprefix("allocation.") in enabled:
            name = key.removeprefix("allocation.")
            if value.strip().lower() in NONE_WORDS:
                entries.pop(name, None)
                continue
            try:
                entries[name] = parse_allocation(value)
            except ValueError as exc:
                warn(f"settings.{key} holds {value[:40]!r}, not an allocation ({exc}): the config's is shown")
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
    book = CapitalAllocation(entries, enabled)
    book.equity_at_start = readers.number(meta.get(CAPITAL_EQUITY_KEY), f"meta.{CAPITAL_EQUITY_KEY}", warn,
                                          nullable=True)
    rows = tuple(CapitalView(r.strategy, enabled.get(r.strategy, False), r.given, r.allocation, r.used,
                             r.remaining, r.used_pct) for r in book.rows(StoredBook(conn, warn)))
    return allocation_json(rows, book.equity_at_start, "the last engine start" if book.equity_at_start else "",
                           book.uncovered(n for n, on in enabled.items() if on))
