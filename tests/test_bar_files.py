"""Tests for core.data.bar_files against the real bundled files and small synthetic ones."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data.bar_files import BarFile, BarFileError, DroppedRow, bundled_path, read_bar_file

# exchange_calendars 4.13.2 itself calls a pandas API that pandas 3.1 deprecates; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")

UTC = timezone.utc
BERLIN = {"tz": "Europe/Berlin", "bar_time": "end"}
NEW_YORK_START = {"tz": "America/New_York", "bar_time": "start"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def assert_valid(bf: BarFile) -> None:
    """Every kept bar obeys the OHLC rules, is in UTC, and time strictly increases."""
    prev = None
    for b in bf.bars:
        assert b.symbol == bf.symbol
        assert b.start.tzinfo is UTC and b.ts.tzinfo is UTC
        assert b.start < b.ts
        assert min(b.open, b.high, b.low, b.close) > 0 and b.volume >= 0
        assert b.high >= max(b.open, b.close) and b.low <= min(b.open, b.close)
        if prev is not None:
            assert b.start > prev.start and b.ts > prev.ts
        prev = b


# --------------------------------------------------------------------------- bundling

SHA256 = {
    "daily/AAPL_2004-2018_yahoo.csv": "3536d17f034160656cfad930297948145b28f28d9262a28ba50abed16e1c2da1",
    "daily/NVDA_1999-2014_yahoo.csv": "d16ee01711b8a39085a2c3a5d9840bb0ef43091a9e2909e5c819c3020a3ac28f",
    "daily/ORCL_1995-2014_yahoo.csv": "352b9e0985969d2eb27bfbf65049da3c68fd2a5eebc2d43bec7ccfe553521253",
    "daily/SPY_2007-2017_yahoo.csv": "d4225c2a41c52335780792536c87bbc9e692c51aca5fad92e3afeffca45fee7c",
    "daily/YHOO_1996-2014_yahoo.csv": "3d75e5763360a2807f821a31448b6d74f7ca1117d538f2e4984ef19b315a6c6d",
    "intraday/SP500_NOV2019_IDay.csv": "dcdb743b3d3448bbc091a7a69280bdb2df2659885e3652ac4e844304cf1973bc",
    "intraday/backtrader_2006-01-02-volume-min-001.txt": "5cf85c53765fcb70f6f56662d9dfb84727bd1c6d6c79f10fdf20901223a0a5b2",
    "intraday/backtrader_2006-min-005.txt": "a0edb8f72a91adc37318e12ca34c8d9542ebc60ad21d50b0cde06b25dcf3c46f",
}


@pytest.mark.parametrize("relative", sorted(SHA256))
def test_bundled_files_are_unmodified(relative: str) -> None:
    path = bundled_path(relative)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256[relative]
    assert relative in (path.parent.parent / "PROVENANCE.md").read_text(encoding="utf-8")


def test_bundled_path_missing_lists_available() -> None:
    with pytest.raises(BarFileError) as info:
        bundled_path("daily/MSFT.csv")
    msg = str(info.value)
    assert "daily/MSFT.csv" in msg and "daily/SPY_2007-2017_yahoo.csv" in msg


def test_bundled_path_refuses_escape() -> None:
    with pytest.raises(BarFileError):
        bundled_path("../bar_files.py")


# --------------------------------------------------------------------------- real daily files

DAILY = [
    ("daily/ORCL_1995-2014_yahoo.csv", "ORCL", 5036, (1995, 1, 3), (2014, 12, 31)),
    ("daily/NVDA_1999-2014_yahoo.csv", "NVDA", 4012, (1999, 1, 22), (2014, 12, 31)),
    ("daily/YHOO_1996-2014_yahoo.csv", "YHOO", 4713, (1996, 4, 12), (2014, 12, 31)),
    ("daily/AAPL_2004-2018_yahoo.csv", "AAPL", 3379, (2004, 8, 19), (2018, 1, 19)),
]


@pytest.mark.parametrize(("relative", "symbol", "rows", "first", "last"), DAILY)
def test_daily_files_keep_every_row(
    relative: str, symbol: str, rows: int, first: tuple[int, int, int], last: tuple[int, int, int]
) -> None:
    bf = read_bar_file(bundled_path(relative), symbol)
    assert len(bf.bars) == rows
    assert bf.dropped == []
    assert bf.bars[0].start.date() == datetime(*first).date()
    assert bf.bars[-1].start.date() == datetime(*last).date()
    assert_valid(bf)


def test_orcl_times_and_early_close() -> None:
    bf = read_bar_file(bundled_path("daily/ORCL_1995-2014_yahoo.csv"), "ORCL")
    first, last = bf.bars[0], bf.bars[-1]
    # 1995-01-03 is winter (EST, UTC-5): 09:30-16:00 ET.
    assert (first.start, first.ts) == (utc(1995, 1, 3, 14, 30), utc(1995, 1, 3, 21, 0))
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("2.179012"), Decimal("2.191358"), Decimal("2.117284"), Decimal("2.117284"),
        Decimal("36301200"),
    )
    assert (last.start, last.ts) == (utc(2014, 12, 31, 14, 30), utc(2014, 12, 31, 21, 0))
    # Day after Thanksgiving 2013: the NYSE closed at 13:00 ET = 18:00 UTC.
    [black_friday] = [b for b in bf.bars if b.start.date() == datetime(2013, 11, 29).date()]
    assert (black_friday.start, black_friday.ts) == (utc(2013, 11, 29, 14, 30), utc(2013, 11, 29, 18, 0))
    assert black_friday.close == Decimal("35.290001")
    # Prices are exactly the text: no float artefacts introduced or removed.
    assert bf.bars[-2].open == Decimal("45.549999")
    # A summer session (EDT, UTC-4).
    [summer] = [b for b in bf.bars if b.start.date() == datetime(2014, 7, 1).date()]
    assert (summer.start, summer.ts) == (utc(2014, 7, 1, 13, 30), utc(2014, 7, 1, 20, 0))


def test_spy_drops_the_two_bad_yahoo_opens(caplog: pytest.LogCaptureFixture) -> None:
    path = bundled_path("daily/SPY_2007-2017_yahoo.csv")
    with caplog.at_level(logging.WARNING, logger="cockpit.data"):
        bf = read_bar_file(path, "SPY")
    assert len(bf.bars) == 2517
    assert bf.dropped == [
        DroppedRow(1808, "low 209.850006 > open 209.419998"),
        DroppedRow(1825, "low 206.960007 > open 205.740005"),
    ]
    lines = path.read_text().splitlines()
    assert lines[1808 - 1].startswith("2015-03-05,")
    assert lines[1825 - 1].startswith("2015-03-30,")
    dates = {b.start.date().isoformat() for b in bf.bars}
    assert "2015-03-05" not in dates and "2015-03-30" not in dates
    assert "2015-03-04" in dates and "2015-03-06" in dates
    assert bf.bars[0].start == utc(2007, 12, 31, 14, 30)
    assert bf.bars[-1].ts == utc(2017, 12, 29, 21, 0)
    logged = [r.getMessage() for r in caplog.records if r.name == "cockpit.data"]
    assert len(logged) == 2
    assert all(str(path) in m for m in logged)
    assert "line 1808" in logged[0] and "low 209.850006 > open 209.419998" in logged[0]
    assert_valid(bf)


def test_daily_without_calendar_uses_local_0930_1600() -> None:
    bf = read_bar_file(bundled_path("daily/ORCL_1995-2014_yahoo.csv"), "ORCL", calendar=None)
    assert len(bf.bars) == 5036
    [black_friday] = [b for b in bf.bars if b.start.date() == datetime(2013, 11, 29).date()]
    assert black_friday.ts == utc(2013, 11, 29, 21, 0)  # no calendar: no early close


# --------------------------------------------------------------------------- real intraday files


def test_backtrader_5min() -> None:
    bf = read_bar_file(bundled_path("intraday/backtrader_2006-min-005.txt"), "ESTX50", **BERLIN)
    assert len(bf.bars) == 2142 and bf.dropped == []
    first, last = bf.bars[0], bf.bars[-1]
    # 09:05 CET bar end = 08:05 UTC; 5-minute bars.
    assert (first.start, first.ts) == (utc(2006, 1, 2, 8, 0), utc(2006, 1, 2, 8, 5))
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("3578.73"), Decimal("3587.88"), Decimal("3578.73"), Decimal("3582.99"), Decimal(0)
    )
    assert (last.start, last.ts) == (utc(2006, 1, 30, 16, 25), utc(2006, 1, 30, 16, 30))
    per_day = Counter(b.ts.date() for b in bf.bars)
    assert len(per_day) == 21 and set(per_day.values()) == {102}
    assert_valid(bf)


def test_backtrader_1min_header_missing_time() -> None:
    path = bundled_path("intraday/backtrader_2006-01-02-volume-min-001.txt")
    assert path.read_bytes().splitlines()[0] == b"Date,Open,High,Low,Close,Volume,OpenInterest"
    bf = read_bar_file(path, "FESX", **BERLIN)
    assert len(bf.bars) == 30889 and bf.dropped == []
    first, last = bf.bars[0], bf.bars[-1]
    # Row 2: 2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0 (bar end, CET).
    assert (first.start, first.ts) == (utc(2006, 1, 2, 8, 0), utc(2006, 1, 2, 8, 1))
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("3602.00"), Decimal("3603.00"), Decimal("3597.00"), Decimal("3599.00"), Decimal(5699)
    )
    assert (last.start, last.ts) == (utc(2006, 2, 27, 20, 59), utc(2006, 2, 27, 21, 0))
    assert last.volume == Decimal(327)
    # Time column parsed (not shifted): stamps carry minutes and seconds from the Time field.
    assert {b.ts.second for b in bf.bars} == {0}
    assert len({b.ts.date() for b in bf.bars}) == 41
    jan2 = [b for b in bf.bars if b.ts.date() == datetime(2006, 1, 2).date()]
    assert jan2[-1].ts == utc(2006, 1, 2, 19, 4)  # 20:04 CET
    assert sum(b.open == b.high == b.low == b.close for b in bf.bars) == 5736
    # Minutes without trades have no row: gaps stay gaps (725 intra-day steps > 1 min).
    steps = [(y.ts - x.ts) for x, y in zip(bf.bars, bf.bars[1:], strict=False) if x.ts.date() == y.ts.date()]
    assert len(steps) == 30848 and sum(s > timedelta(minutes=1) for s in steps) == 725
    per_day = Counter(b.ts.date() for b in bf.bars)
    assert (min(per_day.values()), max(per_day.values())) == (584, 780)
    assert all(b.ts - b.start == timedelta(minutes=1) for b in bf.bars)
    assert_valid(bf)


def test_sp500_columns_by_name() -> None:
    path = bundled_path("intraday/SP500_NOV2019_IDay.csv")
    header, row1 = path.read_text().splitlines()[:2]
    assert header == "Date,Open,Close,High,Low,Volume"
    assert row1 == "11/5/2019 9:30,3080.8,3080.49,3081.47,3080.3,0"
    bf = read_bar_file(path, "SPX", **NEW_YORK_START)
    assert len(bf.bars) == 1563 and bf.dropped == []
    first, last = bf.bars[0], bf.bars[-1]
    assert (first.open, first.close, first.high, first.low, first.volume) == (
        Decimal("3080.8"), Decimal("3080.49"), Decimal("3081.47"), Decimal("3080.3"), Decimal(0)
    )
    # 09:30 EST (UTC-5) bar start = 14:30 UTC.
    assert (first.start, first.ts) == (utc(2019, 11, 5, 14, 30), utc(2019, 11, 5, 14, 31))
    assert (last.start, last.ts) == (utc(2019, 11, 8, 20, 59), utc(2019, 11, 8, 21, 0))
    assert (last.open, last.close, last.high, last.low) == (
        Decimal("3091.16"), Decimal("3092.91"), Decimal("3092.91"), Decimal("3090.96")
    )
    per_day = Counter(b.start.date() for b in bf.bars)
    assert sorted(per_day.values()) == [390, 391, 391, 391]
    assert_valid(bf)


def test_sp500_read_by_position_would_be_invalid(tmp_path: Path) -> None:
    """The same rows under an O,H,L,C header break the OHLC rules: the names matter."""
    src = bundled_path("intraday/SP500_NOV2019_IDay.csv").read_bytes()
    bad = tmp_path / "positional.csv"
    bad.write_bytes(src.replace(b"Date,Open,Close,High,Low,Volume", b"Date,Open,High,Low,Close,Volume", 1))
    bf = read_bar_file(bad, "SPX", **NEW_YORK_START)
    assert bf.bars == [] and len(bf.dropped) == 1563


# --------------------------------------------------------------------------- synthetic files


def write(tmp_path: Path, text: str, name: str = "bars.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_crlf_no_final_newline_bom_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffdate,OPEN,High,low,Close,Volume\r\n"
        "2024-01-02,10,11,9,10.5,100\r\n"
        "\r\n"
        "2024-01-03,10.5,12,10,11,200",
    )
    bf = read_bar_file(path, "T")
    assert [b.close for b in bf.bars] == [Decimal("10.5"), Decimal("11")]
    assert bf.dropped == []
    assert bf.bars[1].ts == utc(2024, 1, 3, 21, 0)


def test_bad_row_in_the_middle_is_dropped_and_reading_continues(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,10,11,9,10,100\n"
        "2024-01-03,10,abc,9,10,100\n"
        "2024-01-04,10,11,9\n"
        "2024-13-05,10,11,9,10,100\n"
        "2024-01-05,10,11,9,10,-1\n"
        "2024-01-08,0,11,9,10,100\n"
        "2024-01-09,10,9,11,10,100\n"
        "2024-01-10,10,11,9,10,100\n",
    )
    bf = read_bar_file(path, "T")
    assert [b.start.date().day for b in bf.bars] == [2, 10]
    assert bf.dropped == [
        DroppedRow(3, "unparseable high 'abc'"),
        DroppedRow(4, "4 fields, expected 6"),
        DroppedRow(5, "unparseable date '2024-13-05'"),
        DroppedRow(6, "negative volume -1"),
        DroppedRow(7, "non-positive open 0"),
        DroppedRow(8, "high 9 < low 11; high 9 < open 10; high 9 < close 10; low 11 > open 10; low 11 > close 10"),
    ]


def test_nan_and_inf_are_dropped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2024-01-02,10:00,10,11,9,10,1\n"
        "2024-01-02,10:01,NaN,11,9,10,1\n"
        "2024-01-02,10:02,10,inf,9,10,1\n"
        "2024-01-02,10:03,10,11,9,10,1\n",
    )
    bf = read_bar_file(path, "T", bar_time="start")
    assert len(bf.bars) == 2
    assert [d.line_no for d in bf.dropped] == [3, 4]
    assert "open is not a finite number" in bf.dropped[0].reason
    assert "high is not a finite number" in bf.dropped[1].reason
    # Bar length inferred from the kept stamps (10:00, 10:03) is 3 minutes; pass it explicitly.
    bf = read_bar_file(path, "T", bar_time="start", bar_seconds=60)
    assert bf.bars[0].start == utc(2024, 1, 2, 15, 0) and bf.bars[0].ts == utc(2024, 1, 2, 15, 1)


def test_duplicate_and_backwards_timestamps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Date,Time,Open,High,Low,Close,Volume\n"
        "20240102,10:00:00,10,11,9,10,1\n"
        "20240102,10:01:00,10,11,9,10,2\n"
        "20240102,10:01:00,10,11,9,10,3\n"
        "20240102,09:59:00,10,11,9,10,4\n"
        "20240102,10:02:00,10,11,9,10,5\n",
    )
    bf = read_bar_file(path, "T", bar_time="end")
    assert [b.volume for b in bf.bars] == [Decimal(1), Decimal(2), Decimal(5)]
    assert [d.line_no for d in bf.dropped] == [4, 5]
    assert all(d.reason.startswith("timestamp not after previous bar") for d in bf.dropped)
    assert bf.bars[0].ts == utc(2024, 1, 2, 15, 0) and bf.bars[0].start == utc(2024, 1, 2, 14, 59)


def test_daily_duplicate_and_non_session(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Date,Open,High,Low,Close,Volume\n"
        "2024-07-03,10,11,9,10,1\n"
        "2024-07-04,10,11,9,10,1\n"
        "2024-07-06,10,11,9,10,1\n"
        "2024-07-05,10,11,9,10,1\n"
        "2024-07-05,10,11,9,10,1\n",
    )
    bf = read_bar_file(path, "T")
    # 2024-07-03 is an early close (13:00 ET = 17:00 UTC); July 4th and a Saturday are not sessions.
    assert [(b.start, b.ts) for b in bf.bars] == [
        (utc(2024, 7, 3, 13, 30), utc(2024, 7, 3, 17, 0)),
        (utc(2024, 7, 5, 13, 30), utc(2024, 7, 5, 20, 0)),
    ]
    assert bf.dropped == [
        DroppedRow(3, "2024-07-04 is not a XNYS session"),
        DroppedRow(4, "2024-07-06 is not a XNYS session"),
        DroppedRow(6, "timestamp not after previous bar (2024-07-05 <= 2024-07-05)"),
    ]


def test_date_formats(tmp_path: Path) -> None:
    rows = "10,11,9,10,1"
    cases = {
        "Date,Open,High,Low,Close,Volume\n1/2/2024 9:30,{r}\n1/2/2024 9:31,{r}\n": (14, 30),
        "Date,Open,High,Low,Close,Volume\n2024-01-02 09:30,{r}\n2024-01-02 09:31,{r}\n": (14, 30),
        "Date,Open,High,Low,Close,Volume\n2024-01-02T09:30:00,{r}\n2024-01-02T09:31:00,{r}\n": (14, 30),
        "Datetime,Open,High,Low,Close,Volume\n2024-01-02T09:30:00.000,{r}\n2024-01-02T09:31:00.000,{r}\n": (14, 30),
        "Date,Open,High,Low,Close,Volume\n2024-01-02T14:30:00Z,{r}\n2024-01-02T14:31:00Z,{r}\n": (14, 30),
        "Date,Open,High,Low,Close,Volume\n20240102 09:30:00,{r}\n20240102 09:31:00,{r}\n": (14, 30),
        "Date,Time,Open,High,Low,Close,Volume\n1/2/2024,9:30,{r}\n1/2/2024,9:31,{r}\n": (14, 30),
    }
    for i, (text, (hh, mm)) in enumerate(cases.items()):
        bf = read_bar_file(write(tmp_path, text.format(r=rows), f"f{i}.csv"), "T", bar_time="start")
        assert bf.dropped == [], text
        assert [b.start for b in bf.bars] == [utc(2024, 1, 2, hh, mm), utc(2024, 1, 2, hh, mm + 1)], text
        assert bf.bars[0].ts - bf.bars[0].start == timedelta(minutes=1)


def test_daily_compact_and_mdy_dates(tmp_path: Path) -> None:
    for i, (d1, d2) in enumerate([("20240102", "20240103"), ("1/2/2024", "1/3/2024")]):
        path = write(tmp_path, f"Date,Open,High,Low,Close,Volume\n{d1},1,1,1,1,0\n{d2},1,1,1,1,0\n", f"d{i}.csv")
        bf = read_bar_file(path, "T")
        assert [b.start for b in bf.bars] == [utc(2024, 1, 2, 14, 30), utc(2024, 1, 3, 14, 30)]


def test_dst_gap_and_repeated_hour(tmp_path: Path) -> None:
    # US DST starts 2024-03-10 02:00 (02:xx does not exist) and ends 2024-11-03 02:00 (01:xx twice).
    path = write(
        tmp_path,
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2024-03-10,01:30,1,1,1,1,0\n"
        "2024-03-10,02:30,1,1,1,1,0\n"
        "2024-03-10,03:30,1,1,1,1,0\n"
        "2024-11-03,01:00,1,1,1,1,0\n"
        "2024-11-03,01:30,1,1,1,1,0\n"
        "2024-11-03,01:00,1,1,1,1,0\n"
        "2024-11-03,01:30,1,1,1,1,0\n"
        "2024-11-03,02:00,1,1,1,1,0\n",
    )
    bf = read_bar_file(path, "T", bar_time="start", bar_seconds=1800)
    assert [d.line_no for d in bf.dropped] == [3]
    assert "does not exist" in bf.dropped[0].reason
    assert [b.start for b in bf.bars] == [
        utc(2024, 3, 10, 6, 30),
        utc(2024, 3, 10, 7, 30),
        utc(2024, 11, 3, 5, 0),
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 3, 6, 0),
        utc(2024, 11, 3, 6, 30),
        utc(2024, 11, 3, 7, 0),
    ]


def test_quoted_fields_and_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path, '"Date";"Open";"High";"Low";"Close";"Volume"\n"2024-01-02";"10";"11";"9";"10";"5"\n')
    bf = read_bar_file(path, "T")
    assert len(bf.bars) == 1 and bf.bars[0].volume == Decimal(5)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "missing.csv"
    with pytest.raises(BarFileError) as info:
        read_bar_file(path, "T")
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_header_without_close(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Adj Close,Volume\n2024-01-02,10,11,9,10,1\n")
    with pytest.raises(BarFileError) as info:
        read_bar_file(path, "T")
    msg = str(info.value)
    assert str(path) in msg and "close" in msg and "Close" in msg


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match="empty"):
        read_bar_file(write(tmp_path, "\n\n", "empty.csv"), "T")
    bf = read_bar_file(write(tmp_path, "Date,Open,High,Low,Close,Volume\r\n", "h.csv"), "T")
    assert bf.bars == [] and bf.dropped == []


def test_headerless_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "2024-01-02,10,11,9,10,1\n")
    with pytest.raises(BarFileError, match="no usable"):
        read_bar_file(path, "T")


def test_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10,1\n")
    with pytest.raises(ValueError):
        read_bar_file(path, "T", tz="Mars/Olympus")
    with pytest.raises(ValueError):
        read_bar_file(path, "T", bar_time="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        read_bar_file(path, "T", calendar="NOPE")


def test_single_intraday_bar_needs_bar_seconds(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Time,Open,High,Low,Close,Volume\n2024-01-02,10:00,10,11,9,10,1\n")
    with pytest.raises(BarFileError, match="bar_seconds"):
        read_bar_file(path, "T")
    assert len(read_bar_file(path, "T", bar_seconds=60).bars) == 1


@st.composite
def bar_rows(draw: st.DrawFn) -> list[tuple[int, str, str, str, str, str]]:
    """Valid rows: increasing minute offsets and OHLC text that obeys the rules."""
    n = draw(st.integers(1, 30))
    minutes = sorted(draw(st.sets(st.integers(0, 600), min_size=n, max_size=n)))
    price = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4)
    rows = []
    for m in minutes:
        a, b = draw(price), draw(price)
        lo, hi = min(a, b), max(a, b)
        o = draw(st.decimals(min_value=lo, max_value=hi, places=4))
        c = draw(st.decimals(min_value=lo, max_value=hi, places=4))
        v = draw(st.integers(0, 10**9))
        rows.append((m, str(o), str(hi), str(lo), str(c), str(v)))
    return rows


@settings(max_examples=60, deadline=None)
@given(rows=bar_rows(), eol=st.sampled_from(["\n", "\r\n"]), final=st.booleans(), bom=st.booleans())
def test_valid_rows_round_trip_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, str, str, str, str, str]],
    eol: str,
    final: bool,
    bom: bool,
) -> None:
    base = datetime(2024, 1, 2, 9, 30)
    body = eol.join(
        f"{(base + timedelta(minutes=m)).strftime('%Y-%m-%d,%H:%M:%S')},{o},{h},{lo},{c},{v}"
        for m, o, h, lo, c, v in rows
    )
    text = ("\ufeff" if bom else "") + "Date,Time,Open,High,Low,Close,Volume" + eol + body + (eol if final else "")
    path = write(tmp_path_factory.mktemp("rt"), text)
    bf = read_bar_file(path, "T", bar_time="start", bar_seconds=60)
    assert bf.dropped == []
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in bf.bars] == [
        (Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v)) for _, o, h, lo, c, v in rows
    ]
    assert [str(b.open) for b in bf.bars] == [o for _, o, *_ in rows]
    assert [b.start for b in bf.bars] == [utc(2024, 1, 2, 14, 30) + timedelta(minutes=m) for m, *_ in rows]
