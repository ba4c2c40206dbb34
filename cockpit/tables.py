"""Plain-text tables for the read-only CLI commands (rich, no Textual)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

_MONEY = Decimal("0.01")


def _money(text: str | None) -> str:
    if text is None:
        return "-"
    return f"{Decimal(text).quantize(_MONEY, ROUND_HALF_UP):,}"


def _price(text: str | None) -> str:
    if text is None:
        return "-"
    return f"{Decimal(text).quantize(Decimal('0.0001'), ROUND_HALF_UP)}"


def render(command: str, data: Any) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # piped or captured: do not squeeze to 80 columns
    if command == "pnl":
        table = Table(title="P&L", show_header=False)
        table.add_column("item")
        table.add_column("value", justify="right")
        for key in ("realized", "unrealized", "commissions", "net", "cash", "equity", "starting_cash"):
            table.add_row(key, _money(data.get(key)))
        console.print(table)
        return
    if not data:
        console.print(f"no {command}")
        return
    if command == "positions":
        table = Table(title="Positions")
        for col in ("symbol", "qty", "avg cost", "last", "market value", "unrealized", "realized", "comm"):
            table.add_column(col, justify="left" if col == "symbol" else "right")
        for p in data:
            table.add_row(p["symbol"], p["qty"], _price(p["avg_cost"]), _price(p["last"]),
                          _money(p["market_value"]), _money(p["unrealized_pnl"]), _money(p["realized_pnl"]),
                          _money(p["commissions"]))
    elif command == "orders":
        table = Table(title="Orders")
        for col in ("id", "strategy", "symbol", "side", "qty", "filled", "type", "limit", "tif", "status",
                    "created", "reason"):
            table.add_column(col)
        for o in data:
            table.add_row(o["client_order_id"], o["strategy"], o["symbol"], o["side"], o["qty"], o["filled_qty"],
                          o["order_type"], _price(o["limit_price"]) if o["limit_price"] else "", o["tif"],
                          o["status"], o["created_at"][:19], o["reason"] or "")
    else:
        table = Table(title="Fills")
        for col in ("time", "exec id", "order", "strategy", "symbol", "side", "qty", "price", "comm", "realized"):
            table.add_column(col)
        for f in data:
            table.add_row(f["time"][:19], f["exec_id"], f["client_order_id"], f["strategy"], f["symbol"],
                          f["side"], f["qty"], _price(f["price"]), _money(f["commission"]),
                          _money(f["realized_pnl"]))
    console.print(table)
