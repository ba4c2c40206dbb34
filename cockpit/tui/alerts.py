"""The alerts pane's buffer. The pane is one of the alert router's sinks (``cockpit.alerts.tui_sink``):
what it shows are alerts, de-duplicated, digested and resolved like on every other sink. Log
lines, the cockpit's and libraries' alike (ib_async's retries), stay in the log file."""

from __future__ import annotations

from cockpit.alerts.tui_sink import AlertBuffer, PaneLine, TuiSink

__all__ = ["AlertBuffer", "PaneLine", "TuiSink"]
