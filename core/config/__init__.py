"""The configuration: config.toml read into pydantic-settings models.

Precedence: explicit overrides (CLI) > environment (``COCKPIT_<SECTION>__<KEY>``) >
the TOML file. Unknown keys and bad values refuse to start with one clear line: hostile ones
too (a NUL byte, a huge or deeply nested value, a time zone that is a path; see
``core.config.checks``), never a traceback.

``validate_config(mapping, env)`` is the same validation without a file or the process
environment: side-effect free, for a fuzzing campaign (``bench/chaos_inputs.py``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from core.common.input_checks import RESERVED_STATE_NAMES as RESERVED_STATE_NAMES
from core.common.input_checks import state_relative as state_relative
from core.config.alerts import AlertRoute as AlertRoute  # re-exported: the alert router's section
from core.config.alerts import AlertsConfig as AlertsConfig
from core.config.capital import Allocation, parse_allocation, total_problem, unknown_names
from core.config.checks import check_environment, check_path, first_problem, json_list_or_text, zone
from core.config.feeds import FallbackFeedConfig as FallbackFeedConfig
from core.config.feeds import FeedQualityConfig as FeedQualityConfig
from core.config.ibkr import IbkrConfig
from core.config.preflight import PreflightConfig as PreflightConfig
from core.config.watchdog import WatchdogConfig as WatchdogConfig

ENV_PREFIX = "COCKPIT_"
_SYMBOL_MAX = 16  # characters in a symbol (the longest real ones have 6 or so)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class ConfigError(Exception):
    """A config that must not start the engine; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class EngineConfig(_Section):
    state_dir: Path = Path("state")
    instance_name: str = Field("cockpit", min_length=1, max_length=64)
    market_tz: str = "America/New_York"  # the exchange's time: clock display, trading days
    flush_interval_ms: int = Field(50, ge=1, le=5000)
    # What a committed order or fill survives (core/persistence/store.py, SYNCHRONOUS): "process"
    # a crash of the process (SIGKILL, OOM, a bug), with no fsync per commit, so an order's
    # write-ahead commit costs tens of microseconds; "power" also a power cut or a kernel panic,
    # with an fsync per commit (milliseconds on most disks). After a power cut "process" may lose
    # the last second or so of commits: the broker still has those orders, and the reconciliation
    # at start shows each as a break (README, "Interactive Brokers").
    order_durability: Literal["process", "power"] = "process"
    # Come up reconciled, feeds on, trading HALTED (as if the operator pressed halt, audited);
    # `cockpit resume` trades. The same as `cockpit --start-halted`, for every start.
    start_halted: bool = False
    # A LIVE start the go-live check refuses: "exit" ends the process (exit 2; systemd neither
    # restarts it nor counts it a failure); "wait" stays up PARKED (docker: a restart policy
    # would start it again and again, an alert and an IB login each time): nothing sent, the
    # broker session closed, the control API answering `cockpit status` (run_state "refused"),
    # until SIGTERM stops it clean.
    on_refused_start: Literal["exit", "wait"] = "exit"

    @field_validator("on_refused_start", mode="before")
    @classmethod
    def _on_refused(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("market_tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        zone(value)  # a long name is OSError inside ZoneInfo: here it is one line
        return value

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, value: Path) -> Path:
        check_path("engine.state_dir", value)
        return value


class BrokerConfig(_Section):
    kind: Literal["paper", "ibkr"] = "paper"


class ReconcileConfig(_Section):
    """How often the engine's book is compared with the broker's (also at every (re)connect).

    A difference must still be there ``settle_seconds`` later to count as a break: a fill
    or an acknowledgement in flight is not a break.
    """

    interval_minutes: float = Field(5.0, gt=0, le=1440, allow_inf_nan=False)
    settle_seconds: float = Field(2.0, ge=0, le=60, allow_inf_nan=False)


class PaperConfig(_Section):
    starting_cash: Decimal = Field(Decimal("100000"), gt=0, le=Decimal("1e12"), allow_inf_nan=False)
    slippage_bps: Decimal = Field(Decimal("1"), ge=0, le=1000)
    commission_per_share: Decimal = Field(Decimal("0.005"), ge=0, le=100, allow_inf_nan=False)
    commission_min: Decimal = Field(Decimal("1.00"), ge=0, le=10000, allow_inf_nan=False)
    commission_max_pct: Decimal = Field(Decimal("0.01"), ge=0, le=1)
    max_volume_share: Decimal = Field(Decimal("0.1"), gt=0, le=1)
    latency_ms: int = Field(50, ge=0, le=60000)
    price_increment: Decimal = Field(Decimal("0.0001"), ge=Decimal("1e-8"), le=100, allow_inf_nan=False)


class ReplayFile(_Section):
    symbol: str = Field(min_length=1, max_length=_SYMBOL_MAX)
    path: str = Field(min_length=1)
    tz: str = "America/New_York"
    bar_time: Literal["start", "end"] = "end"
    bar_seconds: int | None = Field(None, gt=0, le=31 * 86400)
    calendar: str | None = Field("XNYS", min_length=1, max_length=32)  # an exchange-calendars name

    # ``tz`` is checked where the file is read (core.data.bar_files), named by its symbol.

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        check_path("path", value.removeprefix("bundled:"))
        return value


class SyntheticConfig(_Section):
    symbols: int = Field(50, ge=1, le=10000)
    rate: int = Field(10000, ge=1, le=1_000_000)  # quotes per second, across all symbols
    seed: int = 1


class FeedConfig(_Section):
    kind: Literal["replay", "synthetic", "ibkr"] = "replay"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    symbols: list[str] = Field(default_factory=list)  # the ibkr feed's symbols (US stocks, SMART/USD)
    speed: float | Literal["max"] = 86400.0
    start: date | None = None
    end: date | None = None
    quotes_per_bar: int = 4
    spread_bps: Decimal = Field(Decimal("2"), ge=0, le=1000)
    price_increment: Decimal = Field(Decimal("0.01"), ge=Decimal("1e-8"), le=100, allow_inf_nan=False)
    files: list[ReplayFile] = Field(default_factory=list)
    # No data for this many wall seconds while trading (a live feed: while the exchange is
    # open) is a stale feed: one FeedHealthChanged event and alert, and one when data is back.
    stale_seconds: float = Field(30.0, gt=0, le=86400, allow_inf_nan=False)
    # The live feed's name in status and alerts (default: its kind), its quality gate, the
    # fallbacks tried in order, and how long the primary must be healthy to take over again.
    name: str = ""
    quality: FeedQualityConfig = Field(default_factory=FeedQualityConfig)
    fallbacks: list[FallbackFeedConfig] = Field(default_factory=list, max_length=8)
    failback_seconds: float = Field(60.0, ge=0, le=86400, allow_inf_nan=False)
    # A replay parses each data file once and keeps the bars (core/data/bar_cache.py), keyed by
    # the hash of the file and of how it is read: in bar_cache_dir, relative to the state dir,
    # or an absolute folder the config names (shared by several state dirs). false: parse each run.
    bar_cache: bool = True
    bar_cache_dir: str = "cache/bars"

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: Any) -> Any:
        return parse_speed(value)

    @field_validator("bar_cache_dir")
    @classmethod
    def _cache_dir(cls, value: str) -> str:
        if value.startswith("~") or Path(value).is_absolute():
            check_path("feed.bar_cache_dir", value)
            return value
        return state_relative("feed.bar_cache_dir", value)

    @field_validator("quotes_per_bar")
    @classmethod
    def _quotes(cls, value: int) -> int:
        if value not in (1, 2, 4):
            raise ValueError(f"quotes_per_bar must be 1, 2 or 4, not {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> FeedConfig:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        symbols = [f.symbol for f in self.files]
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol(s) listed twice in feed.files: {', '.join(dupes)}")
        self.symbols = [s.strip().upper() for s in self.symbols]
        long = [s for s in self.symbols if len(s) > _SYMBOL_MAX]
        if long:
            raise ValueError(f"feed.symbols: {long[0][:40]!r} is {len(long[0])} characters long: a symbol has at "
                             f"most {_SYMBOL_MAX}")
        dupes = sorted({s for s in self.symbols if self.symbols.count(s) > 1 or not s})
        if dupes:
            raise ValueError(f"symbol(s) empty or listed twice in feed.symbols: {', '.join(dupes)}")
        if self.kind == "ibkr" and not self.symbols:
            raise ValueError("the ibkr feed needs symbols: set feed.symbols = [\"AAPL\", ...]")
        self._check_fallbacks()
        return self

    def _check_fallbacks(self) -> None:
        if self.name and not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", self.name):
            raise ValueError(f"feed.name: 1-32 lowercase letters, digits, '-' or '_' starting with a letter, "
                             f"not {self.name[:40]!r}")
        if not self.fallbacks:
            return
        if self.kind == "replay":
            raise ValueError("feed.fallbacks: a replay has no fallback (its files are the data); fallbacks "
                             "apply to a live feed (kind = 'ibkr' or 'synthetic')")
        names = [self.name or self.kind]
        for i, fb in enumerate(self.fallbacks, start=1):
            fb.name = fb.name or f"{fb.kind}-{i}"
            if fb.name in names:
                raise ValueError(f"feed.fallbacks[{i}].name: {fb.name!r} is taken by another feed: give each a name")
            names.append(fb.name)
            if fb.kind == "ibkr" and self.kind != "ibkr":
                raise ValueError(f"feed.fallbacks[{i}]: an ibkr fallback serves IB symbols; the primary is "
                                 f"{self.kind}: use kind = 'synthetic' to rehearse")
            missing = sorted(set(self.symbols) - set(fb.symbols)) if fb.symbols else []
            if missing:
                raise ValueError(f"feed.fallbacks[{i}].symbols lacks {', '.join(missing[:5])} of feed.symbols: a "
                                 f"fallback must carry every symbol the strategies trade (or leave symbols out)")


class RiskConfig(_Section):
    """The pre-trade limits (core/risk.py). A value at a limit passes; beyond it is refused.

    Every key can be changed at run time through ``RiskGate.set_limit``.
    """

    max_order_qty: Decimal = Field(Decimal("10000"), gt=0, le=Decimal("1e9"), allow_inf_nan=False)  # shares in one order
    # qty x (limit price or quote)
    max_order_notional: Decimal = Field(Decimal("100000"), gt=0, le=Decimal("1e12"), allow_inf_nan=False)
    # |position + same-side working|
    max_position_qty: Decimal = Field(Decimal("20000"), gt=0, le=Decimal("1e9"), allow_inf_nan=False)
    # sum |worst-case position| x mark
    max_gross_exposure: Decimal = Field(Decimal("500000"), gt=0, le=Decimal("1e15"), allow_inf_nan=False)
    # |sum worst-case signed position x mark|
    max_net_exposure: Decimal = Field(Decimal("250000"), gt=0, le=Decimal("1e15"), allow_inf_nan=False)
    price_collar_pct: Decimal = Field(Decimal("10"), gt=0, le=1000, allow_inf_nan=False)  # a limit this % from the quote at most
    quote_max_age_seconds: float = Field(60.0, gt=0, le=604800, allow_inf_nan=False)  # new orders need a quote this fresh
    # loss since the session open
    daily_loss_limit: Decimal = Field(Decimal("5000"), gt=0, le=Decimal("1e12"), allow_inf_nan=False)
    daily_loss_action: Literal["REDUCING", "HALTED"] = "REDUCING"
    max_orders_per_minute_per_strategy: int = Field(60, gt=0, le=1_000_000)  # any 60 s, per OrderRequest.strategy
    max_orders_per_minute_total: int = Field(200, gt=0, le=1_000_000)  # any 60 s, all strategies and the operator
    duplicate_window_seconds: float = Field(2.0, gt=0, le=86400, allow_inf_nan=False)  # same symbol, side, qty
    allowed_symbols: list[str] = Field(default_factory=list)  # empty: every symbol

    @field_validator("daily_loss_action", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("allowed_symbols", mode="before")
    @classmethod
    def _symbols_text(cls, value: Any) -> Any:
        # "AAPL, MSFT" or "AAPL MSFT" from an environment variable or the cockpit; "*" = every symbol
        if isinstance(value, str):
            found = json_list_or_text("allowed_symbols", value)
            if isinstance(found, list):
                return found
            return [] if found in ("", "*") else found.replace(",", " ").split()
        return value

    @field_validator("allowed_symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in symbols]
        if any(not s or s == "*" for s in cleaned):
            raise ValueError("allowed_symbols: a symbol is empty (an empty list allows every symbol)")
        long = [s for s in cleaned if len(s) > _SYMBOL_MAX]
        if long:
            raise ValueError(f"allowed_symbols: {long[0][:40]!r} is {len(long[0])} characters long: a symbol has "
                             f"at most {_SYMBOL_MAX}")
        dupes = sorted({s for s in cleaned if cleaned.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol(s) listed twice in allowed_symbols: {', '.join(dupes)}")
        return cleaned


class StrategyConfig(_Section):
    kind: str = Field(min_length=1, max_length=64)
    enabled: bool = True
    symbols: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)  # checked by the strategy's own Params

    @field_validator("symbols")
    @classmethod
    def _unique(cls, symbols: list[str]) -> list[str]:
        long = [s for s in symbols if len(s) > _SYMBOL_MAX]
        if long:
            raise ValueError(f"{long[0][:40]!r} is {len(long[0])} characters long: a symbol has at most {_SYMBOL_MAX}")
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol(s) listed twice: {', '.join(dupes)}")
        return symbols


# state_relative and RESERVED_STATE_NAMES live in core.common.input_checks (a reader runs them without pydantic).


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = "logs/cockpit.log"  # inside the state dir
    max_bytes: int = Field(10_000_000, ge=10_000, le=10_000_000_000)
    backups: int = Field(5, ge=0, le=100)
    # False: logrotate rotates the file (deploy/logrotate/cockpit) and the engine reopens it after
    # each move; max_bytes and backups are then unused. Never both: two rotations lose lines.
    rotate: bool = True
    # ib_async's own loggers ("ib_async.*"). Its INFO lines repeat, per IB message, what the adapter
    # and the order manager log already (orders, status changes, fills, IB's notices), and each one
    # costs the engine's loop a repr and a write: WARNING keeps its warnings and errors. Set "INFO"
    # or "DEBUG" (with level at least as low) to see its every message while debugging.
    ib_async_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("file")
    @classmethod
    def _inside_state_dir(cls, value: str) -> str:
        return state_relative("logging.file", value)


class DeadmanConfig(_Section):
    """The operator confirms presence every ``interval_seconds`` of wall-clock time.

    The last ``grace_seconds`` of each interval ask for the confirmation (a modal in the
    cockpit); a miss runs ``action``.
    """

    enabled: bool = True
    interval_seconds: int = Field(900, ge=10, le=7 * 86400)
    grace_seconds: int = Field(60, ge=1, le=86400)
    action: Literal["cancel_and_reduce", "flatten_and_halt"] = "cancel_and_reduce"

    @model_validator(mode="after")
    def _grace_inside_interval(self) -> DeadmanConfig:
        if self.grace_seconds >= self.interval_seconds:
            raise ValueError(f"grace_seconds {self.grace_seconds} must be less than interval_seconds "
                             f"{self.interval_seconds}")
        return self


class ApiConfig(_Section):
    """The control API: always on a Unix socket in the state dir (mode 0600); TCP is optional."""

    socket: str = "control.sock"  # inside state_dir
    tcp_port: int = Field(0, ge=0, le=65535)  # 0 = no TCP listener; else 127.0.0.1 only
    token_env: str = "COCKPIT_API_TOKEN"  # the bearer token TCP clients must send
    # Who a TCP request is in the audit trail ("token api-token via tcp: <client label>").
    token_name: str = Field("api-token", pattern=r"^[A-Za-z0-9._-]{1,40}$")

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"api.token_env must name an environment variable (letters, digits, _; at most 128), "
                             f"not {value[:40]!r}")
        return value

    @field_validator("socket")
    @classmethod
    def _inside_state_dir(cls, value: str) -> str:
        name = state_relative("api.socket", value)
        if name == LoggingConfig().file:
            raise ValueError(f"api.socket = {value!r} is the log file: pick another name")
        return name


class MetricsConfig(_Section):
    """Performance metrics (``cockpit metrics``): the annual risk-free rate Sharpe and Sortino
    subtract, as a fraction (0.04 = 4 %); compounded to a daily rate over 252 sessions."""

    risk_free_rate: float = Field(0.0, ge=-0.05, le=0.5, allow_inf_nan=False)


class BackupConfig(_Section):
    """Online backups of the store into ``STATE/backups/`` (core/persistence/backup.py).

    The engine takes one every ``every_hours`` of wall-clock time (0: none on a timer) and at
    each exchange session close (``at_session_close``); either is skipped within
    ``min_gap_minutes`` of the last backup (a replay closes a session every wall second). After
    each backup the folder keeps the ``keep_recent`` newest and the newest of each of the last
    ``keep_daily`` days (UTC) that have one; pre-migration backups are kept.
    """

    every_hours: float = Field(6.0, ge=0, le=24 * 31, allow_inf_nan=False)
    at_session_close: bool = True
    min_gap_minutes: float = Field(30.0, ge=0, le=24 * 60, allow_inf_nan=False)
    keep_recent: int = Field(10, ge=1, le=1000)
    keep_daily: int = Field(14, ge=0, le=3650)

    @field_validator("every_hours")
    @classmethod
    def _not_a_busy_loop(cls, value: float) -> float:
        if 0 < value < 0.25:
            raise ValueError(f"every_hours must be 0 (no timed backups) or at least 0.25 (15 min), not {value:g}")
        return value


#: One ``[allocation]`` value: money (50000) or a percentage of the equity at start ("25%").
AllocationValue = Annotated[Allocation, BeforeValidator(parse_allocation), PlainSerializer(lambda a: a.given)]


class Settings(BaseSettings):
    """The whole config. Built by ``load_config``; never read from the wall or cwd implicitly."""

    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    engine: EngineConfig = Field(default_factory=EngineConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    ibkr: IbkrConfig = Field(default_factory=IbkrConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    # Capital per strategy name (core/config/capital.py); a strategy without one is not limited by it.
    allocation: dict[str, AllocationValue] = Field(default_factory=dict)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    deadman: DeadmanConfig = Field(default_factory=DeadmanConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    preflight: PreflightConfig = Field(default_factory=PreflightConfig)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    # Cockpit key remapping: binding id -> key(s), e.g. "app.quit" = "ctrl+q" (ids: press ? in the app).
    keys: dict[str, str] = Field(default_factory=dict)

    # Where the TOML came from: relative paths in it resolve against its folder.
    config_path: Path | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_values(cls, data: Any) -> Any:
        """Before any field sees it: every text plain and bounded, every list and table bounded
        and shallow (the TOML and the environment merged)."""
        found = first_problem(data)
        if found is not None:
            where, problem = found
            env_name = _env_name_of(where)
            shown = f"{where} (env {env_name})" if env_name in _env_in_use() else where
            raise ValueError(f"{shown}: {problem}")
        return data

    @model_validator(mode="after")
    def _strategy_names_are_not_book_owners(self) -> Settings:
        from core.domain.model import NON_STRATEGY_OWNERS

        taken = sorted(set(self.strategies) & NON_STRATEGY_OWNERS)
        if taken:
            raise ValueError(f"strategies.{taken[0]}: the name is reserved for the book's non-strategy owners "
                             f"({', '.join(sorted(NON_STRATEGY_OWNERS))}); rename the strategy")
        return self

    @model_validator(mode="after")
    def _allocation_fits(self) -> Settings:
        """Every key names a strategy; percentages sum to at most 100 %; with the paper broker the
        money fits in ``paper.starting_cash`` (a fresh account's equity). The engine checks the
        whole against the real equity again when it starts."""
        unknown = unknown_names(self.allocation, self.strategies)
        if unknown is not None:
            raise ValueError(unknown)
        equity = self.paper.starting_cash if self.broker.kind == "paper" else None
        problem = total_problem(self.allocation, equity, "the equity at start (paper.starting_cash)")
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _socket_is_not_the_log(self) -> Settings:
        if self.api.socket == self.logging.file:  # the default pair is checked in ApiConfig already
            raise ValueError(f"api.socket = {self.api.socket!r} is logging.file too: give each its own name")
        return self

    @model_validator(mode="after")
    def _broker_and_feed_agree(self) -> Settings:
        if self.broker.kind == "ibkr" and self.feed.kind != "ibkr":
            raise ValueError(f"broker.kind = 'ibkr' sends real orders and needs IB's live prices, not a "
                             f"{self.feed.kind} feed: set feed.kind = 'ibkr' and feed.symbols")
        for i, fb in enumerate(self.feed.fallbacks, start=1):
            if self.broker.kind == "ibkr" and fb.kind == "synthetic":
                raise ValueError(f"feed.fallbacks[{i}]: a synthetic feed's random prices would drive real IBKR "
                                 f"orders: use an ibkr fallback (a second gateway), or "
                                 f"rehearse failover with broker.kind = 'paper' and feed.kind = 'synthetic'")
        if self.feed.kind == "ibkr" and self.broker.kind != "ibkr":
            raise ValueError("feed.kind = 'ibkr' reads prices through the IB session: set broker.kind = 'ibkr' "
                             "(and the [ibkr] section)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML arrives through init kwargs (see load_config) so that env wins over it; the
        # environment is the process's, or the mapping validate_config was given.
        return (_MappingEnvSource(settings_cls), init_settings)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.engine.state_dir)

    @property
    def bar_cache_dir(self) -> Path | None:
        """Where a replay keeps its parsed files (None: ``feed.bar_cache`` is off)."""
        if not self.feed.bar_cache:
            return None
        named = Path(self.feed.bar_cache_dir).expanduser()
        return named if named.is_absolute() else self.state_dir / named

    def resolve(self, path: Path | str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.config_path is None:
            return p
        return self.config_path.parent / p


def parse_speed(value: Any) -> float | str:
    """``max`` or a positive number of simulated seconds per wall second."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "max":
            return "max"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"speed must be a positive number or 'max', not {_shown_input(value)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1e9:
        raise ValueError(f"speed must be a positive number up to 1e9 or 'max', not {_shown_input(value)}")
    return float(value)


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading the mapping in ``_ENV`` (validate_config's) or ``os.environ``."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(_env_in_use(), self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("cockpit_config_env", default=None)
_TOP_LEVEL = frozenset(name for name in Settings.model_fields if name != "config_path")


def _env_in_use() -> Mapping[str, str]:
    env = _ENV.get()
    return os.environ if env is None else env


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENV.set(env)
    try:
        yield
    finally:
        _ENV.reset(token)


def _env_name_of(where: str) -> str:
    return ENV_PREFIX + where.split("[", 1)[0].replace(".", "__").upper()


def _check_across_sections(settings: Settings) -> None:
    """Run Settings' own after-validators again: an override replaced a section after they ran."""
    for name, decorator in Settings.__pydantic_decorators__.model_validators.items():
        if decorator.info.mode == "after":
            try:
                getattr(settings, name)()
            except ValueError as exc:
                raise ConfigError(_one_line(str(exc))) from None


def _build(data: Mapping[str, Any], path: Path | None, overrides: dict[str, dict[str, Any]] | None) -> Settings:
    """Settings from the TOML's ``data``, the environment in use and ``overrides``; ConfigError (one line)."""
    where = str(path) if path is not None else "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: the config must be a table of sections, not {type(data).__name__}")
    for key in data:
        # Only sections go through as keyword arguments: "_cli_parse_args" or "_env_file" would
        # otherwise be taken as pydantic-settings' own options, "config_path" collide.
        if key not in _TOP_LEVEL:
            shown = key if isinstance(key, str) and first_problem(key) is None and len(key) <= 80 else repr(str(key)[:40])
            raise ConfigError(f"{where}: unknown key '{shown}': remove it or check its spelling")
    env_problem = check_environment(_env_in_use(), ENV_PREFIX, _TOP_LEVEL)
    if env_problem is not None:
        raise ConfigError(_one_line(f"{env_problem} (check the COCKPIT_* variables)"))
    try:
        settings = Settings(**data, config_path=path.resolve() if path is not None else None)
        for section, values in (overrides or {}).items():
            found = first_problem(values, section)
            if found is not None:
                raise ConfigError(_one_line(f"{found[0]}: {found[1]}"))
            # Re-validate just that section: the command line beats the environment.
            current = getattr(settings, section)
            setattr(settings, section, type(current).model_validate({**current.model_dump(), **values}))
        if overrides:
            _check_across_sections(settings)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None
    except SettingsError as exc:
        # e.g. COCKPIT_FEED__FILES='[1' : an environment value that is not even parseable
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(_one_line(f"environment: {exc}{cause} (check the COCKPIT_* variables)")) from None
    except RecursionError:  # the checks above bound the depth; this is the last line of defence
        raise ConfigError(f"{where}: a value nests too deeply to read (check the file and the COCKPIT_* "
                          "variables)") from None
    return settings


def validate_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Validate one config mapping (a parsed config.toml) with ``env`` as the environment
    (``COCKPIT_*`` names; None: none at all), without reading a file or ``os.environ``.

    Returns None or raises ConfigError with one line, never anything else: the entry point
    for fuzzing campaigns (``bench/chaos_inputs.py``). Relative paths are not resolved.
    """
    with _environment(env or {}):
        _build(data, None, None)


def load_config(
    path: Path,
    *,
    state_dir: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Read ``path`` (which must exist), apply the environment and ``overrides``, validate.

    Raises ConfigError with one line naming the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass --config PATH to an existing config.toml)")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save the config as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: a value nests too deeply to read: keep arrays and tables shallow") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    settings = _build(data, path, overrides)
    if state_dir is not None:
        try:
            check_path("--state-dir", state_dir)
            settings.engine.state_dir = state_dir.expanduser().resolve()
        except (ValueError, OSError, RuntimeError) as exc:
            raise ConfigError(_one_line(f"--state-dir: {exc}")) from None
    return settings


_MAX_PROBLEMS = 5  # shown in the one line; the count of the rest follows
_MAX_LINE = 2000


def _one_line(text: str) -> str:
    """``text`` with no line breaks or control characters, and not too long to read."""
    flat = "".join(ch if ch >= " " or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)
    return flat if len(flat) <= _MAX_LINE else flat[:_MAX_LINE] + f"... ({len(flat)} characters)"


def _shown_input(given: Any) -> str:
    text = repr(given)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"


def _describe(exc: ValidationError, where: str) -> str:
    """One line for the first problems: where, what, and what was given."""
    env = _env_in_use()
    lines = []
    errors = exc.errors()
    for err in errors[:_MAX_PROBLEMS]:
        loc = ".".join(str(p) for p in err["loc"])
        env_name = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
        at = f"{loc} (env {env_name})" if loc and env_name in env else loc
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{loc}': remove it or check its spelling")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if len(msg) > 400:  # a validator that quoted a huge value: the key and the start say enough
            msg = f"{msg[:400]}... ({len(msg)} characters)"
        given = err.get("input")
        shown = "" if isinstance(given, (dict, list)) or not loc else f" (got {_shown_input(given)})"
        lines.append(f"{where}: {at}: {msg}{shown}" if at else f"{where}: {msg}")
    if len(errors) > _MAX_PROBLEMS:
        lines.append(f"and {len(errors) - _MAX_PROBLEMS} more problem(s)")
    return _one_line("; ".join(lines))
