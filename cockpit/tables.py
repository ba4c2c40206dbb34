"""Plain-text tables for the read-only CLI commands (rich, no Textual).

Every cell is plain text (a stored ``[/x]`` is shown, never read as rich markup), and a value
that is not a number where one is expected is shown as it came (``?`` from the readers).

Output that is not a terminal (a pipe, a script, a file) is written here as rich writes it there
(``_plain``: its box lines, widths, padding and centred titles; no styles) without importing
rich, which took about 40 ms of a command's 100: whenever something could come out otherwise
(a table wider than the page, a title rich would read as markup or an emoji code, a character
outside Latin-1, a terminal, an encoding that is not UTF-8), rich writes it, as before.
tests/test_tables_plain.py compares the two on real answers and on random tables.
"""

from __future__ import annotations

import os
import re
import sys
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.text import Text

_MONEY = Decimal("0.01")
_PRICE = Decimal("0.0001")
_WIDE = Context(prec=80)  # the readers' widest sums round without an error (one context, not one per cell)


def _rounded(text: Any, places: Decimal, grouped: bool) -> str:
    if text is None:
        return "-"
    try:
        value = Decimal(str(text)).quantize(places, ROUND_HALF_UP, context=_WIDE)
    except (InvalidOperation, ValueError, ArithmeticError):
        return str(text)
    return f"{value:,}" if grouped else f"{value}"


def _money(text: Any) -> str:
    return _rounded(text, _MONEY, grouped=True)


def _price(text: Any) -> str:
    return _rounded(text, _PRICE, grouped=False)


def _cell(value: Any, width: int | None = None) -> str:
    shown = "" if value is None else str(value)
    return shown[:width] if width is not None else shown


# ---- what a command prints, written plainly or through rich -------------------------------


class _Table(NamedTuple):
    title: str
    columns: list[tuple[str, str]]  # (header, "left" | "right")
    rows: list[list[str]]
    show_header: bool = True


class _Line(NamedTuple):
    text: str
    markup: bool  # printed as a string (rich reads markup and emoji codes in it) rather than as Text


_WIDTH = 220  # the page when the output is not a terminal (piped or captured: not squeezed to 80 columns)
_MARKUP = re.compile(r"\[|:\S*?:")  # what rich might read as a markup tag or an emoji code
_LATIN = re.compile("[ -~\xa1-\xac\xae-\xff]*")  # printable ASCII and Latin-1 but NBSP and the soft hyphen


def _plain_text(text: str) -> bool:
    """One line rich shows as it is: printable ASCII or Latin-1 (one column per character; no NBSP,
    no soft hyphen), and no space at either end (rich trims those when it justifies a cell)."""
    return _LATIN.fullmatch(text) is not None and text[:1] != " " and text[-1:] != " "


def _not_a_terminal() -> bool:
    """rich's own test (Console.is_terminal) says no, and its boxes would be drawn in UTF-8."""
    out = sys.stdout
    if not (getattr(out, "encoding", None) or "utf-8").lower().startswith("utf"):
        return False
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "0"
    if os.environ.get("FORCE_COLOR") is not None:
        return False  # forced colours: rich treats the output as a terminal, unless FORCE_COLOR is empty
    isatty = getattr(out, "isatty", None)
    try:
        return isatty is not None and not isatty()
    except ValueError:
        return False


def _plain_table(t: _Table) -> str | None:
    """The table as rich draws it at ``_WIDTH`` columns without styles, or None if it might differ."""
    shown = [h for h, _ in t.columns] if t.show_header else []
    # the title and the headers are text rich reads markup and emoji codes in (the cells are Text)
    if any(not _plain_text(x) or _MARKUP.search(x) for x in (t.title, *shown)):
        return None
    widths = [len(h) if t.show_header else 0 for h, _ in t.columns]
    for row in t.rows:
        if len(row) != len(widths):
            return None
        for i, cell in enumerate(row):
            if not _plain_text(cell):
                return None
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    total = sum(widths) + 3 * len(widths) + 1
    if not widths or min(widths) == 0 or total > _WIDTH or len(t.title) > total:
        return None  # an empty column (rich sizes those otherwise), too wide, or a title that would wrap

    def line(cells: list[str], bar: str) -> str:
        parts = [f" {c.rjust(w) if j == 'right' else c.ljust(w)} " for c, w, (_, j) in zip(cells, widths, t.columns,
                                                                                         strict=True)]
        return bar + bar.join(parts) + bar

    out = []
    if t.title:
        left = (total - len(t.title)) // 2
        out.append(" " * left + t.title + " " * (total - len(t.title) - left))
    if t.show_header:
        out.append("\u250f" + "\u2533".join("\u2501" * (w + 2) for w in widths) + "\u2513")
        out.append(line(shown, "\u2503"))
        out.append("\u2521" + "\u2547".join("\u2501" * (w + 2) for w in widths) + "\u2529")
    else:
        out.append("\u250c" + "\u252c".join("\u2500" * (w + 2) for w in widths) + "\u2510")
    out.extend(line(row, "\u2502") for row in t.rows)
    out.append("\u2514" + "\u2534".join("\u2500" * (w + 2) for w in widths) + "\u2518")
    return "\n".join(out) + "\n"


