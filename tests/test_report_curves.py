"""``report_curves`` (core/analytics/report_curves.py): the curves' part of each daily summary,
written by the reports recorder beside it. After a replay each narrow row says what its summary
says; `cockpit metrics` reads the same figures from it as from the summaries (a store from
before the table, and a day it cannot hold, read the summaries); a store from before it gets it
filled at open; a session closed again (a restart) updates both rows alike."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit import readers
from cockpit.wiring import build_engine
from core.analytics.recorder import ReportsRecorder
from core.analytics.report_curves import COLUMNS_SQL, backfill_params, hex64, int64s, read_columns, unscaled
from core.analytics.returns import EquityDay, return_figures, scaled_return_figures
from core.common.bus import Bus
from core.common.clock import SimClock
from core.config import load_config
from core.domain.daily_summary import DailySummary
from core.domain.events import DailySummaryReady
from core.persistence.store import Store
from tests.conftest import CONFIG

END = "2008-03-31"


def _settings(state: Path) -> Any:
    return load_config(CONFIG, state_dir=state, overrides={"feed": {"speed": "max", "end": END},
                                                           "deadman": {"enabled": False}})


async def _replay(state: Path) -> list[DailySummary]:
    engine = build_engine(_settings(state), alert_sinks=())
    published: list[DailySummary] = []
    engine.bus.subscribe(DailySummaryReady, lambda e: published.append(e.summary))
    await engine.start()
    try:
        await engine.run()
    finally:
        await engine.shutdown()
    return published


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DailySummary]]:
    state = tmp_path_factory.mktemp("curves") / "state"
    return state, asyncio.run(_replay(state))


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as con:
        return con.execute(sql).fetchall()


def _narrow(db: Path) -> list[tuple[Any, ...]]:
    return _rows(db, "SELECT date, session_close, equity_open, equity_close, owner_names, owner_values"
                     " FROM report_curves ORDER BY date")


def _from_summaries(db: Path) -> list[tuple[Any, ...]]:
    return backfill_params(_rows(db, "SELECT date, session_close, summary FROM daily_reports ORDER BY date"))


def _metrics(db: Path) -> tuple[str, list[str]]:
    said: list[str] = []
    with closing(readers.connect_readonly(db)) as con:
        data = readers.performance(con, warn=said.append)
    return json.dumps(data, sort_keys=True), said


def _without_table(db: Path, copy: Path) -> Path:
    """``db`` as a cockpit from before ``report_curves`` left it."""
    shutil.copy(db, copy)
    with closing(sqlite3.connect(copy)) as con:
        con.execute("DROP TABLE report_curves")
        con.execute("UPDATE schema_migrations SET version = 1 WHERE component = 'reports'")
        con.commit()
    return copy


def test_a_replay_leaves_one_narrow_row_per_summary_saying_what_it_says(
        replayed: tuple[Path, list[DailySummary]]) -> None:
    state, published = replayed
    db = state / "cockpit.sqlite"
    narrow = _narrow(db)
    assert len(narrow) == len(published) == len(_rows(db, "SELECT date FROM daily_reports")) > 40
    assert narrow == _from_summaries(db)
    owners = {name for row in narrow for name in row[4].split("\t") if name}
    assert {"sma_cross", "rsi_reversion"} <= owners
    last = published[-1]
    cumulative = {s.strategy: s.cumulative for s in last.strategies}
    names, values = narrow[-1][4].split("\t"), int64s(narrow[-1][5])
    assert {n: unscaled(values[2 * i]) for i, n in enumerate(names)} == cumulative
    assert unscaled(narrow[-1][3]) == last.equity_close


def test_metrics_read_the_same_from_the_narrow_rows_as_from_the_summaries(
        replayed: tuple[Path, list[DailySummary]], tmp_path: Path) -> None:
    db = replayed[0] / "cockpit.sqlite"
    with closing(readers.connect_readonly(db)) as con:
        assert readers._curve_columns(con) is not None  # the narrow path is the one taken
    old = _without_table(db, tmp_path / "old.sqlite")
    with closing(readers.connect_readonly(old)) as con:
        assert readers._curve_columns(con) is None
    fast, slow = _metrics(db), _metrics(old)
    assert fast == slow and not fast[1]
    for strategy in ("sma_cross", "rsi_reversion"):
        with closing(readers.connect_readonly(db)) as a, closing(readers.connect_readonly(old)) as b:
            assert readers.performance(a, strategy=strategy) == readers.performance(b, strategy=strategy)


async def _open_recorder(db: Path) -> tuple[Store, Bus]:
    store, bus = Store(db), Bus()
    await store.open()
    await ReportsRecorder(store, bus, SimClock(datetime(2026, 1, 5, tzinfo=UTC))).open()
    return store, bus


def test_a_store_from_before_the_table_gets_it_filled_at_open(
        replayed: tuple[Path, list[DailySummary]], tmp_path: Path) -> None:
    db = replayed[0] / "cockpit.sqlite"
    old = _without_table(db, tmp_path / "old.sqlite")

    async def reopen() -> None:
        store, _ = await _open_recorder(old)
        await store.flush()
        await store.close()

    asyncio.run(reopen())
    assert _narrow(old) == _narrow(db)
    asyncio.run(reopen())  # again: nothing missing, nothing changes
    assert _narrow(old) == _narrow(db) and _metrics(old) == _metrics(db)


def _open_and_close(db: Path) -> None:
    """The reports recorder opens the store (its migration and backfill) and closes it."""
    async def run() -> None:
        store, _ = await _open_recorder(db)
        await store.close()

    asyncio.run(run())


def _insert_summaries(db: Path, rows: list[tuple[str, str, str]]) -> None:
    """(date, session_close, summary) rows into daily_reports, behind the recorder's back."""
    with closing(sqlite3.connect(db)) as con:
        con.executemany("INSERT INTO daily_reports VALUES (?, ?, '0', '0', '0', ?, 'x')", rows)
        con.commit()


