"""``[allocation]`` in the config: money or a percentage per strategy; a value that is not one,
a key that names no strategy, percentages over 100 % and (with the paper broker) money beyond
``paper.starting_cash`` each refuse to load with one line naming the key and the fix."""

from __future__ import annotations

import tomllib
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.config import ConfigError, load_config, validate_config
from core.config.capital import Allocation, parse_allocation, total_problem, uncovered_strategies
from tests.conftest import CONFIG

BASE = tomllib.loads(CONFIG.read_text())


def allocated_config(tmp_path: Path, allocation: str, extra: str = "") -> Path:
    """The default config with an ``[allocation]`` table (and ``extra`` TOML) appended."""
    path = tmp_path / "allocated.toml"
    path.write_text(CONFIG.read_text() + f"\n{extra}\n[allocation]\n{allocation}\n")
    return path


def refusal(allocation: dict[str, object], env: dict[str, str] | None = None, **sections: object) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config({**BASE, **sections, "allocation": allocation}, env)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(("raw", "given", "money", "percent"), [
    (50000, "50000", D(50000), None), ("50000.50", "50000.5", D("50000.50"), None), (1.5, "1.5", D("1.5"), None),
    ("25%", "25%", None, D(25)), (" 12.5 % ", "12.5%", None, D("12.5")), ("0", "0", D(0), None), ("100%", "100%", None, D(100)),
])
def test_values_parse_to_money_or_a_share(raw: object, given: str, money: D | None, percent: D | None) -> None:
    assert parse_allocation(raw) == Allocation(given, money, percent)


@pytest.mark.parametrize(("raw", "why"), [
    ("-1", "is negative"), ("nan", "not a finite amount"), ("inf", "not a finite amount"), ("1e13", "beyond"),
    ("101%", "beyond 100%"), ("abc", "not an amount"), ("", "not an amount"), (True, "one value"), ([1], "one value"),
    ("1.000000001", "decimal places"),
])
def test_bad_values_say_why(raw: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_allocation(raw)


def test_a_good_allocation_loads_from_the_file_and_the_environment(tmp_path: Path, clean_env,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_config(allocated_config(tmp_path, 'sma_cross = 50000\nrsi_reversion = "25%"'))
    assert settings.allocation == {"sma_cross": Allocation("50000", money=D(50000)),
                                   "rsi_reversion": Allocation("25%", percent=D(25))}
    assert uncovered_strategies(settings.strategies, settings.allocation) == []
    monkeypatch.setenv("COCKPIT_ALLOCATION__SMA_CROSS", "40%")
    assert load_config(CONFIG).allocation == {"sma_cross": Allocation("40%", percent=D(40))}


def test_unknown_strategy_is_a_config_error() -> None:
    message = refusal({"sma_crosss": 1000})
    assert message == ("config: allocation.sma_crosss: no strategy named 'sma_crosss' (strategies: rsi_reversion, "
                       "sma_cross); remove the key or check its spelling")


def test_percentages_over_100_name_every_key_and_the_fix() -> None:
    assert refusal({"sma_cross": "60%", "rsi_reversion": "50%"}) == (
        "config: allocation: rsi_reversion 50% + sma_cross 60% = 110% is beyond 100% of the equity at start: lower "
        "them so they sum to at most 100%")


def test_money_beyond_the_paper_starting_cash_is_refused_at_load() -> None:
    message = refusal({"sma_cross": 60000, "rsi_reversion": "50%"})
    assert message == (
        "config: allocation: rsi_reversion 50% (50,000.00) + sma_cross 60,000.00 = 110,000.00 is beyond the equity "
        "at start (paper.starting_cash) 100,000.00: lower them so they sum to at most 100,000.00, or give them as "
        'percentages of the equity at start (e.g. "25%")')
    # exactly the starting cash fits; a larger paper account takes more
    validate_config({**BASE, "allocation": {"sma_cross": 50000, "rsi_reversion": "50%"}})
    validate_config({**BASE, "paper": {**BASE["paper"], "starting_cash": "200000"},
                     "allocation": {"sma_cross": 60000, "rsi_reversion": "50%"}})


def test_a_bad_value_names_the_key_and_the_environment_variable() -> None:
    assert "allocation.sma_cross: '-5' is negative" in refusal({"sma_cross": "-5"})
    message = refusal({}, {"COCKPIT_ALLOCATION__SMA_CROSS": "NaN"})
    assert message.startswith("config: allocation.sma_cross (env COCKPIT_ALLOCATION__SMA_CROSS): ")
    assert "is not a finite amount" in message


def test_strategies_without_an_allocation_are_listed_for_the_go_live_check() -> None:
    strategies = {"a": True, "b": True, "c": False}
    assert uncovered_strategies(strategies, {"a": parse_allocation(1000)}) == ["b"]  # c is disabled


def test_the_sum_check_against_a_known_equity() -> None:
    entries = {"a": parse_allocation(30000), "b": parse_allocation("50%")}
    assert total_problem(entries, D(80000), "x") is None  # 30,000 + 40,000
    problem = total_problem(entries, D(50000), "the equity at start (the ibkr account's net liquidation)")
    assert problem is not None and "a 30,000.00 + b 50% (25,000.00) = 55,000.00 is beyond the equity at start " \
                                   "(the ibkr account's net liquidation) 50,000.00" in problem
    assert total_problem(entries, None, "x") is None  # money is checked once the equity is known


def test_the_example_in_the_default_config_loads_and_the_default_has_none(tmp_path: Path, clean_env) -> None:
    text = CONFIG.read_text()
    assert "allocation" not in BASE  # the default run trades as it did: no allocation
    example = text[text.index("# [allocation]"):].split("For example:\n", 1)[1]
    lines = [line.removeprefix("# ") for line in example.splitlines()]
    lines = lines[:next(i for i, line in enumerate(lines) if " = " not in line)]
    assert len(lines) == 2
    settings = load_config(allocated_config(tmp_path, "\n".join(lines)))
    assert {n: a.given for n, a in settings.allocation.items()} == {"sma_cross": "60%", "rsi_reversion": "40000"}
