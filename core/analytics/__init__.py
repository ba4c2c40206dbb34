"""Performance metrics and the daily P&L summary: pure figures from the store's history, and
the subscriber that summarises each exchange session at its close.

- ``returns``: Sharpe, Sortino, Calmar, drawdowns ... from one equity value per session close;
- ``trades``: each owner's own book from the fills and their allocations; what a trade is;
- ``performance``: both for one scope (the account, or one owner), with its exposure;
- ``sessions``: which exchange session a moment belongs to;
- ``daily`` (with ``tally``): the summary at each close, published as DailySummaryReady;
- ``recorder``: the reports table, written from that event;
- ``stored``: rows of the store back into these inputs;
- ``backtest``: a backtest's result (figures per scope, curves, monthly returns) from its store.
"""
