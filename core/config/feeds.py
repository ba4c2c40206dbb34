"""The quality thresholds of a feed and its fallbacks (``[feed.quality]``, ``[[feed.fallbacks]]``).

Every live item passes one quality gate (``core.data.quality``) before a strategy sees it;
the thresholds are per feed because a delayed feed is noisier than a direct one. A feed that
keeps failing the gate or goes quiet hands over to the next healthy fallback, and the
primary takes over again once it has been healthy for ``failback_seconds``.

Pydantic only, no ``core.config`` import, so that ``core.config`` can embed these models.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

#: Why an IB feed's prices are not live, per ``market_data_type`` (1, live, is not here). IB stamps
#: such quotes on arrival, so the quality gate's age checks pass them: while one is the active feed
#: the risk gate holds strategy orders (core/risk/gate.py, ``feed_hold``).
NOT_LIVE: dict[int, str] = {
    2: "IB frozen data (the last prices IB kept, not live)",
    3: "IB delayed data (15-20 min late)",
    4: "IB delayed-frozen data (15-20 min late, or the last prices IB kept)",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class FeedQualityConfig(_Section):
    """What a quote or bar must satisfy to reach a strategy, and when a feed counts as failing.

    Always checked: a missing (NaN) or non-positive price, a crossed book (bid above ask), a
    timestamp before the symbol's last one (out of order) and an exact repeat (duplicate).
    """

    # bid == ask: a locked book is quarantined unless allowed (some venues quote it for a moment)
    allow_locked: bool = False
    # A move larger than spike_k times the recent volatility (an EWMA of squared log returns
    # over spike_span items, at least spike_floor_bps) is a spike; 0 turns the check off. Unset:
    # 10 for a live feed, off for a replay (history has real jumps: NVDA +42% on 2000-03-07).
    spike_k: float | None = Field(None, ge=0, le=1000, allow_inf_nan=False)
    spike_span: int = Field(50, ge=2, le=100_000)
    spike_warmup: int = Field(20, ge=1, le=100_000)  # items of a symbol before spikes are judged
    spike_floor_bps: float = Field(5.0, gt=0, le=10_000, allow_inf_nan=False)
    # A spike confirmed by this many following items at the new level is a real move: accepted.
    spike_confirm: int = Field(3, ge=1, le=1000)
    # bars only: a time jump larger than gap_factor times the symbol's usual bar interval is a
    # gap (counted and alerted; the bar itself is kept); 0 turns the check off.
    gap_factor: float = Field(5.0, ge=0, le=1e6, allow_inf_nan=False)
    # A feed is failing when fail_count items failed the gate within fail_window_seconds.
    fail_count: int = Field(20, ge=1, le=1_000_000)
    fail_window_seconds: float = Field(10.0, gt=0, le=86400, allow_inf_nan=False)
    # An episode (one alert) ends after this many clean items of the symbol in a row.
    clear_after: int = Field(20, ge=1, le=1_000_000)


class FallbackFeedConfig(_Section):
    """One fallback feed: tried in order when the active feed goes stale or keeps failing.

    ``kind = "synthetic"`` rehearses failover without a second data source; ``kind = "ibkr"``
    opens its own data-only session to a second IB Gateway (or the same one with another
    client id; ``market_data_type = 3`` asks IB for delayed data).
    """

    kind: Literal["synthetic", "ibkr"]
    name: str = ""  # defaults to "<kind>-<position>" (1-based among the fallbacks)
    symbols: list[str] = Field(default_factory=list)  # the primary's symbols unless given
    stale_seconds: float = Field(30.0, gt=0, le=86400, allow_inf_nan=False)
    quality: FeedQualityConfig = Field(default_factory=FeedQualityConfig)
    # kind = "synthetic": the random walk's seed (its symbols are the primary's, or SYN000...)
    seed: int = 2
    rate: int = Field(1000, ge=1, le=1_000_000)
    # kind = "ibkr": the second gateway (loopback or a private network address)
    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    port: int = Field(4002, ge=1, le=65535)
    client_id: int = Field(11, ge=0, le=2**31 - 1)
    market_data_type: Literal[1, 2, 3, 4] = 1  # 1 live, 2 frozen, 3 delayed, 4 delayed-frozen
    connect_timeout: float = Field(10.0, gt=0, le=600, allow_inf_nan=False)

    def not_live(self) -> str | None:
        """Why this feed's prices are not live (IB delayed or frozen data), None when they are."""
        return NOT_LIVE.get(self.market_data_type) if self.kind == "ibkr" else None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not _NAME.fullmatch(value):
            raise ValueError(f"a feed name is 1-32 lowercase letters, digits, '-' or '_' starting with a letter, "
                             f"not {value[:40]!r}")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        return [s.strip().upper() for s in value]
