"""Strategies: the base class and the registry of kinds config.toml may name."""

from __future__ import annotations

from core.strategy.base import Strategy, StrategyContext, StrategyParams
from core.strategy.rsi_reversion import RsiReversion
from core.strategy.sma_cross import SmaCross

KINDS: dict[str, type[Strategy]] = {
    "sma_cross": SmaCross,
    "rsi_reversion": RsiReversion,
}

__all__ = ["KINDS", "Strategy", "StrategyContext", "StrategyParams"]
