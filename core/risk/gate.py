"""The pre-trade risk gate: nothing new reaches a broker without passing it.

Modelled on SEC Rule 15c3-5 and the FIA automated-trading risk controls. Every limit is
a key of ``RiskConfig`` (``[risk]`` in config.toml) and can be changed at run time with
``RiskGate.set_limit``. A value *at* a limit passes; a value *beyond* it is refused.

Interface
---------
``RiskGate(limits, state=TradingState.ACTIVE, *, on_state_change=None, capital=None)``

- ``check(req, view) -> str | None``: None when ``req`` may go, else a one-line reason
  naming the one limit key it broke and the values. A pass *admits* the order: it is
  recorded for the rate limits and the duplicate guard, so call ``check`` once per order,
  right before the order is created (the OMS always creates the order after a pass).
  Refused orders are not recorded.
- ``state`` / ``state_reason``; ``set_state(new, *, reason) -> TradingState`` (the old one)
  is the operator's switch. ``observe_pnl(day_pnl, now) -> TradingState | None`` latches
  the daily loss limit (``check`` also calls it with ``view.day_pnl()``). Every state
  change, whatever its cause, calls ``on_state_change(old, new, reason)``.
- ``set_limit(key, raw_value: str) -> (old, new)``: the whole ``RiskConfig`` re-validated;
  a bad key or value raises ``ConfigError`` naming the key and the fix, and changes nothing.
- ``limits_dict() -> dict[str, str]``: every key and its value, for display; each value
  fed back to ``set_limit`` gives the same limit (``allowed_symbols`` "*" = every symbol).
- ``reduce_only_symbols`` (a set the controls fill on a per-symbol flatten and clear on
  resume): orders in those symbols must reduce, as in REDUCING.
- ``OrderRequest(source=LIQUIDATION_SOURCE, reduce_only=True)``: the emergency
  liquidation's orders pass HALTED and skip the rate and duplicate guards (a retry of the
  same size must go); every other check applies, and a pass is still recorded.
- ``blocked_symbols`` (symbol -> reason; a reconciliation break, ``block_symbol`` /
  ``unblock_symbol``): no new order in that symbol but a liquidation's until resolved.
- ``hold`` (a reason, or None): while set, no new order passes but a liquidation's (the
  broker is down, or the engine is reconciling after a reconnect).
- ``feed_hold`` (a reason, or None): the active feed is not live (IB delayed or frozen data,
  15-20 minutes late but stamped on arrival, so the quote-age check passes it). While set no
  *strategy* order passes, a closing one neither: a strategy deciding on 15-minute-old prices
  is blind either way. The operator's orders (``source`` "operator", the command path) and the
  liquidation's (a flatten, the dead-man's) still go, as under the operator's REDUCING: the
  operator sees the hold and decides. Only ``follow_feed`` writes it, from the active feed
  (``on_feed_switched``: the engine subscribes it to ``FeedSwitched``; a failback to a live
  feed lifts it by itself). It is not the trading state: it never lifts an operator's halt,
  and a resume does not lift it. Every change calls ``on_feed_hold(feed, hold)``.
- Cancels are never gated: a cancel always passes, in every state.

Trading states
--------------
ACTIVE: every check below applies. REDUCING: in addition, an order passes only if it
reduces |position| without flipping it: the side opposite the position and
``qty <= |position| - working qty already on that side`` (flat: nothing passes). An
``OrderRequest(reduce_only=True)`` gets that same test in every state. HALTED: no new
order passes. The daily loss limit moves ACTIVE to ``daily_loss_action`` (REDUCING or
HALTED; REDUCING escalates to HALTED if the action is HALTED); nothing ever moves a state
back towards ACTIVE by itself: only ``set_state`` does (the operator's resume), and it
refuses (ValueError) to go below what a still-breached daily loss limit demands (raise
``daily_loss_limit`` or change ``daily_loss_action`` first).

Checks, in order (the first that fails is the reason)
------------------------------------------------------
0. daily loss: ``-view.day_pnl() > daily_loss_limit`` trips the state (latched, above)
0a. ``hold`` refuses everything (but liquidation orders)
1. state HALTED refuses everything (but liquidation orders, above)
1b. ``feed_hold`` refuses every order but the operator's and the liquidation's
1a. a symbol in ``blocked_symbols`` refuses everything (but liquidation orders)
2. input: qty finite, positive, whole shares; a LIMIT order has a finite positive price
3. the symbol is in ``reduce_only_symbols`` (and the order is not ``reduce_only``), then
   state REDUCING or ``reduce_only``: the order must reduce (above)
4. ``allowed_symbols`` (empty = every symbol)
5. ``max_order_qty``: qty
6. ``quote_max_age_seconds``: every new order (market or limit) needs a good quote
   (price > 0) with ``now - quote_ts <= quote_max_age_seconds``
7. ``price_collar_pct``: LIMIT only: ``|limit - quote| <= quote * pct / 100``
8. ``max_order_notional``: qty x (limit price for LIMIT, quote price for MARKET)
9. ``max_position_qty``: the worst case on the order's side, with same-side working orders:
   BUY: ``w = pos + working_buy + qty``; SELL: ``w = pos - working_sell - qty``. Refused if
   ``|w| > max_position_qty and |w| > |pos|`` (an order that does not grow |position|
   beyond where it is passes, so an oversized position can always be reduced).
10. ``max_gross_exposure`` and 11. ``max_net_exposure``, worst case over working orders.
   For each symbol s in ``view.symbols()`` plus the order's symbol, with
   ``hi_s = pos_s + working_buy_s`` and ``lo_s = pos_s - working_sell_s`` (the new order
   added to its own symbol's side) and ``m_s = view.mark(s)`` (for the order's symbol,
   the quote price when ``mark`` is None; any other symbol without a mark is refused:
   fail closed): ``gross = sum_s max(|hi_s|, |lo_s|) * m_s`` and
   ``net = max(|sum_s hi_s * m_s|, |sum_s lo_s * m_s|)`` (both exact worst cases over any
   partial fills). Refused if the value with the order is beyond the limit *and* above the
   value without it (as for position: what does not grow exposure passes).
11a. the strategy's capital allocation (``capital``, core/risk/capital.py): the same gross
   exposure over the strategy's own positions and open orders
   (``view.strategy_holdings(req.strategy)``) may not go beyond its allocation, unless the
   order does not grow it. A strategy without an allocation (and the operator, the
   liquidation) is not limited here.
12. ``max_orders_per_minute_per_strategy``: orders admitted for ``req.strategy`` in the
   60 s up to now (``now - t < 60 s``) must be fewer than the limit (12-14 are skipped
   for liquidation orders)
13. ``max_orders_per_minute_total``: the same over every strategy and the operator
14. ``duplicate_window_seconds``: an admitted order with the same symbol, side and qty
   (any strategy, type or price) with ``now - t < window`` refuses it. (Past 4096 remembered
   sizes, those older than the current window are forgotten: raising the window later
   does not bring them back.)

The view
--------
The engine hands ``check`` a ``RiskView`` (read-only; see its docstring). ``now()`` must
not go backwards (the rate and duplicate history assume it; if it does, the gate only
gets stricter). The engine's is ``core.kernel.risk_view.BookView``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from core.config import ConfigError, RiskConfig
from core.domain import text
from core.domain.events import FeedSwitched
from core.domain.model import ZERO, OrderType, Side
from core.risk.capital import CapitalAllocation, Holding

log = logging.getLogger("cockpit.risk")

RATE_WINDOW = timedelta(seconds=60)
#: ``OrderRequest.source`` of the emergency liquidation's orders: with ``reduce_only`` they
#: pass HALTED (the liquidation halts trading first) and skip the rate and duplicate
#: guards (a retry of the same size must go); every other check still applies.
LIQUIDATION_SOURCE = "liquidation"
#: The sources a ``feed_hold`` lets through: the operator decides on the prices they see.
OPERATOR_SOURCES = frozenset({"operator", LIQUIDATION_SOURCE})
_DUPLICATE_PRUNE_AT = 4096  # distinct orders remembered before expired ones are dropped
_SETS = (set, frozenset)


@dataclass(slots=True)
class OrderRequest:
    """What a strategy or operator asks for, before it becomes an Order.

    ``reduce_only``: pass only if it reduces the position (as in REDUCING), in any state.
    ``source``: "strategy" or "operator"; informational, the gate treats both alike
    (the rate limits count per ``strategy`` name).

    Read-only by convention, not frozen: one is made for every intent, on the order's path, and
    a frozen dataclass sets its nine fields one ``object.__setattr__`` call at a time (3 of
    the path's microseconds). Nothing keeps one past the check or the submit it is made for.
    """

    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    reduce_only: bool = False
    source: str = "strategy"
    may_short: bool = True  # False for a long-only strategy: its own position may not go below zero


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def level(self) -> int:
        """How restrictive: ACTIVE 0 < REDUCING 1 < HALTED 2."""
        return _LEVEL[self]


_LEVEL = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class RiskView(Protocol):
    """What the gate reads from the engine: the book as it is now. All reads, no writes.

    - ``now()``: the engine clock (simulated time in a replay), tz-aware, the same clock as
      the quote timestamps; never goes backwards.
    - ``position(symbol)``: the account's signed position (all strategies together).
    - ``working(symbol)``: (open buy qty, open sell qty): the unfilled remainder of every
      order that is not terminal, including ones created but not yet sent and ones
      pending cancel. Never negative.
    - ``quote(symbol)``: (price, timestamp) of the last good quote (price > 0), the price
      to collar limit orders against and to value market orders; None if there is none.
    - ``mark(symbol)``: the price that values a position for exposure (last price); None
      if unknown. Must not be None for a symbol with a position or working orders, or
      every order is refused on exposure (fail closed).
    - ``symbols()``: every symbol with a nonzero position or working orders (more is fine).
    - ``day_pnl()``: realized + unrealized P&L since the session open, after commissions
      (equity now minus equity at the open); negative is a loss.
    """

    def now(self) -> datetime: ...

    def position(self, symbol: str) -> Decimal: ...

    def working(self, symbol: str) -> tuple[Decimal, Decimal]: ...

    def quote(self, symbol: str) -> tuple[Decimal, datetime] | None: ...

    def mark(self, symbol: str) -> Decimal | None: ...

    def symbols(self) -> Iterable[str]: ...

    def day_pnl(self) -> Decimal: ...

    def strategy_position(self, strategy: str, symbol: str) -> Decimal:
        """The strategy's own signed position (asked only for a long-only strategy's sell)."""
        ...

    def strategy_working_sells(self, strategy: str, symbol: str) -> Decimal:
        """The unfilled quantity of the strategy's own open sell orders in ``symbol``."""
        ...

    def strategy_holdings(self, strategy: str) -> Mapping[str, Holding]:
        """Per symbol the strategy's own (position, open buy qty, open sell qty); asked only for
        a strategy with a capital allocation."""
        ...


