"""The daily summary's direct JSON writer gives the generic path's text, character for character."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.daily_summary import SEVERITIES, DailySummary, PositionLine, StrategyLine, TradeLine
from core.domain.daily_summary_json import summary_json

names = st.text(min_size=0, max_size=12)  # quotes, backslashes, control and non-ASCII characters too
counts = st.integers(min_value=0, max_value=10**12)
# What a book holds: up to 1e12 in any exponent, cents to 1e-8, the division noise of a percentage
# (28 significant digits) and a few odd ones (-0, 1E+7, 0E-30).
any_money = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e12"), max_value=Decimal("1e12")),
    st.integers(-10**12, 10**12).map(lambda n: Decimal(n).scaleb(-8)),
    st.integers(-10**27, 10**27).map(lambda n: Decimal(n).scaleb(-25)),
    st.sampled_from([Decimal("-0"), Decimal("1E+7"), Decimal("0E-30"), Decimal("-0.000000005"), Decimal("2.5E-9")]),
)
opt_money = st.one_of(st.none(), any_money)
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))

trades = st.builds(TradeLine, names, names, st.sampled_from(["long", "short", 'odd "one"']), any_money, any_money,
                   moments, moments)
positions = st.builds(PositionLine, names, any_money, any_money, opt_money, any_money, any_money,
                      st.lists(st.tuples(names, any_money), max_size=4).map(tuple))
strategies_ = st.builds(StrategyLine, names, any_money, any_money, any_money, any_money, opt_money, any_money,
                        counts, counts, counts, counts, any_money, counts)
alert_counts = st.one_of(
    st.tuples(*[st.tuples(st.just(s), counts) for s in SEVERITIES]),
    st.lists(st.tuples(names, counts), max_size=5).map(tuple),  # another set of severities, even repeats
)


@st.composite
def summaries(draw: st.DrawFn) -> DailySummary:
    opened = draw(moments)
    return DailySummary(
        date=draw(st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 1, 1))), calendar=draw(names),
        session_open=opened, session_close=opened + timedelta(hours=draw(st.integers(0, 30))),
        half_day=draw(st.booleans()), equity_open=draw(any_money), equity_close=draw(any_money),
        realized=draw(any_money), unrealized=draw(any_money), commissions=draw(any_money), total=draw(any_money),
        net=draw(any_money), realized_pct=draw(opt_money), unrealized_pct=draw(opt_money), total_pct=draw(opt_money),
        net_pct=draw(opt_money), orders=draw(counts), fills=draw(counts), adjustments=draw(counts),
        refusals=draw(counts), rejected=draw(counts), trades_closed=draw(counts),
        best_trade=draw(st.none() | trades), worst_trade=draw(st.none() | trades),
        max_intraday_drawdown=draw(any_money), max_intraday_drawdown_pct=draw(opt_money),
        drawdown_samples=draw(counts), daily_loss_limit=draw(any_money), worst_day_pnl=draw(any_money),
        loss_limit_used_pct=draw(any_money), loss_limit_hit=draw(st.booleans()), trading_state=draw(names),
        breaks_found=draw(counts), breaks_resolved=draw(counts), disconnects=draw(counts), reconnects=draw(counts),
        data_incidents=draw(counts), alerts=draw(alert_counts), engine_starts=draw(counts),
        positions=tuple(draw(st.lists(positions, max_size=3))), strategies=tuple(draw(st.lists(strategies_, max_size=3))),
    )


@settings(max_examples=400, deadline=None)
@given(summaries())
def test_the_direct_writer_is_json_dumps_of_to_json(summary: DailySummary) -> None:
    assert summary_json(summary) == json.dumps(summary.to_json(), sort_keys=True)


def test_a_quiet_day_and_a_busy_one() -> None:
    d = Decimal
    at = datetime(2008, 11, 28, 14, 30, tzinfo=UTC)
    quiet = DailySummary(
        date=date(2008, 11, 28), calendar="XNYS", session_open=at, session_close=at + timedelta(hours=3, minutes=30),
        half_day=True, equity_open=d(100000), equity_close=d(100000), realized=d(0), unrealized=d(0),
        commissions=d(0), total=d(0), net=d(0), realized_pct=d(0), unrealized_pct=d(0), total_pct=d(0), net_pct=d(0),
        orders=0, fills=0, adjustments=0, refusals=0, rejected=0, trades_closed=0, best_trade=None, worst_trade=None,
        max_intraday_drawdown=d(0), max_intraday_drawdown_pct=d(0), drawdown_samples=2, daily_loss_limit=d(5000),
        worst_day_pnl=d(0), loss_limit_used_pct=d(0), loss_limit_hit=False, trading_state="ACTIVE", breaks_found=0,
        breaks_resolved=0, disconnects=0, reconnects=0, data_incidents=0,
        alerts=(("info", 0), ("warning", 0), ("error", 0), ("critical", 0)), engine_starts=1, positions=(),
        strategies=(),
    )
    assert summary_json(quiet) == json.dumps(quiet.to_json(), sort_keys=True)
    line = TradeLine("sma_cross", "ORCL", "long", d(4550), d("-12.3456789012"), at - timedelta(days=3), at)
    busy = DailySummary(**{
        **{f: getattr(quiet, f) for f in quiet.__slots__},  # type: ignore[attr-defined]
        "best_trade": line, "worst_trade": line, "net_pct": None,
        "positions": (PositionLine("ORCL", d(4550), d("2.198"), d("2.2100001"), d("10055.5"), d("54.6"),
                                   (("sma_cross", d(4550)), ("operator", d(-1)))),),
        "strategies": (StrategyLine("sma_cross", d(1), d(2), d("0.5"), d("2.5"), None, d("25656.6123"), 1, 1, 0, 1,
                                    d("10055.5"), 1),),
    })
    assert summary_json(busy) == json.dumps(busy.to_json(), sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(any_money, st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()),
                          st.sampled_from([Decimal("1E+30"), Decimal(10**30), Decimal("-0.00"), Decimal("0.000")])),
                max_size=30))
def test_the_remembered_numbers_are_the_originals_whatever_came_before(values: list[Decimal]) -> None:
    from core.domain import daily_summary_numbers as numbers
    from core.domain import daily_summary_text as words

    # each value, then the same value written another way (1.5 and 1.50000, 0 and -0), then again
    drawn = [v for x in values for v in (x, x.normalize() if x.is_finite() else x, -x, x)]
    for remembered in (numbers.dec, numbers.money_text, numbers.signed,
                       numbers.pct_text, words._price):
        for v in drawn:
            try:
                want: object = remembered.fn(v)
            except Exception as exc:  # the same failure, then
                want = type(exc)
            for way in (remembered, lambda v, r=remembered: r.get(v) or r.make(v)):
                try:
                    got: object = way(v)
                except Exception as exc:
                    got = type(exc)
                assert got == want, (remembered.fn, v)


# ---- the wording as it was written before it was made faster (b413b5c), to compare with -----------


def _ref_signed(value: Decimal) -> str:
    from core.domain.text import money

    shown = money(value)
    if shown == "0.00" or shown.startswith("-"):
        return shown
    return f"+{shown}" if shown[0].isdigit() else shown


def _ref_pct(value: Decimal | None) -> str:
    from decimal import ROUND_HALF_EVEN

    if value is None:
        return "n/a"
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{'+' if rounded > 0 else ''}{rounded}%"


def _ref_title(s: DailySummary) -> str:
    return f"Daily P&L {s.date.isoformat()}: {_ref_signed(s.net)} ({_ref_pct(s.net_pct)})"


def _ref_plain(s: DailySummary) -> str:
    from core.domain.text import money, price, qty

    signed, pct = _ref_signed, _ref_pct

    def trade(t: TradeLine | None) -> str:
        return "none" if t is None else f"{t.strategy} {t.direction} {qty(t.qty)} {t.symbol} {signed(t.pnl)}"

    close = s.session_close.strftime("%H:%M UTC")
    lines = [
        f"{s.calendar} session {s.date.isoformat()}, closed {close}" + (" (half day)" if s.half_day else ""),
        f"Net P&L {signed(s.net)} ({pct(s.net_pct)} of equity {money(s.equity_open)}); equity at the close "
        f"{money(s.equity_close)}",
        f"  realized {signed(s.realized)} ({pct(s.realized_pct)}), unrealized {signed(s.unrealized)} "
        f"({pct(s.unrealized_pct)}), total {signed(s.total)} ({pct(s.total_pct)}), commissions "
        f"{money(s.commissions)}",
        f"Orders {s.orders}, fills {s.fills}, adjustments {s.adjustments}, refusals {s.refusals}, "
        f"rejected {s.rejected}, trades closed {s.trades_closed}",
        f"Best trade {trade(s.best_trade)}; worst trade {trade(s.worst_trade)}",
        f"Max intraday drawdown {money(s.max_intraday_drawdown)} ({pct(s.max_intraday_drawdown_pct)}; "
        f"{s.drawdown_samples} equity samples)",
        f"Daily loss limit used {pct(s.loss_limit_used_pct)} of {money(s.daily_loss_limit)}"
        + (" (HIT: trading moved off ACTIVE)" if s.loss_limit_hit else "") + f"; trading {s.trading_state}",
        f"Breaks found {s.breaks_found}, resolved {s.breaks_resolved}; disconnects {s.disconnects}, "
        f"reconnects {s.reconnects}; data-quality incidents {s.data_incidents}",
        "Alerts: " + ", ".join(f"{name} {count}" for name, count in s.alerts)
        + (f"; engine starts today {s.engine_starts}" if s.engine_starts else ""),
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


@settings(max_examples=300, deadline=None)
@given(summaries())
def test_the_wording_is_what_it_was(summary: DailySummary) -> None:
    from core.domain import daily_summary_text as words
    from core.domain.events import DailySummaryReady

    assert words.plain(summary) == _ref_plain(summary)
    assert words.title(summary) == _ref_title(summary)
    from core.domain.text import money

    alert = DailySummaryReady(summary).alert(html=False)
    s = summary
    assert alert.fields == (("net", _ref_signed(s.net)), ("net %", _ref_pct(s.net_pct)),
                            ("realized", _ref_signed(s.realized)), ("unrealized", _ref_signed(s.unrealized)),
                            ("commissions", money(s.commissions)), ("fills", str(s.fills)),
                            ("equity", money(s.equity_close)))
    assert (alert.kind, str(alert.severity), alert.title, alert.text, alert.key, alert.at, alert.html) == (
        "daily.summary", "info", _ref_title(s), _ref_plain(s), f"daily.summary:{s.date.isoformat()}",
        s.session_close, None)
    assert alert.with_id("x") == dataclasses.replace(alert, id="x")


# ---- the templates kept from one day to the next ------------------------------------------------
# A replay's summaries follow each other: most values are the day before's, some written another
# way (1.5 and 1.50, 0 and -0), a name may hold a "%". Each one must still be json.dumps's text.

def _other_way(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite():
        return value
    if not value:
        return -value
    normal = value.normalize()
    return normal if str(normal) != str(value) else value + Decimal("0.00")


steady_names = st.sampled_from(["sma_cross", "operator", "100%", "%s", "%%", 'q"uote', "\u00e9"])


@st.composite
def days_in_a_row(draw: st.DrawFn) -> list[DailySummary]:
    first = draw(summaries())
    if draw(st.booleans()):
        first = dataclasses.replace(first, best_trade=None, worst_trade=None)
    days = [first]
    for _ in range(draw(st.integers(1, 4))):
        s = days[-1]
        changes: dict[str, object] = {}
        other = draw(summaries())
        fields = dataclasses.fields(DailySummary)
        hows = draw(st.lists(st.integers(0, 29), min_size=len(fields), max_size=len(fields)))
        for f, how in zip(fields, hows, strict=True):
            if how == 0:  # a new value
                changes[f.name] = getattr(other, f.name)
            elif how == 1 and isinstance(getattr(s, f.name), Decimal):  # the same value, written another way
                changes[f.name] = _other_way(getattr(s, f.name))
        lines = draw(st.sampled_from(["same", "moved", "new"]))
        if lines != "same":
            changes["strategies"] = tuple(
                dataclasses.replace(r, cumulative=draw(any_money), net=draw(any_money), unrealized=draw(any_money),
                                    market_value=draw(any_money), net_pct=draw(opt_money),
                                    strategy=draw(steady_names) if lines == "new" else r.strategy,
                                    **{k: draw(st.sampled_from([getattr(r, k), getattr(r, k) + 1]))
                                       for k in ("fills", "orders", "refusals", "trades_closed", "open_positions",
                                                 "realized", "commissions")})
                for r in s.strategies)
            changes["positions"] = tuple(
                dataclasses.replace(p, last=draw(opt_money), market_value=draw(any_money), unrealized=draw(any_money),
                                    qty=_other_way(p.qty) if lines == "new" else p.qty,  # type: ignore[arg-type]
                                    avg_cost=draw(st.sampled_from([p.avg_cost, p.avg_cost + 1])),
                                    owners=draw(st.sampled_from([p.owners, p.owners[:1], (("%s", p.qty),)])))
                for p in s.positions)
        if draw(st.booleans()):
            changes["calendar"] = draw(steady_names)
        days.append(dataclasses.replace(s, **changes))  # type: ignore[arg-type]
    return days


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow])
@given(days_in_a_row())
def test_days_in_a_row_are_each_written_as_json_dumps_writes_them(days: list[DailySummary]) -> None:
    import core.domain.daily_summary_json as writer

    for kept in (writer._QUIET_TEMPLATES, writer._STRATEGY_TEMPLATES, writer._POSITION_TEMPLATES):
        kept.clear()
    for s in days + days[::-1] + days:  # and again, from templates made by other days
        assert summary_json(s) == json.dumps(s.to_json(), sort_keys=True)
        assert summary_json(s) == writer._SUMMARY % writer._values(s)


def test_a_quiet_day_after_a_busy_one_and_back() -> None:
    import core.domain.daily_summary_json as writer

    d = Decimal
    at = datetime(2008, 11, 28, 14, 30, tzinfo=UTC)
    line = StrategyLine("50%", d(0), d("12.5"), d(0), d("12.5"), d("0.0125"), d("310.25"), 0, 0, 0, 0, d("4550"), 1)
    held = PositionLine("ORCL", d(100), d("45.375"), d("45.5"), d("4550"), d("12.5"), (("50%", d(100)),))
    day = DailySummary(
        date=date(2008, 11, 28), calendar="XNYS", session_open=at, session_close=at + timedelta(hours=6, minutes=30),
        half_day=False, equity_open=d(100000), equity_close=d("100012.5"), realized=d(0), unrealized=d("12.5"),
        commissions=d(0), total=d("12.5"), net=d("12.5"), realized_pct=d(0), unrealized_pct=d("0.0125"),
        total_pct=d("0.0125"), net_pct=d("0.0125"), orders=0, fills=0, adjustments=0, refusals=0, rejected=0,
        trades_closed=0, best_trade=None, worst_trade=None, max_intraday_drawdown=d(0),
        max_intraday_drawdown_pct=d(0), drawdown_samples=2, daily_loss_limit=d(5000), worst_day_pnl=d(0),
        loss_limit_used_pct=d(0), loss_limit_hit=False, trading_state="ACTIVE", breaks_found=0, breaks_resolved=0,
        disconnects=0, reconnects=0, data_incidents=0, alerts=(("info", 0), ("warning", 0), ("error", 0), ("critical", 0)),
        engine_starts=1, positions=(held,), strategies=(line,))
    trade = TradeLine("50%", "ORCL", "long", d(100), d("3.5"), at - timedelta(days=2), at)
    days = [day,
            dataclasses.replace(day, date=date(2008, 12, 1), equity_close=d("100020.00"), net=d("20.0")),
            dataclasses.replace(day, date=date(2008, 12, 2), orders=1, fills=1, best_trade=trade, worst_trade=trade,
                                realized=d("3.5"), commissions=d(1)),
            dataclasses.replace(day, date=date(2008, 12, 3), orders=2, positions=(), strategies=(
                dataclasses.replace(line, unrealized=d(0), market_value=d(0), open_positions=0),)),
            dataclasses.replace(day, date=date(2008, 12, 4), realized=d("-0"), commissions=d("0.00"))]
    days += [dataclasses.replace(days[-1], date=date(2008, 12, 5), **{f: 1}) for f in (
        "adjustments", "breaks_found", "breaks_resolved", "data_incidents", "disconnects", "drawdown_samples",
        "engine_starts", "fills", "orders", "reconnects", "refusals", "rejected", "trades_closed")]
    days += [dataclasses.replace(day, date=date(2008, 12, 8), strategies=(dataclasses.replace(line, **{f: 1}),))
             for f in ("fills", "orders", "refusals", "trades_closed", "open_positions")]
    days += [dataclasses.replace(day, date=date(2008, 12, 9), strategies=(dataclasses.replace(line, **{f: d(2)}),))
             for f in ("realized", "commissions")]
    days += [dataclasses.replace(day, date=date(2008, 12, 10), positions=(dataclasses.replace(held, **{f: v}),))
             for f, v in (("qty", d(200)), ("avg_cost", d(46)), ("owners", (("other%", d(100)),)))]
    days += [dataclasses.replace(day, date=date(2008, 12, 11), **{f: v}) for f, v in (
        ("calendar", "X%sNYS"), ("trading_state", "REDUCING"), ("half_day", True), ("loss_limit_hit", True),
        ("commissions", d(1)), ("realized", d(2)), ("realized_pct", None), ("daily_loss_limit", d(1)),
        ("alerts", (("info", 1), ("warning", 0), ("error", 0), ("critical", 0))))]
    for kept in (writer._QUIET_TEMPLATES, writer._STRATEGY_TEMPLATES, writer._POSITION_TEMPLATES):
        kept.clear()
    for s in days + days:
        assert summary_json(s) == json.dumps(s.to_json(), sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(any_money, st.decimals(allow_nan=True, allow_infinity=True),
                          st.sampled_from([Decimal("1E+30"), Decimal(10**30), Decimal("-0.00"), Decimal("0.000"),
                                           Decimal("1.0"), Decimal("-0.10"), Decimal("5E+2")])),
                max_size=20))
def test_a_figure_written_fresh_is_what_serialize_writes(values: list[Decimal]) -> None:
    """``fresh_money`` and ``fresh_dec`` (no table: a session's new figures) give ``serialize``'s
    text, or raise what it raises."""
    from core.domain import serialize
    from core.domain.daily_summary_numbers import fresh_dec, fresh_money

    for v in values:
        for fresh, reference in ((fresh_money, serialize.money), (fresh_dec, serialize.dec)):
            try:
                want: object = reference(v)
            except ArithmeticError as exc:
                want = type(exc)
            try:
                got: object = fresh(v)
            except ArithmeticError as exc:
                got = type(exc)
            assert got == want, (v, fresh.__name__)
