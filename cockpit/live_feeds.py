"""The live feed the engine reads: the configured feed and its fallbacks behind their gates.

A replay needs none of this (its files were checked when read); a live feed (synthetic or IB)
always goes through a :class:`~core.data.feeds.failover.FailoverFeed`, even alone, so that
every quote passes the quality gate and the feed's health is judged in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.common.bus import Bus
from core.common.clock import Clock
from core.config import FallbackFeedConfig, Settings
from core.data.calendar import ExchangeSession
from core.data.feeds.base import Feed
from core.data.feeds.failover import FailoverFeed, FeedSource
from core.data.feeds.synthetic import SyntheticFeed
from core.data.quality import QualityGate


def live_feed(settings: Settings, primary: Feed, *, bus: Bus, wall: Clock, clock: Clock) -> FailoverFeed:
    """``primary`` (named after ``feed.name`` or its kind) and each ``[[feed.fallbacks]]`` in order."""
    cfg = settings.feed
    name = cfg.name or cfg.kind
    sources = [FeedSource(name, cfg.kind, primary, QualityGate(name, cfg.quality), cfg.stale_seconds)]
    for fb in cfg.fallbacks:
        feed = _fallback(fb, primary.symbols, clock)
        sources.append(FeedSource(fb.name, fb.kind, feed, QualityGate(fb.name, fb.quality), fb.stale_seconds,
                                  not_live=fb.not_live()))
    in_session: Callable[[datetime], bool] | None = ExchangeSession().is_open if cfg.kind == "ibkr" else None
    return FailoverFeed(sources, wall, bus.publish, failback_seconds=cfg.failback_seconds, in_session=in_session)


def _fallback(fb: FallbackFeedConfig, symbols: list[str], clock: Clock) -> Feed:
    wanted = fb.symbols or list(symbols)
    if fb.kind == "synthetic":
        from core.config import SyntheticConfig

        walk = SyntheticConfig(symbols=len(wanted), rate=fb.rate, seed=fb.seed)
        return SyntheticFeed(walk, clock, symbols=wanted, name=fb.name)
    from brokers.ibkr.data_link import IbDataLink
    from brokers.ibkr.feed import IbkrFeed

    link = IbDataLink(fb)
    return IbkrFeed(link, wanted, clock, name=fb.name, owned_source=link.close)
