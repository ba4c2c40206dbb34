"""Where the state is, for the commands that only read it, without loading pydantic.

`cockpit positions`, `orders`, `fills`, `pnl`, `report daily`, `alerts` and `status` need one thing
from the config: the state dir (and, for `status`, the control socket in it); `metrics` needs four
more (``metrics_settings``: the risk-free rate, the market's time zone, the strategies and whether
each is enabled, and that no ``[allocation]`` is configured). Validating the whole
file takes pydantic and every section's models, about 100 ms before the first row is read.
This reads the TOML with tomllib and resolves the state dir by the very rules of the full load
(``core.config.load_config`` and ``Settings.state_dir``), but only when nothing in the file or
the environment could make the two disagree or could be a mistake it would not see:

- no ``COCKPIT_<section>...`` variable is set (one could move the state dir or break the config);
- the file is UTF-8 TOML whose every value passes the checks the full load runs first
  (``first_problem``: plain one-line text, bounded size and depth);
- every top-level section is one the config knows, and every key of ``[engine]`` (and, for
  `status`, of ``[api]``) is one it knows: a misspelt section or key falls back;
- ``engine.state_dir`` is absent or a text passing the full load's own path check, and for
  `status` ``api.socket`` passes the socket's own checks (inside the state dir, not the log file);
- ``--state-dir``, if given, passes the same check and is resolved the same way.

For `metrics` also (``metrics_settings``): ``[metrics]`` holds at most ``risk_free_rate``, a number
in the model's range; ``engine.market_tz`` is a time zone; ``[allocation]`` is empty (its checks
against the starting cash are the full load's); each ``[strategies.NAME]`` has only the model's
keys, a ``kind`` of 1-64 characters, ``enabled`` a boolean if given, distinct short text symbols,
a table of params, and a name that is not one of the book's own owners. Each value is then what
the model would hold (an integer rate becomes a float, as pydantic makes it).

Anything else returns None and the caller runs the full validation, which names the problem in
its usual one line (exit 2). What the fast path does not look at are the values the reader does
not use (a limit in ``[risk]``, a strategy's parameters): they cannot change what it reads or
where; `cockpit` itself, `preflight`, `backup` and every command that acts on them validate the
whole file as before, so a bad value there still refuses to start the engine.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from core.common.input_checks import check_path, first_problem, state_relative, zone
from core.persistence.files import DB_FILENAME

ENV_PREFIX = "COCKPIT_"
#: The config's sections (``core.config.Settings``' fields; tests/test_reader_config.py keeps them equal).
SECTIONS = frozenset({"alerts", "allocation", "api", "backup", "broker", "deadman", "engine", "feed", "ibkr", "keys",
                      "logging", "metrics", "paper", "preflight", "reconcile", "risk", "strategies", "watchdog"})
ENGINE_KEYS = frozenset({"flush_interval_ms", "instance_name", "market_tz", "on_refused_start", "order_durability",
                         "start_halted", "state_dir"})
API_KEYS = frozenset({"socket", "tcp_port", "token_env", "token_name"})
DEFAULT_STATE_DIR = "state"  # EngineConfig.state_dir's default
DEFAULT_SOCKET = "control.sock"  # ApiConfig.socket's default
DEFAULT_LOG_FILE = "logs/cockpit.log"  # LoggingConfig.file's default, which ApiConfig.socket may not name
#: The models' own figures the metrics' fast path checks (tests/test_reader_config.py keeps them equal).
DEFAULT_MARKET_TZ = "America/New_York"  # EngineConfig.market_tz
METRICS_KEYS = frozenset({"risk_free_rate"})  # MetricsConfig
RISK_FREE_RATE = (0.0, -0.05, 0.5)  # MetricsConfig.risk_free_rate: default, ge, le
STRATEGY_KEYS = frozenset({"kind", "enabled", "symbols", "params"})  # StrategyConfig
KIND_LENGTH = (1, 64)  # StrategyConfig.kind: min_length, max_length
SYMBOL_MAX = 16  # core.config._SYMBOL_MAX
NON_STRATEGY_OWNERS = frozenset({"operator", "external", "adopted", "operator:flatten"})  # core.domain.model


class ReaderSettings(NamedTuple):
    """What a reader needs: the state dir, the store in it and (when asked for) the control socket."""

    state_dir: Path
    socket: Path | None = None

    @property
    def db(self) -> Path:
        return self.state_dir / DB_FILENAME


def env_feeds_config(env: Mapping[str, str]) -> bool:
    """Whether a variable of the environment feeds the config (pydantic-settings reads
    ``COCKPIT_<SECTION>`` and ``COCKPIT_<SECTION>__<KEY>...``, in any case)."""
    plen = len(ENV_PREFIX)
    return any(len(name) > plen and name[:plen].upper() == ENV_PREFIX
               and name[plen:].lower().split("__")[0] in SECTIONS for name in env)


class MetricsSettings(NamedTuple):
    """What `cockpit metrics` needs of the config (``Settings``' values, as the full load gives them)."""

    state_dir: Path
    risk_free_rate: float
    market_tz: str
    strategies: dict[str, bool]  # name -> enabled, in the config's order

    @property
    def db(self) -> Path:
        return self.state_dir / DB_FILENAME


def _read(path: Path, env: Mapping[str, str]) -> dict[str, Any] | None:
    if env_feeds_config(env):
        return None
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None  # the full load words each of these
    if first_problem(data) is not None or not set(data) <= SECTIONS:
        return None
    return data


def reader_settings(path: Path, state_dir: Path | None, env: Mapping[str, str], *,
                    needs_socket: bool = False) -> ReaderSettings | None:
    """The state dir the full load would give for ``path`` and ``--state-dir``, or None when the
    full validation must decide (see the module's docstring)."""
    data = _read(path, env)
    if data is None:
        return None
    return _where(data, path, state_dir, needs_socket)


def metrics_settings(path: Path, state_dir: Path | None, env: Mapping[str, str]) -> MetricsSettings | None:
    """What `cockpit metrics` reads of the config, as the full load would give it, or None when
    the full validation must decide (see the module's docstring)."""
    data = _read(path, env)
    if data is None:
        return None
    where = _where(data, path, state_dir, False)
    if where is None:
        return None
    metrics, engine = data.get("metrics", {}), data.get("engine", {})
    if not isinstance(metrics, dict) or not set(metrics) <= METRICS_KEYS or data.get("allocation", {}) != {}:
        return None
    rate = metrics.get("risk_free_rate", RISK_FREE_RATE[0])
    if type(rate) not in (int, float) or not RISK_FREE_RATE[1] <= rate <= RISK_FREE_RATE[2]:  # NaN fails too
        return None
    tz = engine.get("market_tz", DEFAULT_MARKET_TZ)
    if not isinstance(tz, str):
        return None
    try:
        zone(tz)
    except ValueError:
        return None
    strategies = _strategies(data.get("strategies", {}))
    if strategies is None:
        return None
    return MetricsSettings(where.state_dir, float(rate), tz, strategies)


def _strategies(section: Any) -> dict[str, bool] | None:
    """Each strategy's enabled flag, when every ``[strategies.NAME]`` is one the model takes as it is."""
    if not isinstance(section, dict) or set(section) & NON_STRATEGY_OWNERS:
        return None
    out = {}
    for name, table in section.items():
        if not isinstance(table, dict) or not set(table) <= STRATEGY_KEYS:
            return None
        kind, enabled = table.get("kind"), table.get("enabled", True)
        symbols, params = table.get("symbols", []), table.get("params", {})
        if not isinstance(kind, str) or not KIND_LENGTH[0] <= len(kind) <= KIND_LENGTH[1] \
                or not isinstance(enabled, bool) or not isinstance(params, dict) or not isinstance(symbols, list):
            return None
        if any(not isinstance(s, str) or len(s) > SYMBOL_MAX for s in symbols) or len(set(symbols)) != len(symbols):
            return None
        out[name] = enabled
    return out


def _where(data: dict[str, Any], path: Path, state_dir: Path | None, needs_socket: bool) -> ReaderSettings | None:
    engine = data.get("engine", {})
    api = data.get("api", {})
    if not isinstance(engine, dict) or not set(engine) <= ENGINE_KEYS:
        return None
    if not isinstance(api, dict) or (needs_socket and not set(api) <= API_KEYS):
        return None
    raw = engine.get("state_dir", DEFAULT_STATE_DIR)
    socket = api.get("socket", DEFAULT_SOCKET)
    if not isinstance(raw, str) or not isinstance(socket, str):
        return None
    try:
        if needs_socket:
            socket = state_relative("api.socket", socket)  # as ApiConfig's validator
            if socket == DEFAULT_LOG_FILE:
                return None
        check_path("engine.state_dir", raw)
        if state_dir is not None:
            check_path("--state-dir", state_dir)
            resolved = state_dir.expanduser().resolve()  # as load_config sets engine.state_dir
        else:
            given = Path(raw).expanduser()  # as Settings.resolve does, against the file's folder
            resolved = given if given.is_absolute() else path.resolve().parent / given
    except (ValueError, OSError, RuntimeError):
        return None
    return ReaderSettings(resolved, resolved / socket if needs_socket else None)
