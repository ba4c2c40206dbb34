"""backtrader 1.9.78.123 on the same file and strategy.

``bt.feeds.GenericCSVData`` with the columns set by hand (see ``common.DATASETS``), Cerebro's
defaults (``preload=True``, ``runonce=True``), no observers (``stdstats=False``), 100,000 cash,
$0.005/share fixed commission. The strategy goes long ``int(10000/close)`` when SMA(10) >
SMA(30) and flat otherwise, with ``order_target_size`` on a change of state only; market
orders fill at the next bar's open.

Full run: ``Cerebro()`` to ``cerebro.run()`` returned (backtrader parses the CSV inside
``run()``). Run only: from the strategy's ``__init__`` (backtrader builds strategies right
after preloading the data) to ``run()`` returned.
"""

from __future__ import annotations

import time

from replay_peers.common import NOTIONAL, SMA_FAST, SMA_SLOW, Dataset, Timed


def _strategy_class(bt):  # type: ignore[no-untyped-def]
    class BtSmaCross(bt.Strategy):
        params = dict(fast=SMA_FAST, slow=SMA_SLOW, notional=float(NOTIONAL))

        def __init__(self):  # type: ignore[no-untyped-def]
            self.started_at = time.perf_counter()  # the data is loaded by now
            self.sma_fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            self.sma_slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.long = None
            self.orders_sent = self.orders_completed = self.trades_closed = 0

        def next(self):  # type: ignore[no-untyped-def]
            long = self.sma_fast[0] > self.sma_slow[0]
            if long == self.long:
                return
            self.long = long
            target = int(self.p.notional / self.data.close[0]) if long else 0
            if self.order_target_size(target=target) is not None:
                self.orders_sent += 1

        def notify_order(self, order):  # type: ignore[no-untyped-def]
            if order.status == order.Completed:
                self.orders_completed += 1

        def notify_trade(self, trade):  # type: ignore[no-untyped-def]
            if trade.isclosed:
                self.trades_closed += 1

    return BtSmaCross


def run_backtrader(bt, ds: Dataset) -> Timed:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    cerebro = bt.Cerebro()
    kwargs = dict(ds.bt_kwargs)
    if ds.intraday:
        kwargs.update(timeframe=bt.TimeFrame.Minutes, compression=1)
    cerebro.adddata(bt.feeds.GenericCSVData(dataname=str(ds.path), headers=True, separator=",", **kwargs))
    cerebro.addstrategy(_strategy_class(bt))
    cerebro.broker.setcash(100000.0)
    cerebro.broker.setcommission(commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True)
    strat = cerebro.run(stdstats=False)[0]
    t1 = time.perf_counter()
    detail = (f"orders {strat.orders_sent} (completed {strat.orders_completed}), round trips "
              f"{strat.trades_closed}, final value {cerebro.broker.getvalue():,.2f}")
    return Timed("backtrader", t1 - t0, t1 - strat.started_at, len(strat.data), strat.orders_sent,
                 strat.orders_completed, detail)
