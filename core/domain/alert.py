"""One alert as every sink receives it: already worded, already de-duplicated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum


class Severity(IntEnum):
    """Ordered, so a route's minimum severity is a comparison."""

    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"severity must be one of info, warning, error, critical, not {text!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Alert:
    """``kind`` names what happened (``fill``, ``risk.daily_loss``, ``broker.disconnected``,
    ``deadman.missed``, ``daily.summary``, ``test`` ...); ``key`` is the de-duplication key
    (kind + symbol or strategy). ``count`` > 1 is a digest of that many occurrences in
    ``window_seconds``; ``resolved`` says a condition that fired has cleared."""

    kind: str
    severity: Severity
    title: str
    text: str
    key: str
    at: datetime
    fields: tuple[tuple[str, str], ...] = ()
    count: int = 1
    window_seconds: float = 0.0
    resolved: bool = False
    html: str | None = None  # a richer body for sinks that can show it (the daily summary's email)
    id: str = field(default="")  # set by the router: the store's key for delivery records

    def with_id(self, id: str) -> Alert:  # the field's name
        """``dataclasses.replace(self, id=id)``, without its field-by-field keyword pass (the router
        numbers every alert; a replay raises one per session close)."""
        return Alert(self.kind, self.severity, self.title, self.text, self.key, self.at, self.fields, self.count,
                     self.window_seconds, self.resolved, self.html, id)
