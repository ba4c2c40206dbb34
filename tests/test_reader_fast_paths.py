"""`cockpit metrics` and `cockpit alerts` read the config without pydantic when they can
(cockpit/reader_config.py: ``metrics_settings``, ``reader_settings``), and `metrics` reads the
capital allocations without their modules when none can be in force
(cockpit/capital_reader.py: ``capital_in_force``). Each fast path prints what the full path
prints, byte for byte, on a real store: these tests run both on the same state and compare
stdout, stderr and the exit code."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from cockpit import cli, reader_config
from cockpit.reader_config import metrics_settings
from core.config import EngineConfig, MetricsConfig, StrategyConfig, load_config
from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir after the bundled 2008-2009 replay: orders, fills, daily reports, alerts."""
    state = tmp_path_factory.mktemp("fast") / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_FEED__START="2008-01-01", COCKPIT_FEED__END="2009-06-30")
    done = subprocess.run([sys.executable, "-m", "cockpit", "--config", str(CONFIG), "--state-dir", str(state),
                           "--no-ui", "--speed", "max"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return state


def _both(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, config: Path, state: Path,
          *args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The command through the fast path, and with the fast paths refused (the full validation)."""
    def run() -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main([*args, "--config", str(config), "--state-dir", str(state)])
        out, err = capsys.readouterr()
        return code, out, err

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(reader_config, "metrics_settings", lambda *a, **k: None)
        m.setattr(reader_config, "reader_settings", lambda *a, **k: None)
        m.setattr("cockpit.capital_reader.capital_in_force", _always_the_full_report)
        full = run()
    return fast, full


def _always_the_full_report(conn, allocation, strategies, warn):  # type: ignore[no-untyped-def]
    from cockpit.capital_reader import capital

    report = capital(conn, allocation, strategies, warn)
    return None if all(row["allocation"] is None for row in report["strategies"].values()) else report


CONFIG_TEXT = CONFIG.read_text(encoding="utf-8")
assert "risk_free_rate = 0\n" in CONFIG_TEXT and 'instance_name = "cockpit"\n' in CONFIG_TEXT  # an integer rate
VARIANTS = {
    "the default config": CONFIG_TEXT,
    "a rate, a zone, a strategy off": CONFIG_TEXT.replace("risk_free_rate = 0\n", "risk_free_rate = 0.04\n").replace(
        'instance_name = "cockpit"\n', 'instance_name = "cockpit"\nmarket_tz = "Europe/Berlin"\n').replace(
        'kind = "rsi_reversion"\nenabled = true', 'kind = "rsi_reversion"\nenabled = false'),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("args", [("metrics", "--json"), ("metrics",), ("metrics", "--strategy", "sma_cross"),
                                  ("metrics", "--strategy", "nobody"), ("alerts",), ("alerts", "--json"),
                                  ("alerts", "--limit", "3", "--json")])
def test_the_fast_paths_print_what_the_full_load_prints(store: Path, tmp_path: Path, variant: str,
                                                        args: tuple[str, ...], capsys, monkeypatch,
                                                        clean_env) -> None:
    config = tmp_path / "c.toml"
    config.write_text(VARIANTS[variant], encoding="utf-8")
    assert metrics_settings(config, None, clean_env) is not None  # the fast path is the one taken
    fast, full = _both(capsys, monkeypatch, config, store, *args)
    assert fast == full
    if args[0] == "metrics" and "nobody" not in args:
        assert fast[0] == 0 and fast[1]


def test_a_run_time_allocation_and_odd_values_read_the_same(store: Path, tmp_path: Path, capsys, monkeypatch,
                                                            clean_env) -> None:
    """An allocation set at run time takes the full capital path; unreadable values warn alike."""
    state = tmp_path / "state"
    shutil.copytree(store, state)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG_TEXT, encoding="utf-8")
    with closing(sqlite3.connect(state / "cockpit.sqlite")) as conn, conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('capital.equity_at_start', 'lots')"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        conn.execute("UPDATE positions SET last_price = 'x' WHERE rowid = (SELECT min(rowid) FROM positions)")
    for args in (("metrics", "--json"), ("metrics",)):
        fast, full = _both(capsys, monkeypatch, config, state, *args)
        assert fast == full and "lots" in fast[2]
    with closing(sqlite3.connect(state / "cockpit.sqlite")) as conn, conn:
        conn.execute("INSERT INTO settings (key, value, updated_at) VALUES ('allocation.sma_cross', '40000', 'now')"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        conn.execute("UPDATE meta SET value = '100000' WHERE key = 'capital.equity_at_start'")
    fast, full = _both(capsys, monkeypatch, config, state, "metrics", "--json")
    assert fast == full and '"allocation"' in fast[1]


def test_the_figures_it_checks_are_the_models() -> None:
    from core.config import _SYMBOL_MAX
    from core.domain.model import NON_STRATEGY_OWNERS
    from core.persistence.recorder import CAPITAL_EQUITY_KEY

    assert reader_config.DEFAULT_MARKET_TZ == EngineConfig().market_tz
    assert reader_config.METRICS_KEYS == set(MetricsConfig.model_fields)
    rate = MetricsConfig.model_fields["risk_free_rate"]
    bounds = {type(m).__name__: m for m in rate.metadata}
    assert reader_config.RISK_FREE_RATE == (rate.default, bounds["Ge"].ge, bounds["Le"].le)
    assert reader_config.STRATEGY_KEYS == set(StrategyConfig.model_fields)
    kind = {type(m).__name__: m for m in StrategyConfig.model_fields["kind"].metadata}
    assert reader_config.KIND_LENGTH == (kind["MinLen"].min_length, kind["MaxLen"].max_length)
    assert reader_config.SYMBOL_MAX == _SYMBOL_MAX
    assert reader_config.NON_STRATEGY_OWNERS == NON_STRATEGY_OWNERS
    from cockpit import capital_reader

    assert capital_reader.CAPITAL_EQUITY_KEY == CAPITAL_EQUITY_KEY


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "c.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", [
    CONFIG_TEXT, "", "[metrics]\nrisk_free_rate = 0.04\n", "[metrics]\nrisk_free_rate = -0.05\n",
    '[engine]\nmarket_tz = "Asia/Tokyo"\n',
    '[strategies.a]\nkind = "sma_cross"\nenabled = false\nsymbols = ["X", "Y"]\n[strategies.a.params]\nfast = 5\n',
    '[strategies.b]\nkind = "k"\n[strategies.a]\nkind = "k"\nenabled = true\n',
])
def test_it_gives_what_the_full_load_gives(tmp_path: Path, text: str, clean_env: dict[str, str]) -> None:
    path = _write(tmp_path, text)
    fast = metrics_settings(path, None, clean_env)
    full = load_config(path)
    assert fast is not None
    assert fast == (full.state_dir, full.metrics.risk_free_rate, full.engine.market_tz,
                    {n: s.enabled for n, s in full.strategies.items()})
    assert type(fast.risk_free_rate) is float and list(fast.strategies) == list(full.strategies)


@pytest.mark.parametrize("text, why", [
    ('[allocation]\nsma_cross = 5000\n[strategies.sma_cross]\nkind = "sma_cross"\n', "an allocation"),
    ("[metrics]\nrisk_free_rate = 0.6\n", "a rate out of range"),
    ("[metrics]\nrisk_free_rate = nan\n", "a rate that is not a number"),
    ("[metrics]\nrisk_free_rate = true\n", "a boolean rate"),
    ('[metrics]\nrisk_free_rate = "0.01"\n', "a rate as text"),
    ("[metrics]\nrisk_free_rat = 0.01\n", "a misspelt metrics key"),
    ('[engine]\nmarket_tz = "Mars/Olympus"\n', "an unknown zone"),
    ("[engine]\nmarket_tz = 5\n", "a zone that is not text"),
    ('[strategies.a]\nkind = "k"\nenabeld = false\n', "a misspelt strategy key"),
    ("[strategies.a]\nenabled = false\n", "no kind"),
    (f'[strategies.a]\nkind = "{"k" * 65}"\n', "a kind too long"),
    ('[strategies.a]\nkind = "k"\nenabled = "no"\n', "enabled as text"),
    ('[strategies.a]\nkind = "k"\nsymbols = ["X", "X"]\n', "a symbol twice"),
    ('[strategies.a]\nkind = "k"\nsymbols = ["ABCDEFGHIJKLMNOPQ"]\n', "a symbol too long"),
    ('[strategies.a]\nkind = "k"\nsymbols = [1]\n', "a symbol that is not text"),
    ('[strategies.a]\nkind = "k"\nparams = 3\n', "params that are not a table"),
    ('[strategies.external]\nkind = "k"\n', "a name the book owns"),
    ("strategies = 3\n", "strategies that are not a table"),
    ("metrics = 3\n", "metrics that is not a table"),
])
def test_anything_unusual_goes_to_the_full_validation(tmp_path: Path, text: str, why: str,
                                                      clean_env: dict[str, str]) -> None:
    assert metrics_settings(_write(tmp_path, text), None, clean_env) is None, why


def test_metrics_reads_without_pydantic(store: Path, clean_env: dict[str, str]) -> None:
    code = (
        "import sys, io, contextlib, cockpit.cli as c;"
        f"out = io.StringIO();\nwith contextlib.redirect_stdout(out): code = c.main(['metrics', '--json', '--config',"
        f" {str(CONFIG)!r}, '--state-dir', {str(store)!r}])\n"
        "assert code == 0 and out.getvalue();"
        "bad = [m for m in ('pydantic', 'core.config', 'core.control.read_model', 'rich') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=clean_env)
