"""The alert policy on a simulated clock: the first occurrence at once, repeats as one digest
per window ("x37 in 5 min"), a condition that clears sends "resolved"; and the events as the
router words them (kinds, keys, a fill's position after, refusals that matter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.alerts.from_events import RESOLVABLE, alerts_for, refusal_kind
from core.alerts.model import Alert, Severity
from core.alerts.policy import DedupePolicy, line
from core.common.clock import SimClock
from core.domain import events as ev
from core.domain.model import Execution, Side

T0 = datetime(2026, 3, 2, 15, tzinfo=UTC)


def alert(kind: str = "feed.stale", key: str = "feed.stale:ib", text: str = "FEED ib STALE",
          severity: Severity = Severity.ERROR, resolved: bool = False) -> Alert:
    return Alert(kind=kind, severity=severity, title=text, text=text, key=key, at=T0, resolved=resolved)


def policy(window: float = 300) -> tuple[DedupePolicy, SimClock, list[Alert]]:
    clock = SimClock(T0)
    out: list[Alert] = []
    return DedupePolicy(window, clock, out.append, RESOLVABLE), clock, out


def test_first_goes_at_once_repeats_become_one_digest_per_window() -> None:
    p, clock, out = policy()
    p.offer(alert(text="first"))
    assert [a.text for a in out] == ["first"]
    for n in range(37):
        clock.advance(timedelta(seconds=5))
        p.offer(alert(text=f"repeat {n}"))
    assert len(out) == 1  # nothing more until the window closes
    clock.advance_to(T0 + timedelta(seconds=300))
    [_, digest] = out
    assert digest.count == 37 and digest.window_seconds == 300
    assert digest.text == digest.title == "repeat 36"  # the sinks add "x37 in 5 min" (to the title: Discord, email)
    assert line(digest) == "repeat 36 (x37 in 5 min)"
    # The next window: one more repeat, one more digest ("again"); then quiet: nothing.
    clock.advance(timedelta(seconds=10))
    p.offer(alert(text="late"))
    clock.advance(timedelta(seconds=300))
    assert [line(a) for a in out[2:]] == ["late (again)"]
    clock.advance(timedelta(hours=1))
    assert len(out) == 3
    # Long after: a first occurrence again, at once.
    p.offer(alert(text="new episode"))
    assert out[-1].text == "new episode" and out[-1].count == 1


def test_keys_are_independent_and_a_digest_keeps_the_worst_severity() -> None:
    p, clock, out = policy(60)
    p.offer(alert(kind="risk.refused", key="risk.refused:a:AAPL", severity=Severity.INFO, text="a"))
    p.offer(alert(kind="risk.refused", key="risk.refused:b:AAPL", severity=Severity.INFO, text="b"))
    assert [a.text for a in out] == ["a", "b"]
    p.offer(alert(kind="risk.refused", key="risk.refused:a:AAPL", severity=Severity.WARNING, text="a2"))
    p.offer(alert(kind="risk.refused", key="risk.refused:a:AAPL", severity=Severity.INFO, text="a3"))
    clock.advance(timedelta(seconds=61))
    digest = out[-1]
    assert (digest.text, digest.count, digest.severity) == ("a3", 2, Severity.WARNING)
    assert p.suppressed == 2


def test_a_condition_that_clears_sends_resolved_with_how_often_it_fired() -> None:
    p, clock, out = policy()
    p.offer(alert(text="down"))
    for _ in range(11):
        clock.advance(timedelta(seconds=10))
        p.offer(alert(text="still down"))
    clock.advance(timedelta(seconds=70))  # 180 s after it fired; the window is still open
    p.offer(alert(text="feed ib back: data again", severity=Severity.WARNING, resolved=True))
    [_, done] = out  # the pending repeats are folded into the resolution, no digest after it
    assert done.resolved and done.kind == "feed.stale" and done.severity is Severity.ERROR  # routed like the alarm
    assert done.count == 12 and done.window_seconds == 180
    assert line(done) == "feed ib back: data again (resolved after 3 min, fired x12)"
    clock.advance(timedelta(minutes=10))
    assert len(out) == 2
    # A resolution of nothing (the broker connecting at start) is not an alert.
    p.offer(alert(text="back again", resolved=True))
    assert len(out) == 2


def test_flush_sends_the_pending_digests() -> None:
    p, _clock, out = policy()
    p.offer(alert(text="one"))
    p.offer(alert(text="two"))
    p.flush()
    assert [line(a) for a in out] == ["one", "two (again)"]


def test_no_window_sends_everything() -> None:
    p, _clock, out = policy(0)
    for n in range(3):
        p.offer(alert(text=str(n)))
    assert [a.text for a in out] == ["0", "1", "2"]


class Book:
    def position(self, symbol: str) -> Decimal:
        return Decimal(150)

    def owner_position(self, owner: str, symbol: str) -> Decimal:
        return Decimal(100)


def test_events_as_alerts() -> None:
    fill = Execution("E1", "abc-1", "AAPL", Side.BUY, Decimal(100), Decimal("187.5"), Decimal("1.00"), T0)
    [a] = alerts_for(ev.FillApplied(fill, "sma_cross", Decimal(0), (("sma_cross", Decimal(100)),)), T0, Book())
    assert (a.kind, a.key, a.severity) == ("fill", "fill:E1", Severity.INFO)  # every fill: its own key
    fields = dict(a.fields)
    assert (fields["symbol"], fields["side"], fields["qty"], fields["price"], fields["strategy"]) == \
        ("AAPL", "BUY", "100", "187.50", "sma_cross")
    assert fields["position after"] == "150" and fields["sma_cross position"] == "100"
    assert a.title == "Filled BUY 100 AAPL @ 187.50" and "position AAPL now 150" in a.text

    assert refusal_kind("limit 1.00 is 50% from the quote 2.00, beyond price_collar_pct 10") == "risk.collar"
    assert refusal_kind("qty 50000 exceeds max_order_qty 10000") == "risk.fat_finger"
    assert refusal_kind("notional 1,000,000.00 exceeds max_order_notional 100000") == "risk.fat_finger"
    assert refusal_kind("duplicate of BUY 1 AAPL sent 0.5 s ago") == "risk.refused"

    [loss] = alerts_for(ev.TradingStateChanged("ACTIVE", "REDUCING", "day P&L -6000 beyond daily_loss_limit 5000"), T0)
    assert (loss.kind, loss.severity) == ("risk.daily_loss", Severity.CRITICAL)
    back = alerts_for(ev.TradingStateChanged("REDUCING", "ACTIVE", "resumed by cli"), T0)
    assert {a.key for a in back} == {"trading.state", "risk.daily_loss"} and all(a.resolved for a in back)

    [down] = alerts_for(ev.BrokerConnectionChanged("ibkr", False, "socket lost"), T0)
    [retry] = alerts_for(ev.BrokerReconnectFailed("ibkr", 3, "connection refused", 4.0), T0)
    [up] = alerts_for(ev.BrokerConnectionChanged("ibkr", True, "connected"), T0)
    assert down.key == retry.key == up.key == "broker.disconnected:ibkr" and up.resolved and not down.resolved
    assert "attempt 3 failed" in retry.text

    [missed] = alerts_for(ev.DeadmanChanged("deadman.missed", "engine", {"action": "cancel_and_reduce"}), T0)
    assert (missed.kind, missed.severity) == ("deadman.missed", Severity.CRITICAL)
    [action] = alerts_for(ev.CommandHandled("cancel_all", "deadman", "presence not confirmed", "cancelled 2"), T0)
    assert action.kind == "deadman.action"
    assert alerts_for(ev.DeadmanChanged("deadman.armed", "engine", {}), T0) == []
    [started] = alerts_for(ev.EngineStarted("paper", "replay", ("sma_cross",)), T0)
    [stopped] = alerts_for(ev.EngineStopped("the run failed: boom", failed=True), T0)
    assert started.kind == "engine.started" and (stopped.kind, stopped.severity) == ("engine.stopped", Severity.ERROR)


def test_an_event_that_words_itself_is_routed_as_its_alert() -> None:
    """The daily summary's hook: any event with ``alert() -> Alert``."""

    class DailySummaryReady:
        def alert(self) -> Alert:
            return alert(kind="daily.summary", key="daily.summary:2026-03-02", text="P&L +1,234.56",
                         severity=Severity.INFO)

    [a] = alerts_for(DailySummaryReady(), T0)
    assert (a.kind, a.text) == ("daily.summary", "P&L +1,234.56")


def test_the_daily_summary_placeholder_takes_plain_fields() -> None:
    """What the metrics part publishes at the close (its own class): date, text, html, fields."""

    class DailySummaryReady:
        date = "2026-03-02"
        text = "net +1,234.56 (1.2%)"
        html = "<p>net <b>+1,234.56</b></p>"
        fields = (("net", "+1,234.56"), ("fills", "12"))

    [a] = alerts_for(DailySummaryReady(), T0)
    assert (a.kind, a.key, a.title, a.text) == ("daily.summary", "daily.summary:2026-03-02",
                                                "Daily summary 2026-03-02", "net +1,234.56 (1.2%)")
    assert a.html == "<p>net <b>+1,234.56</b></p>" and dict(a.fields)["fills"] == "12"
