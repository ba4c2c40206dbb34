"""The daily summary in words: a title, a plain-text body (Discord, the log, a text mail) and
an HTML body (the mail's rich part). Money to the cent with its sign, percentages of the
equity at the previous close; every stored text is escaped in the HTML."""

from __future__ import annotations

import re
from decimal import Decimal
from html import escape

from core.domain import daily_summary_numbers as numbers
from core.domain import text
from core.domain.alert import Alert, Severity
from core.domain.daily_summary import DailySummary, TradeLine
from core.domain.daily_summary_numbers import Remembered, pct, signed
from core.domain.daily_summary_numbers import money_text as money
from core.domain.text import qty

__all__ = ["alert", "html", "pct", "plain", "signed", "title"]

_price = Remembered(text.price)  # at the default increment (a cent), as the lines below use it


def price(value: Decimal | None) -> str:
    """``text.price(value)``: ``18.46``, ``-`` when unknown."""
    return "-" if value is None else _price(value)


def title(s: DailySummary) -> str:
    net, net_pct = s.net, s.net_pct
    return _title(s, signed.get(net) or signed.make(net),
                  "n/a" if net_pct is None else numbers.pct_text.get(net_pct) or numbers.pct_text.make(net_pct))


def _title(s: DailySummary, net: str, net_pct: str) -> str:
    return f"Daily P&L {s.date.isoformat()}: {net} ({net_pct})"


def alert(s: DailySummary, *, html: bool = True) -> Alert:
    """The summary as an alert (``DailySummaryReady.alert``); ``html=False`` leaves the HTML body
    out (no sink shows it)."""
    sg, SG = signed.get, signed.make
    net, net_pct, realized, unrealized = s.net, s.net_pct, s.realized, s.unrealized
    net_text = sg(net) or SG(net)
    pct_text = "n/a" if net_pct is None else numbers.pct_text.get(net_pct) or numbers.pct_text.make(net_pct)
    commissions, equity = s.commissions, s.equity_close
    return Alert(
        "daily.summary", Severity.INFO, _title(s, net_text, pct_text), plain(s), f"daily.summary:{s.date.isoformat()}",
        s.session_close,
        (("net", net_text), ("net %", pct_text), ("realized", sg(realized) or SG(realized)),
         ("unrealized", sg(unrealized) or SG(unrealized)),
         ("commissions", money.get(commissions) or money.make(commissions)), ("fills", str(s.fills)),
         ("equity", money.get(equity) or money.make(equity))),
        html=_html(s) if html else None,
    )


def _session(s: DailySummary) -> str:
    c = s.session_close
    close = f"{c.hour:02d}:{c.minute:02d} UTC"  # strftime("%H:%M UTC"), a tenth of its cost
    return f"{s.calendar} session {s.date.isoformat()}, closed {close}" + (" (half day)" if s.half_day else "")


def _trade(t: TradeLine | None) -> str:
    if t is None:
        return "none"
    return f"{t.strategy} {t.direction} {qty(t.qty)} {t.symbol} {signed(t.pnl)}"


def _alerts(s: DailySummary) -> str:
    return ", ".join(f"{name} {count}" for name, count in s.alerts)


def plain(s: DailySummary) -> str:
    # The numbers' remembered text is read inline (``get(v) or make(v)``: see daily_summary_numbers);
    # tests/test_daily_summary_json.py holds the straightforward wording this must equal.
    sg, SG = signed.get, signed.make
    mg, MG = money.get, money.make
    pg, PG = numbers.pct_text.get, numbers.pct_text.make
    net, realized, unrealized, total = s.net, s.realized, s.unrealized, s.total
    net_pct, realized_pct, unrealized_pct, total_pct = s.net_pct, s.realized_pct, s.unrealized_pct, s.total_pct
    dd_pct, used = s.max_intraday_drawdown_pct, s.loss_limit_used_pct
    eo, ec, cm, dd, lim = s.equity_open, s.equity_close, s.commissions, s.max_intraday_drawdown, s.daily_loss_limit
    na = "n/a"
    lines = [
        _session(s),
        f"Net P&L {sg(net) or SG(net)} ({na if net_pct is None else pg(net_pct) or PG(net_pct)} of equity "
        f"{mg(eo) or MG(eo)}); equity at the close {mg(ec) or MG(ec)}",
        f"  realized {sg(realized) or SG(realized)} ({na if realized_pct is None else pg(realized_pct) or PG(realized_pct)}), "
        f"unrealized {sg(unrealized) or SG(unrealized)} "
        f"({na if unrealized_pct is None else pg(unrealized_pct) or PG(unrealized_pct)}), "
        f"total {sg(total) or SG(total)} ({na if total_pct is None else pg(total_pct) or PG(total_pct)}), "
        f"commissions {mg(cm) or MG(cm)}",
        f"Orders {s.orders}, fills {s.fills}, adjustments {s.adjustments}, refusals {s.refusals}, "
        f"rejected {s.rejected}, trades closed {s.trades_closed}",
        "Best trade none; worst trade none" if s.best_trade is None and s.worst_trade is None else
        f"Best trade {_trade(s.best_trade)}; worst trade {_trade(s.worst_trade)}",
        f"Max intraday drawdown {mg(dd) or MG(dd)} ({na if dd_pct is None else pg(dd_pct) or PG(dd_pct)}; "
        f"{s.drawdown_samples} equity samples)",
        f"Daily loss limit used {pg(used) or PG(used)} of {mg(lim) or MG(lim)}"
        + (" (HIT: trading moved off ACTIVE)" if s.loss_limit_hit else "") + f"; trading {s.trading_state}",
        f"Breaks found {s.breaks_found}, resolved {s.breaks_resolved}; disconnects {s.disconnects}, "
        f"reconnects {s.reconnects}; data-quality incidents {s.data_incidents}",
        f"Alerts: {_alerts(s)}" + (f"; engine starts today {s.engine_starts}" if s.engine_starts else ""),
    ]
    if s.strategies:
        lines.append("Strategies:")
        for r in s.strategies:
            rn, rr, ru, rc, rcum, rp = r.net, r.realized, r.unrealized, r.commissions, r.cumulative, r.net_pct
            lines.append(f"  {r.strategy}: net {sg(rn) or SG(rn)} ({na if rp is None else pg(rp) or PG(rp)}), "
                         f"realized {sg(rr) or SG(rr)}, unrealized {sg(ru) or SG(ru)}, commissions {mg(rc) or MG(rc)}; "
                         f"orders {r.orders}, fills {r.fills}, refusals {r.refusals}, trades closed {r.trades_closed}; "
                         f"since start {sg(rcum) or SG(rcum)}")
    if s.positions:
        lines.append("Positions at the close:")
        for p in s.positions:
            owners = ", ".join(f"{o} {qty(q)}" for o, q in p.owners)
            mv, pu = p.market_value, p.unrealized
            lines.append(f"  {p.symbol} {qty(p.qty)} @ {price(p.avg_cost)}, last {price(p.last)}, value "
                         f"{mg(mv) or MG(mv)}, unrealized {sg(pu) or SG(pu)}" + (f" ({owners})" if owners else ""))
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
    return _html(s)


def _html(s: DailySummary) -> str:
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
