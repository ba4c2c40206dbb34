"""The cockpit's alerts pane is the router's "tui" sink: it shows how many alerts never went
out (the subtitle, live) and the notice naming the sink and the reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cockpit.alerts.log_sink import LogSink
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.tui.widgets.alerts_pane import AlertsPane
from cockpit.wiring import build_engine
from core.config import load_config
from tests.conftest import CONFIG
from tests.test_alerts_cli import Unauthorized


async def test_the_pane_shows_undelivered_alerts(tmp_path: Path, clean_env: dict[str, str]) -> None:
    settings = load_config(CONFIG, state_dir=tmp_path, overrides={
        "feed": {"speed": "max", "end": "2008-02-29"},
        "alerts": {"routes": {"webhook": {"kinds": ["fill"], "min_severity": "info"}}}})
    app = CockpitApp(build_engine(settings, alert_sinks=[LogSink(), Unauthorized()]), AlertBuffer())
    async with app.run_test(size=(160, 50)) as pilot:
        await app.engine_done.wait()
        lanes = app.engine.alerts.lanes
        for _ in range(500):
            if all(lane.idle for lane in lanes.values()):
                break
            await asyncio.sleep(0.01)
        fills = sum(1 for line in app.alerts.items if line.kind == "fill")
        assert fills > 0
        app.refresh_panes()
        await pilot.pause()
        pane = app.query_one(AlertsPane)
        assert pane.border_subtitle == f"{fills} undelivered: cockpit alerts"
        lines = str(app.query_one("#alerts-lines").render()).splitlines()
        notices = [line for line in lines if "not delivered to webhook" in line]
        assert notices and notices[0].startswith("WARNING alert 'Filled ")
        assert notices[0].endswith("(fill) not delivered to webhook: refused for good: 401 unauthorized: the webhook "
                                   "was revoked")
