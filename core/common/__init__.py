"""What every layer shares: the clock and the synchronous event bus."""
