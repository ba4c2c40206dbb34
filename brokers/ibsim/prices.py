"""Where the simulator's prices come from: a seeded random walk, or a replay of bundled bars.

Prices only move when told to (``step``/``set``), never on their own, so that tests are
deterministic; the CLI drives steps from a timer. Each step's shock is drawn from an RNG
seeded with (global seed, symbol, step number), so a path is the same on every run and
continues where it left off after a restart (the cursor is persisted with the state).
The quote is always one cent either side of the last price.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

__all__ = ["BUNDLED_DAILY", "PriceBook", "Quote"]

CENT = Decimal("0.01")
MIN_PRICE = Decimal("0.05")
BUNDLED_DAILY = Path(__file__).resolve().parents[2] / "core" / "data" / "bundled" / "daily"
_SIGMA = 0.002  # per-step log-return standard deviation of the random walk


def _cents(x: Decimal | float) -> Decimal:
    return Decimal(str(x)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and last trade of one symbol."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: Decimal  # the path's first price, standing in for yesterday's close


def _read_closes(path: Path) -> list[Decimal]:
    """O, H/L, L/H, C of every usable row of a bundled daily file (a crude intraday path)."""
    points: list[Decimal] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = csv.DictReader(fh)
        for row in rows:
            try:
                o, h, lo, c = (Decimal(row[k]) for k in ("Open", "High", "Low", "Close"))
            except (KeyError, TypeError, InvalidOperation):
                continue
            if min(o, h, lo, c) <= 0:
                continue
            mid = (h, lo) if c < o else (lo, h)
            points.extend(_cents(p) for p in (o, *mid, c))
    return [p if p >= MIN_PRICE else MIN_PRICE for p in points]


class _Path:
    """One symbol's price path."""

    def __init__(self, symbol: str, seed: int, replay: list[Decimal] | None) -> None:
        self.symbol = symbol
        self.seed = seed
        self.replay = replay
        self.step_no = 0
        self.volume = 0
        if replay:
            self.price = replay[0]
        else:
            rng = random.Random(f"ibsim:{seed}:{symbol}:start")
            self.price = _cents(10 + rng.random() * 290)
        self.close = self.price
        self.last_size = 100

    def _rng(self) -> random.Random:
        return random.Random(f"ibsim:{self.seed}:{self.symbol}:{self.step_no}")

    def step(self) -> None:
        self.step_no += 1
        rng = self._rng()
        if self.replay:
            self.price = self.replay[self.step_no % len(self.replay)]
        else:
            shock = math.exp(rng.gauss(0.0, _SIGMA))
            self.price = max(MIN_PRICE, _cents(float(self.price) * shock))
        self.last_size = 100 * rng.randint(1, 5)
        self.volume += self.last_size

    def quote(self) -> Quote:
        rng = random.Random(f"ibsim:{self.seed}:{self.symbol}:{self.step_no}:size")
        return Quote(
            bid=max(self.price - CENT, CENT),
            ask=self.price + CENT,
            last=self.price,
            bid_size=100 * rng.randint(1, 9),
            ask_size=100 * rng.randint(1, 9),
            last_size=self.last_size,
            volume=self.volume,
            close=self.close,
        )

    def cursor(self) -> dict[str, str]:
        return {
            "price": format(self.price, "f"),
            "step": str(self.step_no),
            "volume": str(self.volume),
            "close": format(self.close, "f"),
        }

    def restore(self, cur: dict[str, str]) -> None:
        self.price = Decimal(cur["price"])
        self.step_no = int(cur["step"])
        self.volume = int(cur.get("volume", "0"))
        self.close = Decimal(cur.get("close", cur["price"]))


class PriceBook:
    """Price paths for every symbol anyone has asked about, created on first use."""

    def __init__(self, seed: int = 0, mode: str = "walk", bundled_dir: Path | None = None) -> None:
        if mode not in ("walk", "replay"):
            raise ValueError(f"price mode must be 'walk' or 'replay', not {mode!r}")
        self.seed = seed
        self.mode = mode
        self.bundled_dir = bundled_dir or BUNDLED_DAILY
        self._paths: dict[str, _Path] = {}

    def _replay_points(self, symbol: str) -> list[Decimal] | None:
        if self.mode != "replay":
            return None
        for path in sorted(self.bundled_dir.glob(f"{symbol}_*.csv")):
            points = _read_closes(path)
            if points:
                return points
        return None  # no bundled file for this symbol: it walks instead

    def _path(self, symbol: str) -> _Path:
        p = self._paths.get(symbol)
        if p is None:
            p = self._paths[symbol] = _Path(symbol, self.seed, self._replay_points(symbol))
        return p

    def symbols(self) -> list[str]:
        return sorted(self._paths)

    def quote(self, symbol: str) -> Quote:
        return self._path(symbol).quote()

    def step(self, symbol: str) -> Quote:
        p = self._path(symbol)
        p.step()
        return p.quote()

    def set_price(self, symbol: str, price: Decimal) -> Quote:
        """Put the last price at ``price`` (rounded to the cent); the walk continues from there."""
        p = self._path(symbol)
        p.price = max(MIN_PRICE, _cents(price))
        p.last_size = 100
        p.volume += 100
        return p.quote()

    def cursors(self) -> dict[str, dict[str, str]]:
        return {s: p.cursor() for s, p in self._paths.items()}

    def restore(self, cursors: dict[str, dict[str, str]]) -> None:
        """Continue the paths saved by :meth:`cursors`."""
        self._paths.clear()
        for symbol, cur in cursors.items():
            self._path(symbol).restore(cur)
