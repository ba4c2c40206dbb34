"""NautilusTrader 1.221.0 on the same file and strategy: ``BacktestEngine`` with a Python strategy.

Set-up, as close to ours as Nautilus allows:

- one ``SimulatedExchange`` venue "SIM", NETTING, a CASH account of 100,000 USD, bar execution
  on (the default), no latency model, no order book (L1 from the bars);
- the instrument is an ``Equity`` with the file's price precision (6 for the Yahoo ORCL file,
  2 for FESX) and a lot size of 1;
- the fees are a ``FeeModel`` with our paper broker's formula: $0.005/share, at least $1,
  at most 1% of the fill's value (Nautilus charges it per fill; ours per order as it fills);
- the bars come from ``pandas.read_csv`` on the same file, stamped at their end (ORCL at the
  16:00 New York close, FESX at the minute's end in Europe/Berlin) through
  ``BarDataWrangler``; loading is part of the full run;
- the strategy (``NtSmaCross``) keeps Nautilus's own ``SimpleMovingAverage`` indicators
  registered for the bars and goes long ``int(10000/close)`` when SMA(10) > SMA(30), flat
  otherwise, with a market order on a change of state only.

Fills differ from ours and backtrader's: with bar execution and no latency, a market order
sent in ``on_bar`` fills at once at that bar's close (ours fills 50 ms later on the next
quote, backtrader at the next bar's open). The order counts match.

Full run: ``BacktestEngine(...)`` to ``engine.run()`` returned and ``engine.dispose()``. Run
only: ``engine.run()``.
"""

from __future__ import annotations

import time
from typing import Any

from replay_peers.common import NOTIONAL, SMA_FAST, SMA_SLOW, SYMBOL, Dataset, Timed

_classes: dict[str, Any] = {}


def _make_classes() -> dict[str, Any]:
    """The Nautilus-side classes, made once (importing nautilus_trader takes about a second)."""
    if _classes:
        return _classes
    from nautilus_trader.backtest.models import FeeModel
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.indicators import SimpleMovingAverage
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import OrderSide, TimeInForce
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.trading.strategy import Strategy

    class IbkrLikeFee(FeeModel):
        """$0.005 a share, at least $1, at most 1% of the value (per fill)."""

        def get_commission(self, order, fill_qty, fill_px, instrument):  # type: ignore[no-untyped-def]
            qty = float(fill_qty)
            fee = min(max(qty * 0.005, 1.0), qty * float(fill_px) * 0.01)
            return Money(round(fee, 2), USD)

    class SmaConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        bar_type: BarType
        fast: int = SMA_FAST
        slow: int = SMA_SLOW
        notional: float = float(NOTIONAL)

    class NtSmaCross(Strategy):
        def __init__(self, config: SmaConfig) -> None:
            super().__init__(config)
            self.fast = SimpleMovingAverage(config.fast)
            self.slow = SimpleMovingAverage(config.slow)
            self.long: bool | None = None
            self.orders_sent = 0
            self.bars_seen = 0

        def on_start(self) -> None:
            self.register_indicator_for_bars(self.config.bar_type, self.fast)
            self.register_indicator_for_bars(self.config.bar_type, self.slow)
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
            self.bars_seen += 1
            if not self.slow.initialized:
                return
            long = self.fast.value > self.slow.value
            if long == self.long:
                return
            self.long = long
            close = bar.close.as_double()
            target = int(self.config.notional / close) if long else 0
            delta = target - float(self.portfolio.net_position(self.config.instrument_id))
            if delta == 0:
                return
            side = OrderSide.BUY if delta > 0 else OrderSide.SELL
            self.submit_order(self.order_factory.market(self.config.instrument_id, side,
                                                        Quantity.from_int(int(abs(delta))),
                                                        time_in_force=TimeInForce.GTC))
            self.orders_sent += 1

    _classes.update(IbkrLikeFee=IbkrLikeFee, SmaConfig=SmaConfig, NtSmaCross=NtSmaCross)
    return _classes


def _frame(ds: Dataset):  # type: ignore[no-untyped-def]
    import pandas as pd

    if ds.intraday:
        df = pd.read_csv(ds.path, header=None, skiprows=1,
                         names=["date", "time", "open", "high", "low", "close", "volume", "oi"])
        stamps = pd.to_datetime(df["date"] + " " + df["time"], format="%Y-%m-%d %H:%M:%S")
    else:
        df = pd.read_csv(ds.path, usecols=["Date", "Open", "High", "Low", "Close", "Volume"])
        df.columns = ["date", "open", "high", "low", "close", "volume"]
        stamps = pd.to_datetime(df["date"], format="%Y-%m-%d") + pd.Timedelta(hours=16)
    index = pd.DatetimeIndex(stamps).tz_localize(ds.tz).tz_convert("UTC")
    return pd.DataFrame({c: df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}, index=index)


def run_nautilus(ds: Dataset) -> Timed:
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    made = _make_classes()
    t0 = time.perf_counter()
    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                 logging=LoggingConfig(bypass_logging=True)))
    venue = Venue("SIM")
    engine.add_venue(venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH, base_currency=USD,
                     starting_balances=[Money(100_000, USD)], fee_model=made["IbkrLikeFee"]())
    prec = ds.price_precision
    instrument = Equity(instrument_id=InstrumentId(Symbol(SYMBOL), venue), raw_symbol=Symbol(SYMBOL), currency=USD,
                        price_precision=prec, price_increment=Price(10 ** -prec, prec),
                        lot_size=Quantity.from_int(1), ts_event=0, ts_init=0)
    engine.add_instrument(instrument)
    spec = "1-MINUTE-LAST-EXTERNAL" if ds.intraday else "1-DAY-LAST-EXTERNAL"
    bar_type = BarType.from_str(f"{instrument.id}-{spec}")
    bars = BarDataWrangler(bar_type, instrument).process(_frame(ds))
    engine.add_data(bars)
    strategy = made["NtSmaCross"](made["SmaConfig"](instrument_id=instrument.id, bar_type=bar_type))
    engine.add_strategy(strategy)
    t1 = time.perf_counter()
    engine.run()
    t2 = time.perf_counter()
    fills = len(engine.cache.orders_closed())
    pnl = engine.portfolio.realized_pnl(instrument.id)
    engine.dispose()
    t3 = time.perf_counter()
    detail = f"orders {strategy.orders_sent}, closed orders {fills}, realized P&L {pnl}, bars seen {strategy.bars_seen}"
    return Timed("nautilus", t3 - t0, t2 - t1, len(bars), strategy.orders_sent, fills, detail)
