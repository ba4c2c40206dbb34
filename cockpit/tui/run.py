"""Runs the cockpit app: logs to the file only (stderr would tear the screen); the alerts pane
is a sink of the engine's alert router, so log lines (ib_async's retries) never reach it."""

from __future__ import annotations

import sys

from cockpit.engine_run import EngineRun
from cockpit.logs import setup_from_settings
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.wiring import build_engine
from core.config import Settings


def run_tui(settings: Settings, override_preflight: str | None = None, start_halted: bool = False) -> int:
    lcfg = settings.logging
    setup_from_settings(lcfg, settings.state_dir, stderr=False)
    alerts = AlertBuffer()
    engine = build_engine(settings)
    with EngineRun(settings, start_halted=start_halted, say=lambda m: print(f"cockpit: {m}", file=sys.stderr)) as run:
        app = CockpitApp(engine, alerts, settings.keys)
        app.host.override_preflight = override_preflight
        app.host.run_record = run
        code = app.run()
    if app.crash is not None:
        log_file = settings.state_dir / lcfg.file
        print(f"cockpit: crashed: {app.crash} (traceback in {log_file}; state was flushed)", file=sys.stderr)
        return 1
    return code or 0
