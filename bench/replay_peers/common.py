"""What every side of the replay bench shares: the datasets, the strategy's parameters, a run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
BUNDLED = REPO / "core" / "data" / "bundled"

SMA_FAST, SMA_SLOW, NOTIONAL = 10, 30, 10000
SYMBOL = "BENCH"


@dataclass(frozen=True)
class Dataset:
    key: str  # "orcl" or "fesx"
    title: str
    bundled: str  # relative to core/data/bundled
    tz: str
    bar_seconds: int | None
    calendar: str | None
    price_precision: int  # decimals in the file's prices (Nautilus needs it on the instrument)
    # backtrader GenericCSVData column layout for the same file
    bt_kwargs: dict[str, object] = field(default_factory=dict)
    intraday: bool = False

    @property
    def path(self) -> Path:
        return BUNDLED / self.bundled


DATASETS = [
    Dataset(
        key="orcl", title="ORCL daily", bundled="daily/ORCL_1995-2014_yahoo.csv",
        tz="America/New_York", bar_seconds=None, calendar="XNYS", price_precision=6,
        # Date,Open,High,Low,Close,Adj Close,Volume   e.g. 1995-01-03,2.179012,...,36301200
        bt_kwargs=dict(dtformat="%Y-%m-%d", datetime=0, time=-1, open=1, high=2, low=3, close=4,
                       volume=6, openinterest=-1),
    ),
    Dataset(
        key="fesx", title="FESX 1-min", bundled="intraday/backtrader_2006-01-02-volume-min-001.txt",
        tz="Europe/Berlin", bar_seconds=60, calendar=None, price_precision=2,
        # header Date,Open,High,Low,Close,Volume,OpenInterest (no Time), but rows are
        # 2006-01-02,09:01:00,3602.00,3603.00,3597.00,3599.00,5699,0  (CRLF)
        bt_kwargs=dict(dtformat="%Y-%m-%d", tmformat="%H:%M:%S", datetime=0, time=1, open=2, high=3,
                       low=4, close=5, volume=6, openinterest=7),
        intraday=True,
    ),
]


@dataclass
class Timed:
    """One run of one side on one dataset."""

    side: str
    full_s: float  # everything from nothing loaded to results in hand (build, load, run, close)
    run_s: float  # the side's run only (no file parsing)
    bars: int
    orders: int
    fills: int
    detail: str = ""  # one line on what it traded