StateListener = Callable[[TradingState, TradingState, str], None]
FeedHoldListener = Callable[[str, str | None], None]


class RiskGate:
    """The pre-trade checks and the trading state. See the module docstring."""

    def __init__(
        self,
        limits: RiskConfig,
        state: TradingState = TradingState.ACTIVE,
        *,
        on_state_change: StateListener | None = None,
        capital: CapitalAllocation | None = None,
        on_feed_hold: FeedHoldListener | None = None,
    ) -> None:
        self.limits = limits
        # Capital per strategy (check 11a); the engine sets its equity at start.
        self.capital = capital if capital is not None else CapitalAllocation()
        self._state = TradingState(state)
        self._state_reason = "initial state" if self._state is not TradingState.ACTIVE else ""
        self.on_state_change = on_state_change
        self._last_pnl: Decimal | None = None
        self._sent_total: deque[datetime] = deque()
        self._sent_by_strategy: dict[str, deque[datetime]] = {}
        self._last_sent: dict[tuple[str, Side, Decimal], datetime] = {}
        self._windows_of: tuple[RiskConfig, timedelta, timedelta] | None = None
        # Symbols being flattened one by one: only reducing orders until the operator resumes.
        self.reduce_only_symbols: set[str] = set()
        # Symbols with a reconciliation break: no new order (but a liquidation's) until resolved.
        self.blocked_symbols: dict[str, str] = {}
        # Why no new order may go at all right now (broker down, reconciling after a reconnect).
        self.hold: str | None = None
        # Why strategy orders may not go (the active feed is not live); written by follow_feed only.
        self._feed_hold: str | None = None
        self.on_feed_hold = on_feed_hold

    def block_symbol(self, symbol: str, reason: str) -> None:
        self.blocked_symbols[symbol] = reason

    def unblock_symbol(self, symbol: str) -> None:
        self.blocked_symbols.pop(symbol, None)

    # ---- the feed hold ---------------------------------------------------------------

    @property
    def feed_hold(self) -> str | None:
        return self._feed_hold

    def follow_feed(self, feed: str, not_live: str | None) -> str | None:
        """The active feed is ``feed``; ``not_live`` says why its prices are not live (None: they
        are). Holds strategy orders while it is not live, lifts the hold when it is; returns the hold."""
        hold = None if not_live is None else (
            f"held: the active feed {feed} is {not_live}; strategies trade again when a live feed is back")
        if hold != self._feed_hold:
            self._feed_hold = hold
            if hold is None:
                log.warning("strategy orders may go again: the active feed %s is live", feed)
            else:
                log.error("strategy orders %s", hold)
            if self.on_feed_hold is not None:
                self.on_feed_hold(feed, hold)
        return hold

    def on_feed_switched(self, e: FeedSwitched) -> None:
        """A ``FeedSwitched`` subscriber: follow the new active feed."""
        self.follow_feed(e.to_feed, e.not_live)

    # ---- the trading state ---------------------------------------------------------

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def state_reason(self) -> str:
        return self._state_reason

    def set_state(self, new: TradingState, *, reason: str) -> TradingState:
        """The operator's switch (halt, reduce, resume). Returns the previous state.

        Refuses (ValueError) to go below what a breached daily loss limit demands.
        """
        new = TradingState(new)
        refusal = self.state_refusal(new)
        if refusal is not None:
            raise ValueError(refusal)
        return self._move(new, reason)

    def state_refusal(self, new: TradingState) -> str | None:
        """Why ``set_state(new)`` would be refused now (a breached daily loss limit), or None."""
        demanded = self._loss_demands(self._last_pnl)
        if demanded is not None and TradingState(new).level < demanded.level:
            return (f"cannot go {new}: day P&L {self._last_pnl} is beyond daily_loss_limit"
                    f" {self.limits.daily_loss_limit}, which demands {demanded}; raise daily_loss_limit"
                    f" (or set daily_loss_action REDUCING) first")
        return None

    def observe_pnl(self, day_pnl: Decimal, now: datetime | None = None) -> TradingState | None:
        """Feed the day's P&L; returns the new state if the daily loss limit just tripped.

        Only ever moves towards HALTED. Call it whenever the day P&L changes (each mark or
        fill batch); ``check`` calls it too, so an order never slips past a breach.
        """
        self._last_pnl = day_pnl
        demanded = self._loss_demands(day_pnl)
        if demanded is None or demanded.level <= self._state.level:
            return None
        at = f" at {now.isoformat()}" if now is not None else ""
        self._move(demanded, f"day P&L {day_pnl} beyond daily_loss_limit {self.limits.daily_loss_limit}{at}")
        return demanded

    def _loss_demands(self, day_pnl: Decimal | None) -> TradingState | None:
        if day_pnl is None or not -day_pnl > self.limits.daily_loss_limit:
            return None
        return TradingState(self.limits.daily_loss_action)

    def _move(self, new: TradingState, reason: str) -> TradingState:
        old = self._state
        if new is old:
            return old
        self._state, self._state_reason = new, reason
        log.warning("trading %s -> %s: %s", old, new, reason)
        if self.on_state_change is not None:
            self.on_state_change(old, new, reason)
        return old

    # ---- limits at run time ----------------------------------------------------------

    def set_limit(self, key: str, raw_value: Any) -> tuple[Any, Any]:
        """Change one limit from its text form; returns (old, new). Raises ConfigError."""
        old = getattr(self.limits, key) if key in RiskConfig.model_fields else None
        limits = self._validated(key, raw_value)
        self.limits = limits
        new = getattr(limits, key)
        log.warning("risk limit %s: %s -> %s", key, _show(old), _show(new))
        return old, new

    def validate_limit(self, key: str, raw_value: Any) -> tuple[Any, Any]:
        """What ``set_limit`` would change, (old, new), without changing it. Raises ConfigError."""
        return getattr(self.limits, key, None), getattr(self._validated(key, raw_value), key)

    def _validated(self, key: str, raw_value: Any) -> RiskConfig:
        fields = RiskConfig.model_fields
        if key not in fields:
            raise ConfigError(f"unknown risk limit {key!r}: use one of {', '.join(fields)}")
        old = getattr(self.limits, key)
        raw = raw_value.strip() if isinstance(raw_value, str) else raw_value
        try:
            return RiskConfig.model_validate({**self.limits.model_dump(), key: raw})
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError(f"risk.{key}: {problems} (got {raw_value!r}); the limit stays {_show(old)}") from None

    @staticmethod
    def show_limit(value: Any) -> str:
        return _show(value)

    def limits_dict(self) -> dict[str, str]:
        return {key: _show(getattr(self.limits, key)) for key in RiskConfig.model_fields}

    # ---- the checks ------------------------------------------------------------------

    def check(self, req: OrderRequest, view: RiskView, *, admit: bool = True) -> str | None:
        """None when ``req`` may go (and it is then admitted), else the reason it may not.

        ``admit=False`` asks without admitting (a confirm prompt's plan): nothing is recorded
        for the rate limits or the duplicate guard."""
        lim = self.limits
        now = view.now()
        self.observe_pnl(view.day_pnl(), now)
        liquidating = req.source == LIQUIDATION_SOURCE and req.reduce_only
        if self.hold is not None and not liquidating:  # an emergency flatten does not wait
            return f"no new orders: {self.hold}"
        if self._state is TradingState.HALTED and not liquidating:
            return f"trading HALTED ({self._state_reason}): no new orders, only cancels"
        if self._feed_hold is not None and req.source not in OPERATOR_SOURCES:
            return self._feed_hold
        if req.symbol in self.blocked_symbols and not liquidating:
            return (f"{req.symbol} is blocked by a reconciliation break until the operator resolves it "
                    f"(key b, or `cockpit resolve {req.symbol} accept|adopt|flatten`): "
                    f"{self.blocked_symbols[req.symbol]}")
        if (bad := _bad_input(req)) is not None:
            return bad
        if not req.may_short and req.side is Side.SELL:
            held = view.strategy_position(req.strategy, req.symbol)
            selling = view.strategy_working_sells(req.strategy, req.symbol)
            after = held - selling - req.qty
            if after < 0:
                return (f"{req.strategy} is long-only: SELL {text.qty(req.qty)} {req.symbol} would take its position "
                        f"to {text.qty(after)} (it holds {text.qty(held)}" + (f", {text.qty(selling)} already selling)"
                                                                     if selling else ")"))
        pos = view.position(req.symbol)
        working_buy, working_sell = view.working(req.symbol)
        if req.symbol in self.reduce_only_symbols and not req.reduce_only:
            if (why := _not_reducing(req, pos, working_buy, working_sell)) is not None:
                return f"{req.symbol} is reduce-only after a flatten until the operator resumes: {why}"
        if self._state is TradingState.REDUCING or req.reduce_only:
            if (why := _not_reducing(req, pos, working_buy, working_sell)) is not None:
                if self._state is TradingState.REDUCING:
                    return f"trading REDUCING ({self._state_reason}): {why}"
                return f"reduce_only: {why}"
        if (bad := _symbol_and_size(req, lim)) is not None:
            return bad

        quote = view.quote(req.symbol)
        if quote is None or not quote[0] > 0:
            return (f"no quote for {req.symbol}: a new order needs one no older than"
                    f" quote_max_age_seconds {_show(lim.quote_max_age_seconds)}")
        ref, quote_ts = quote
        age = now - quote_ts
        max_age, window = self._windows(lim)
        if age > max_age:
            return (f"quote for {req.symbol} is {_show(age.total_seconds())} s old, beyond"
                    f" quote_max_age_seconds {_show(lim.quote_max_age_seconds)}")
        if req.order_type is OrderType.LIMIT:
            assert req.limit_price is not None
            off = abs(req.limit_price - ref)
            if off * 100 > ref * lim.price_collar_pct:
                return (f"limit {req.limit_price} is {_trim(off * 100 / ref)}% from the quote {ref},"
                        f" beyond price_collar_pct {lim.price_collar_pct}")
        if (bad := _notional_and_position(req, lim, ref, pos, working_buy, working_sell)) is not None:
            return bad
        if (bad := self._exposure(req, view, ref, pos, working_buy, working_sell)) is not None:
            return bad
        if req.strategy in self.capital.entries and (
                bad := self.capital.refusal(req.strategy, req.symbol, req.side, req.qty, ref, view)) is not None:
            return bad
        if not liquidating and (bad := self._rate_and_duplicate(req, now, window)) is not None:
            return bad
        if admit:
            self._admit(req, now)
        return None

    def _exposure(self, req: OrderRequest, view: RiskView, ref: Decimal, pos: Decimal, buy: Decimal,
                  sell: Decimal) -> str | None:
        """Gross and net exposure before and after ``req``. Only ``req.symbol``'s term differs
        between the two, so every other symbol is valued once (this runs on every order, over
        every symbol held or working). ``pos``, ``buy`` and ``sell`` are ``req.symbol``'s, as
        ``check`` read them from the view a moment before (nothing changes in between)."""
        lim = self.limits
        gross = hi_sum = lo_sum = ZERO  # every symbol but req.symbol (before = after)
        symbol = req.symbol
        symbols = view.symbols()
        if not isinstance(symbols, _SETS):  # each symbol once
            symbols = set(symbols)
        for other in symbols:
            if other == symbol:
                continue
            held = view.position(other)
            buying, selling = view.working(other)
            mark = view.mark(other)
            if mark is None:
                if held == 0 and buying == 0 and selling == 0:
                    continue
                return f"no mark for {other} to value max_gross_exposure / max_net_exposure"
            hi, lo = held + buying, held - selling
            gross += max(abs(hi), abs(lo)) * mark
            hi_sum += hi * mark
            lo_sum += lo * mark
        mark = view.mark(symbol)
        if mark is None:
            mark = ref
        hi_now, lo_now = pos + buy, pos - sell
        hi, lo = (hi_now + req.qty, lo_now) if req.side is Side.BUY else (hi_now, lo_now - req.qty)
        # The value with the order first: the one without it is needed only when that is beyond the
        # limit (the same sums as ever, so the same Decimals; most orders stop at the first test).
        gross_after = gross + max(abs(hi), abs(lo)) * mark
        if gross_after > lim.max_gross_exposure:
            gross_before = gross + max(abs(hi_now), abs(lo_now)) * mark
            if gross_after > gross_before:
                return (f"gross exposure would reach {_money(gross_after)} (now {_money(gross_before)}),"
                        f" beyond max_gross_exposure {lim.max_gross_exposure}")
        net_after = max(abs(hi_sum + hi * mark), abs(lo_sum + lo * mark))
        if net_after > lim.max_net_exposure:
            net_before = max(abs(hi_sum + hi_now * mark), abs(lo_sum + lo_now * mark))
            if net_after > net_before:
                return (f"net exposure would reach {_money(net_after)} (now {_money(net_before)}),"
                        f" beyond max_net_exposure {lim.max_net_exposure}")
        return None

    def _windows(self, lim: RiskConfig) -> tuple[timedelta, timedelta]:
        """(quote_max_age_seconds, duplicate_window_seconds) as timedeltas, made once per limits
        object (a limit changed at run time is a new one) rather than on every order."""
        cached = self._windows_of
        if cached is None or cached[0] is not lim:
            cached = self._windows_of = (lim, timedelta(seconds=lim.quote_max_age_seconds),
                                         timedelta(seconds=lim.duplicate_window_seconds))
        return cached[1], cached[2]

    def _rate_and_duplicate(self, req: OrderRequest, now: datetime, window: timedelta) -> str | None:
        """``window``: duplicate_window_seconds as a timedelta (``_windows``)."""
        lim = self.limits
        mine = self._sent_by_strategy.get(req.strategy)
        if mine is not None:
            _expire(mine, now)
            if len(mine) >= lim.max_orders_per_minute_per_strategy:
                return (f"{req.strategy} already sent {len(mine)} orders in the last 60 s, the most"
                        f" max_orders_per_minute_per_strategy {lim.max_orders_per_minute_per_strategy} allows")
        _expire(self._sent_total, now)
        if len(self._sent_total) >= lim.max_orders_per_minute_total:
            return (f"{len(self._sent_total)} orders already sent in the last 60 s, the most"
                    f" max_orders_per_minute_total {lim.max_orders_per_minute_total} allows")
        last = self._last_sent.get((req.symbol, req.side, req.qty))
        if last is not None and now - last < window:
            return (f"duplicate of {req.side} {req.qty} {req.symbol} sent {_show((now - last).total_seconds())} s ago,"
                    f" inside duplicate_window_seconds {_show(lim.duplicate_window_seconds)}")
        return None

    def _admit(self, req: OrderRequest, now: datetime) -> None:
        self._sent_total.append(now)
        mine = self._sent_by_strategy.get(req.strategy)
        if mine is None:
            mine = self._sent_by_strategy[req.strategy] = deque()
        mine.append(now)
        if len(self._last_sent) >= _DUPLICATE_PRUNE_AT:
            window = timedelta(seconds=self.limits.duplicate_window_seconds)
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < window}
        self._last_sent[(req.symbol, req.side, req.qty)] = now


