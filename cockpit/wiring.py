"""Builds an engine from settings: picks the clock, the broker and the feed, makes strategies.

This is where adapters are injected into core (core never imports brokers/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from brokers.paper import PaperBroker
from cockpit.alerts.factory import make_sinks
from cockpit.live_feeds import live_feed
from core.alerts.sink import Sink
from core.common.bus import Bus
from core.common.clock import Clock, LiveClock, SimClock
from core.config import ConfigError, Settings
from core.data.bar_cache import BarCache
from core.data.bar_files import BarFileError, bundled_path
from core.data.feeds.base import Feed
from core.data.feeds.replay import ReplayFeed
from core.data.feeds.synthetic import SyntheticFeed
from core.kernel.engine import Engine
from core.persistence.store import DB_FILENAME, Store
from core.strategy import KINDS, Strategy


def db_path(settings: Settings) -> Path:
    return settings.state_dir / DB_FILENAME


def resolve_data_path(settings: Settings, path: str) -> Path:
    """``bundled:daily/X.csv`` names a file shipped in the package; other paths are config-relative."""
    if path.startswith("bundled:"):
        return bundled_path(path.removeprefix("bundled:"))
    return settings.resolve(path)


def feed_symbols_of(settings: Settings) -> list[str]:
    if settings.feed.kind == "ibkr":
        return list(settings.feed.symbols)
    if settings.feed.kind == "synthetic":
        return SyntheticFeed(settings.feed.synthetic, LiveClock()).symbols
    return [f.symbol for f in settings.feed.files]


def make_strategies(settings: Settings) -> list[Strategy]:
    """Instantiate the configured strategies; a bad kind or parameter is a ConfigError."""
    from pydantic import ValidationError

    feed_symbols = set(feed_symbols_of(settings))
    strategies: list[Strategy] = []
    for name, cfg in settings.strategies.items():
        cls = KINDS.get(cfg.kind)
        if cls is None:
            raise ConfigError(
                f"strategies.{name}.kind: unknown strategy kind {cfg.kind!r} (known: {', '.join(sorted(KINDS))})"
            )
        symbols = cfg.symbols or sorted(feed_symbols)
        missing = sorted(set(symbols) - feed_symbols)
        if missing:
            raise ConfigError(
                f"strategies.{name}.symbols: {', '.join(missing)} not in the {settings.feed.kind} feed"
            )
        try:
            strategy = cls(name, symbols, cfg.params)
        except ValidationError as exc:
            problems = "; ".join(
                f"strategies.{name}.params.{'.'.join(str(p) for p in e['loc']) or '(all)'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ConfigError(problems) from None
        strategy.enabled = cfg.enabled
        strategies.append(strategy)
    return strategies


def build_engine(settings: Settings, new_id: Callable[[], str] | None = None, *,
                 wall_clock: Clock | None = None, alert_sinks: Sequence[Sink] | None = None,
                 alerting: bool = True) -> Engine:
    """The engine for ``settings``: the paper broker with a replay on a simulated clock or a
    synthetic feed on the wall clock; or IBKR with IB's market data on the wall clock.

    ``new_id`` makes the random instance and account ids fixed (stable test screens);
    ``wall_clock`` replaces the wall clock the dead-man and the alerts count in (tests pass a
    SimClock); ``alert_sinks`` replaces the sinks the config turns on (``make_sinks``);
    ``alerting`` False runs it with no alert router at all (a backtest: cockpit/research).
    """
    sinks = make_sinks(settings) if alert_sinks is None else list(alert_sinks)
    if settings.broker.kind == "ibkr":
        if not alerting:
            raise ConfigError("an IBKR engine always alerts: alerting=False is for a paper replay (a backtest)")
        return _build_ibkr_engine(settings, new_id, wall_clock, sinks)
    ids = {"new_id": new_id} if new_id is not None else {}
    strategies = make_strategies(settings)
    for spec in settings.feed.files:
        try:
            path = resolve_data_path(settings, spec.path)
        except BarFileError as exc:
            raise ConfigError(f"feed.files[{spec.symbol}].path: {exc}") from None
        if not path.is_file():
            raise ConfigError(f"feed.files[{spec.symbol}].path: no such file: {path}")
    store = Store(db_path(settings))
    clock: Clock
    feed: Feed
    bus = Bus()
    wall = wall_clock or LiveClock()
    if settings.feed.kind == "synthetic":
        clock = LiveClock()
        feed = live_feed(settings, SyntheticFeed(settings.feed.synthetic, clock), bus=bus, wall=wall, clock=clock)
    else:
        clock = SimClock()
        cache_dir = settings.bar_cache_dir
        feed = ReplayFeed(settings.feed, lambda p: resolve_data_path(settings, p),
                          BarCache(cache_dir) if cache_dir is not None else None)
    broker = PaperBroker(store=store, clock=clock, bus=bus, config=settings.paper,
                         market_tz=settings.engine.market_tz, **ids)
    return Engine(settings=settings, store=store, clock=clock, bus=bus, broker=broker, feed=feed,
                  strategies=strategies, wall_clock=wall, alert_sinks=sinks, alerting=alerting, **ids)


def _build_ibkr_engine(settings: Settings, new_id: Callable[[], str] | None, wall_clock: Clock | None,
                       sinks: Sequence[Sink]) -> Engine:
    """IB Gateway (or TWS) as broker and feed. The adapter's order-id state lives in the
    state dir unless ``[ibkr] id_state_file`` names another file."""
    from brokers.ibkr.broker import IbkrBroker
    from brokers.ibkr.feed import IbkrFeed

    ids = {"new_id": new_id} if new_id is not None else {}
    strategies = make_strategies(settings)
    ibkr = settings.ibkr.model_copy(update={
        "id_state_file": settings.resolve(settings.ibkr.id_state_file) if settings.ibkr.id_state_file
        else settings.state_dir / "ibkr_order_ids.json"})
    clock = LiveClock()
    engine_ref: list[Engine] = []

    def on_connection_change(up: bool, reason: str) -> None:
        if engine_ref:
            engine_ref[0].broker_connection_changed(up, reason)

    def on_reconnect_failed(attempt: int, reason: str, next_delay: float) -> None:
        if engine_ref:
            engine_ref[0].broker_reconnect_failed(attempt, reason, next_delay)

    broker = IbkrBroker(ibkr, clock, on_connection_change=on_connection_change,
                        on_reconnect_failed=on_reconnect_failed)
    bus = Bus()
    wall = wall_clock or LiveClock()
    broker.on_pacing_violation = lambda text: engine_ref[0].broker_pacing_violation(text) if engine_ref else None
    feed = live_feed(settings, IbkrFeed(broker, settings.feed.symbols, clock), bus=bus, wall=wall, clock=clock)
    engine = Engine(settings=settings, store=Store(db_path(settings)), clock=clock, bus=bus, broker=broker,
                    feed=feed, strategies=strategies, wall_clock=wall, alert_sinks=sinks, **ids)
    engine_ref.append(engine)
    return engine
