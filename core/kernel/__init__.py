"""Builds the pieces and runs the loop: the engine, and the read-only view the risk gate checks against."""
