from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from tests.conftest import CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_default_config_loads_with_its_demo_setup(clean_env) -> None:
    s = load_config(CONFIG)
    assert s.broker.kind == "paper"
    assert [f.symbol for f in s.feed.files] == ["AAPL", "NVDA", "ORCL", "SPY", "YHOO"]
    assert set(s.strategies) == {"sma_cross", "rsi_reversion"}
    assert s.state_dir == CONFIG.parent / "state"  # relative to the config file, not the cwd


def test_environment_overrides_toml(clean_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_RISK__MAX_ORDER_QTY", "100")
    monkeypatch.setenv("COCKPIT_FEED__SPEED", "max")
    s = load_config(CONFIG)
    assert s.risk.max_order_qty == Decimal(100)
    assert s.feed.speed == "max"
    assert s.risk.max_order_notional == Decimal(100000)  # untouched keys keep the file's value


def test_cli_overrides_beat_environment(clean_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_FEED__SPEED", "10")
    assert load_config(CONFIG, overrides={"feed": {"speed": "max"}}).feed.speed == "max"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[risk]\nmax_order_qtyy = 5\n", "unknown key 'risk.max_order_qtyy'"),
        ("[riskk]\n", "unknown key 'riskk'"),
        ("[risk]\nmax_order_qty = 'lots'\n", "risk.max_order_qty: Input should be a valid decimal (got 'lots')"),
        ("[risk]\nmax_order_qty = -1\n", "risk.max_order_qty: Input should be greater than 0"),
        ("[feed]\nspeed = 'fast'\n", "speed must be a positive number or 'max'"),
        ("[feed]\nstart = 2014-01-01\nend = 2008-01-01\n", "start 2014-01-01 is after end 2008-01-01"),
        ("[broker]\nkind = 'etrade'\n", "broker.kind: Input should be 'paper'"),
        ("x = [\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(clean_env, tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_bad_env_value_names_the_variable(clean_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_PAPER__LATENCY_MS", "soon")
    with pytest.raises(ConfigError, match="COCKPIT_PAPER__LATENCY_MS"):
        load_config(CONFIG)


def test_missing_file_is_an_error_not_a_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
