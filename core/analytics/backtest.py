"""What a backtest produced, as plain values: per scope (the account, each strategy) the
figures of `cockpit metrics`, the equity curve at each session close, its drawdown and monthly
returns; the fills and the round trips. Built from the store's daily summaries and fills by
``build_result`` with the same functions `cockpit metrics` uses (``returns``, ``trades``,
``performance``, ``stored``), so a backtest and `cockpit metrics` on its store agree.

**Each strategy's equity** is the account's starting cash plus the strategy's own cumulative
net P&L at each close (its own fills at its own average cost, minus its commissions, plus its
open positions at the close's marks), as the daily summary records it: the strategy as if it
had the whole account's capital (core/analytics/performance.py).

**Exposure**, two figures per scope:
- ``exposure``: time in market, `cockpit metrics`' figure: the share of session closes at which
  the scope held a position;
- ``gross_exposure``: the mean over session closes of the scope's gross market value at the
  close's marks divided by the scope's equity then (0.5 = half the equity invested on average).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from core.analytics.performance import Performance, performance
from core.analytics.returns import PERIODS_PER_YEAR, EquityDay
from core.analytics.stored import account_days, owner_days
from core.analytics.trades import FillRecord, Trade, round_trips
from core.domain.serialize import dec, money

ACCOUNT = "account"
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The scope's equity at one session close."""

    ts: datetime
    equity: Decimal


@dataclass(frozen=True, slots=True)
class MonthReturn:
    """The compounded return of the sessions of one calendar month (``month`` is ``YYYY-MM``)."""

    month: str
    ret: float


@dataclass(frozen=True, slots=True)
class ScopeResult:
    """The account, or one owner (a strategy; operator / external if any traded)."""

    name: str
    performance: Performance
    days: tuple[EquityDay, ...]  # one per session close: the equity at the previous and this close
    curve: tuple[EquityPoint, ...]  # (session close, equity), oldest first
    gross_exposure: float | None

    def drawdown(self) -> list[tuple[datetime, float]]:
        """(close, equity / running peak - 1) at each close; the start equity is the first peak."""
        if not self.days:
            return []
        peak = self.days[0].open
        out = []
        for point in self.curve:
            peak = max(peak, point.equity)
            out.append((point.ts, float(point.equity / peak - 1) if peak > 0 else 0.0))
        return out

    def monthly_returns(self) -> list[MonthReturn]:
        return monthly_returns(self.days)

    def metrics(self) -> dict[str, Any]:
        """`cockpit metrics --json`'s figures for this scope, with ``return`` (= ``total_return``)
        and ``gross_exposure``."""
        figures = self.performance.to_json()
        return {"return": figures["total_return"], **figures, "gross_exposure": self.gross_exposure}


@dataclass(frozen=True, slots=True)
class BacktestFill:
    """One fill of the run, as the store has it (``side`` BUY or SELL, ``qty`` unsigned)."""

    ts: datetime
    exec_id: str
    client_order_id: str
    strategy: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    commission: Decimal
    realized: Decimal
    kind: str = "trade"

    def key(self) -> tuple[str, str, str, str, str, str, str]:
        """What the parity test compares: (ts, symbol, side, qty, price, commission, strategy)."""
        return (self.ts.isoformat(), self.symbol, self.side, dec(self.qty), dec(self.price), dec(self.commission),
                self.strategy)

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts.isoformat(), "exec_id": self.exec_id, "client_order_id": self.client_order_id,
                "strategy": self.strategy, "symbol": self.symbol, "side": self.side, "qty": dec(self.qty),
                "price": dec(self.price), "commission": money(self.commission), "realized_pnl": money(self.realized),
                "kind": self.kind}


@dataclass(frozen=True)
class BacktestResult:
    """Everything one run produced. Deterministic: the same settings give an equal result."""

    account: ScopeResult
    strategies: Mapping[str, ScopeResult]
    fills: tuple[BacktestFill, ...]
    trades: tuple[Trade, ...]  # closed round trips, in the order they closed
    open_trades: tuple[Trade, ...]  # still open at the end of the run
    config: Mapping[str, Any]  # what ran: strategies with their validated params, dates, costs
    risk_free_rate: float = 0.0
    events: int = 0  # replay events (quotes and bars) the engine processed
    warnings: tuple[str, ...] = field(default=(), compare=False)  # the engine's warnings during the run

    def scopes(self) -> list[ScopeResult]:
        """Each strategy (by name), then the account."""
        return [*(self.strategies[n] for n in sorted(self.strategies)), self.account]

    def metrics_json(self) -> dict[str, Any]:
        """``account`` and ``strategies`` (name -> figures), ratios as numbers, money as decimal text."""
        return {"account": self.account.metrics(),
                "strategies": {n: self.strategies[n].metrics() for n in sorted(self.strategies)},
                "risk_free_rate": self.risk_free_rate, "periods_per_year": PERIODS_PER_YEAR,
                "exposure_definition": EXPOSURE_DEFINITION}


