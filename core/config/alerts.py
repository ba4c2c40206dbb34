"""The ``[alerts]`` config section: the router's policy, ``[alerts.routes]`` and the network
sinks' own sub-sections (``[alerts.discord]``, ``[alerts.email]``, from ``alerts_sinks``).

Pydantic only (no ``core.config`` import), like ``ibkr``, so ``core.config`` embeds it.

``[alerts.routes.<sink>]`` says which alert kinds reach a sink (shell-style patterns:
``"risk.*"``) and from which severity; a table given in the file replaces that sink's default,
the other sinks keep theirs. ``[alerts.rate_per_minute]`` caps each sink (0: no cap).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.config.alerts_sinks import AlertsSinksConfig

SEVERITIES = ("info", "warning", "error", "critical")
_SINK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KIND_PATTERN = re.compile(r"[a-z0-9_.*?-]{1,64}")

#: What a trader away from the screen must hear about, for each sink that leaves the box.
RISK_AND_ERRORS = ["risk.daily_loss", "risk.collar", "risk.fat_finger", "trading.state", "reconcile.break",
                   "broker.disconnected", "broker.pacing", "feed.stale", "feed.switch", "risk.feed_hold", "data.quality",
                   "engine.error", "strategy.quarantined", "deadman.*", "daily.summary", "flatten.direct",
                   "backup.failed", "preflight.*"]
DEFAULT_ROUTES: dict[str, dict[str, Any]] = {
    "tui": {"kinds": ["*"], "min_severity": "info"},
    "log": {"kinds": ["*"], "min_severity": "info"},
    "discord": {"kinds": ["fill", "fill.*", "engine.*", "flatten", *RISK_AND_ERRORS], "min_severity": "info"},
    # info: the kinds above already choose; the daily summary (info) must reach the inbox too
    "email": {"kinds": RISK_AND_ERRORS, "min_severity": "info"},
}
#: Discord allows ~30 messages a minute per channel; a mail server takes kindly to a few.
DEFAULT_RATES: dict[str, int] = {"discord": 20, "email": 6}


def _sink_name(name: str) -> str:
    if not isinstance(name, str) or not _SINK_NAME.fullmatch(name):
        raise ValueError(f"sink name {str(name)[:40]!r} must be lowercase letters, digits, _ or - "
                         "(at most 32, starting with a letter)")
    return name


class AlertRoute(BaseModel):
    """Which kinds go to one sink, and the least severity that does."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    kinds: list[str] = Field(default_factory=lambda: ["*"], max_length=200)
    min_severity: str = "info"

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, kinds: list[str]) -> list[str]:
        for kind in kinds:
            if not _KIND_PATTERN.fullmatch(kind):
                raise ValueError(f"kind pattern {kind[:40]!r} must be 1-64 of a-z 0-9 . _ - * ? (e.g. \"risk.*\")")
        return kinds

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}, not {str(value)[:40]!r}")
        return text


class AlertsConfig(AlertsSinksConfig):
    """The alert router's policy: de-duplication, the queue, retries and rate limits; and, from
    ``AlertsSinksConfig``, ``discord`` and ``email`` (a sink with no settings is off)."""

    # Repeats of one key (kind + symbol or strategy) inside this window go out as one digest; 0: no digests.
    dedupe_window_seconds: float = Field(300.0, ge=0, le=86400, allow_inf_nan=False)
    queue_size: int = Field(1000, ge=1, le=1_000_000)  # alerts waiting per sink; beyond: undelivered, counted
    max_tries: int = Field(5, ge=1, le=100)  # attempts per alert and sink before it is undelivered
    send_timeout_seconds: float = Field(10.0, gt=0, le=600, allow_inf_nan=False)  # one attempt at most
    backoff_seconds: float = Field(2.0, gt=0, le=3600, allow_inf_nan=False)  # before the 2nd try, doubling
    max_backoff_seconds: float = Field(300.0, gt=0, le=86400, allow_inf_nan=False)
    drain_seconds: float = Field(5.0, ge=0, le=120, allow_inf_nan=False)  # at shutdown, for what is queued
    rate_per_minute: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_RATES))
    routes: dict[str, AlertRoute] = Field(default_factory=lambda: {k: AlertRoute(**v) for k, v in
                                                                   DEFAULT_ROUTES.items()})

    @field_validator("rate_per_minute", mode="before")
    @classmethod
    def _rates_over_defaults(cls, value: Any) -> Any:
        return {**DEFAULT_RATES, **value} if isinstance(value, dict) else value

    @field_validator("rate_per_minute")
    @classmethod
    def _rates(cls, rates: dict[str, int]) -> dict[str, int]:
        for name, rate in rates.items():
            _sink_name(name)
            if not 0 <= rate <= 6000:
                raise ValueError(f"{name} must be 0 (no cap) to 6000, not {rate}")
        return rates

    @field_validator("routes", mode="before")
    @classmethod
    def _routes_over_defaults(cls, value: Any) -> Any:
        return {**DEFAULT_ROUTES, **value} if isinstance(value, dict) else value

    @field_validator("routes")
    @classmethod
    def _route_names(cls, routes: dict[str, AlertRoute]) -> dict[str, AlertRoute]:
        for name in routes:
            _sink_name(name)
        return routes

    @model_validator(mode="after")
    def _backoff_order(self) -> AlertsConfig:
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError(f"max_backoff_seconds {self.max_backoff_seconds:g} must be at least "
                             f"backoff_seconds {self.backoff_seconds:g}")
        return self

    def rate_of(self, sink: str) -> int:
        """Alerts a minute ``sink`` may send (0: no cap)."""
        return self.rate_per_minute.get(sink, 0)
