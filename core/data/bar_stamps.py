"""The date and time formats of bar files: text -> a ``date`` (daily) or a local ``datetime``.

Seen in real files: ``YYYY-MM-DD``, ``YYYYMMDD``, ``M/D/YYYY``; times ``H:MM``, ``HH:MM:SS``
and ``HH:MM:SS.ffffff``, in their own column or after the date; ISO stamps with ``T`` and an
offset. The layout is detected once per file, then every row is parsed the same way (a row
that does not fit raises ValueError and is dropped by the reader).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TypeVar

__all__ = ["Stamps"]

_T = TypeVar("_T")


def _parse_date_dash(s: str) -> date:
    """``YYYY-MM-DD`` (exactly that shape; ``date.fromisoformat`` alone accepts more)."""
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        raise ValueError(s)
    return date.fromisoformat(s)


def _parse_date_compact(s: str) -> date:
    """``YYYYMMDD``."""
    if len(s) != 8 or not s.isdigit():
        raise ValueError(s)
    return date(int(s[:4]), int(s[4:6]), int(s[6:]))


def _parse_date_mdy(s: str) -> date:
    """``M/D/YYYY`` with or without zero-padding (US order)."""
    m, d, y = s.split("/")
    if len(y) != 4 or not (m.isdigit() and d.isdigit() and y.isdigit()):
        raise ValueError(s)
    return date(int(y), int(m), int(d))


_DATE_PARSERS: tuple[Callable[[str], date], ...] = (
    _parse_date_dash,
    _parse_date_compact,
    _parse_date_mdy,
)


def _parse_time(s: str) -> timedelta:
    """``H:MM``, ``HH:MM:SS`` or ``HH:MM:SS.ffffff`` as the offset from local midnight."""
    parts = s.split(":")
    if len(parts) == 2:
        hh, mm = parts
        ss = "0"
    elif len(parts) == 3:
        hh, mm, ss = parts
    else:
        raise ValueError(s)
    if not (hh.isdigit() and len(mm) == 2 and mm.isdigit()):
        raise ValueError(s)
    h, m = int(hh), int(mm)
    if "." in ss:
        whole, frac = ss.split(".")
        if not (len(whole) == 2 and whole.isdigit() and frac.isdigit() and len(frac) <= 6):
            raise ValueError(s)
        sec, us = int(whole), int(frac.ljust(6, "0"))
    else:
        if not (ss.isdigit() and len(ss) <= 2):
            raise ValueError(s)
        sec, us = int(ss), 0
    if h > 23 or m > 59 or sec > 59:
        raise ValueError(s)
    return timedelta(hours=h, minutes=m, seconds=sec, microseconds=us)


def _memo(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """``parse`` cached by the raw text: an intraday file repeats each date and each time of
    day many times. A text that does not parse raises every time and is not cached."""
    cache: dict[str, _T] = {}

    def cached(text: str) -> _T:
        value = cache.get(text)
        if value is None:
            value = parse(text.strip())
            cache[text] = value
        return value

    return cached


def _detect_date(text: str) -> Callable[[str], date]:
    for parser in _DATE_PARSERS:
        try:
            parser(text)
        except ValueError:
            continue
        return parser
    raise ValueError(text)


def _parse_iso(d: str, _t: str | None) -> datetime:
    d = d.strip()
    if len(d) <= 10:
        raise ValueError(d)
    return datetime.fromisoformat(d)


class Stamps:
    """Turns the date (and time) fields of a row into a ``date`` or a local ``datetime``.

    The layout is detected once from a sample row and then used for every row, with the
    parsed pieces cached by their text.
    """

    def __init__(self, date_text: str, time_text: str | None) -> None:
        self.daily = False
        self.parse: Callable[[str, str | None], date | datetime]
        date_text = date_text.strip()
        if time_text is not None:
            day_parser = _detect_date(date_text)
            self.parse = self._parse_date_and_time
        elif " " not in date_text and "T" not in date_text:
            day_parser = _detect_date(date_text)
            self.daily = True
            self.parse = self._parse_day
        elif len(date_text) > 10 and date_text[4] == "-" and date_text[10] in " T":
            day_parser = _parse_date_dash  # unused: fromisoformat reads the whole stamp
            self.parse = _parse_iso
        else:
            day_parser = _detect_date(date_text.split(" ", 1)[0])
            self.parse = self._parse_combined
        self._day = _memo(day_parser)
        self._midnight = _memo(lambda text: datetime.combine(day_parser(text), time()))
        self._tod = _memo(_parse_time)

    def _parse_day(self, d: str, _t: str | None) -> date:
        return self._day(d)

    def _parse_date_and_time(self, d: str, t: str | None) -> datetime:
        assert t is not None
        return self._midnight(d) + self._tod(t)

    def _parse_combined(self, d: str, _t: str | None) -> datetime:
        day, sep, tod = d.strip().partition(" ")
        if not sep:
            raise ValueError(d)
        return self._midnight(day) + self._tod(tod.strip())
