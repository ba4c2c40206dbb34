"""core/analytics: the performance figures against an independent library (empyrical-reloaded)
on the same daily returns, trades and their statistics worked by hand, each owner's book
against the account's, the session a moment belongs to, and the summary's words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.analytics.performance import exposure
from core.analytics.returns import EquityDay, daily_rate, daily_returns, return_figures
from core.analytics.sessions import SessionClock
from core.analytics.trades import FillRecord, OwnerLedger, round_trips, trade_stats
from core.data.calendar import ExchangeSession
from core.domain.events import DailySummaryReady
from core.domain.model import EXTERNAL, LIQUIDATION, OPERATOR, Execution, Side
from core.portfolio.book import Portfolio

NY = ZoneInfo("America/New_York")
TOL = 1e-9


def curve(returns: np.ndarray, start: str = "100000") -> list[EquityDay]:
    """An equity curve (exact Decimals, as the store keeps them) that moves by ``returns``."""
    days, equity, day = [], D(start), date(2020, 1, 1)
    for r in returns:
        close = (equity * (1 + D(repr(float(r))))).quantize(D("1e-8"))
        days.append(EquityDay(day, equity, close))
        equity, day = close, day + timedelta(days=1)
    return days


@pytest.mark.parametrize(("seed", "first", "rf"), [(1, 0.01, 0.0), (2, -0.03, 0.0), (3, 0.002, 0.04), (4, -0.01, 0.02)])
def test_return_figures_match_empyrical_to_1e9(seed: int, first: float, rf: float) -> None:
    rng = np.random.default_rng(seed)
    raw = np.r_[first, rng.normal(0.0004, 0.012, 500)]
    days = curve(raw)
    returns = np.array(daily_returns(days))
    assert np.allclose(returns, raw, atol=1e-9)  # close / previous close - 1, from the stored equity
    mine = return_figures(days, risk_free_rate=rf)
    rf_daily = daily_rate(rf)
    assert mine.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, risk_free=rf_daily), abs=TOL)
    assert mine.sortino == pytest.approx(empyrical.sortino_ratio(returns, required_return=rf_daily), abs=TOL)
    assert mine.max_drawdown == pytest.approx(-empyrical.max_drawdown(returns), abs=TOL)
    assert mine.annual_return == pytest.approx(empyrical.annual_return(returns), abs=TOL)
    assert mine.annual_volatility == pytest.approx(empyrical.annual_volatility(returns), abs=TOL)
    assert mine.calmar == pytest.approx(empyrical.calmar_ratio(returns), abs=TOL)
    assert mine.total_return == pytest.approx(empyrical.cum_returns_final(returns), abs=TOL)
    assert mine.sessions == 501 and mine.start_equity == D(100000)


def test_a_first_day_loss_is_a_drawdown_from_the_start_and_durations_count_sessions() -> None:
    # 100 -> 90 -> 95 -> 100 (regained) -> 80 -> 85 (still under water at the end)
    days = [EquityDay(date(2020, 1, i + 1), o, c) for i, (o, c) in enumerate(
        [(D(100), D(90)), (D(90), D(95)), (D(95), D(100)), (D(100), D(80)), (D(80), D(85))])]
    f = return_figures(days)
    assert f.max_drawdown == pytest.approx(0.2) and f.max_drawdown_money == D(20)
    assert (f.max_drawdown_peak, f.max_drawdown_trough, f.max_drawdown_recovered) == (
        date(2020, 1, 3), date(2020, 1, 4), None)
    assert f.max_drawdown_duration == 2  # from the peak (Jan 3) to the last session, not regained
    assert f.longest_drawdown_duration == 3  # the start to Jan 3, regained there
    assert f.pnl == D(-15)


def test_undefined_figures_are_none_not_nan_or_infinite() -> None:
    flat = return_figures([EquityDay(date(2020, 1, 1), D(100), D(100)), EquityDay(date(2020, 1, 2), D(100), D(100))])
    assert flat.sharpe is None and flat.sortino is None and flat.calmar is None and flat.max_drawdown == 0.0
    gains = return_figures(curve(np.array([0.01, 0.02, 0.01])))
    assert gains.sortino is None and gains.calmar is None and gains.sharpe is not None
    empty = return_figures([])
    assert empty.sessions == 0 and empty.sharpe is None and empty.annual_return is None and empty.max_drawdown is None


T0 = datetime(2020, 3, 2, 14, 30, tzinfo=UTC)


def fill(n: int, owner: str, symbol: str, qty: int, price: str, commission: str = "1",
         allocation: tuple[tuple[str, D], ...] = ()) -> FillRecord:
    return FillRecord(f"e{n}", T0 + timedelta(days=n), owner, symbol, D(qty), D(price), D(commission), D(0),
                      allocation)


SMALL = [
    fill(0, "A", "AAPL", 100, "10"), fill(1, "A", "AAPL", -100, "12"),  # +200 - 2 = +198
    fill(2, "A", "MSFT", 50, "20"), fill(3, "A", "MSFT", -20, "18"), fill(4, "A", "MSFT", -30, "19"),  # -70 - 3
    fill(5, "B", "XYZ", -10, "50"), fill(6, "B", "XYZ", 25, "40", "2.5"),  # flips: +100 - 1 - 1 = +98 ...
    fill(7, "B", "XYZ", -15, "40"),  # ... and the long 15 opened at 40 closes flat: -1.5 - 1 = -2.5
    fill(8, "A", "QQQ", 10, "100"),  # the liquidation's sell closes A's trade: -100 - 2 = -102
    fill(9, LIQUIDATION, "QQQ", -10, "90", allocation=(("A", D(-10)),)),
]


def test_round_trips_and_their_statistics_worked_by_hand() -> None:
    closed, still_open = round_trips(SMALL)
    assert [(t.owner, t.symbol, t.side, t.pnl) for t in closed] == [
        ("A", "AAPL", "long", D(198)), ("A", "MSFT", "long", D(-73)), ("B", "XYZ", "short", D(98)),
        ("B", "XYZ", "long", D("-2.5")), ("A", "QQQ", "long", D(-102))]
    assert still_open == []
    assert closed[1].fills == 3 and closed[1].max_qty == D(50)
    s = trade_stats(closed)
    assert (s.trades, s.wins, s.losses) == (5, 2, 3)
    assert s.win_rate == pytest.approx(0.4) and s.loss_rate == pytest.approx(0.6)
    assert s.gross_profit == D(296) and s.gross_loss == D("-177.5")
    assert s.profit_factor == pytest.approx(296 / 177.5)
    assert s.expectancy == D("23.7")  # (296 - 177.5) / 5 == 0.4 x 148 - 0.6 x 59.1666...
    assert s.average_win == D(148) and s.average_loss == D("-177.5") / 3
    assert s.expectancy_ratio == pytest.approx(0.4 * 148 / (177.5 / 3) - 0.6)
    assert (s.largest_win, s.largest_loss) == (D(198), D(-102))
    a_only = trade_stats([t for t in closed if t.owner == "A"])
    assert a_only.win_rate == pytest.approx(1 / 3) and a_only.profit_factor == pytest.approx(198 / 175)
    none = trade_stats([])
    assert none.win_rate is None and none.profit_factor is None and none.expectancy is None


def test_a_fill_shared_by_owners_splits_its_commission_by_quantity() -> None:
    ledger = OwnerLedger()
    ledger.apply(fill(0, "A", "SPY", 10, "100", "1"))
    ledger.apply(fill(1, "B", "SPY", 20, "100", "1"))
    closed = ledger.apply(fill(2, LIQUIDATION, "SPY", -30, "101", "3", (("A", D(-10)), ("B", D(-20)))))
    assert {t.owner: t.pnl for t in closed} == {"A": D(10) - 2, "B": D(20) - 3}
    assert ledger.commissions == {"A": D(2), "B": D(3)}


def test_exposure_counts_the_closes_a_trade_is_held_over() -> None:
    days = [date(2020, 3, d) for d in (2, 3, 4, 5, 6)]
    closed, _ = round_trips([fill(0, "A", "X", 1, "1"), fill(2, "A", "X", -1, "1")])  # Mar 2 -> Mar 4
    assert exposure(days, closed, NY) == pytest.approx(2 / 5)  # held over the closes of Mar 2 and 3
    assert exposure([], closed, NY) is None


OWNERS = ["s1", "s2", OPERATOR, EXTERNAL, LIQUIDATION]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(OWNERS), st.sampled_from(["AAA", "BBB"]), st.integers(-30, 30).filter(bool),
                          st.integers(90, 110), st.integers(0, 3)), min_size=1, max_size=25))
def test_the_owners_books_add_up_to_the_account(fills: list[tuple[str, str, int, int, int]]) -> None:
    """Whatever the fills and whoever owns them, the owners' net P&L sums to the book's."""
    book = Portfolio(D(100000))
    ledger = OwnerLedger()
    for n, (owner, symbol, qty, price, commission) in enumerate(fills):
        signed = D(qty)
        ex = Execution(f"e{n}", "o", symbol, Side.BUY if qty > 0 else Side.SELL, abs(signed), D(price), D(commission),
                       T0 + timedelta(minutes=n))
        allocation = book.allocate(owner, symbol, signed)
        realized = book.apply_fill(ex, allocation)
        ledger.apply(FillRecord(ex.exec_id, ex.ts, owner, symbol, signed, ex.price, ex.commission, realized,
                                allocation))
    marks = {"AAA": D(100), "BBB": D("104.5")}
    for symbol, price in marks.items():
        book.mark(symbol, price, T0)
    owners_net = sum((ledger.cumulative(o, marks.get) for o in ledger.owners), D(0))
    # Exact but for average-cost division (28 digits): the book's own noise, far below a cent.
    assert abs(owners_net - book.pnl().net) < D("1e-12")
    assert abs(book.equity() - D(100000) - owners_net) < D("1e-12")
    for (owner, symbol), qty in book.owner_positions.items():
        assert ledger.qty(owner, symbol) == qty


def test_a_moment_belongs_to_the_first_close_at_or_after_it_half_days_included() -> None:
    sessions = SessionClock(ExchangeSession("XNYS"))
    half = sessions.session_of(datetime(2008, 11, 28, 15, 0, tzinfo=UTC))
    assert half.day == date(2008, 11, 28) and half.half_day
    assert half.close == datetime(2008, 11, 28, 18, 0, tzinfo=UTC)  # 13:00 New York
    assert sessions.session_of(half.close).day == date(2008, 11, 28)  # the close itself is that session's
    assert sessions.session_of(half.close + timedelta(microseconds=1)).day == date(2008, 12, 1)  # a weekend later
    assert sessions.after(half).day == date(2008, 12, 1)
    before = sessions.before(half)
    assert before is not None and before.day == date(2008, 11, 26) and not before.half_day  # Thanksgiving closed


def test_the_summary_alert_is_info_with_plain_and_escaped_html_bodies() -> None:
    from core.domain.daily_summary import DailySummary, PositionLine, StrategyLine

    zero = D(0)
    summary = DailySummary(
        date=date(2008, 11, 28), calendar="XNYS", session_open=datetime(2008, 11, 28, 14, 30, tzinfo=UTC),
        session_close=datetime(2008, 11, 28, 18, 0, tzinfo=UTC), half_day=True, equity_open=D(100000),
        equity_close=D("101234.5"), realized=D(1000), unrealized=D("300"), commissions=D("65.5"), total=D(1300),
        net=D("1234.5"), realized_pct=D(1), unrealized_pct=D("0.3"), total_pct=D("1.3"), net_pct=D("1.2345"),
        orders=4, fills=3, adjustments=0, refusals=1, rejected=0, trades_closed=0, best_trade=None, worst_trade=None,
        max_intraday_drawdown=D(800), max_intraday_drawdown_pct=D("0.8"), drawdown_samples=5,
        daily_loss_limit=D(20000), worst_day_pnl=D(-800), loss_limit_used_pct=D(4), loss_limit_hit=False,
        trading_state="ACTIVE", breaks_found=0, breaks_resolved=0, disconnects=1, reconnects=1, data_incidents=0,
        alerts=(("info", 3), ("warning", 2), ("error", 1), ("critical", 0)), engine_starts=1,
        positions=(PositionLine("AAPL", D(100), D("95.12"), D(96), D(9600), D(88), (("<b>s</b>", D(100)),)),),
        strategies=(StrategyLine("<b>s</b>", D(1000), D(300), D("65.5"), D("1234.5"), D("1.2345"), D("1234.5"),
                                 4, 3, 1, 0, D(9600), 1),),
    )
    alert = DailySummaryReady(summary).alert()
    assert (alert.kind, str(alert.severity)) == ("daily.summary", "info")
    assert alert.title == "Daily P&L 2008-11-28: +1,234.50 (+1.23%)"
    assert "(half day)" in alert.text and "Daily loss limit used +4.00% of 20,000.00" in alert.text
    assert "<b>s</b>: net +1,234.50" in alert.text  # plain text is as stored
    assert alert.html is not None and "&lt;b&gt;s&lt;/b&gt;" in alert.html and "<b>s</b>" not in alert.html
    assert summary.to_json()["alerts"] == {"info": 3, "warning": 2, "error": 1, "critical": 0}
    assert zero == summary.strategies[0].realized - D(1000)


def test_a_growth_too_large_for_a_float_has_no_annual_return_instead_of_a_traceback() -> None:
    from core.analytics.returns import annual_return

    figures = return_figures([EquityDay(date(2024, 1, 2), D(100), D(1700))])  # 17x in a session
    assert figures.total_return == 16.0 and figures.annual_return is None and figures.calmar is None
    assert annual_return([16.0]) is None
