"""Engine snapshots as the rows and figures the panes show: pure functions, no Textual.

Widgets get rows already formatted and ordered; what to show first (the largest risk)
is decided here, not in a widget.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from cockpit.tui.widgets.fixed_table import Cell, Column
from core.control.read_model import CapitalView, EngineSnapshot, PositionView

_CENT = Decimal("0.01")

POSITION_COLUMNS = (
    Column("symbol", 7), Column("qty", 7, True), Column("avg cost", 9, True), Column("last", 9, True),
    Column("mkt value", 11, True), Column("unrealized", 10, True), Column("unr %", 6, True),
    Column("real.today", 10, True), Column("realized", 10, True),
)
ORDER_COLUMNS = (
    Column("id", 10), Column("strategy", 13), Column("symbol", 6), Column("side", 4), Column("qty", 7, True),
    Column("filled", 7, True), Column("type", 6), Column("limit", 9, True), Column("status", 16),
    Column("created", 16), Column("age", 6, True), Column("reason", 40),
)


def money(value: Decimal | None) -> Cell:
    if value is None:
        return "-"
    text = f"{value.quantize(_CENT, ROUND_HALF_UP):,}"
    return (text, "red") if value < 0 else text


def num(value: Decimal | None, places: str = "0.01") -> str:
    if value is None:
        return "-"
    return f"{value.quantize(Decimal(places), ROUND_HALF_UP)}"


def age(delta: timedelta) -> str:
    """Engine-time age, compact: 45s, 12m, 3h, 2d."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def by_risk(positions: tuple[PositionView, ...]) -> list[PositionView]:
    """Largest absolute market value first, so a short pane still shows the biggest exposure."""
    return sorted(positions, key=lambda p: (-abs(p.market_value), p.symbol))


def position_rows(snap: EngineSnapshot) -> list[tuple[Cell, ...]]:
    return [
        (p.symbol, num(p.qty, "1"), num(p.avg_cost, "0.0001"), num(p.last, "0.01"), money(p.market_value),
         money(p.unrealized_pnl), num(p.unrealized_pct, "0.01"), money(p.realized_today), money(p.realized_pnl))
        for p in by_risk(snap.positions)
    ]


def order_rows(snap: EngineSnapshot) -> list[tuple[Cell, ...]]:
    """The latest refused intents (with their reason), then the orders."""
    tz = snap.market_tz
    rows: list[tuple[Cell, ...]] = []
    for r in reversed(snap.rejections[-5:]):
        rows.append(("-", r.strategy, r.symbol, r.side.value, num(r.qty, "1"), "-", "", "-",
                     ("REFUSED", "bold red"), r.ts.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                     age(snap.taken_at - r.ts), (r.reason, "red")))
    for o in snap.orders:
        style = "red" if o.status.value == "REJECTED" else ("bold" if not o.status.is_terminal else "dim")
        rows.append((o.client_order_id, o.strategy, o.symbol, o.side, num(o.qty, "1"), num(o.filled_qty, "1"),
                     o.order_type, num(o.limit_price), (o.status.value, style),
                     o.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), age(snap.taken_at - o.created_at),
                     o.reason or ""))
    return rows


def short_money(value: Decimal) -> str:
    """A figure for a narrow pane: 950, 50.0k, 1.25M."""
    for size, unit, places in ((Decimal("1e9"), "B", 2), (Decimal("1e6"), "M", 2), (Decimal("1e3"), "k", 1)):
        if abs(value) >= size:
            return f"{value / size:.{places}f}{unit}"
    return f"{value:.0f}"


def capital_text(c: CapitalView) -> str:
    """One strategy's allocation for a prompt: "50,000.00 (25%), uses 12,000.00 (24.0%)"."""
    used = "?" if c.used is None else f"{c.used:,.2f}"
    if c.allocation is None:
        return f"none (not limited by an allocation), uses {used}"
    given = f" ({c.given})" if c.given and c.given.endswith("%") else ""
    pct = "" if c.used_pct is None else f" ({c.used_pct:.1f}%)"
    return f"{c.allocation:,.2f}{given}, uses {used}{pct}"


def capital_lines(snap: EngineSnapshot) -> list[tuple[str, Cell]]:
    """The P&L pane's allocation block: per strategy the share of its allocation its gross
    exposure uses ("24% of 50.0k"; red beyond it), or that it has none. Empty while no
    strategy has an allocation (the default config), so the pane is as it was."""
    if not any(c.allocation is not None for c in snap.capital):
        return []
    lines: list[tuple[str, Cell]] = [("allocation", "used of")]
    for c in snap.capital:
        if c.allocation is None:
            lines.append((c.strategy, ("no allocation", "yellow") if c.enabled else ("no allocation", "dim")))
            continue
        if c.used_pct is not None:
            used = f"{c.used_pct.quantize(Decimal(1), ROUND_HALF_UP)}%"
        else:  # an allocation of 0 (only reducing orders pass), or a symbol without a mark
            used = "?" if c.used is None else short_money(c.used)
        figure = f"{used} of {short_money(c.allocation)}"
        over = c.used is not None and c.used > c.allocation
        lines.append((c.strategy, (figure, "bold red") if over else (figure, "") if c.enabled else (figure, "dim")))
    return lines


def pnl_figures(snap: EngineSnapshot) -> list[tuple[str, Cell]]:
    """The P&L pane's labelled figures, top to bottom."""
    rows = (("realized", snap.realized), ("unrealized", snap.unrealized), ("commissions", snap.commissions),
            ("net", snap.net), ("day", snap.day_pnl), ("max drawdown", -snap.max_drawdown),
            ("equity", snap.equity))
    return [(label, money(value)) for label, value in rows]
