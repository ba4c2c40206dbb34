"""The ``[watchdog]`` section: `cockpit watchdog`, the process watchdog for installs without
systemd's (docker). Pydantic only, no ``core.config`` import, so that ``core.config`` embeds it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WatchdogConfig(BaseModel):
    """How the watchdog watches the engine, and what its emergency flatten uses."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    # How often it looks at the state lock and the engine's run record (and writes its heartbeat).
    poll_seconds: float = Field(1.0, ge=0.05, le=60, allow_inf_nan=False)
    # A running engine that does not answer on its control socket this long is hung (0: never judged hung).
    hung_seconds: float = Field(60.0, ge=0, le=3600, allow_inf_nan=False)
    # How long one status request may take before it counts as no answer.
    ping_timeout_seconds: float = Field(5.0, gt=0, le=60, allow_inf_nan=False)
    # A heartbeat older than this: the watchdog is not running (preflight fails, an engine stops waiting for it).
    stale_seconds: float = Field(15.0, ge=1, le=3600, allow_inf_nan=False)
    # The emergency flatten's IB client id: never the engine's, so a hung engine's session is no obstacle (IB 326).
    client_id: int = Field(98, ge=1, le=2**31 - 1)
    # The flatten's waits (for the cancels, then for the closes), as `flatten --direct --wait`.
    wait_seconds: float = Field(30.0, gt=0, le=600, allow_inf_nan=False)
    # An engine that starts after a run died waits this long for the watchdog to deal with it, then starts halted.
    handoff_seconds: float = Field(300.0, ge=0, le=3600, allow_inf_nan=False)

    @model_validator(mode="after")
    def _fits(self) -> WatchdogConfig:
        if self.stale_seconds < 2 * self.poll_seconds:
            raise ValueError(f"stale_seconds ({self.stale_seconds:g}) must be at least twice poll_seconds "
                             f"({self.poll_seconds:g}): the heartbeat is written every poll")
        if self.hung_seconds and self.hung_seconds < self.ping_timeout_seconds:
            raise ValueError(f"hung_seconds ({self.hung_seconds:g}) must be 0 or at least ping_timeout_seconds "
                             f"({self.ping_timeout_seconds:g})")
        return self
