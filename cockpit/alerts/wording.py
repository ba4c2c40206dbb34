"""The words every network sink shows for an alert's state: one home, so Discord and email agree."""

from __future__ import annotations

from datetime import datetime, timezone

from core.alerts.model import Alert
from core.alerts.policy import span  # the one wording of a window, shared with the pane

__all__ = ["digest", "span", "state"]


def digest(alert: Alert) -> str | None:
    """``x37 in 5 min`` for a digest (count > 1), else None."""
    if alert.count <= 1:
        return None
    if alert.window_seconds > 0:
        return f"x{alert.count} in {span(alert.window_seconds)}"
    return f"x{alert.count}"


def state(alert: Alert) -> str:
    """``RESOLVED`` for a condition that cleared, else the severity in capitals (``CRITICAL``)."""
    return "RESOLVED" if alert.resolved else alert.severity.name


def utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive time is taken to be UTC already."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def one_line(text: str, limit: int) -> str:
    """``text`` flattened to one line (a subject, a title), cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)].rstrip() + "\u2026"
