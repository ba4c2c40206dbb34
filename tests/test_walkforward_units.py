"""The walk-forward's parts without an engine: grids against the params models, durations and
windows, the stitched curve and its statistics, stability, the verdict, the text report."""

from __future__ import annotations

import io
import math
from datetime import date, timedelta
from decimal import Decimal

import pytest

from cockpit.research.walkforward import stats
from cockpit.research.walkforward.grid import GridError, parse_grid, point_text
from cockpit.research.walkforward.verdict import judge
from cockpit.research.walkforward.windows import WindowError, make_windows, parse_duration, run_range
from core.analytics.returns import EquityDay, sharpe
from core.strategy.rsi_reversion import RsiReversionParams
from core.strategy.sma_cross import SmaCrossParams


def test_grid_ranges_include_both_ends_and_drop_refused_combinations() -> None:
    grid = parse_grid("fast=5..20:5 slow=20..60:10", SmaCrossParams, {"fast": 10, "slow": 30, "notional": "10000"})
    assert [a.values for a in grid.axes] == [(5, 10, 15, 20), (20, 30, 40, 50, 60)]
    assert len(grid.points) == 4 * 5 - 1  # fast=20 slow=20 is not a valid pair
    assert grid.refused == 1 and "fast=20 slow=20" in grid.refused_example and "shorter than slow" in grid.refused_example
    assert point_text(grid.points[0]) == "fast=5 slow=20"
    assert grid.index_of(grid.points[-1]) == (3, 4)


def test_grid_floats_step_in_decimal_and_lists_and_single_values() -> None:
    grid = parse_grid("entry=10.5..11.5:0.5 exit=60,70 period=3", RsiReversionParams, {})
    assert grid.axes[0].values == (10.5, 11.0, 11.5)
    assert grid.axes[1].values == (60, 70) and grid.axes[2].values == (3,)
    grid = parse_grid("entry=0.1..0.3:0.1", RsiReversionParams, {})
    assert grid.axes[0].values == (0.1, 0.2, 0.3)


@pytest.mark.parametrize(("spec", "words"), [
    ("", "--grid is empty"),
    ("fast", "name=lo..hi:step"),
    ("speed=1..3:1", "has no parameter 'speed' (it has: fast, slow, notional)"),
    ("fast=5..20", "needs a step"),
    ("fast=5..x:5", "'x' is not a number"),
    ("fast=20..5:5", "below"),
    ("fast=5..20:0", "step must be above 0"),
    ("fast=1.5..3:0.5", "fast takes whole numbers"),
    ("fast=5 fast=6", "given twice"),
    ("fast=1..100000:1", "at most 1000 per parameter"),
    ("fast=40..50:5 slow=20..30:10", "none of its 6 points is a valid parameter set"),
])
def test_bad_grids_are_one_line_naming_the_fix(spec: str, words: str) -> None:
    with pytest.raises(GridError) as caught:
        parse_grid(spec, SmaCrossParams, {"notional": "10000"})
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_durations() -> None:
    assert parse_duration("2y", "--train").after(date(2008, 1, 1)) == date(2010, 1, 1)
    assert parse_duration("1y6m", "--train").after(date(2008, 1, 31)) == date(2009, 7, 31)
    assert parse_duration("1m", "--test").after(date(2008, 1, 31)) == date(2008, 2, 29)
    assert parse_duration("90d", "--test").after(date(2008, 1, 1)) == date(2008, 3, 31)
    assert parse_duration("2w", "--test").after(date(2008, 1, 1)) == date(2008, 1, 15)
    for bad in ("", "2", "2x", "y2", "0d", "2y 6m", "101y"):
        with pytest.raises(WindowError):
            parse_duration(bad, "--train")


def test_rolling_windows_follow_each_other_and_anchored_ones_expand() -> None:
    rolling = make_windows(date(2008, 1, 1), date(2014, 12, 31), parse_duration("2y", "t"),
                           parse_duration("6m", "t"), anchored=False)
    assert len(rolling) == 10
    assert (rolling[0].train_start, rolling[0].test_start, rolling[0].test_end) == (
        date(2008, 1, 1), date(2010, 1, 1), date(2010, 6, 30))
    for a, b in zip(rolling, rolling[1:], strict=False):
        assert b.test_start == a.test_end + timedelta(days=1)  # no overlap, no gap
        assert b.train_start == parse_duration("6m", "t").after(a.train_start)
        assert a.train_end < a.test_start
    anchored = make_windows(date(2008, 1, 1), date(2014, 12, 31), parse_duration("2y", "t"),
                            parse_duration("6m", "t"), anchored=True)
    assert [w.test_start for w in anchored] == [w.test_start for w in rolling]
    assert {w.train_start for w in anchored} == {date(2008, 1, 1)}


def test_a_last_test_window_cut_short_is_kept_only_when_half_long() -> None:
    kept = make_windows(date(2008, 1, 1), date(2010, 4, 30), parse_duration("2y", "t"), parse_duration("6m", "t"), False)
    assert len(kept) == 1 and kept[0].partial and kept[0].test_end == date(2010, 4, 30)
    dropped = make_windows(date(2008, 1, 1), date(2010, 8, 15), parse_duration("2y", "t"), parse_duration("6m", "t"),
                           False)
    assert len(dropped) == 1 and not dropped[0].partial
    with pytest.raises(WindowError, match="do not fit"):
        make_windows(date(2008, 1, 1), date(2009, 1, 1), parse_duration("2y", "t"), parse_duration("6m", "t"), False)


