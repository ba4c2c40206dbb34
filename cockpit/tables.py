"""Plain-text tables for the read-only CLI commands (rich, no Textual).

Every cell is plain text (a stored ``[/x]`` is shown, never read as rich markup), and a value
that is not a number where one is expected is shown as it came (``?`` from the readers).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

_MONEY = Decimal("0.01")
_PRICE = Decimal("0.0001")


def _rounded(text: Any, places: Decimal, grouped: bool) -> str:
    if text is None:
        return "-"
    try:
        with localcontext() as ctx:
            ctx.prec = 80  # the readers' widest sums round without an error
            value = Decimal(str(text)).quantize(places, ROUND_HALF_UP)
    except (InvalidOperation, ValueError, ArithmeticError):
        return str(text)
    return f"{value:,}" if grouped else f"{value}"


def _money(text: Any) -> Text:
    return Text(_rounded(text, _MONEY, grouped=True))


def _price(text: Any) -> Text:
    return Text(_rounded(text, _PRICE, grouped=False))


def _cell(value: Any, width: int | None = None) -> Text:
    shown = "" if value is None else str(value)
    return Text(shown[:width] if width is not None else shown)


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
            table.add_row(_cell(p["symbol"]), _cell(p["qty"]), _price(p["avg_cost"]), _price(p["last"]),
                          _money(p["market_value"]), _money(p["unrealized_pnl"]), _money(p["realized_pnl"]),
                          _money(p["commissions"]))
    elif command == "orders":
        table = Table(title="Orders")
        for col in ("id", "strategy", "symbol", "side", "qty", "filled", "type", "limit", "tif", "status",
                    "created", "reason"):
            table.add_column(col)
        for o in data:
            table.add_row(_cell(o["client_order_id"]), _cell(o["strategy"]), _cell(o["symbol"]), _cell(o["side"]),
                          _cell(o["qty"]), _cell(o["filled_qty"]), _cell(o["order_type"]),
                          _price(o["limit_price"]) if o["limit_price"] else "", _cell(o["tif"]), _cell(o["status"]),
                          _cell(o["created_at"], 19), _cell(o["reason"]))
    else:
        table = Table(title="Fills")
        for col in ("time", "exec id", "order", "strategy", "symbol", "side", "qty", "price", "comm", "realized"):
            table.add_column(col)
        for f in data:
            table.add_row(_cell(f["time"], 19), _cell(f["exec_id"]), _cell(f["client_order_id"]), _cell(f["strategy"]),
                          _cell(f["symbol"]), _cell(f["side"]), _cell(f["qty"]), _price(f["price"]),
                          _money(f["commission"]), _money(f["realized_pnl"]))
    console.print(table)


# ---- performance metrics and daily reports -------------------------------------------------

#: (label, key, how to show it) for `cockpit metrics`, top to bottom.
_METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("sessions", "sessions", "int"), ("first day", "first_day", "text"), ("last day", "last_day", "text"),
    ("start equity", "start_equity", "money"), ("end equity", "end_equity", "money"), ("P&L", "pnl", "money"),
    ("total return", "total_return", "pct"), ("annual return (CAGR)", "annual_return", "pct"),
    ("annual volatility", "annual_volatility", "pct"), ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"), ("Calmar", "calmar", "ratio"), ("max drawdown", "max_drawdown", "pct"),
    ("max drawdown $", "max_drawdown_money", "money"), ("max drawdown sessions", "max_drawdown_duration", "int"),
    ("drawdown peak", "max_drawdown_peak", "text"), ("drawdown trough", "max_drawdown_trough", "text"),
    ("recovered", "max_drawdown_recovered", "text"),
    ("longest drawdown sessions", "longest_drawdown_duration", "int"),
    ("best day", "best_day", "pct"), ("worst day", "worst_day", "pct"), ("exposure", "exposure", "pct"),
    ("trades (closed)", "trades", "int"), ("open trades", "open_trades", "int"), ("win rate", "win_rate", "pct"),
    ("profit factor", "profit_factor", "ratio"), ("expectancy $/trade", "expectancy", "money"),
    ("expectancy ratio", "expectancy_ratio", "ratio"), ("average win", "average_win", "money"),
    ("average loss", "average_loss", "money"), ("largest win", "largest_win", "money"),
    ("largest loss", "largest_loss", "money"), ("trades net", "trades_net", "money"),
    ("allocation", "allocated", "money"), ("allocation used", "allocation_used", "pct"),
)


def _figure(value: Any, how: str) -> Text:
    if value is None:
        return Text("-")
    if how == "money":
        return _money(value)
    if how in ("pct", "ratio") and isinstance(value, int | float):
        return Text(f"{value * 100:.2f}%" if how == "pct" else f"{value:.2f}")
    return _cell(value)


def metric_rows(data: dict[str, Any]) -> list[tuple[str, list[Text]]]:
    """Each metric's label and its value per column (the scope, then each strategy)."""
    scopes = [data] + ([] if data.get("scope") != "account" else list(data.get("strategies", {}).values()))
    return [(label, [_figure(s.get(key), how) for s in scopes]) for label, key, how in _METRIC_ROWS]


