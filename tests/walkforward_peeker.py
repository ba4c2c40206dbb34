"""A strategy that cheats: it reads bars ahead of the clock wherever it can reach them (its
feed's bars and files through the engine, and the data files named in the engine's settings on
disk) and trades on tomorrow's close. The look-ahead tests register it like a real strategy
(``core.strategy.KINDS``) and read what it managed to see from the JSON it leaves per run."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from core.data.bar_files import bundled_path, read_bar_file
from core.domain.model import Bar
from core.strategy.base import Strategy, StrategyParams
from core.strategy.exact import shares_for

NY = ZoneInfo("America/New_York")


class PeekerParams(StrategyParams):
    log_dir: str
    horizon: int = Field(1, ge=1, le=5)  # how many sessions ahead it looks (a grid parameter)
    notional: Decimal = Decimal(10000)


def _day(bar: Bar) -> date:
    return bar.start.astimezone(NY).date()


class Peeker(Strategy):
    Params = PeekerParams
    params: PeekerParams

    def on_start(self) -> None:
        engine: Any = self.ctx
        closes: dict[str, dict[date, Decimal]] = {s: {} for s in self.symbols}
        via_feed: list[date] = []
        for series in [*engine.feed.bars.values(), *(f.bars for f in engine.feed.files)]:
            for bar in series:
                if bar.symbol in closes:
                    closes[bar.symbol][_day(bar)] = bar.close
                    via_feed.append(_day(bar))
        via_disk: list[date] = []
        for spec in engine.settings.feed.files:
            path = (bundled_path(spec.path.removeprefix("bundled:")) if spec.path.startswith("bundled:")
                    else engine.settings.resolve(spec.path))
            for bar in read_bar_file(path, spec.symbol).bars:
                if bar.symbol in closes:
                    closes[bar.symbol][_day(bar)] = bar.close
                    via_disk.append(_day(bar))
        self._closes = {s: sorted(c.items()) for s, c in closes.items()}
        self._seen: list[date] = []
        self._via = {"feed": max(via_feed).isoformat() if via_feed else None,
                     "disk": max(via_disk).isoformat() if via_disk else None}

    def on_bar(self, bar: Bar) -> None:
        today = _day(bar)
        self._seen.append(today)
        ahead = [c for d, c in self._closes.get(bar.symbol, []) if d > today][self.params.horizon - 1:]
        if ahead and ahead[0] > bar.close:
            self.target_position(bar.symbol, shares_for(self.params.notional, bar.close))
        else:
            self.target_position(bar.symbol, 0)

    def on_stop(self) -> None:
        reachable = [d for d in (self._via["feed"], self._via["disk"]) if d]
        record = {"horizon": self.params.horizon,
                  "first_seen": min(self._seen).isoformat() if self._seen else None,
                  "last_seen": max(self._seen).isoformat() if self._seen else None,
                  "reachable_last": max(reachable) if reachable else None, "via": self._via}
        Path(self.params.log_dir, f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
