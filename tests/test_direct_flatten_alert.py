"""The direct flatten's alert (cockpit/direct_flatten/alert.py): what it says for flat, not flat,
failed and nothing-to-do runs; each sink's tries on a simulated clock (delivered, refused for
good, flaky, hung, left out by its route), never raising; the record in the store; and the CLI
alerting even when the gateway is unreachable."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cockpit.control_cli import ControlCliError
from cockpit.direct_flatten.alert import KIND, Trigger, announce, build_alert
from cockpit.direct_flatten.cli import run_from_cli
from cockpit.direct_flatten.outcome import EXIT_FAIL, EXIT_OK, DirectFlattenResult, SymbolOutcome
from cockpit.direct_flatten.plan import CancelItem, CloseItem, Plan
from cockpit.state_lock import StateLock
from core.alerts.model import Alert, Severity
from core.alerts.sink import SinkError
from core.common.clock import SimClock
from core.config import Settings
from core.persistence.store import DB_FILENAME
from tests.test_direct_flatten import make_store

D = Decimal
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
TRIGGER = Trigger("cockpit.service", "watchdog", "killed", "ABRT")
WHERE = "IB Gateway 127.0.0.1:4002 as client 1"
CANCEL = CancelItem(client_id=1, order_id=7, perm_id=99, order_ref="eng-rest", symbol="AAPL", action="BUY",
                    qty=D(2), order_type="LMT", limit_price=D(90))
CLOSE = CloseItem("AAPL", D(5), (D(5),), D(500), "the last mark")


def settings(state_dir: Path, **alerts: Any) -> Settings:
    return Settings(engine={"state_dir": state_dir}, broker={"kind": "ibkr"}, feed={"kind": "ibkr", "symbols": ["AAPL"]},
                    ibkr={"port": 4002, "restart_window": ""}, alerts=alerts)


def test_the_alert_says_flat_not_flat_failed_or_nothing_to_do(tmp_path: Path) -> None:
    s = settings(tmp_path)
    flat = DirectFlattenResult(EXIT_OK, plan=Plan(WHERE, (CANCEL,), (CLOSE,)),
                               outcomes={"AAPL": SymbolOutcome("AAPL", D(5), ["df-1"], D(5), D(0))}, audit="audit: 5 rows")
    a = build_alert(flat, s, at=T0, actor="direct-flatten:ops@box", trigger=TRIGGER)
    assert a.kind == KIND and a.severity is Severity.ERROR and a.title == "Emergency flatten: everything cancelled and flat"
    assert a.text.splitlines() == ["cockpit.service failed (watchdog, killed ABRT): the engine is down",
                                   "1 open order(s) cancelled", "AAPL: flat, from 5, 1 order(s) df-1, filled 5",
                                   "final positions: none"]
    assert a.fields[:3] == (("trigger", "cockpit.service failed (watchdog, killed ABRT)"), ("gateway", WHERE),
                            ("by", "direct-flatten:ops@box")) and ("audit", "audit: 5 rows") in a.fields
    assert a.id and a.key == f"{KIND}:{a.id}"

    stuck = SymbolOutcome("AAPL", D(5), ["df-1"], D(0), D(5), ["df-1 rejected: no market orders"])
    not_flat = DirectFlattenResult(EXIT_FAIL, plan=Plan(WHERE, (CANCEL,), (CLOSE,)), still_open=[CANCEL],
                                   outcomes={"AAPL": stuck}, final_positions={"AAPL": D(5)})
    b = build_alert(not_flat, s, at=T0, actor="x", trigger=None)
    assert b.severity is Severity.CRITICAL and b.title == "Emergency flatten NOT DONE"
    assert "AAPL: NOT FLAT (position 5)" in b.text and "no market orders" in b.text
    assert "1 order(s) still open at IB: eng-rest" in b.text and "final positions: AAPL 5" in b.text
    assert "cancelled" not in b.text and b.fields[0][0] == "gateway"

    unconfirmed = DirectFlattenResult(2, error="refusing without confirmation: pass --yes",
                                      plan=Plan(WHERE, (CANCEL,), (CLOSE,)))
    assert "cancelled" not in build_alert(unconfirmed, s, at=T0, actor="x", trigger=None).text  # nothing was sent

    failed = DirectFlattenResult(EXIT_FAIL, error="cannot flatten: connection refused at 127.0.0.1:4002")
    c = build_alert(failed, s, at=T0, actor="x", trigger=TRIGGER)
    assert c.severity is Severity.CRITICAL and c.title == "Emergency flatten FAILED"
    assert "connection refused" in c.text and "final positions" not in c.text
    assert ("gateway", "IB Gateway 127.0.0.1:4002") in c.fields

    nothing = DirectFlattenResult(EXIT_OK, plan=Plan(WHERE, (), ()))
    assert build_alert(nothing, s, at=T0, actor="x", trigger=None).title == "Emergency flatten: nothing was open"


def test_trigger_comes_from_systemds_monitor_variables() -> None:
    assert Trigger.from_env({}) is None and Trigger.from_env({"MONITOR_UNIT": " "}) is None
    t = Trigger.from_env({"MONITOR_UNIT": "cockpit.service", "MONITOR_SERVICE_RESULT": "exit-code",
                          "MONITOR_EXIT_CODE": "exited", "MONITOR_EXIT_STATUS": "1"})
    assert t is not None and t.line() == "cockpit.service failed (exit-code, exited 1)"
    assert Trigger("cockpit.service").line() == "cockpit.service failed"


class Scripted:
    """A sink whose attempts follow a script: "ok", "retry", "gone" (permanent), "hang", "crash"."""

    def __init__(self, name: str, *script: str) -> None:
        self.name = name
        self.script = list(script)
        self.tries = 0
        self.got: list[Alert] = []
        self.closed = False

    async def send(self, alert: Alert) -> None:
        step = self.script[min(self.tries, len(self.script) - 1)]
        self.tries += 1
        if step == "retry":
            raise SinkError(f"{self.name}: HTTP 503", retry_after=1.0)
        if step == "gone":
            raise SinkError(f"{self.name}: HTTP 404: the webhook is gone", permanent=True)
        if step == "hang":
            await asyncio.Event().wait()
        if step == "crash":
            raise RuntimeError("a bug in the sink")
        self.got.append(alert)

    async def close(self) -> None:
        self.closed = True


async def drive(clock: SimClock, task: asyncio.Task[Any], step: timedelta = timedelta(seconds=1)) -> Any:
    """Run ``task`` to its end, moving simulated time a step whenever it is only waiting."""
    for _ in range(200):
        for _ in range(50):
            await asyncio.sleep(0)  # a turn of the loop, no timer
            if task.done():
                return task.result()
        clock.advance(step)
    raise AssertionError("the alert never finished")


async def test_each_sink_gets_its_tries_and_none_can_make_it_raise(tmp_path: Path) -> None:
    names = ("ok", "flaky", "gone", "hung", "buggy", "email")
    routes = {n: {"kinds": ["flatten.*"]} for n in names[:-1]} | {"email": {"kinds": ["daily.summary"]}}
    s = settings(tmp_path, routes=routes, send_timeout_seconds=10)
    sinks = [Scripted("ok", "ok"), Scripted("flaky", "retry", "retry", "ok"), Scripted("gone", "gone"),
             Scripted("hung", "hang"), Scripted("buggy", "crash"), Scripted("email", "ok")]
    lines: list[str] = []
    clock = SimClock(T0)
    result = DirectFlattenResult(EXIT_FAIL, error="cannot flatten: connection refused")
    task = asyncio.ensure_future(announce(result, s, lines.append, actor="x", trigger=TRIGGER, sinks=sinks,
                                          clock=clock))
    deliveries = {d.sink: d for d in await drive(clock, task)}
    assert {n: (d.delivered, d.tries) for n, d in deliveries.items()} == {
        "ok": (True, 1), "flaky": (True, 3), "gone": (False, 1), "hung": (False, 3), "buggy": (False, 1)}
    assert [s.tries for s in sinks] == [1, 3, 1, 3, 1, 0] and all(s.closed for s in sinks)
    assert sinks[0].got[0].title == "Emergency flatten FAILED" and sinks[1].got == sinks[0].got
    assert "alert: email: not sent ([alerts.routes.email] leaves flatten.direct out)" in lines
    assert "alert: ok: delivered" in lines and "alert: flaky: delivered" in lines
    assert "alert: gone: NOT delivered after 1 tries: gone: HTTP 404: the webhook is gone" in lines
    assert "alert: hung: NOT delivered after 3 tries: no answer within send_timeout_seconds 10" in lines
    assert "alert: buggy: NOT delivered after 1 tries: RuntimeError: a bug in the sink" in lines
    # 3 timeouts of 10 s and 2 waits (2 s, then 4 s: the backoff), and no more
    assert clock.now() - T0 <= timedelta(seconds=3 * 10 + 2 + 4 + 3)


async def test_the_alert_is_recorded_in_the_store_unless_an_engine_holds_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    await make_store(state)
    s = settings(state, routes={"ok": {"kinds": ["*"]}, "gone": {"kinds": ["*"]}})
    clock = SimClock(T0)
    result = DirectFlattenResult(EXIT_OK, plan=Plan(WHERE, (), ()))
    lines: list[str] = []
    await announce(result, s, lines.append, actor="x", trigger=None,
                   sinks=[Scripted("ok", "ok"), Scripted("gone", "gone")], clock=clock)
    db = sqlite3.connect(state / DB_FILENAME)
    try:
        rows = db.execute("SELECT a.kind, a.title, d.sink, d.status, d.tries FROM alerts a JOIN alert_deliveries d "
                          "ON d.alert_id = a.id ORDER BY d.sink").fetchall()
    finally:
        db.close()
    assert rows == [(KIND, "Emergency flatten: nothing was open", "gone", "undelivered", 1),
                    (KIND, "Emergency flatten: nothing was open", "ok", "sent", 1)]
    with StateLock(state):
        await announce(result, s, lines.append, actor="x", trigger=None, sinks=[Scripted("ok", "ok")], clock=clock)
    assert lines[-1] == "alert: not recorded in the store: an engine holds the state dir"


def test_the_cli_alerts_when_the_gateway_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    clean_env: dict[str, str], root_logger: logging.Logger
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    s = Settings(engine={"state_dir": tmp_path / "state"}, broker={"kind": "ibkr"},
                 feed={"kind": "ibkr", "symbols": ["AAPL"]}, ibkr={"port": free, "restart_window": ""})
    monkeypatch.setenv("MONITOR_UNIT", "cockpit.service")
    monkeypatch.setenv("MONITOR_SERVICE_RESULT", "start-limit-hit")
    args = argparse.Namespace(direct=True, all=True, symbol=None, json=False, no_wait=False, wait=5.0, yes=True,
                              client_id=None, reason=None)
    with pytest.raises(ControlCliError) as refused:
        run_from_cli(args, lambda: s)
    assert refused.value.code == EXIT_FAIL and "connection refused" in str(refused.value)
    assert "alert: log: delivered" in capsys.readouterr().out  # the only sink this config has
    logged = (tmp_path / "state" / "logs" / "cockpit.log").read_text()
    assert "CRITICAL cockpit.alert: [flatten.direct] Emergency flatten FAILED" in logged
