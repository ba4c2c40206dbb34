"""`cockpit walkforward`: optimise a grid in-sample, run the choice out-of-sample, window after
window, and judge the stitched out-of-sample result.

- ``grid``: "name=lo..hi:step" specs, checked against the strategy's params model;
- ``windows``: train/test windows from durations (rolling or anchored) and the warm-up before each;
- ``data``: each run's bar files, cut at its own window's end (the look-ahead guard);
- ``runner``: one backtest in a throwaway store (the one place that knows how a backtest is run);
- ``executors``: serial, a process pool, or an existing Dask cluster;
- ``stats``: objectives, the stitched out-of-sample curve, t-statistic, WFE, parameter stability;
- ``verdict``: whether the strategy holds up, and why;
- ``analysis``: the whole walk-forward, window by window;
- ``report`` and ``html``: the report as text, JSON and HTML; ``storage``: the state dir's table;
- ``cli``: the command.
"""
