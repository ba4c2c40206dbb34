"""The pre-trade risk gate and the trading state (one owner)."""