EXPOSURE_DEFINITION = ("exposure: the share of session closes with a position held (time in market); "
                       "gross exposure: the mean over session closes of gross market value / equity")


def monthly_returns(days: Sequence[EquityDay]) -> list[MonthReturn]:
    """Each calendar month's compounded daily returns (sessions opening at zero or below left out)."""
    months: dict[str, float] = {}
    for d in days:
        key = f"{d.day.year:04d}-{d.day.month:02d}"
        growth = months.get(key, 1.0)
        if d.open > 0:
            growth *= float(d.close / d.open)
        months[key] = growth
    return [MonthReturn(k, g - 1.0) for k, g in months.items()]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _ratio(value: Decimal, of: Decimal) -> float:
    return float(abs(value) / of) if of > 0 else 0.0


def _closes(reports: Sequence[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(r["session_close"]) for r in reports]


def _scope(name: str, days: Sequence[EquityDay], closes: Sequence[datetime], closed: Sequence[Trade],
           still_open: Sequence[Trade], gross: list[float], tz: tzinfo, risk_free_rate: float) -> ScopeResult:
    return ScopeResult(
        name=name, performance=performance(days, closed, still_open, tz, risk_free_rate),
        days=tuple(days), curve=tuple(EquityPoint(ts, d.close) for ts, d in zip(closes, days, strict=True)),
        gross_exposure=_mean(gross))


def _owner_gross(report: Mapping[str, Any], owner: str) -> Decimal:
    """The owner's gross market value at the close: its share of each position at the mark."""
    total = ZERO
    for p in report.get("positions", ()):
        qty = p.get("owners", {}).get(owner)
        if qty is not None:
            price = p["last"] if p.get("last") is not None else p["avg_cost"]
            total += abs(Decimal(qty)) * Decimal(price)
    return total


def build_result(reports: Sequence[dict[str, Any]], fills: Iterable[FillRecord], rows: Iterable[BacktestFill], *,
                 starting_cash: Decimal, strategies: Iterable[str], tz: tzinfo, risk_free_rate: float = 0.0,
                 config: Mapping[str, Any] | None = None, events: int = 0,
                 warnings: Iterable[str] = ()) -> BacktestResult:
    """The result of a run from its stored daily summaries (oldest first, their JSON form), its
    fills (analytics form and store rows) and the names of the strategies that ran (each gets a
    scope, a flat one if it never traded)."""
    closes = _closes(reports)
    records = list(fills)
    closed, still_open = round_trips(records)
    acct_days = account_days(reports)
    acct_gross = [_ratio(sum((abs(Decimal(p["market_value"])) for p in r.get("positions", ())), ZERO), d.close)
                  for r, d in zip(reports, acct_days, strict=True)]
    account = _scope(ACCOUNT, acct_days, closes, closed, still_open, acct_gross, tz, risk_free_rate)
    curves = owner_days(list(reports), starting_cash)
    owners = sorted(set(curves) | set(strategies) | {t.owner for t in closed} | {t.owner for t in still_open})
    scopes = {}
    for owner in owners:
        days = curves.get(owner) or [EquityDay(d.day, starting_cash, starting_cash) for d in acct_days]
        gross = [_ratio(_owner_gross(r, owner), d.close) for r, d in zip(reports, days, strict=True)]
        scopes[owner] = _scope(owner, days, closes, [t for t in closed if t.owner == owner],
                               [t for t in still_open if t.owner == owner], gross, tz, risk_free_rate)
    return BacktestResult(account=account, strategies=scopes, fills=tuple(rows), trades=tuple(closed),
                          open_trades=tuple(still_open), config=dict(config or {}), risk_free_rate=risk_free_rate,
                          events=events, warnings=tuple(warnings))

