"""Read-only views of the store for the CLI: no engine needed, safe while one runs (WAL)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.domain.serialize import dec, money

ZERO = Decimal(0)


class NoState(Exception):
    """No store in the state dir yet."""


def connect_readonly(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise NoState(f"no cockpit state at {db.parent} (run `cockpit` first, or pass --state-dir DIR)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


def positions(conn: sqlite3.Connection, include_flat: bool = False) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute("SELECT * FROM positions ORDER BY symbol"):
        qty = Decimal(r["qty"])
        if qty == 0 and not include_flat:
            continue
        avg = Decimal(r["avg_cost"])
        last = Decimal(r["last_price"]) if r["last_price"] is not None else None
        unrealized = (last - avg) * qty if last is not None and qty else ZERO
        out.append({
            "symbol": r["symbol"],
            "qty": dec(qty),
            "avg_cost": money(avg),
            "last": dec(last) if last is not None else None,
            "market_value": money(last * qty) if last is not None else None,
            "unrealized_pnl": money(unrealized),
            "realized_pnl": money(Decimal(r["realized_pnl"])),
            "commissions": money(Decimal(r["commissions"])),
        })
    return out


def orders(conn: sqlite3.Connection, only_open: bool = False, limit: int = 0) -> list[dict[str, Any]]:
    sql = "SELECT * FROM orders"
    if only_open:
        sql += " WHERE status NOT IN ('FILLED', 'CANCELLED', 'REJECTED')"
    sql += " ORDER BY created_at DESC, rowid DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [
        {
            "client_order_id": r["client_order_id"], "strategy": r["strategy"], "symbol": r["symbol"],
            "side": r["side"], "qty": r["qty"], "order_type": r["order_type"], "tif": r["tif"],
            "limit_price": r["limit_price"], "status": r["status"], "filled_qty": r["filled_qty"],
            "avg_fill_price": r["avg_fill_price"], "broker_order_id": r["broker_order_id"],
            "reason": r["reason"], "created_at": r["created_at"], "updated_at": r["updated_at"],
        }
        for r in conn.execute(sql)
    ]


def fills(conn: sqlite3.Connection, limit: int = 0) -> list[dict[str, Any]]:
    sql = "SELECT * FROM fills ORDER BY seq DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = [
        {
            "exec_id": r["exec_id"], "client_order_id": r["client_order_id"], "strategy": r["strategy"],
            "symbol": r["symbol"], "side": r["side"], "qty": r["qty"], "price": r["price"],
            "commission": r["commission"], "realized_pnl": money(Decimal(r["realized_pnl"])), "time": r["ts"],
        }
        for r in conn.execute(sql)
    ]
    rows.reverse()
    return rows


def pnl(conn: sqlite3.Connection) -> dict[str, Any]:
    realized = unrealized = commissions = market_value = ZERO
    for p in positions(conn, include_flat=True):
        realized += Decimal(p["realized_pnl"])
        unrealized += Decimal(p["unrealized_pnl"])
        commissions += Decimal(p["commissions"])
        if p["market_value"] is not None:
            market_value += Decimal(p["market_value"])
    acct = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM account")}
    cash = Decimal(acct.get("cash", "0"))
    return {
        "realized": money(realized),
        "unrealized": money(unrealized),
        "commissions": money(commissions),
        "net": money(realized + unrealized - commissions),
        "cash": money(cash),
        "equity": money(cash + market_value),
        "starting_cash": acct.get("starting_cash"),
    }
