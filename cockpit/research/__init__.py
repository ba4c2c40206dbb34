"""Research on the live engine: `cockpit backtest`. ``backtest`` is the runner (``run_backtest``,
the API `cockpit walkforward` calls) and the settings of a run; ``backtest_cli`` the command;
``terminal`` its table and plotext chart; ``report`` and ``svg`` the HTML report; ``export``
the CSV files; ``figures`` the labels and formats both outputs share. `cockpit walkforward` is
``walkforward/``: the grid in-sample, the choice out-of-sample, window after window."""
