"""Garbage-collector policy for a long-running engine process.

Measured in bench/tui_storm.py: full (generation 2) collections walked every object
loaded at start-up (exchange calendars, pandas, Textual) and paused the loop 125-160 ms,
which is what pushed key latency past 100 ms under a tick storm. Freezing what exists
once the engine is up moves it out of the collector's view; later garbage is still
collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    gc.collect()
    gc.freeze()
