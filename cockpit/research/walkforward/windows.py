"""Train/test windows from durations, on calendar dates, and each run's data range.

Rolling (the default): each train window has the same length and the windows move on by the
test length, so the test windows follow each other without overlap or gap. Anchored: every
train window starts at the first date (expanding). A last test window cut short by the end of
the data is kept when it holds at least half a test length (marked partial), else left out.

Warm-up: a strategy needs ``warmup`` sessions of history before it can decide. Each run (in- and
out-of-sample) is handed the ``warmup`` sessions before its first trading date as well, and the
engine replays them the way it warms up after a restart (no order can go while it does), so
trading and the figures start on the first date of the window. The out-of-sample warm-up lies
inside the train window (the past), and no in-sample run is ever handed a bar of its test window.
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

_PART = re.compile(r"(\d+)([ymwd])")
MAX_WINDOWS = 1_000


class WindowError(ValueError):
    """Durations or dates that make no windows: one line naming the option and the fix."""


@dataclass(frozen=True, slots=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0
    text: str = ""

    def after(self, day: date) -> date:
        """``day`` moved on by this duration (a month end stays inside the month: Jan 31 + 1m = Feb 28)."""
        month_index = day.month - 1 + self.months + 12 * self.years
        year, month = day.year + month_index // 12, month_index % 12 + 1
        moved = date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
        return moved + timedelta(days=self.days)

    def approx_days(self) -> float:
        return self.years * 365.25 + self.months * 30.44 + self.days


def parse_duration(text: str, option: str) -> Duration:
    """``2y``, ``6m``, ``90d``, ``2w``, or combinations (``1y6m``)."""
    cleaned = text.strip().lower()
    parts = _PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise WindowError(f"{option} {text[:40]!r}: write a duration such as 2y, 6m, 90d or 1y6m "
                          "(y years, m months, w weeks, d days)")
    years = months = days = 0
    for number, unit in parts:
        n = int(number)
        if unit == "y":
            years += n
        elif unit == "m":
            months += n
        elif unit == "w":
            days += 7 * n
        else:
            days += n
    if years * 12 + months == 0 and days == 0:
        raise WindowError(f"{option} {text!r}: the duration must be longer than nothing")
    if years > 100 or months > 1200 or days > 36600:
        raise WindowError(f"{option} {text!r}: at most 100 years")
    return Duration(years, months, days, cleaned)


@dataclass(frozen=True, slots=True)
class Window:
    index: int  # 1-based
    train_start: date
    test_start: date  # the train window ends the day before
    test_end: date  # inclusive: the last date of the test window
    partial: bool  # the test window was cut short by the end of the data

    @property
    def train_end(self) -> date:
        return self.test_start - timedelta(days=1)


def make_windows(first: date, last: date, train: Duration, test: Duration, anchored: bool) -> list[Window]:
    """The windows over ``first`` .. ``last`` (inclusive)."""
    windows: list[Window] = []
    start = first
    while len(windows) < MAX_WINDOWS:
        train_start = first if anchored else start
        test_start = train.after(start) if not anchored else _anchored_test_start(first, train, test, len(windows))
        if test_start > last:
            break
        test_end = test.after(test_start) - timedelta(days=1)
        partial = test_end > last
        if partial:
            kept = (last - test_start).days + 1
            if kept < test.approx_days() / 2:
                break
            test_end = last
        windows.append(Window(len(windows) + 1, train_start, test_start, test_end, partial))
        if partial:
            break
        start = test.after(start)
    if not windows:
        raise WindowError(f"--train {train.text} + --test {test.text} do not fit in {first} .. {last}: shorten "
                          "them, or widen --from/--to")
    return windows


def _anchored_test_start(first: date, train: Duration, test: Duration, k: int) -> date:
    start = train.after(first)
    for _ in range(k):
        start = test.after(start)
    return start


@dataclass(frozen=True, slots=True)
class RunRange:
    """The dates one run is handed: ``data_start`` .. ``end``, trading from ``trade_start``."""

    data_start: date  # the first warm-up session (== trade_start without warm-up)
    trade_start: date
    end: date  # inclusive


def run_range(sessions: Sequence[date], trade_start: date, end: date, warmup: int) -> RunRange:
    """The warm-up is the ``warmup`` sessions of ``sessions`` (the data's, sorted) before ``trade_start``,
    as many as there are."""
    i = bisect.bisect_left(sessions, trade_start)
    data_start = sessions[max(0, i - warmup)] if warmup and i > 0 else trade_start
    return RunRange(min(data_start, trade_start), trade_start, end)


def sessions_between(sessions: Sequence[date], start: date, end: date) -> int:
    return bisect.bisect_right(sessions, end) - bisect.bisect_left(sessions, start)
