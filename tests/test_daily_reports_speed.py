"""The daily reports' faster parts give what the slower ones gave: the HTML escaping, the
session walk across years of a replay, the alert ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html import escape

import pytest

from core.alerts.router import RandomIds
from core.analytics.sessions import SessionClock
from core.data.calendar import ExchangeSession
from core.domain.daily_summary_text import _escape


def test_escaping_skips_only_text_that_needs_none() -> None:
    for text in ("", "+1,234.50 (+1.23%)", "<b>s</b>", "a & b", "it's", '"q"', "n/a", "x>y", "\u00e9\u20ac"):
        assert _escape(text) == escape(text)


def test_walking_session_by_session_over_twenty_years_matches_the_calendar() -> None:
    clock = SessionClock(ExchangeSession("XNYS"))
    walked = [clock.session_of(datetime(1995, 1, 3, 12, tzinfo=UTC))]
    while walked[-1].day < date(2014, 12, 31):
        walked.append(clock.after(walked[-1]))
    table = ExchangeSession("XNYS").sessions(date(1995, 1, 1), date(2014, 12, 31))
    expected = sorted(d for d in table if date(1995, 1, 3).toordinal() <= d <= date(2014, 12, 31).toordinal())
    assert [s.day.toordinal() for s in walked] == expected
    for s in walked[::250]:
        opened, closed = table[s.day.toordinal()]
        assert (s.open.timestamp(), s.close.timestamp()) == (opened, closed)
        assert clock.session_of(s.close) == s and clock.session_of(s.close + timedelta(microseconds=1)) != s
        assert clock.before(clock.after(s)) == s


def test_alert_ids_are_sixteen_hex_digits_and_do_not_repeat() -> None:
    ids = RandomIds(batch=4)
    drawn = [ids.next() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn) and all(len(i) == 16 and int(i, 16) >= 0 for i in drawn)


def test_a_kept_session_table_is_read_instead_of_building_the_calendar(tmp_path, monkeypatch) -> None:
    import core.data.calendar as cal

    built = ExchangeSession("XNYS", cache_dir=tmp_path).sessions(date(1995, 1, 1), date(2014, 12, 31))
    assert (tmp_path / "calendar-XNYS.sessions").is_file()
    monkeypatch.setattr(cal, "_BUILT", {})
    monkeypatch.setattr(cal, "_KEPT", {})

    def no_building() -> None:
        raise AssertionError("the calendar was built although a table is kept")

    monkeypatch.setattr(cal, "_xc", no_building)
    kept = ExchangeSession("XNYS", cache_dir=tmp_path).sessions(date(1995, 1, 1), date(2014, 12, 31))
    assert kept == built
    walked = SessionClock(ExchangeSession("XNYS", cache_dir=tmp_path))
    assert walked.session_of(datetime(2008, 11, 28, 12, tzinfo=UTC)).half_day  # the day after Thanksgiving


def test_a_kept_table_of_another_library_version_or_too_short_is_not_used(tmp_path, monkeypatch) -> None:
    import core.data.calendar as cal

    ExchangeSession("XNYS", cache_dir=tmp_path).sessions(date(2000, 1, 1), date(2001, 1, 1))
    monkeypatch.setattr(cal, "_BUILT", {})
    monkeypatch.setattr(cal, "_KEPT", {})
    monkeypatch.setattr(cal, "_table_key", lambda: "another version")
    calls = []
    real = cal._covering
    monkeypatch.setattr(cal, "_covering", lambda *a: calls.append(a) or real(*a))
    ExchangeSession("XNYS", cache_dir=tmp_path).sessions(date(2000, 1, 1), date(2001, 1, 1))
    assert calls  # built again (and kept under the new version)
    monkeypatch.setattr(cal, "_BUILT", {})
    monkeypatch.setattr(cal, "_KEPT", {})
    calls.clear()
    assert ExchangeSession("XNYS", cache_dir=tmp_path).sessions(date(1980, 1, 1), date(1981, 1, 1))
    assert calls  # before what the kept table covers: built


def test_json_text_is_json_dumps() -> None:
    import json
    import math

    from core.domain.serialize import json_text

    cases = [[["a", "b"], ["\u00e9", '"q"']], {"b": 1, "a": [1.5, None, True, "x\n"], "c": {"z": math.nan, "y": math.inf}},
             [], {}, "text", 3, {"k": {"n": [1e300, -0.0, 10**30]}}]
    for value in cases:
        for sort_keys in (False, True):
            assert json_text(value, sort_keys=sort_keys) == json.dumps(value, sort_keys=sort_keys)
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text([object()])