def test_an_odd_summary_has_no_narrow_row_and_the_reader_reads_the_summaries(tmp_path: Path) -> None:
    db = tmp_path / "cockpit.sqlite"

    _open_and_close(db)
    good = {"date": "2024-01-02", "equity_open": "100.00", "equity_close": "101.50",
            "strategies": [{"strategy": "a", "cumulative": "1.50", "net": "1.50"}]}
    rows = [("2024-01-02", "2024-01-02T21:00:00+00:00", json.dumps(good)),
            ("2024-01-03", "2024-01-03T21:00:00+00:00",
             json.dumps({**good, "date": "2024-01-03", "equity_close": "101.123456789"})),  # 9 places
            ("2024-01-04", "2024-01-04T21:00:00+00:00", json.dumps({**good, "date": "2024-01-04", "strategies": [
                {"strategy": "a\tb", "cumulative": "1", "net": "1"}]})),  # a tab in a name
            ("2024-01-05", "2024-01-05T21:00:00+00:00", "{not json")]
    assert backfill_params(rows) == [("2024-01-02", "2024-01-02T21:00:00+00:00", 10000000000, 10150000000,
                                      "a", "0000000008f0d180" * 2)]
    _insert_summaries(db, rows)
    _open_and_close(db)  # the open fills what it can hold
    assert [r[0] for r in _narrow(db)] == ["2024-01-02"]
    with closing(readers.connect_readonly(db)) as con:
        assert read_columns(con.execute(COLUMNS_SQL).fetchone()) is None  # days without a row: the summaries
    text, said = _metrics(db)
    assert json.loads(text)["sessions"] == 3 and len(said) == 1 and "2024-01-05" in said[0]


def test_a_summary_too_large_or_too_deep_is_left_to_the_summaries_and_the_store_still_opens(tmp_path: Path) -> None:
    """Before: money of 1E+999999 overflowed the decimal context and a summary nested past the
    JSON parser's depth raised RecursionError, out of the recorder's open: no engine start."""
    db = tmp_path / "cockpit.sqlite"

    _open_and_close(db)
    huge = {"date": "2024-01-02", "equity_open": "100", "equity_close": "1E+999999",
            "strategies": [{"strategy": "a", "cumulative": "1E+999999", "net": "1"}]}
    rows = [("2024-01-02", "2024-01-02T21:00:00+00:00", json.dumps(huge)),
            ("2024-01-03", "2024-01-03T21:00:00+00:00", "[" * 100_000 + "]" * 100_000)]
    assert backfill_params(rows) == []
    _insert_summaries(db, rows)
    _open_and_close(db)  # opens, fills nothing
    assert _narrow(db) == []