def test_the_warm_up_lies_before_the_run_and_never_after() -> None:
    sessions = [date(2010, 1, 1) + timedelta(days=i) for i in range(100)]
    rng = run_range(sessions, date(2010, 2, 1), date(2010, 3, 1), 10)
    assert rng.data_start == date(2010, 1, 22) and rng.trade_start == date(2010, 2, 1)
    assert run_range(sessions, date(2010, 1, 3), date(2010, 3, 1), 10).data_start == date(2010, 1, 1)
    assert run_range(sessions, date(2010, 2, 1), date(2010, 3, 1), 0).data_start == date(2010, 2, 1)


def _days(start: date, closes: list[str], open_: str = "100000") -> list[EquityDay]:
    out, prev = [], Decimal(open_)
    for i, c in enumerate(closes):
        out.append(EquityDay(start + timedelta(days=i), prev, Decimal(c)))
        prev = Decimal(c)
    return out


def test_stitching_chains_returns_not_averages() -> None:
    a = _days(date(2010, 1, 1), ["110000", "121000"])  # +10 %, +10 %
    b = _days(date(2010, 2, 1), ["50000"])  # -50 % from its own cash
    days = stats.stitch([a, b], Decimal(1000))
    assert [d.close for d in days] == [Decimal(1100), Decimal(1210), Decimal(605)]
    assert days[2].open == Decimal(1210)
    st = stats.stitched_figures([a, b], [], 0, Decimal(1000))
    assert st.returns.total_return == pytest.approx(-0.395)
    returns = [0.1, 0.1, -0.5]
    mean = sum(returns) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert st.t_stat == pytest.approx(mean / (sd / math.sqrt(3)))
    assert st.returns.sharpe == pytest.approx(sharpe(returns))


def test_objectives_efficiency_and_stability() -> None:
    days = _days(date(2010, 1, 1), ["101000", "100500", "102000"])
    assert stats.objective("net", days) == pytest.approx(2000.0)
    assert stats.objective("sharpe", days) == pytest.approx(sharpe([0.01, -0.00495049504950495, 0.014925373134328358]))
    assert stats.objective("sharpe", _days(date(2010, 1, 1), ["100000", "100000"])) is None  # no trade: undefined
    assert stats.rank_key(None) < stats.rank_key(-1e9)
    assert stats.efficiency(0.05, [0.1, 0.1]) == pytest.approx(0.5)
    assert stats.efficiency(0.05, [-0.1, 0.05]) is None  # in-sample did not make money: undefined
    s = stats.stability([(0, 0), (0, 0), (0, 1), (2, 3), (2, 3)], [0, 0, 1, 9, 9])
    assert (s.same, s.neighbouring, s.pairs) == (2, 1, 4) and s.share == pytest.approx(0.75)
    assert stats.stability([(1, 1)], [4]).share is None


def test_verdict_names_every_rule_failed_first() -> None:
    good = judge(sharpe=1.2, t_stat=2.5, wfe=0.8, positive=7, windows=10, stable_steps=6, stable_pairs=9, trades=40)
    assert good.holds and good.line.startswith("HOLDS UP out of sample: stitched OOS Sharpe 1.20 > 0; t-stat 2.50 >= 2")
    bad = judge(sharpe=0.4, t_stat=0.9, wfe=None, positive=3, windows=10, stable_steps=3, stable_pairs=9, trades=4)
    assert not bad.holds
    assert bad.line.startswith("DOES NOT HOLD UP out of sample: t-stat 0.90 < 2; WFE undefined < 0.5 (in-sample "
                               "return not above 0); 3/10 windows positive OOS (30%, < 50%); parameters stable in "
                               "3/9 steps (33%, < 50%); 4 OOS trades < 10 (passed: stitched OOS Sharpe 0.40 > 0)")


def test_text_report_ends_with_the_verdict() -> None:
    from cockpit.research.walkforward.report import render_text

    report = {
        "strategy": "s", "kind": "sma_cross", "symbols": ["SPY"], "from": "2010-01-01", "to": "2010-12-31",
        "grid": {"spec": "fast=5", "points": 1, "refused": 0}, "objective": "sharpe", "anchored": False,
        "train": "6m", "test": "3m", "warmup_sessions": 30, "timing": {"backtests": 4, "executor": "serial",
                                                                       "seconds": 1.0},
        "windows": [{"index": 1, "train": ["2010-01-01", "2010-06-30"], "test": ["2010-07-01", "2010-09-30"],
                     "partial": False, "params": {"fast": 5}, "is_objective": 1.0, "oos_objective": None,
                     "is_trades": 3, "oos_trades": 1, "oos_return": 0.01, "timing": {"seconds": 0.5}}],
        "stitched": {"first_day": "2010-07-01", "last_day": "2010-09-30", "sessions": 64, "sharpe": None,
                     "sortino": None, "cagr": None, "max_drawdown": None, "profit_factor": None, "win_rate": None,
                     "trades": 1, "open_trades": 0, "net": "12.5", "t_stat": None},
        "starting_cash": "100000", "wfe": None, "positive_windows": 1,
        "stability": {"share": None}, "params": {"fast": 5},
        "verdict": {"line": "DOES NOT HOLD UP out of sample: ..."},
    }
    out = io.StringIO()
    render_text(report, out, ["  report stored in X"])
    lines = out.getvalue().splitlines()
    assert lines[-1] == "DOES NOT HOLD UP out of sample: ..." and "  report stored in X" in lines
