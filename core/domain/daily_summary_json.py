"""The daily summary's stored JSON, written directly: ``summary_json(s)`` is exactly
``json.dumps(s.to_json(), sort_keys=True)`` (the text ``daily_reports.summary`` holds), without
building the dict of dicts first.

A replay of a daily file closes a session on every bar, so this text is written once per bar:
through the generic path (``to_json``, then the JSON encoder sorting every level's keys) it was
a visible share of a replay. Here the keys are laid out once, in sorted order, into ``%``
templates; each value is the same text ``to_json`` makes (``money``, ``dec``, ISO times), quoted
as the encoder quotes it (strings through the encoder's own ``encode_basestring_ascii``, so a
name with a quote or a non-ASCII letter is escaped the same way). tests/test_daily_summary_json.py
checks the two agree on drawn summaries (one at a time and in drawn sequences of days), and
tests/test_replay_same_store.py that a replay's stored rows are byte for byte what they were.

Day after day most values stay what they were (a quiet day's counts, alerts, realized P&L,
limit and state; a position's quantity, cost and owners; a strategy's counts): those are written
into a template once, kept by their values, and each day fills in only the values that moved.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple, TypeVar

from core.domain.daily_summary import SEVERITIES, DailySummary, PositionLine, StrategyLine, TradeLine
from core.domain.daily_summary_numbers import dec, fresh_dec, fresh_money

__all__ = ["SummaryTexts", "summary_json", "summary_texts"]

T = TypeVar("T")

_quote = json.encoder.encode_basestring_ascii  # json.dumps's own (the C one when available)


def _template(keys: dict[str, str]) -> str:
    """``{"key": <slot>, ...}`` with the keys sorted as ``sort_keys`` sorts them; a slot is
    ``%s`` (already JSON: quoted money, numbers, null, objects) or ``"%s"`` (text that needs no
    escaping: decimal quantities, ISO times)."""
    return "{" + ", ".join(f"{_quote(k)}: {keys[k]}" for k in sorted(keys)) + "}"


_TEXT, _RAW = '"%s"', "%s"

# Each template's slots are filled in the sorted order of its keys: the functions below follow it.
_TRADE = _template({"strategy": _RAW, "symbol": _RAW, "direction": _RAW, "qty": _TEXT, "pnl": _RAW,
                    "opened_at": _TEXT, "closed_at": _TEXT})
_POSITION = _template({"symbol": _RAW, "qty": _TEXT, "avg_cost": _RAW, "last": _RAW, "market_value": _RAW,
                       "unrealized": _RAW, "owners": _RAW})
_STRATEGY = _template({k: _RAW for k in ("strategy", "realized", "unrealized", "commissions", "net", "net_pct",
                                          "cumulative", "orders", "fills", "refusals", "trades_closed",
                                          "market_value", "open_positions")})
_SUMMARY_KEYS = {k: _RAW for k in (
    "calendar", "half_day", "equity_open", "equity_close", "realized", "unrealized", "commissions", "total",
    "net", "realized_pct", "unrealized_pct", "total_pct", "net_pct", "orders", "fills", "adjustments", "refusals",
    "rejected", "trades_closed", "best_trade", "worst_trade", "max_intraday_drawdown", "max_intraday_drawdown_pct",
    "drawdown_samples", "daily_loss_limit", "worst_day_pnl", "loss_limit_used_pct", "loss_limit_hit",
    "trading_state", "breaks_found", "breaks_resolved", "disconnects", "reconnects", "data_incidents", "alerts",
    "engine_starts", "positions", "strategies")}
_SUMMARY_KEYS.update({"date": _TEXT, "session_open": _TEXT, "session_close": _TEXT})
_SUMMARY = _template(_SUMMARY_KEYS)
_ORDER = tuple(sorted(_SUMMARY_KEYS))
assert _ORDER == (  # summary_json's values follow this order
    "adjustments", "alerts", "best_trade", "breaks_found", "breaks_resolved", "calendar", "commissions",
    "daily_loss_limit", "data_incidents", "date", "disconnects", "drawdown_samples", "engine_starts", "equity_close",
    "equity_open", "fills", "half_day", "loss_limit_hit", "loss_limit_used_pct", "max_intraday_drawdown",
    "max_intraday_drawdown_pct", "net", "net_pct", "orders", "positions", "realized", "realized_pct", "reconnects",
    "refusals", "rejected", "session_close", "session_open", "strategies", "total", "total_pct", "trades_closed",
    "trading_state", "unrealized", "unrealized_pct", "worst_day_pnl", "worst_trade")
_SORTED_SEVERITIES = tuple(sorted(SEVERITIES))


# Money as quoted JSON text, made each time (core/domain/daily_summary_numbers.py): nearly every
# figure is new this session, and the look-up in a table of texts (a new Decimal's first hash)
# cost more than writing it. Equal figures of one summary (the net, the total and the unrealized
# of a day without fills; their percentages) are written once (the text depends on the value only).
def _m(value: Decimal) -> str:
    return f'"{fresh_money(value)}"'


# A session's open and close are the calendar's own UTC datetimes, written at every close: a
# new day each time, but only a few times of day (a regular close, a half day's, DST). The text
# is the date's ISO text and the time of day's, remembered; only for UTC ones (an equal instant
# in another zone writes other text).
_TIME_OF_DAY: dict[tuple[int, int, int, int], str] = {}


def _iso(moment: datetime) -> str:
    """``moment.isoformat()``, the same text (``datetime.isoformat`` of an aware one was about
    1.3 µs, most of it the offset's)."""
    if moment.tzinfo is not UTC:
        return moment.isoformat()
    key = (moment.hour, moment.minute, moment.second, moment.microsecond)
    tail = _TIME_OF_DAY.get(key)
    if tail is None:
        if len(_TIME_OF_DAY) >= 4096:
            _TIME_OF_DAY.clear()
        tail = _TIME_OF_DAY[key] = moment.isoformat()[10:]  # "T21:00:00+00:00": the date is always 10
    return moment.date().isoformat() + tail


def _om(value: Decimal | None) -> str:
    return "null" if value is None else f'"{fresh_money(value)}"'


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _int(value: int) -> str:
    """An int as the encoder writes one (``int.__repr__``; True and False are true/false)."""
    if value is True or value is False:
        return _bool(value)
    return int.__repr__(value)


def _trade(t: TradeLine | None) -> str:
    if t is None:
        return "null"
    # sorted: closed_at, direction, opened_at, pnl, qty, strategy, symbol
    return _TRADE % (t.closed_at.isoformat(), _quote(t.direction), t.opened_at.isoformat(), _m(t.pnl),
                     dec(t.qty), _quote(t.strategy), _quote(t.symbol))


def _owners(owners: tuple[tuple[str, Decimal], ...]) -> str:
    if not owners:
        return "{}"
    held = {o: dec(q) for o, q in owners}  # as to_json: a repeated owner keeps its last quantity
    return "{" + ", ".join(f"{_quote(o)}: \"{held[o]}\"" for o in sorted(held)) + "}"


def _position(p: PositionLine) -> str:
    # sorted: avg_cost, last, market_value, owners, qty, symbol, unrealized
    m = _m
    return _POSITION % (m(p.avg_cost), "null" if p.last is None else f'"{fresh_dec(p.last)}"', m(p.market_value),
                        _owners(p.owners), dec(p.qty), _quote(p.symbol), m(p.unrealized))


def _strategy(r: StrategyLine) -> str:
    # sorted: commissions, cumulative, fills, market_value, net, net_pct, open_positions, orders, realized,
    # refusals, strategy, trades_closed, unrealized
    m, i = _m, _int
    return _STRATEGY % (m(r.commissions), m(r.cumulative), i(r.fills), m(r.market_value), m(r.net), _om(r.net_pct),
                        i(r.open_positions), i(r.orders), m(r.realized), i(r.refusals), _quote(r.strategy),
                        i(r.trades_closed), m(r.unrealized))


_QUIET_ALERTS = (("info", 0), ("warning", 0), ("error", 0), ("critical", 0))


def _alerts(alerts: tuple[tuple[str, int], ...]) -> str:
    if alerts == _QUIET_ALERTS:
        return '{"critical": 0, "error": 0, "info": 0, "warning": 0}'
    counts = dict(alerts)
    return "{" + ", ".join(f"{_quote(k)}: {_int(counts[k])}" for k in sorted(counts)) + "}"


def _values(s: DailySummary) -> tuple[str, ...]:
    """Every value's JSON text, in the sorted order of the keys (_ORDER)."""
    m, om, i = _m, _om, _int
    return (
        i(s.adjustments), _alerts(s.alerts), _trade(s.best_trade), i(s.breaks_found), i(s.breaks_resolved),
        _quote(s.calendar), m(s.commissions), m(s.daily_loss_limit), i(s.data_incidents), s.date.isoformat(),
        i(s.disconnects), i(s.drawdown_samples), i(s.engine_starts), m(s.equity_close), m(s.equity_open), i(s.fills),
        _bool(s.half_day), _bool(s.loss_limit_hit), m(s.loss_limit_used_pct), m(s.max_intraday_drawdown),
        om(s.max_intraday_drawdown_pct), m(s.net), om(s.net_pct), i(s.orders), _lines(s.positions, _position_text),
        m(s.realized), om(s.realized_pct), i(s.reconnects), i(s.refusals), i(s.rejected), _iso(s.session_close),
        _iso(s.session_open), _lines(s.strategies, _strategy), m(s.total), om(s.total_pct),
        i(s.trades_closed), _quote(s.trading_state), m(s.unrealized), om(s.unrealized_pct), m(s.worst_day_pnl),
        _trade(s.worst_trade),
    )


# ---- the lines of a day like the one before --------------------------------------------------
# A strategy's or a position's line mostly keeps the day before's values: a position's symbol,
# quantity, cost and owners, a strategy's counts, realized P&L and commissions; only the figures
# that follow the marks move. The steady values' text is written into a template once, keyed by
# the values themselves (Decimals by value: equal values are written the same, see
# core/domain/daily_summary_numbers.py; counts are ints, as the types say), and each day fills
# in the rest.
_KEPT_LINES = 256


class _Kept:
    """Templates kept by the values written into them (at most ``limit``). The last one found
    for each name (a strategy's, a symbol's, the summary's) is tried first, by ``==``: a session
    like the one before matches it without hashing its values (a new Decimal's first hash is
    about a microsecond). Any key that compares equal stands for the same text."""

    __slots__ = ("last", "limit", "table")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.table: dict[tuple[object, ...], str] = {}
        self.last: dict[str, tuple[tuple[object, ...], str]] = {}

    def find(self, name: str, key: tuple[object, ...]) -> str | None:
        """The template of ``key``, or None (raises TypeError or InvalidOperation for a signalling NaN)."""
        last = self.last.get(name)
        if last is not None and last[0] == key:
            return last[1]
        found = self.table.get(key)
        if found is not None:
            self.last[name] = (key, found)
        return found

    def keep(self, name: str, key: tuple[object, ...], template: str) -> str:
        if len(self.table) >= self.limit:
            self.table.clear()
        if len(self.last) >= self.limit:
            self.last.clear()
        self.table[key] = template
        self.last[name] = (key, template)
        return template

    def clear(self) -> None:
        self.table.clear()
        self.last.clear()


_STRATEGY_TEMPLATES = _Kept(_KEPT_LINES)
_POSITION_TEMPLATES = _Kept(_KEPT_LINES)
# Each strategy's last cumulative written, and its text.
_CUMULATIVE: dict[str, tuple[Decimal, str]] = {}
_NO_NUMBER = (TypeError, ArithmeticError)  # a key holding a signalling NaN: no hash, no ==


def _strategy_text(r: StrategyLine, owners: list[tuple[str, str, str]], net: Decimal, net_text: str,
                   net_pct: Decimal | None, pct_text: str, held: tuple[Decimal, str] | None) -> str:
    """``_strategy(r)``, the same text, on a day whose account ``net`` (and its percentage) and
    lone position's market value (``held``) are written already (a lone owner's are the same
    figures); appends its (strategy, cumulative, net) texts to ``owners``."""
    key = (r.strategy, r.commissions, r.fills, r.open_positions, r.orders, r.realized, r.refusals, r.trades_closed)
    m = fresh_money
    try:
        template = _STRATEGY_TEMPLATES.find(r.strategy, key)
    except _NO_NUMBER:
        owners.append((r.strategy, m(r.cumulative), m(r.net)))
        return _strategy(r)
    if template is None:
        i = _int
        template = _STRATEGY_TEMPLATES.keep(r.strategy, key, _STRATEGY % (
            _m(r.commissions), '"%s"', i(r.fills), '"%s"', '"%s"', "%s", i(r.open_positions), i(r.orders),
            _m(r.realized), i(r.refusals), _quote(r.strategy).replace("%", "%%"), i(r.trades_closed), '"%s"'))
    # moving: cumulative, market_value, net, net_pct, unrealized
    own = r.net
    if own != net:
        net_text = m(own)
    cumulative = r.cumulative
    kept = _CUMULATIVE.get(r.strategy)
    if kept is not None and kept[0] == cumulative:  # an owner that held nothing: its cumulative stays
        cumulative_text = kept[1]
    else:
        cumulative_text = m(cumulative)
        if len(_CUMULATIVE) >= _KEPT_LINES:
            _CUMULATIVE.clear()
        _CUMULATIVE[r.strategy] = (cumulative, cumulative_text)
    owners.append((r.strategy, cumulative_text, net_text))
    value = r.market_value
    return template % (cumulative_text, held[1] if held is not None and value == held[0] else m(value), net_text,
                       pct_text if r.net_pct == net_pct else _om(r.net_pct),
                       net_text if r.unrealized == own else m(r.unrealized))


def _position_text(p: PositionLine, values: list[tuple[Decimal, str]] | None = None) -> str:
    """``_position(p)``, the same text; appends its market value and the value's text to ``values``."""
    key = (p.symbol, p.qty, p.avg_cost, p.owners)
    try:
        template = _POSITION_TEMPLATES.find(p.symbol, key)
    except _NO_NUMBER:
        return _position(p)
    if template is None:
        template = _POSITION_TEMPLATES.keep(p.symbol, key, _POSITION % (
            _m(p.avg_cost), "%s", '"%s"', _owners(p.owners).replace("%", "%%"), dec(p.qty),
            _quote(p.symbol).replace("%", "%%"), '"%s"'))
    # moving: last, market_value, unrealized
    value = p.market_value
    value_text = fresh_money(value)
    if values is not None:
        values.append((value, value_text))
    return template % ("null" if p.last is None else f'"{fresh_dec(p.last)}"', value_text, fresh_money(p.unrealized))


def _lines(lines: tuple[T, ...], text_of: Callable[[T], str]) -> str:
    """A JSON list of the lines' texts, as the encoder writes one."""
    if not lines:
        return "[]"
    if len(lines) == 1:
        return "[" + text_of(lines[0]) + "]"
    return "[" + ", ".join([text_of(line) for line in lines]) + "]"


# ---- a quiet day's template --------------------------------------------------------------------
# On a day without trades most of the summary is what it was the day before: the counts, the
# alerts, the calendar, the realized P&L and commissions (zero), the limit and the trading
# state. Those values' text is written into a template once, keyed by the values themselves,
# and a day with the same ones fills in only the rest (the date and times, the equity and the
# figures that follow the marks, the lines). The key holds each value as it is (equal Decimals
# are written the same; the counts are ints, as the summary's types say: a bool in a count is
# written as the equal int's text was).
_VOLATILE = frozenset({
    "date", "equity_close", "equity_open", "loss_limit_used_pct", "max_intraday_drawdown",
    "max_intraday_drawdown_pct", "net", "net_pct", "positions", "session_close", "session_open", "strategies",
    "total", "total_pct", "unrealized", "unrealized_pct", "worst_day_pnl"})
_KEPT_TEMPLATES = 64
_QUIET_TEMPLATES = _Kept(_KEPT_TEMPLATES)
# The last equity at a close written, and its text: the next session's opening equity.
_LAST_CLOSE: list[tuple[Decimal, str]] = []
# summary_json fills the volatile values in this order, and keys a template by the others but
# the two trades (None on a quiet day):
assert tuple(k for k in _ORDER if k in _VOLATILE) == (
    "date", "equity_close", "equity_open", "loss_limit_used_pct", "max_intraday_drawdown",
    "max_intraday_drawdown_pct", "net", "net_pct", "positions", "session_close", "session_open", "strategies",
    "total", "total_pct", "unrealized", "unrealized_pct", "worst_day_pnl")
assert tuple(k for k in _ORDER if k not in _VOLATILE and not k.endswith("_trade")) == (
    "adjustments", "alerts", "breaks_found", "breaks_resolved", "calendar", "commissions", "daily_loss_limit",
    "data_incidents", "disconnects", "drawdown_samples", "engine_starts", "fills", "half_day", "loss_limit_hit",
    "orders", "realized", "realized_pct", "reconnects", "refusals", "rejected", "trades_closed", "trading_state")


# Of those, the money that is never null: its slot holds the quotes, and the text is written bare
# (the same text the recorder stores in its columns).
_QUOTED = frozenset({"equity_close", "equity_open", "loss_limit_used_pct", "max_intraday_drawdown", "net", "total",
                     "unrealized", "worst_day_pnl"})


def _quiet_template(s: DailySummary, key: tuple[object, ...]) -> str:
    """The summary's template with its steady values written in and a slot for each other."""
    slots = tuple(('"%s"' if k in _QUOTED else "%s") if k in _VOLATILE else v.replace("%", "%%")
                  for k, v in zip(_ORDER, _values(s), strict=True))
    return _QUIET_TEMPLATES.keep("", key, _SUMMARY % slots)


class SummaryTexts(NamedTuple):
    """A summary's stored JSON and the money texts the reports recorder also stores (as
    ``serialize.money`` writes them): written once for both."""

    json: str
    date: str  # ISO
    session_close: str  # ISO
    equity_open: str
    equity_close: str
    net: str
    owners: list[tuple[str, str, str]]  # each strategy line's (strategy, cumulative, net)


def summary_json(s: DailySummary) -> str:
    """``json.dumps(s.to_json(), sort_keys=True)``, the same text."""
    return summary_texts(s).json


def _whole(s: DailySummary) -> SummaryTexts:
    m = fresh_money
    return SummaryTexts(_SUMMARY % _values(s), s.date.isoformat(), _iso(s.session_close), m(s.equity_open),
                        m(s.equity_close), m(s.net),
                        [(r.strategy, m(r.cumulative), m(r.net)) for r in s.strategies])


def summary_texts(s: DailySummary) -> SummaryTexts:
    """``summary_json(s)`` and the texts of its money that the recorder stores apart."""
    if s.best_trade is not None or s.worst_trade is not None:  # a day with trades: written whole
        return _whole(s)
    key = (s.adjustments, s.alerts, s.breaks_found, s.breaks_resolved, s.calendar, s.commissions,
           s.daily_loss_limit, s.data_incidents, s.disconnects, s.drawdown_samples, s.engine_starts, s.fills,
           s.half_day, s.loss_limit_hit, s.orders, s.realized, s.realized_pct, s.reconnects, s.refusals, s.rejected,
           s.trades_closed, s.trading_state)
    try:
        template = _QUIET_TEMPLATES.find("", key)
    except _NO_NUMBER:  # a value that cannot be hashed (a signalling NaN): the whole way, as before
        return _whole(s)
    if template is None:
        template = _quiet_template(s, key)
    m, om = fresh_money, _om
    close, opened, net, net_pct = s.equity_close, s.equity_open, s.net, s.net_pct
    last = _LAST_CLOSE
    if last:
        last_close, last_text = last[0]
        opened_text = last_text if last_close == opened else m(opened)
        close_text = last_text if last_close == close else m(close)  # a day flat: the same equity
    else:
        opened_text, close_text = m(opened), m(close)
    last[:] = [(close, close_text)]
    net_text, pct_text = m(net), om(net_pct)
    held = s.positions
    values: list[tuple[Decimal, str]] = []
    positions = "[" + ", ".join([_position_text(p, values) for p in held]) + "]" if held else "[]"
    one = values[0] if len(values) == 1 else None
    owners: list[tuple[str, str, str]] = []
    lines = s.strategies
    if lines:
        strategies = "[" + ", ".join([_strategy_text(r, owners, net, net_text, net_pct, pct_text, one)
                                      for r in lines]) + "]"
    else:
        strategies = "[]"
    day, session_close = s.date.isoformat(), _iso(s.session_close)
    return SummaryTexts(template % (  # the volatile values, in the sorted order of their keys
        day, close_text, opened_text, m(s.loss_limit_used_pct), m(s.max_intraday_drawdown),
        om(s.max_intraday_drawdown_pct), net_text, pct_text, positions, session_close, _iso(s.session_open),
        strategies,
        net_text if s.total == net else m(s.total), pct_text if s.total_pct == net_pct else om(s.total_pct),
        net_text if s.unrealized == net else m(s.unrealized),
        pct_text if s.unrealized_pct == net_pct else om(s.unrealized_pct),
        net_text if s.worst_day_pnl == net else m(s.worst_day_pnl),
    ), day, session_close, opened_text, close_text, net_text, owners)
