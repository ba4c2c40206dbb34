"""core.data.calendar is the one exchange-calendars wrapper: the bar reader's session times and
the live dead-man's "is the market open" must agree, half days and holidays included."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.data.bar_files import DroppedRow, bundled_path, read_bar_file
from core.data.calendar import ExchangeSession

# exchange_calendars 4.13.2 itself calls a pandas API that pandas 3.1 deprecates; not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
    pytest.mark.filterwarnings("ignore:DatetimeIndex.values returning an ndarray"),
]

NEW_YORK = ZoneInfo("America/New_York")
REPO = Path(__file__).resolve().parent.parent
MINUTE = timedelta(minutes=1)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_half_day_and_holiday_agree_between_reader_and_live_session(tmp_path: Path) -> None:
    # Real SPY bars around Thanksgiving and Christmas 2013: two half days (13:00 New York).
    spy = read_bar_file(bundled_path("daily/SPY_2007-2017_yahoo.csv"), "SPY")
    window = [b for b in spy.bars if date(2013, 11, 27) <= b.start.date() <= date(2013, 12, 27)]
    by_day = {b.start.astimezone(NEW_YORK).date(): b for b in window}
    assert by_day[date(2013, 11, 29)].ts == ny(2013, 11, 29, 13, 0)
    assert by_day[date(2013, 12, 24)].ts == ny(2013, 12, 24, 13, 0)
    assert by_day[date(2013, 11, 27)].ts == ny(2013, 11, 27, 16, 0)
    assert date(2013, 11, 28) not in by_day and date(2013, 12, 25) not in by_day

    session = ExchangeSession("XNYS")
    for bar, nxt in pairwise(window):
        assert session.is_open(bar.start) and session.is_open(bar.ts - MINUTE)
        assert not session.is_open(bar.ts)
        assert session.next_change(bar.start) == bar.ts  # the close the reader gave the bar
        assert session.next_change(bar.ts) == nxt.start  # the next bar's open: no session between

    assert not session.is_open(ny(2013, 11, 29, 13, 30))
    assert not session.is_open(ny(2013, 12, 25, 12, 0))
    assert session.next_change(ny(2013, 12, 25, 12, 0)) == ny(2013, 12, 26, 9, 30)

    # The reader refuses a Christmas row for the same reason the live session is closed.
    path = tmp_path / "xmas.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2013-12-24,1,1,1,1,0\n2013-12-25,1,1,1,1,0\n")
    bf = read_bar_file(path, "T")
    assert bf.dropped == [DroppedRow(3, "2013-12-25 is not a XNYS session")]
    assert [(b.start, b.ts) for b in bf.bars] == [(ny(2013, 12, 24, 9, 30), ny(2013, 12, 24, 13, 0))]


def test_sessions_table_is_shared_and_times_are_utc_epoch_seconds() -> None:
    first, last = date(2013, 11, 25), date(2013, 12, 3)
    table = ExchangeSession().sessions(first, last)
    assert ExchangeSession("XNYS").sessions(first, last) is table  # one build for every user
    half_day = table[date(2013, 11, 29).toordinal()]
    assert half_day == (int(ny(2013, 11, 29, 9, 30).timestamp()), int(ny(2013, 11, 29, 13, 0).timestamp()))
    assert date(2013, 11, 28).toordinal() not in table


def test_naive_moment_means_utc() -> None:
    session = ExchangeSession()
    assert session.is_open(datetime(2013, 11, 29, 17, 59))  # 12:59 New York
    assert not session.is_open(datetime(2013, 11, 29, 18, 0))
    assert session.next_change(datetime(2013, 11, 29, 17, 0)) == datetime(2013, 11, 29, 18, 0, tzinfo=UTC)


def test_question_outside_the_built_span_widens_it() -> None:
    session = ExchangeSession()
    assert session.is_open(ny(2013, 11, 29, 10, 0))
    later = ny(2045, 1, 3, 10, 0)  # a Tuesday, far beyond the first build (1990 to a year ahead)
    assert session.is_open(later)
    assert session.next_change(later) == ny(2045, 1, 3, 16, 0)
    assert session.is_open(ny(1995, 1, 3, 10, 0))  # the earlier years are still there


def test_unknown_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calendar"):
        ExchangeSession("NOPE").is_open(ny(2013, 11, 29, 10, 0))
    with pytest.raises(ValueError, match="unknown calendar"):
        ExchangeSession("NOPE").sessions(date(2013, 1, 1), date(2013, 2, 1))


def test_only_the_wrapper_imports_exchange_calendars() -> None:
    uses = re.compile(r"^\s*(import exchange_calendars|from exchange_calendars)", re.MULTILINE)
    wrapper = REPO / "core" / "data" / "calendar.py"
    found = sorted(
        path.relative_to(REPO).as_posix()
        for top in ("core", "cockpit", "brokers")
        for path in (REPO / top).rglob("*.py")
        if uses.search(path.read_text(encoding="utf-8"))
    )
    assert found == [wrapper.relative_to(REPO).as_posix()]