def _expire(sent: deque[datetime], now: datetime) -> None:
    while sent and now - sent[0] >= RATE_WINDOW:
        sent.popleft()


def _bad_input(req: OrderRequest) -> str | None:
    qty = req.qty
    if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
        return f"quantity must be positive, got {qty}"
    if qty != qty.to_integral_value():
        return f"quantity must be whole shares, got {qty}"
    if req.order_type is OrderType.LIMIT:
        price = req.limit_price
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            return f"limit order needs a positive limit price, got {price}"
    return None


def _not_reducing(req: OrderRequest, pos: Decimal, working_buy: Decimal, working_sell: Decimal) -> str | None:
    """Why ``req`` does not reduce |position| without flipping it; None if it does."""
    if pos > 0 and req.side is Side.SELL:
        room = pos - working_sell
    elif pos < 0 and req.side is Side.BUY:
        room = -pos - working_buy
    else:
        return f"{req.side} {req.qty} {req.symbol} does not reduce position {pos}"
    if req.qty > room:
        return (f"{req.side} {req.qty} {req.symbol} is more than the {max(room, ZERO)} left to reduce"
                f" (position {pos}, working +{working_buy}/-{working_sell})")
    return None


def _symbol_and_size(req: OrderRequest, lim: RiskConfig) -> str | None:
    if lim.allowed_symbols and req.symbol not in lim.allowed_symbols:
        return f"{req.symbol} is not in allowed_symbols ({', '.join(lim.allowed_symbols)})"
    if req.qty > lim.max_order_qty:
        return f"qty {req.qty} exceeds max_order_qty {lim.max_order_qty}"
    return None


