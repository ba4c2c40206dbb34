"""The ``[preflight]`` section: the thresholds of the go-live check (`cockpit preflight`).

Pydantic only, no ``core.config`` import, so that ``core.config`` can embed it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PreflightConfig(BaseModel):
    """What "paper traded extensively" means before a live account may start."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    min_paper_sessions: int = Field(30, ge=0, le=10_000)  # exchange sessions paper traded on this state
    pacing_sessions: int = Field(10, ge=1, le=10_000)  # no IB pacing violation in this many recent sessions
    backup_max_age_hours: float = Field(24.0, gt=0, le=24 * 365, allow_inf_nan=False)
    alert_test_max_age_days: float = Field(7.0, gt=0, le=365, allow_inf_nan=False)
    walkforward_max_age_days: float = Field(90.0, gt=0, le=3650, allow_inf_nan=False)
