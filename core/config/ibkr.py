"""The ``[ibkr]`` config section and the daily-restart window it names.

It lives in core (pydantic only, no ``core.config`` import) so that ``core.config`` can embed
it in ``Settings`` without importing the adapter or ib_async; ``brokers.ibkr.config`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.config.checks import check_path, zone


@dataclass(frozen=True, slots=True)
class RestartWindow:
    """A daily span of local time (it may wrap past midnight) in which IB Gateway restarts.

    ``start == end`` never matches: an empty window.
    """

    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz: str) -> RestartWindow | None:
        """``"23:45-00:15"`` in ``tz``; ``""`` means no window. Raises ValueError on a bad spec."""
        text = text.strip()
        if not text:
            return None
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = time.fromisoformat(a), time.fromisoformat(b)
        except ValueError:
            raise ValueError(f"restart_window must look like 'HH:MM-HH:MM', not {text!r}") from None
        return cls(start, end, _zone(tz))

    def contains(self, when: datetime) -> bool:
        """Is the tz-aware ``when`` inside the window (start inclusive, end exclusive)?"""
        t = when.astimezone(self.tz).time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz.key}"


def _zone(name: str) -> ZoneInfo:
    return zone(name)  # one line for a long, odd or unknown name, never OSError


class IbkrConfig(BaseModel):
    """Where IB Gateway is and how the adapter treats it.

    ``account`` may come from the environment (``COCKPIT_IBKR__ACCOUNT``); empty means the
    login's only account. ``max_messages_per_second`` stays below IB's 50/s limit with a
    margin for the few requests ib_async sends on its own. ``id_state_file`` keeps the
    highest order id handed out, so ids never repeat even after a gateway restart rolls
    nextValidId back and this process restarts too.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", min_length=1, max_length=253)  # a DNS name has at most 253 characters
    port: int = Field(4002, ge=1, le=65535)
    client_id: int = Field(1, ge=0, le=2**31 - 1)
    account: str = Field("", max_length=64)
    connect_timeout: float = Field(10.0, gt=0, le=600)
    reconnect_min_seconds: float = Field(1.0, gt=0, le=3600)
    # Backoff cap: with 5 s, a reconnect follows the gateway's return within 5 s (plus the connect).
    reconnect_max_seconds: float = Field(5.0, gt=0, le=3600)
    max_messages_per_second: int = Field(45, ge=1, le=49)
    # A gateway not there at start is an error at once (0), or is waited for this long, retrying
    # with the reconnect backoff: a service that boots with its gateway (docker, systemd) sets it.
    start_wait_seconds: float = Field(0.0, ge=0, le=3600, allow_inf_nan=False)
    restart_window: str = Field("23:45-00:15", max_length=64)
    restart_tz: str = "America/New_York"
    id_state_file: Path | None = None
    # How long an execution may wait for its commission report before it is booked with 0.
    commission_wait_seconds: float = Field(10.0, gt=0, le=3600)

    @field_validator("restart_tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("id_state_file")
    @classmethod
    def _path(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_path("ibkr.id_state_file", value)
        return value

    @model_validator(mode="after")
    def _check(self) -> IbkrConfig:
        if self.reconnect_min_seconds > self.reconnect_max_seconds:
            raise ValueError(f"reconnect_min_seconds {self.reconnect_min_seconds} is above "
                             f"reconnect_max_seconds {self.reconnect_max_seconds}")
        RestartWindow.parse(self.restart_window, self.restart_tz)
        return self

    @property
    def window(self) -> RestartWindow | None:
        """The parsed restart window (None: no window configured)."""
        return RestartWindow.parse(self.restart_window, self.restart_tz)