def _plain(blocks: list[_Table | _Line]) -> str | None:
    out = []
    for b in blocks:
        if isinstance(b, _Table):
            text = _plain_table(b)
            if text is None:
                return None
            out.append(text)
        elif len(b.text) > _WIDTH or not _plain_text(b.text) or (b.markup and _MARKUP.search(b.text)):
            return None
        else:
            out.append(b.text + "\n")
    return "".join(out)


def _emit(blocks: list[_Table | _Line]) -> None:
    """Print ``blocks``: plainly when that is what rich would print, else through rich."""
    if _not_a_terminal():
        text = _plain(blocks)
        if text is not None:
            sys.stdout.write(text)
            return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        console = Console(width=_WIDTH)  # piped or captured: do not squeeze to 80 columns
    for b in blocks:
        if isinstance(b, _Line):
            console.print(b.text if b.markup else Text(b.text))
            continue
        table = Table(title=b.title, show_header=b.show_header)
        for header, justify in b.columns:
            table.add_column(header, justify="right" if justify == "right" else "left")
        for row in b.rows:
            table.add_row(*(Text(c) for c in row))
        console.print(table)


def render(command: str, data: Any) -> None:
    if command == "pnl":
        rows = [[key, _money(data.get(key))] for key in ("realized", "unrealized", "commissions", "net", "cash",
                                                          "equity", "starting_cash")]
        _emit([_Table("P&L", [("item", "left"), ("value", "right")], rows, show_header=False)])
        return
    if not data:
        _emit([_Line(f"no {command}", markup=True)])
        return
    if command == "positions":
        columns = [(col, "left" if col == "symbol" else "right") for col in
                   ("symbol", "qty", "avg cost", "last", "market value", "unrealized", "realized", "comm")]
        rows = [[_cell(p["symbol"]), _cell(p["qty"]), _price(p["avg_cost"]), _price(p["last"]),
                 _money(p["market_value"]), _money(p["unrealized_pnl"]), _money(p["realized_pnl"]),
                 _money(p["commissions"])] for p in data]
        table = _Table("Positions", columns, rows)
    elif command == "orders":
        columns = [(col, "left") for col in ("id", "strategy", "symbol", "side", "qty", "filled", "type", "limit", "tif",
                                             "status", "created", "reason")]
        rows = [[_cell(o["client_order_id"]), _cell(o["strategy"]), _cell(o["symbol"]), _cell(o["side"]),
                 _cell(o["qty"]), _cell(o["filled_qty"]), _cell(o["order_type"]),
                 _price(o["limit_price"]) if o["limit_price"] else "", _cell(o["tif"]), _cell(o["status"]),
                 _cell(o["created_at"], 19), _cell(o["reason"])] for o in data]
        table = _Table("Orders", columns, rows)
    else:
        columns = [(col, "left") for col in ("time", "exec id", "order", "strategy", "symbol", "side", "qty", "price",
                                             "comm", "realized")]
        rows = [[_cell(f["time"], 19), _cell(f["exec_id"]), _cell(f["client_order_id"]), _cell(f["strategy"]),
                 _cell(f["symbol"]), _cell(f["side"]), _cell(f["qty"]), _price(f["price"]), _money(f["commission"]),
                 _money(f["realized_pnl"])] for f in data]
        table = _Table("Fills", columns, rows)
    _emit([table])


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


def _figure(value: Any, how: str) -> str:
    if value is None:
        return "-"
    if how == "money":
        return _money(value)
    if how in ("pct", "ratio") and isinstance(value, int | float):
        return f"{value * 100:.2f}%" if how == "pct" else f"{value:.2f}"
    return _cell(value)