def test_a_session_closed_again_updates_both_rows_alike(
        replayed: tuple[Path, list[DailySummary]], tmp_path: Path) -> None:
    """A restart that closes a stored session again (the recorder's ON CONFLICT update): its
    narrow row follows the new summary, one owner fewer, another one's name odd, then clean."""
    published = replayed[1]
    first, later = published[10], published[-1]
    again = replace(later, date=first.date, session_open=first.session_open, session_close=first.session_close)
    odd = replace(again, strategies=(replace(again.strategies[0], strategy="tab\there"), *again.strategies[1:]))
    fewer = replace(again, strategies=again.strategies[:1], equity_open=first.equity_open + Decimal("0.01"))
    db = tmp_path / "cockpit.sqlite"

    async def run() -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        seen = []
        for summary in (first, again, odd, fewer):
            store, bus = await _open_recorder(db)  # a restart each time
            bus.publish(DailySummaryReady(summary))
            await store.flush()
            await store.close()
            seen.append((_narrow(db), _from_summaries(db)))
        return seen

    seen = asyncio.run(run())
    assert seen[2] == ([], [])  # the odd name: no row (the reader reads the summary), as a backfill does
    for narrow, summaries in (seen[0], seen[1], seen[3]):
        assert len(narrow) == 1 and narrow == summaries
    assert seen[1][0][0][3] == int(later.equity_close * 10**8) != seen[0][0][0][3]
    assert seen[3][0][0][4] == again.strategies[0].strategy and len(seen[3][0][0][5]) == 32
    assert _rows(db, "SELECT count(*) FROM daily_reports") == [(1,)]


def test_integer_returns_are_the_decimal_returns_floats() -> None:
    """``scaled_return_figures`` against ``return_figures`` of the same equity as Decimals, in
    the readers' 80-digit context: the same figures, to the last bit, over drawn curves (large
    and tiny moves, flat days, a zero and a negative opening equity)."""
    rng = random.Random(14)
    for trial in range(300):
        n = rng.randrange(1, 60)
        value = rng.randrange(1, 10**rng.randrange(3, 18))
        opens, closes = [], []
        for _ in range(n):
            opens.append(value)
            kind = rng.random()
            if kind < 0.1:
                step = 0
            elif kind < 0.2:
                step = rng.choice([-1, 1])
            elif kind < 0.25:
                step = -value - rng.randrange(0, 5)  # to zero or below
            else:
                step = int(value * rng.uniform(-0.2, 0.2)) + rng.randrange(-99, 99)
            value = value + step
            closes.append(value)
        days = [date(2020, 1, 1) + timedelta(days=i) for i in range(n)]
        with localcontext() as ctx:
            ctx.prec = readers.PRECISION
            curve = [EquityDay(d, unscaled(o), unscaled(c)) for d, o, c in zip(days, opens, closes, strict=True)]
            assert scaled_return_figures(days, opens, closes, unscaled) == return_figures(curve), trial


def test_the_figures_at_once_are_the_functions_one_by_one() -> None:
    """``return_figures`` takes its ratios from ``_ratios`` (each shared step done once): the same
    floats as ``total_return``, ``annual_return``, ``annual_volatility``, ``sharpe`` and
    ``sortino`` one by one, at a zero and at a non-zero risk-free rate."""
    from core.analytics import returns as r

    rng = random.Random(7)
    for trial in range(400):
        values = [rng.choice([0.0, -0.0, rng.gauss(0, 0.02), rng.uniform(-1.2, 0.5)]) for _ in range(rng.randrange(0, 40))]
        for annual in (0.0, 0.04, -0.01):
            rf = r.daily_rate(annual)
            want = (r.total_return(values), r.annual_return(values), r.annual_volatility(values),
                    r.sharpe(values, rf), r.sortino(values, rf))
            index = [1.0]
            for v in values:
                index.append(index[-1] * (1.0 + v))
            assert repr(r._ratios(values, rf, r.PERIODS_PER_YEAR)) == repr(want), (trial, annual)
            assert repr(r._ratios(values, rf, r.PERIODS_PER_YEAR, index[-1])) == repr(want), (trial, annual)


def test_integers_go_through_their_hex_digits_both_ways() -> None:
    """``hex64`` and ``int64s`` (and SQLite's ``printf('%016x')`` of an integer: the same digits),
    negative integers and the extremes included."""
    values = [0, 1, -1, 10**13, -(10**13) - 7, 2**63 - 1, -(2**63)]
    with closing(sqlite3.connect(":memory:")) as con:
        digits = "".join(con.execute("SELECT printf('%016x', ?)", (v,)).fetchone()[0] for v in values)
    assert hex64(values) == digits and int64s(digits) == values
    with pytest.raises(ValueError):
        int64s("abc")


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.integers(-10**20, 10**20).map(lambda n: str(Decimal(n).scaleb(-8))),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,10})?", fullmatch=True),
    st.text(alphabet="-+.0123456789eE_ ٣", max_size=14),
))
def test_plain_money_text_reads_as_the_decimal_it_says(text: str) -> None:
    """``scaled_text``'s reading of plain digits (and what it remembers) is the Decimal path's."""
    from decimal import InvalidOperation

    from core.analytics import report_curves

    try:
        want = report_curves.scaled(Decimal(text))
    except (InvalidOperation, ValueError):
        want = None
    for _ in range(2):  # read, then remembered
        assert report_curves.scaled_text(text) == want, text
