"""Runs the cockpit app: file logging plus the alerts pane (stderr would tear the screen)."""

from __future__ import annotations

import logging
import sys

from cockpit.logs import setup_logging
from cockpit.state_lock import StateLock
from cockpit.tui.alerts import AlertBuffer
from cockpit.tui.app import CockpitApp
from cockpit.wiring import build_engine
from core.config import Settings


def run_tui(settings: Settings) -> int:
    lcfg = settings.logging
    setup_logging(lcfg.level, settings.state_dir / lcfg.file, lcfg.max_bytes, lcfg.backups, stderr=False)
    alerts = AlertBuffer(level=logging.ERROR)  # events arrive from the bus; logs only for errors
    logging.getLogger("cockpit").addHandler(alerts)
    engine = build_engine(settings)
    with StateLock(settings.state_dir):
        app = CockpitApp(engine, alerts, settings.keys)
        code = app.run()
    if app.crash is not None:
        log_file = settings.state_dir / lcfg.file
        print(f"cockpit: crashed: {app.crash} (traceback in {log_file}; state was flushed)", file=sys.stderr)
        return 1
    return code or 0
