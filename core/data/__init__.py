"""Market data in: bar files, the exchange calendar, and the feeds (replay, synthetic)."""
