"""The replay bench's sides: ours (the full engine path) and the peers (backtrader,
NautilusTrader), each running the same SMA(10/30) strategy on the same files.

Every side returns a ``Timed`` run: the full run including the file load, the run-only
part (each side's own "run": our replay loop, backtrader's run after its preload,
Nautilus's ``engine.run()``), and what it traded, so the counts can be compared.
``bench/replay_bench.py`` interleaves them and prints the medians.
"""
