"""The daily summary in words: a title, a plain-text body (Discord, the log, a text mail) and
an HTML body (the mail's rich part). Money to the cent with its sign, percentages of the
equity at the previous close; every stored text is escaped in the HTML."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

from core.domain.daily_summary import DailySummary, TradeLine
from core.domain.text import money, price, qty

_PCT = Decimal("0.01")


def signed(value: Decimal) -> str:
    """``+1,234.50``, ``-80.00``, ``0.00``."""
    shown = money(value)  # to the cent: "0.00" is what rounds to zero
    if shown == "0.00" or shown.startswith("-"):
        return shown
    return f"+{shown}" if shown[0].isdigit() else shown  # NaN, infinity: shown as they are


def pct(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    rounded = value.quantize(_PCT, rounding=ROUND_HALF_EVEN)
    return f"{'+' if rounded > 0 else ''}{rounded}%"


def title(s: DailySummary) -> str:
    return f"Daily P&L {s.date.isoformat()}: {signed(s.net)} ({pct(s.net_pct)})"


def _session(s: DailySummary) -> str:
    close = s.session_close.strftime("%H:%M UTC")
    return f"{s.calendar} session {s.date.isoformat()}, closed {close}" + (" (half day)" if s.half_day else "")


def _trade(t: TradeLine | None) -> str:
    if t is None:
        return "none"
    return f"{t.strategy} {t.direction} {qty(t.qty)} {t.symbol} {signed(t.pnl)}"


def _alerts(s: DailySummary) -> str:
    return ", ".join(f"{name} {count}" for name, count in s.alerts)


def plain(s: DailySummary) -> str:
    lines = [
        _session(s),
        f"Net P&L {signed(s.net)} ({pct(s.net_pct)} of equity {money(s.equity_open)}); equity at the close "
        f"{money(s.equity_close)}",
        f"  realized {signed(s.realized)} ({pct(s.realized_pct)}), unrealized {signed(s.unrealized)} "
        f"({pct(s.unrealized_pct)}), total {signed(s.total)} ({pct(s.total_pct)}), commissions "
        f"{money(s.commissions)}",
        f"Orders {s.orders}, fills {s.fills}, adjustments {s.adjustments}, refusals {s.refusals}, "
        f"rejected {s.rejected}, trades closed {s.trades_closed}",
        f"Best trade {_trade(s.best_trade)}; worst trade {_trade(s.worst_trade)}",
        f"Max intraday drawdown {money(s.max_intraday_drawdown)} ({pct(s.max_intraday_drawdown_pct)}; "
        f"{s.drawdown_samples} equity samples)",
        f"Daily loss limit used {pct(s.loss_limit_used_pct)} of {money(s.daily_loss_limit)}"
        + (" (HIT: trading moved off ACTIVE)" if s.loss_limit_hit else "") + f"; trading {s.trading_state}",
        f"Breaks found {s.breaks_found}, resolved {s.breaks_resolved}; disconnects {s.disconnects}, "
        f"reconnects {s.reconnects}; data-quality incidents {s.data_incidents}",
        f"Alerts: {_alerts(s)}" + (f"; engine starts today {s.engine_starts}" if s.engine_starts else ""),
    ]
    if s.strategies:
        lines.append("Strategies:")
        for r in s.strategies:
            lines.append(f"  {r.strategy}: net {signed(r.net)} ({pct(r.net_pct)}), realized {signed(r.realized)}, "
                         f"unrealized {signed(r.unrealized)}, commissions {money(r.commissions)}; orders {r.orders}, "
                         f"fills {r.fills}, refusals {r.refusals}, trades closed {r.trades_closed}; "
                         f"since start {signed(r.cumulative)}")
    if s.positions:
        lines.append("Positions at the close:")
        for p in s.positions:
            owners = ", ".join(f"{o} {qty(q)}" for o, q in p.owners)
            lines.append(f"  {p.symbol} {qty(p.qty)} @ {price(p.avg_cost)}, last {price(p.last)}, value "
                         f"{money(p.market_value)}, unrealized {signed(p.unrealized)}" + (f" ({owners})" if owners else ""))
    else:
        lines.append("Positions at the close: flat")
    return "\n".join(lines)


_SPECIAL = re.compile(r"[&<>\"']")  # what html.escape changes: text without any is left as it is
_CELL = '<td style="padding:2px 8px">', "</td>"
_HEAD = '<th style="text-align:left;padding:2px 8px">', "</th>"


def _escape(text: str) -> str:
    """``html.escape(text)``, without its five passes over text that needs none (every figure)."""
    return escape(text) if _SPECIAL.search(text) else text


def _row(cells: list[str], header: bool = False) -> str:
    opening, closing = _HEAD if header else _CELL
    return "<tr>" + "".join([opening + _escape(c) + closing for c in cells]) + "</tr>"


def html(s: DailySummary) -> str:
    figures = [
        ("Net P&L", f"{signed(s.net)} ({pct(s.net_pct)})"),
        ("Realized", f"{signed(s.realized)} ({pct(s.realized_pct)})"),
        ("Unrealized (change)", f"{signed(s.unrealized)} ({pct(s.unrealized_pct)})"),
        ("Total before commissions", f"{signed(s.total)} ({pct(s.total_pct)})"),
        ("Commissions", money(s.commissions)),
        ("Equity at the previous close", money(s.equity_open)),
        ("Equity at the close", money(s.equity_close)),
        ("Orders / fills / refusals / rejected", f"{s.orders} / {s.fills} / {s.refusals} / {s.rejected}"),
        ("Trades closed", str(s.trades_closed)),
        ("Best trade", _trade(s.best_trade)),
        ("Worst trade", _trade(s.worst_trade)),
        ("Max intraday drawdown", f"{money(s.max_intraday_drawdown)} ({pct(s.max_intraday_drawdown_pct)})"),
        ("Daily loss limit used", f"{pct(s.loss_limit_used_pct)} of {money(s.daily_loss_limit)}"
                                  + (" (hit)" if s.loss_limit_hit else "")),
        ("Trading state", s.trading_state),
        ("Breaks found / resolved", f"{s.breaks_found} / {s.breaks_resolved}"),
        ("Disconnects / reconnects", f"{s.disconnects} / {s.reconnects}"),
        ("Data-quality incidents", str(s.data_incidents)),
        ("Alerts", _alerts(s)),
    ]
    parts = [f"<h2>{_escape(title(s))}</h2>", f"<p>{_escape(_session(s))}</p>",
             "<table>" + "".join(_row([k, v]) for k, v in figures) + "</table>"]
    if s.strategies:
        parts.append("<h3>Strategies</h3><table>" + _row(
            ["strategy", "net", "realized", "unrealized", "commissions", "orders", "fills", "refusals",
             "trades", "since start"], header=True) + "".join(_row(
                 [r.strategy, signed(r.net), signed(r.realized), signed(r.unrealized), money(r.commissions),
                  str(r.orders), str(r.fills), str(r.refusals), str(r.trades_closed), signed(r.cumulative)])
                 for r in s.strategies) + "</table>")
    if s.positions:
        parts.append("<h3>Positions at the close</h3><table>" + _row(
            ["symbol", "qty", "avg cost", "last", "value", "unrealized", "owners"], header=True) + "".join(_row(
                [p.symbol, qty(p.qty), price(p.avg_cost), price(p.last), money(p.market_value), signed(p.unrealized),
                 ", ".join(f"{o} {qty(q)}" for o, q in p.owners)]) for p in s.positions) + "</table>")
    else:
        parts.append("<p>Flat at the close.</p>")
    return "<html><body>" + "".join(parts) + "</body></html>"
