"""The configuration: config.toml read into pydantic-settings models.

Precedence: explicit overrides (CLI) > environment (``COCKPIT_<SECTION>__<KEY>``) >
the TOML file. Unknown keys and bad values refuse to start with one clear line.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from core.config.ibkr import IbkrConfig

ENV_PREFIX = "COCKPIT_"


class ConfigError(Exception):
    """A config that must not start the engine; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class EngineConfig(_Section):
    state_dir: Path = Path("state")
    instance_name: str = "cockpit"
    market_tz: str = "America/New_York"  # the exchange's time: clock display, trading days
    flush_interval_ms: int = Field(50, ge=1, le=5000)


    @field_validator("market_tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
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
    symbol: str = Field(min_length=1, max_length=16)
    path: str
    tz: str = "America/New_York"
    bar_time: Literal["start", "end"] = "end"
    bar_seconds: int | None = Field(None, gt=0, le=31 * 86400)
    calendar: str | None = "XNYS"


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

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: Any) -> Any:
        return parse_speed(value)

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
        dupes = sorted({s for s in self.symbols if self.symbols.count(s) > 1 or not s})
        if dupes:
            raise ValueError(f"symbol(s) empty or listed twice in feed.symbols: {', '.join(dupes)}")
        if self.kind == "ibkr" and not self.symbols:
            raise ValueError("the ibkr feed needs symbols: set feed.symbols = [\"AAPL\", ...]")
        return self


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
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError(f"allowed_symbols: not a JSON list: {text!r}") from None
            return [] if text in ("", "*") else text.replace(",", " ").split()
        return value

    @field_validator("allowed_symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in symbols]
        if any(not s or s == "*" for s in cleaned):
            raise ValueError("allowed_symbols: a symbol is empty (an empty list allows every symbol)")
        dupes = sorted({s for s in cleaned if cleaned.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol(s) listed twice in allowed_symbols: {', '.join(dupes)}")
        return cleaned


class StrategyConfig(_Section):
    kind: str
    enabled: bool = True
    symbols: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("symbols")
    @classmethod
    def _unique(cls, symbols: list[str]) -> list[str]:
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            raise ValueError(f"symbol(s) listed twice: {', '.join(dupes)}")
        return symbols


# Names inside the state dir that belong to the engine itself: no other path may take them.
RESERVED_STATE_NAMES = frozenset({"cockpit.sqlite", "cockpit.sqlite-wal", "cockpit.sqlite-shm", "engine.lock",
                                  "ibkr_order_ids.json"})


def state_relative(key: str, value: str) -> str:
    """A path that must stay inside the state dir: relative, no ``..``, not empty, no NUL, not
    one of the engine's own files, not too long. Returned normalised; ValueError names the fix."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must name a file inside the state dir, got an empty value")
    if "\x00" in value:
        raise ValueError(f"{key} contains a NUL byte: name a plain file inside the state dir")
    if len(value.encode()) > 200:
        raise ValueError(f"{key} is {len(value.encode())} bytes long: keep it under 200")
    path = Path(value)
    if path.is_absolute() or value.startswith("~"):
        raise ValueError(f"{key} = {value!r} is outside the state dir: give a path relative to it")
    if ".." in path.parts:
        raise ValueError(f"{key} = {value!r} climbs out of the state dir with '..': give a path inside it")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise ValueError(f"{key} = {value!r} is the state dir itself: name a file inside it")
    if parts[0] in RESERVED_STATE_NAMES or parts[-1] in RESERVED_STATE_NAMES:
        raise ValueError(f"{key} = {value!r} is one of the engine's own files: pick another name")
    return str(Path(*parts))


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = "logs/cockpit.log"  # inside the state dir
    max_bytes: int = Field(10_000_000, ge=10_000, le=10_000_000_000)
    backups: int = Field(5, ge=0, le=100)

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

    @field_validator("socket")
    @classmethod
    def _inside_state_dir(cls, value: str) -> str:
        name = state_relative("api.socket", value)
        if name == LoggingConfig().file:
            raise ValueError(f"api.socket = {value!r} is the log file: pick another name")
        return name


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
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    deadman: DeadmanConfig = Field(default_factory=DeadmanConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    # Cockpit key remapping: binding id -> key(s), e.g. "app.quit" = "ctrl+q" (ids: press ? in the app).
    keys: dict[str, str] = Field(default_factory=dict)

    # Where the TOML came from: relative paths in it resolve against its folder.
    config_path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _strategy_names_are_not_book_owners(self) -> Settings:
        from core.domain.model import NON_STRATEGY_OWNERS

        taken = sorted(set(self.strategies) & NON_STRATEGY_OWNERS)
        if taken:
            raise ValueError(f"strategies.{taken[0]}: the name is reserved for the book's non-strategy owners "
                             f"({', '.join(sorted(NON_STRATEGY_OWNERS))}); rename the strategy")
        return self

    @model_validator(mode="after")
    def _broker_and_feed_agree(self) -> Settings:
        if self.broker.kind == "ibkr" and self.feed.kind != "ibkr":
            raise ValueError(f"broker.kind = 'ibkr' sends real orders and needs IB's live prices, not a "
                             f"{self.feed.kind} feed: set feed.kind = 'ibkr' and feed.symbols")
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
        # The TOML arrives through init kwargs (see load_config) so that env wins over it.
        return (env_settings, init_settings)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.engine.state_dir)

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
            raise ValueError(f"speed must be a positive number or 'max', not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1e9:
        raise ValueError(f"speed must be a positive number up to 1e9 or 'max', not {value!r}")
    return float(value)


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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        settings = Settings(**data, config_path=path.resolve())
        for section, values in (overrides or {}).items():
            # Re-validate just that section: the command line beats the environment.
            current = getattr(settings, section)
            setattr(settings, section, type(current).model_validate({**current.model_dump(), **values}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except SettingsError as exc:
        # e.g. COCKPIT_FEED__FILES='[1' : an environment value that is not even parseable
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"environment: {exc}{cause} (check the COCKPIT_* variables)") from None
    if state_dir is not None:
        settings.engine.state_dir = state_dir.expanduser().resolve()
    return settings


def _describe(exc: ValidationError, path: Path) -> str:
    """One line per problem: where, what, and what was given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        env_name = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
        where = f"{loc} (env {env_name})" if env_name in os.environ else loc
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{loc}': remove it or check its spelling")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        shown = "" if isinstance(given, (dict, list)) else f" (got {given!r})"
        lines.append(f"{path}: {where}: {msg}{shown}")
    return "; ".join(lines)
