"""The vocabulary, no I/O: orders, fills, quotes, bars, events, commands, and how numbers read."""
