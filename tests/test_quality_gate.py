"""The data quality gate: every check quarantines with its reason, once per episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.config import FeedQualityConfig
from core.data.quality import QualityGate
from core.domain.model import Bar, Quote

T0 = datetime(2026, 12, 1, 15, tzinfo=UTC)


def q(i: int, bid: str, ask: str, last: str | None = None, sym: str = "AAPL") -> Quote:
    return Quote(sym, T0 + timedelta(seconds=i), D(bid), D(ask), D(last or bid))


def warm(gate: QualityGate, n: int = 30, price: float = 100.0, sym: str = "AAPL") -> int:
    """n quotes wobbling a cent around ``price``: the gate learns a small volatility."""
    for i in range(n):
        p = price + (0.01 if i % 2 else 0)
        assert gate.check(q(i, f"{p:.2f}", f"{p + 0.01:.2f}", sym=sym)) is None
    return n


@pytest.mark.parametrize(("bid", "ask", "last", "reason"), [
    ("NaN", "100.01", "100", "nan"),
    ("100", "100.01", "NaN", "nan"),
    ("0", "100.01", "100", "non_positive"),
    ("100", "100.01", "-1", "non_positive"),  # IB's "no value"
    ("100.02", "100.01", "100", "crossed"),
    ("100.01", "100.01", "100.01", "locked"),
])
def test_each_bad_quote_is_quarantined_with_its_reason(bid: str, ask: str, last: str, reason: str) -> None:
    gate = QualityGate("ibkr", FeedQualityConfig())
    found = gate.check(q(0, bid, ask, last))
    assert found is not None and found.reason == reason and found.quarantined and found.opened
    assert gate.counts[reason] == 1 and gate.quarantined == 1


def test_locked_passes_when_allowed() -> None:
    gate = QualityGate("ibkr", FeedQualityConfig(allow_locked=True))
    assert gate.check(q(0, "100.01", "100.01")) is None


def test_out_of_order_and_duplicate() -> None:
    gate = QualityGate("ibkr", FeedQualityConfig())
    assert gate.check(q(5, "100", "100.01")) is None
    found = gate.check(q(4, "100", "100.02"))
    assert found is not None and found.reason == "out_of_order"
    found = gate.check(q(5, "100", "100.01"))
    assert found is not None and found.reason == "duplicate"
    assert gate.check(q(5, "100.01", "100.02")) is None  # same time, another price: a real update


def test_a_spike_is_quarantined_and_a_confirmed_move_accepted() -> None:
    gate = QualityGate("ibkr", FeedQualityConfig(spike_k=10, spike_confirm=3))
    i = warm(gate)
    found = gate.check(q(i, "1000", "1000.01"))  # x10: a bad print
    assert found is not None and found.reason == "spike" and "beyond 10x" in found.detail
    assert gate.check(q(i + 1, "100.01", "100.02")) is None  # back where it was: the spike was alone
    # a real move: 20% down and staying there
    results = [gate.check(q(i + 2 + k, "80.00", "80.01")) for k in range(4)]
    assert [r.reason if r else None for r in results] == ["spike", "spike", "spike", None]
    assert gate.check(q(i + 7, "80.01", "80.02")) is None  # the new level is the level now


def test_one_episode_per_symbol_and_reason_until_clean_items() -> None:
    gate = QualityGate("ibkr", FeedQualityConfig(clear_after=3))
    opened = [f.opened for f in (gate.check(q(i, "101", "100")) for i in range(5)) if f is not None]
    assert opened == [True, False, False, False, False]
    for i in range(5, 7):
        assert gate.check(q(i, "100", "100.01")) is None
    assert gate.take_closed() == []
    assert gate.check(q(7, "100", "100.01", "100.005")) is None
    [closed] = gate.take_closed()
    assert (closed.symbol, closed.reason, closed.count) == ("AAPL", "crossed", 5)
    found = gate.check(q(8, "101", "100"))
    assert found is not None and found.opened  # a new episode


def test_bars_gap_is_flagged_and_kept_and_order_enforced() -> None:
    gate = QualityGate("replay", FeedQualityConfig(gap_factor=5))

    def bar(minutes: int, close: str = "100") -> Bar:
        ts = T0 + timedelta(minutes=minutes)
        c = D(close)
        return Bar("ES", ts - timedelta(minutes=1), ts, c, c + 1, c - 1, c, D(10))

    for m in range(1, 11):
        assert gate.check(bar(m)) is None
    found = gate.check(bar(40))
    assert found is not None and found.reason == "gap" and not found.quarantined  # kept
    found = gate.check(bar(40))
    assert found is not None and found.reason == "duplicate" and found.quarantined
    found = gate.check(bar(39))
    assert found is not None and found.reason == "out_of_order"
    bad = Bar("ES", T0, T0 + timedelta(hours=2), D("0"), D("1"), D("0"), D("1"), D(1))
    found = gate.check(bad)
    assert found is not None and found.reason == "non_positive"


def test_a_replay_drops_a_spiked_bar_when_spike_k_is_set(tmp_path) -> None:
    from core.config import FeedConfig
    from core.data.feeds.replay import ReplayFeed

    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    day = datetime(2024, 1, 2)
    n = 0
    while n < 40:
        if day.weekday() < 5 and day.strftime("%m-%d") not in ("01-15", "02-19"):  # sessions only
            close = 100 + (n % 2) * 0.5 if n != 30 else 1000  # one bad print at row 30
            rows.append(f"{day:%Y-%m-%d},{close},{close + 1},{close - 1},{close},{close},1000")
            n += 1
        day += timedelta(days=1)
    path = tmp_path / "X.csv"
    path.write_text("\n".join(rows) + "\n")
    files = [{"symbol": "X", "path": str(path)}]
    plain = ReplayFeed(FeedConfig(files=files), lambda p: path)
    plain.load()
    assert len(plain.bars["X"]) == 40, plain.files[0].dropped  # history: no spike check unless asked
    gated = ReplayFeed(FeedConfig(files=files, quality=FeedQualityConfig(spike_k=10)), lambda p: path)
    gated.load()
    assert len(gated.bars["X"]) == 39 and max(b.close for b in gated.bars["X"]) < 200
    assert gated.quality.counts["spike"] == 1