def _notional_and_position(req: OrderRequest, lim: RiskConfig, quote_price: Decimal, pos: Decimal,
                           working_buy: Decimal, working_sell: Decimal) -> str | None:
    price = req.limit_price if req.order_type is OrderType.LIMIT and req.limit_price is not None else quote_price
    notional = req.qty * price
    if notional > lim.max_order_notional:
        return f"notional {_money(notional)} exceeds max_order_notional {lim.max_order_notional}"
    worst = pos + working_buy + req.qty if req.side is Side.BUY else pos - working_sell - req.qty
    if (size := abs(worst)) > lim.max_position_qty and size > abs(pos):
        return (f"position {req.symbol} would reach {worst} (now {pos}, working"
                f" +{working_buy}/-{working_sell}), beyond max_position_qty {lim.max_position_qty}")
    return None


def _money(value: Decimal) -> str:
    """Cents, unless that would round: a refusal must not show a value that looks allowed."""
    cents = value.quantize(Decimal("0.01")) if value.adjusted() < 20 else value
    return f"{cents:.2f}" if cents == value else f"{value:f}"


def _trim(value: Decimal) -> str:
    """Up to 4 decimals, no trailing zeros: 10.025, 12.5, 20."""
    try:
        text = f"{value.quantize(Decimal('0.0001')):f}"
    except ArithmeticError:  # too many digits to quantize: show it as it is
        return str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) if value else "*"
    if isinstance(value, float):
        text = repr(value)
        return text.removesuffix(".0")
    return str(value)
