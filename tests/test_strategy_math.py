"""The demo strategies' decisions depend only on a bounded window of closes, computed exactly.

The unit under test is the strategy math, so a small context records the intents a
strategy hands back (the engine around it is tested elsewhere). The position the context
reports is fixed, so that every day's decision is seen for both branches (flat, long).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache

import pytest

from core.data.bar_files import bundled_path, read_bar_file
from core.domain.model import Bar, OrderType, Side, TimeInForce
from core.strategy import KINDS, Strategy
from core.strategy.exact import exact_sum, limit_below, shares_for
from core.strategy.rsi_reversion import RsiReversion, RsiReversionParams, wilder_rsi
from core.strategy.sma_cross import SmaCross

Intent = tuple  # (day, symbol, what, *details)


@dataclass
class RecordingContext:
    """A strategy context that holds a fixed position and records every intent, stamped with the day."""

    held: Decimal = Decimal(0)
    warming_up: bool = False
    day: date | None = None
    intents: list[Intent] = field(default_factory=list)

    def position(self, strategy: str, symbol: str) -> Decimal:
        return self.held

    def target_position(self, strategy: str, symbol: str, qty: Decimal) -> None:
        self.intents.append((self.day, symbol, "target", qty))

    def submit_order(self, strategy: str, symbol: str, side: Side, qty: Decimal,
                     order_type: OrderType = OrderType.MARKET, limit_price: Decimal | None = None,
                     tif: TimeInForce = TimeInForce.DAY) -> None:
        self.intents.append((self.day, symbol, "order", side, qty, order_type, limit_price, tif))

    def cancel_orders(self, strategy: str, symbol: str) -> None:
        self.intents.append((self.day, symbol, "cancel"))


@cache
def orcl() -> tuple[Bar, ...]:
    return tuple(read_bar_file(bundled_path("daily/ORCL_1995-2014_yahoo.csv"), "ORCL").bars)


def replay(strategy: Strategy, bars: tuple[Bar, ...] | list[Bar], held: Decimal = Decimal(0)) -> list[Intent]:
    ctx = RecordingContext(held=held)
    strategy.ctx = ctx
    strategy.on_start()
    for bar in bars:
        ctx.day = bar.start.date()
        strategy.on_bar(bar)
    return ctx.intents


def bars_from(start: date) -> tuple[Bar, ...]:
    return tuple(b for b in orcl() if b.start.date() >= start)


def on_or_after(intents: list[Intent], day: date) -> list[Intent]:
    return [i for i in intents if i[0] >= day]


FROM_1995, FROM_2004 = date(1995, 1, 3), date(2004, 1, 2)
TIE_DAY = date(2004, 6, 29)


def sma() -> SmaCross:
    return SmaCross("sma_cross", ["ORCL"], {"fast": 10, "slow": 30, "notional": "10000"})


def rsi() -> RsiReversion:
    return RsiReversion("rsi_reversion", ["ORCL"], {"period": 3, "entry": 15, "exit": 60, "notional": "8000",
                                                     "limit_offset_bps": "50"})


# --------------------------------------------------------------------------- ORCL from 1995 and from 2004


def test_orcl_2004_06_29_really_is_a_tie() -> None:
    """The data the next test leans on: the 10-bar and 30-bar means are both exactly 11.375."""
    bars = orcl()
    [i] = [k for k, b in enumerate(bars) if b.start.date() == TIE_DAY]
    closes = [b.close for b in bars[i - 29:i + 1]]
    assert exact_sum(closes[-10:]) / 10 == exact_sum(closes) / 30 == Decimal("11.375")


def test_sma_cross_decides_the_same_whatever_the_replay_start() -> None:
    early, late = bars_from(FROM_1995), bars_from(FROM_2004)
    long_run, short_run = replay(sma(), early), replay(sma(), late)
    warm = late[29].start.date()  # the late run's first full window: it states its position there
    assert short_run[0][:3] == (warm, "ORCL", "target")
    # On the late run's first day, the early run's standing decision is the same.
    standing = [i for i in long_run if i[0] <= warm][-1]
    assert standing[3] == short_run[0][3]
    # From the next day on, every decision is identical.
    after = late[30].start.date()
    assert on_or_after(short_run, after) == on_or_after(long_run, after)
    assert len(on_or_after(short_run, after)) > 50  # years of crossings, not an empty comparison
    # The tie is not long: neither run buys on 2004-06-29; both buy the next day.
    for run in (long_run, short_run):
        assert [i for i in run if i[0] == TIE_DAY] == []
        [next_day] = [i for i in run if i[0] == date(2004, 6, 30)]
        assert next_day[2] == "target" and next_day[3] == int(Decimal(10000) / Decimal("11.93"))


@pytest.mark.parametrize("held", [Decimal(0), Decimal(100)], ids=["flat", "long"])
def test_rsi_reversion_decides_the_same_whatever_the_replay_start(held: Decimal) -> None:
    early, late = bars_from(FROM_1995), bars_from(FROM_2004)
    window = 30
    long_run, short_run = replay(rsi(), early, held), replay(rsi(), late, held)
    first = late[window - 1].start.date()  # the late run's first full window
    assert on_or_after(short_run, first) == on_or_after(long_run, first)
    assert short_run == on_or_after(short_run, first)  # nothing decided on a part window
    assert len(short_run) > 50
    if held == 0:
        entry = [i for i in short_run if i[2] == "order"]
        assert entry and all(i[3] is Side.BUY and i[5] is OrderType.LIMIT and i[7] is TimeInForce.DAY for i in entry)
    else:
        assert {i[2:] for i in short_run} == {("target", Decimal(0))}


# --------------------------------------------------------------------------- units


def make_bars(closes: list[str | Decimal], symbol: str = "X") -> list[Bar]:
    t0 = datetime(2020, 1, 1, 14, 30, tzinfo=UTC)
    out = []
    for k, c in enumerate(closes):
        p = Decimal(c)
        start = t0 + timedelta(days=k)
        out.append(Bar(symbol, start, start + timedelta(hours=6, minutes=30), p, p, p, p, Decimal(1000)))
    return out


def test_sma_tie_is_not_long_even_where_floats_disagree() -> None:
    # fast mean 0.4 == slow mean (0.1 + 0.7 + 0.4) / 3; in floats the slow mean is 0.39999999999999997.
    s = SmaCross("s", ["X"], {"fast": 1, "slow": 3})
    assert replay(s, make_bars(["0.1", "0.7", "0.4"])) == [(date(2020, 1, 3), "X", "target", Decimal(0))]
    # One tick above the slow mean is long.
    s = SmaCross("s", ["X"], {"fast": 1, "slow": 3})
    [(_, _, _, qty)] = replay(s, make_bars(["0.1", "0.7", "0.41"]))
    assert qty == int(Decimal(10000) / Decimal("0.41"))


def test_sma_zero_and_tiny_prices_never_raise() -> None:
    s = SmaCross("s", ["X"], {"fast": 1, "slow": 3})
    # A turn to long on a zero close sizes to 0 shares; on 0.0001 it sizes exactly.
    assert replay(s, make_bars(["0", "0", "0", "0.0001"]))[-1][3] == Decimal(100_000_000)
    s = SmaCross("s", ["X"], {"fast": 1, "slow": 3})
    assert replay(s, make_bars(["-1", "-1", "0"])) == [(date(2020, 1, 3), "X", "target", Decimal(0))]


@pytest.mark.parametrize("low", ["0.0001", "0", "0.004"])
def test_rsi_tiny_price_skips_the_entry_instead_of_raising(low: str) -> None:
    # A steady fall: RSI 0, an entry, but the limit under the close rounds to 0.00.
    closes = [Decimal(30 - k) / 10 for k in range(29)] + [Decimal(low)]
    s = RsiReversion("r", ["X"], {"period": 3})
    assert replay(s, make_bars(closes)) == [(date(2020, 1, 30), "X", "cancel")]


def test_rsi_a_price_just_above_a_cent_enters_at_the_cent() -> None:
    closes = [Decimal(30 - k) / 10 for k in range(29)] + [Decimal("0.02")]
    s = RsiReversion("r", ["X"], {"period": 3, "notional": "8000"})
    assert replay(s, make_bars(closes))[-1][2:] == (
        "order", Side.BUY, Decimal(800_000), OrderType.LIMIT, Decimal("0.01"), TimeInForce.DAY)


def test_rsi_ignores_history_before_its_window() -> None:
    """The same last 30 closes, once after a calm week, once after a crash from 10 000 000: the same decision.

    Wilder's smoothing carried from the first bar would still hold ~50 of average loss from the crash
    (1e7 * (2/3)**30) and call the last bar oversold.
    """
    recent = [Decimal(10) + Decimal(k % 3) / 10 for k in range(29)] + [Decimal("10.15")]
    last_day = {}
    for name, prefix in (("calm", [Decimal(10)] * 5), ("crashed", [Decimal(10_000_000), Decimal(10)])):
        bars = make_bars(prefix + recent)
        s = RsiReversion("r", ["X"], {"period": 3})
        last_day[name] = [i[2:] for i in replay(s, bars) if i[0] == bars[-1].start.date()]
    assert wilder_rsi(recent, 3) > 15
    assert last_day["calm"] == last_day["crashed"] == []


def test_wilder_rsi_by_hand() -> None:
    # changes +1 -1 +1: seed gain 2/3, loss 1/3 -> RSI 200/3; then -1: gain 4/9, loss 5/9 -> 400/9.
    assert wilder_rsi([Decimal(c) for c in (10, 11, 10, 11)], 3) == Fraction(200, 3)
    assert wilder_rsi([Decimal(c) for c in (10, 11, 10, 11, 10)], 3) == Fraction(400, 9)
    assert wilder_rsi([Decimal(7)] * 5, 3) == 100  # no loss is RSI 100
    assert wilder_rsi([Decimal(c) for c in ("0.0002", 0, 0, "0.0002")], 3) == 50


def test_rsi_levels_are_strict_and_exact() -> None:
    # Gains 1.5, losses 1 on the seed: RSI exactly 60. An exit level of 60 does not exit; 59.99 does.
    at_60 = make_bars(["10", "11.5", "10.5", "10.5"])
    assert wilder_rsi([b.close for b in at_60], 3) == 60
    exits = {level: replay(RsiReversion("r", ["X"], {"period": 3, "window": 4, "exit": level}), at_60, Decimal(5))
             for level in (60, 59.99)}
    assert exits == {60: [], 59.99: [(date(2020, 1, 4), "X", "target", Decimal(0))]}
    # Gains 0.3, losses 1.7: RSI exactly 15. An entry level of 15 does not enter; 15.01 does.
    at_15 = make_bars(["10", "10.3", "8.6", "8.6"])
    assert wilder_rsi([b.close for b in at_15], 3) == 15
    entries = {level: replay(RsiReversion("r", ["X"], {"period": 3, "window": 4, "entry": level}), at_15)
               for level in (15, 15.01)}
    assert entries[15] == []
    assert [i[2] for i in entries[15.01]] == ["cancel", "order"]


def test_rsi_window_is_validated() -> None:
    assert RsiReversionParams(period=14).window == 140
    assert RsiReversionParams(period=3, window=4).window == 4
    with pytest.raises(ValueError, match="at least period"):
        RsiReversionParams(period=5, window=5)


def test_shares_and_limits_do_not_round_up() -> None:
    assert shares_for(Decimal(10000), Decimal(0)) == 0
    assert shares_for(Decimal(10000), Decimal(-3)) == 0
    # 2.99...94: a quotient rounded to 28 digits would be 3.000; whole shares round down.
    assert shares_for(Decimal("0." + "9" * 39 + "8"), Decimal("0." + "3" * 40)) == 2
    assert limit_below(Decimal("11.77"), Decimal(50)) == Decimal("11.71")
    assert limit_below(Decimal("0.0001"), Decimal(50)) is None
    assert limit_below(Decimal("NaN"), Decimal(50)) is None


def test_demo_strategies_are_long_only() -> None:
    assert Strategy.may_short is False
    assert {kind: cls.may_short for kind, cls in KINDS.items()} == {"sma_cross": False, "rsi_reversion": False}


def test_sma_cross_running_sums_equal_re_summing_the_window_on_every_bar() -> None:
    """The strategy's running exact sums decide exactly as re-summing the window would, on
    every bar of the ORCL file and on closes with mixed exponents (trailing zeros, scale)."""
    from core.strategy.sma_cross import _Window, fast_above_slow

    mixed = [Decimal(x) for x in ("10", "10.50", "9.999", "1E+1", "10.0001", "0.1", "100", "10.5")] * 8
    for closes in ([b.close for b in orcl()], mixed):
        window = _Window(30)
        for close in closes:
            window.push(close, 10)
            if len(window.closes) == 30:
                assert window.fast_above_slow(10) == fast_above_slow(window.closes, 10)
                assert window.slow_sum == exact_sum(window.closes)
