"""Strategies: the base class and the registry of kinds config.toml may name."""

from __future__ import annotations

from core.strategies.base import Strategy, StrategyContext, StrategyParams
from core.strategies.rsi_reversion import RsiReversion
from core.strategies.sma_cross import SmaCross

KINDS: dict[str, type[Strategy]] = {
    "sma_cross": SmaCross,
    "rsi_reversion": RsiReversion,
}

__all__ = ["KINDS", "Strategy", "StrategyContext", "StrategyParams"]