def _metric_cells(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    scopes = [data] + ([] if data.get("scope") != "account" else list(data.get("strategies", {}).values()))
    return [(label, [_figure(s.get(key), how) for s in scopes]) for label, key, how in _METRIC_ROWS]


def metric_rows(data: dict[str, Any]) -> list[tuple[str, list[Text]]]:
    """Each metric's label and its value per column (the scope, then each strategy)."""
    from rich.text import Text

    return [(label, [Text(c) for c in cells]) for label, cells in _metric_cells(data)]


def render_metrics(data: dict[str, Any]) -> None:
    if not data.get("sessions") and not data.get("trades"):
        _emit([_Line("no performance yet: the first figures come with the first session close the engine runs "
                     "through (`cockpit report daily` lists them)", markup=True)])
        return
    source = data.get("source")
    title = f"Performance: {data.get('scope')}" + (f" (from {source})" if source else "")
    names = [str(data.get("scope"))] + ([] if data.get("scope") != "account" else list(data.get("strategies", {})))
    columns = [("metric", "left")] + [(name, "right") for name in names]
    rows = [[label, *cells] for label, cells in _metric_cells(data)]
    _emit([_Table(title, columns, rows),
           _Line(f"risk-free rate {data.get('risk_free_rate')}, {data.get('periods_per_year')} sessions a year; "
                 f"each strategy on {_rounded(data.get('strategy_base_equity'), _MONEY, grouped=True)} of capital",
                 markup=True)])


def render_daily(data: list[dict[str, Any]], day: str | None) -> None:
    if not data:
        _emit([_Line(f"no daily report for {day}" if day else
                     "no daily reports yet: the engine writes one at each session close it runs through", markup=True)])
        return
    columns = [(col, "left" if col == "date" else "right") for col in
               ("date", "net", "net %", "realized", "unrealized", "comm", "equity", "orders", "fills", "refused",
                "trades", "max dd", "loss limit %", "breaks", "reconn", "data", "alerts w/e/c")]
    rows = []
    for d in data:
        alerts = d.get("alerts", {})
        rows.append([_cell(d.get("date", "") + (" \u00bd" if d.get("half_day") else "")), _money(d.get("net")),
                     _money(d.get("net_pct")), _money(d.get("realized")), _money(d.get("unrealized")),
                     _money(d.get("commissions")), _money(d.get("equity_close")), _cell(d.get("orders")),
                     _cell(d.get("fills")), _cell(d.get("refusals")), _cell(d.get("trades_closed")),
                     _money(d.get("max_intraday_drawdown")), _money(d.get("loss_limit_used_pct")),
                     _cell(d.get("breaks_found")), _cell(d.get("reconnects")), _cell(d.get("data_incidents")),
                     _cell(f"{alerts.get('warning', 0)}/{alerts.get('error', 0)}/{alerts.get('critical', 0)}")])
    blocks: list[_Table | _Line] = [_Table("Daily P&L", columns, rows)]
    if len(data) == 1:
        one = data[0]
        if one.get("strategies"):
            columns = [(col, "left" if col == "strategy" else "right") for col in
                       ("strategy", "net", "realized", "unrealized", "comm", "orders", "fills", "refused", "trades",
                        "since start")]
            rows = [[_cell(s.get("strategy")), _money(s.get("net")), _money(s.get("realized")),
                     _money(s.get("unrealized")), _money(s.get("commissions")), _cell(s.get("orders")),
                     _cell(s.get("fills")), _cell(s.get("refusals")), _cell(s.get("trades_closed")),
                     _money(s.get("cumulative"))] for s in one["strategies"]]
            blocks.append(_Table(f"Strategies {one.get('date')}", columns, rows))
        if one.get("positions"):
            columns = [(col, "left" if col in ("symbol", "owners") else "right") for col in
                       ("symbol", "qty", "avg cost", "last", "value", "unrealized", "owners")]
            rows = []
            for p in one["positions"]:
                owners = ", ".join(f"{o} {q}" for o, q in (p.get("owners") or {}).items())
                rows.append([_cell(p.get("symbol")), _cell(p.get("qty")), _price(p.get("avg_cost")),
                             _price(p.get("last")), _money(p.get("market_value")), _money(p.get("unrealized")),
                             _cell(owners)])
            blocks.append(_Table(f"Positions at the close {one.get('date')}", columns, rows))
        for label, key in (("best trade", "best_trade"), ("worst trade", "worst_trade")):
            t = one.get(key)
            if isinstance(t, dict):
                blocks.append(_Line(f"{label}: {t.get('strategy')} {t.get('direction')} {t.get('qty')} "
                                    f"{t.get('symbol')} {_rounded(t.get('pnl'), _MONEY, grouped=True)}", markup=False))
    _emit(blocks)


def daily_cells(d: dict[str, Any]) -> list[str]:
    """One daily report as the TUI's row: date, net, net %, realized, unrealized, commissions,
    fills, trades closed, max intraday drawdown, daily loss limit used %."""
    return [d.get("date", "?") + (" \u00bd" if d.get("half_day") else ""), _money(d.get("net")),
            _money(d.get("net_pct")), _money(d.get("realized")), _money(d.get("unrealized")),
            _money(d.get("commissions")), str(d.get("fills", "?")), str(d.get("trades_closed", "?")),
            _money(d.get("max_intraday_drawdown")), _money(d.get("loss_limit_used_pct"))]