def render_metrics(data: dict[str, Any]) -> None:
    console = Console() if Console().is_terminal else Console(width=220)
    if not data.get("sessions") and not data.get("trades"):
        console.print("no performance yet: the first figures come with the first session close the engine runs "
                      "through (`cockpit report daily` lists them)")
        return
    source = data.get("source")
    title = f"Performance: {data.get('scope')}" + (f" (from {source})" if source else "")
    table = Table(title=title)
    table.add_column("metric")
    names = [str(data.get("scope"))] + ([] if data.get("scope") != "account" else list(data.get("strategies", {})))
    for name in names:
        table.add_column(name, justify="right")
    for label, cells in metric_rows(data):
        table.add_row(label, *cells)
    console.print(table)
    console.print(f"risk-free rate {data.get('risk_free_rate')}, {data.get('periods_per_year')} sessions a year; "
                  f"each strategy on {_rounded(data.get('strategy_base_equity'), _MONEY, grouped=True)} of capital")


def render_daily(data: list[dict[str, Any]], day: str | None) -> None:
    console = Console() if Console().is_terminal else Console(width=220)
    if not data:
        console.print(f"no daily report for {day}" if day else
                      "no daily reports yet: the engine writes one at each session close it runs through")
        return
    table = Table(title="Daily P&L")
    for col in ("date", "net", "net %", "realized", "unrealized", "comm", "equity", "orders", "fills", "refused",
                "trades", "max dd", "loss limit %", "breaks", "reconn", "data", "alerts w/e/c"):
        table.add_column(col, justify="left" if col == "date" else "right")
    for d in data:
        alerts = d.get("alerts", {})
        table.add_row(_cell(d.get("date", "") + (" ½" if d.get("half_day") else "")), _money(d.get("net")),
                      _money(d.get("net_pct")), _money(d.get("realized")), _money(d.get("unrealized")),
                      _money(d.get("commissions")), _money(d.get("equity_close")), _cell(d.get("orders")),
                      _cell(d.get("fills")), _cell(d.get("refusals")), _cell(d.get("trades_closed")),
                      _money(d.get("max_intraday_drawdown")), _money(d.get("loss_limit_used_pct")),
                      _cell(d.get("breaks_found")), _cell(d.get("reconnects")), _cell(d.get("data_incidents")),
                      _cell(f"{alerts.get('warning', 0)}/{alerts.get('error', 0)}/{alerts.get('critical', 0)}"))
    console.print(table)
    if len(data) != 1:
        return
    one = data[0]
    if one.get("strategies"):
        per = Table(title=f"Strategies {one.get('date')}")
        for col in ("strategy", "net", "realized", "unrealized", "comm", "orders", "fills", "refused", "trades",
                    "since start"):
            per.add_column(col, justify="left" if col == "strategy" else "right")
        for s in one["strategies"]:
            per.add_row(_cell(s.get("strategy")), _money(s.get("net")), _money(s.get("realized")),
                        _money(s.get("unrealized")), _money(s.get("commissions")), _cell(s.get("orders")),
                        _cell(s.get("fills")), _cell(s.get("refusals")), _cell(s.get("trades_closed")),
                        _money(s.get("cumulative")))
        console.print(per)
    if one.get("positions"):
        held = Table(title=f"Positions at the close {one.get('date')}")
        for col in ("symbol", "qty", "avg cost", "last", "value", "unrealized", "owners"):
            held.add_column(col, justify="left" if col in ("symbol", "owners") else "right")
        for p in one["positions"]:
            owners = ", ".join(f"{o} {q}" for o, q in (p.get("owners") or {}).items())
            held.add_row(_cell(p.get("symbol")), _cell(p.get("qty")), _price(p.get("avg_cost")), _price(p.get("last")),
                         _money(p.get("market_value")), _money(p.get("unrealized")), _cell(owners))
        console.print(held)
    for label, key in (("best trade", "best_trade"), ("worst trade", "worst_trade")):
        t = one.get(key)
        if isinstance(t, dict):
            console.print(Text(f"{label}: {t.get('strategy')} {t.get('direction')} {t.get('qty')} {t.get('symbol')} "
                               f"{_rounded(t.get('pnl'), _MONEY, grouped=True)}"))


def daily_cells(d: dict[str, Any]) -> list[str]:
    """One daily report as the TUI's row: date, net, net %, realized, unrealized, commissions,
    fills, trades closed, max intraday drawdown, daily loss limit used %."""
    return [d.get("date", "?") + (" ½" if d.get("half_day") else ""), _money(d.get("net")).plain,
            _money(d.get("net_pct")).plain, _money(d.get("realized")).plain, _money(d.get("unrealized")).plain,
            _money(d.get("commissions")).plain, str(d.get("fills", "?")), str(d.get("trades_closed", "?")),
            _money(d.get("max_intraday_drawdown")).plain, _money(d.get("loss_limit_used_pct")).plain]
