"""A replay faster than live folds its daily summary alerts (core/alerts/policy.py, SummaryFold):
at most one a wall interval, the latest, and the last session's at the end saying how many it
stands for; every session's row is still in ``daily_reports``. Live and live-paced: each sent."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cockpit.alerts.email import EmailSink
from cockpit.alerts.log_sink import LogSink
from cockpit.wiring import build_engine, db_path
from core.alerts.policy import Folded, SummaryFold, with_folded
from core.common.clock import LiveClock, SimClock
from core.domain.alert import Alert, Severity
from core.kernel.engine import faster_than_live
from tests.replay_fingerprint import bench_settings
from tests.test_alert_sinks_email import EphemeralController, Inbox

T0 = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


def _fold(clock: SimClock) -> tuple[SummaryFold, list[tuple[object, Folded | None]]]:
    sent: list[tuple[object, Folded | None]] = []
    return SummaryFold(60.0, clock, lambda item, folded: sent.append((item, folded))), sent


def test_summaries_a_minute_apart_each_go_out_at_once() -> None:
    clock = SimClock(T0)
    fold, sent = _fold(clock)
    for day in ("d1", "d2", "d3"):
        fold.offer(day, day)
        clock.advance(timedelta(seconds=61))
    fold.flush()
    assert sent == [("d1", None), ("d2", None), ("d3", None)] and fold.folded == 0


def test_fast_summaries_fold_to_the_latest_per_window_and_the_last_at_the_end() -> None:
    clock = SimClock(T0)
    fold, sent = _fold(clock)
    for day in ("d1", "d2", "d3", "d4", "d5"):
        fold.offer(day, day)
    assert sent == [("d1", None)]  # the first at once; d2..d4 are overtaken, d5 waits for the window
    clock.advance(timedelta(seconds=60))
    assert sent[1] == ("d5", Folded(3, "d2", "d4"))
    for day in ("d6", "d7"):
        fold.offer(day, day)
    assert len(sent) == 2  # the window reopened when d5 went out
    fold.flush()
    assert sent[2] == ("d7", Folded(1, "d6", "d6")) and fold.folded == 4
    fold.flush()
    assert len(sent) == 3  # nothing held: nothing more


def test_the_folded_summary_says_how_many_and_where_to_read_them() -> None:
    base = Alert("daily.summary", Severity.INFO, "Daily P&L 2014-12-31: -94.72 (-0.08%)", "line 1\nline 2",
                 "daily.summary:2014-12-31", T0, (("net", "-94.72"),), html="<p>x</p>")
    out = with_folded(base, Folded(5034, "1995-01-04", "2014-12-30"))
    assert out.title == "Daily P&L 2014-12-31: -94.72 (-0.08%) (+5,034 earlier folded)"
    assert "+ 5,034 earlier sessions' summaries are in the store (1995-01-04 to 2014-12-30)" in out.text
    assert "`cockpit report daily`" in out.text and "cockpit report daily" in (out.html or "")
    assert ("folded", "5034") in out.fields
    one = with_folded(base, Folded(1, "2014-12-30", "2014-12-30"))
    assert "+ 1 earlier session's summary is in the store (2014-12-30)" in one.text


def test_only_a_simulated_clock_faster_than_live_folds() -> None:
    assert faster_than_live(SimClock(), "max") and faster_than_live(SimClock(), 86400.0)
    assert not faster_than_live(SimClock(), 1.0) and not faster_than_live(SimClock(), 0.5)
    assert not faster_than_live(LiveClock(), "max") and not faster_than_live(LiveClock(), 86400.0)


def test_a_live_paced_replay_sends_every_summary(tmp_path: Path) -> None:
    live_paced = bench_settings("orcl", 1, tmp_path / "a").model_copy(deep=True)
    live_paced.feed.speed = 1.0
    assert build_engine(live_paced, alert_sinks=()).alerts.fold is None
    assert build_engine(bench_settings("orcl", 1, tmp_path / "c"), alert_sinks=()).alerts.fold is not None


@pytest.fixture
def smtp() -> Iterator[tuple[EphemeralController, Inbox]]:
    inbox = Inbox()
    controller = EphemeralController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    yield controller, inbox
    controller.stop()


async def _replay(settings: Any, sinks: list[Any]) -> None:
    engine = build_engine(settings, alert_sinks=sinks)
    await engine.start()
    try:
        await engine.run()
    finally:
        await engine.shutdown()


def test_a_max_speed_orcl_replay_stores_every_report_and_sends_few_summaries(
        tmp_path: Path, smtp: tuple[EphemeralController, Inbox], caplog: pytest.LogCaptureFixture) -> None:
    controller, inbox = smtp
    settings = bench_settings("orcl", 1, tmp_path / "state")
    email = EmailSink("127.0.0.1", controller.port, tls="none", sender="Cockpit <cockpit@example.org>",
                      to=["trader@example.org"], timeout_seconds=5.0)
    with caplog.at_level(logging.INFO, logger="cockpit.alert"):
        asyncio.run(_replay(settings, [LogSink(), email]))
    con = sqlite3.connect(db_path(settings))
    try:
        reports = con.execute("SELECT COUNT(*), MIN(date), MAX(date) FROM daily_reports").fetchone()
        assert reports == (5036, "1995-01-03", "2014-12-31")
        summaries = con.execute("SELECT id, title, text, fields FROM alerts WHERE kind = 'daily.summary' "
                                "ORDER BY rowid").fetchall()
        deliveries = dict(con.execute("SELECT status, COUNT(*) FROM alert_deliveries WHERE sink = 'email' "
                                      "GROUP BY status").fetchall())
        kinds = [k for (k,) in con.execute("SELECT kind FROM alerts ORDER BY rowid")]
    finally:
        con.close()
    # every session's row; a handful of alerts (the first, one a wall minute, the last)
    assert 2 <= len(summaries) <= 10
    last_id, title, text, _fields = summaries[-1]
    assert title.startswith("Daily P&L 2014-12-31: ")
    said = [int(dict(json.loads(f)).get("folded", 0)) for _i, _t, _x, f in summaries]
    assert sum(said) + len(summaries) == 5036 and said[0] == 0  # each session sent or counted once
    folded = said[-1]
    assert folded > 0
    assert f"+ {folded:,} earlier sessions' summaries are in the store" in text and "`cockpit report daily`" in text
    assert kinds.index("daily.summary", kinds.index("fill")) < kinds.index("engine.stopped")
    # the mail server got each one sent; nothing piles up undelivered
    assert deliveries == {"sent": len(summaries)}
    assert len(inbox.envelopes) == len(summaries)
    assert sum("[daily.summary]" in r.getMessage() for r in caplog.records) == len(summaries)
    assert any(f"+{folded:,} earlier folded" in r.getMessage() for r in caplog.records)
    assert last_id
