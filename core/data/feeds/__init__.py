"""Feeds behind one interface: replay of bar files, a synthetic random walk."""
