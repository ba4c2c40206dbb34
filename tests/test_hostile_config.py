"""Hostile config values and environment overrides refuse to start with one line naming the key
(issue "Hostile input and faults", part 2). Before: a long engine.market_tz or ibkr.restart_tz
was OSError 'File name too long', COCKPIT_FEED__FILES of 5,000 '[' a RecursionError, a TOML
key such as ``_cli_parse_args`` was taken as a pydantic-settings option, and a NUL byte that
came through a JSON environment value reached the file system."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError, load_config, validate_config
from tests.conftest import CONFIG, ROOT


def refused(tmp_path: Path, *, toml: str | bytes | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> str:
    path = CONFIG
    if toml is not None:
        path = tmp_path / "config.toml"
        path.write_bytes(toml.encode() if isinstance(toml, str) else toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, state_dir=tmp_path / "state", overrides=overrides)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and len(message) < 600, message
    return message


@pytest.mark.parametrize("section,key,value,why", [
    ("engine", "market_tz", "A" * 300, "is not a time zone name"),  # OSError: File name too long
    ("engine", "market_tz", "A" * 5000, "engine.market_tz: is 5000 characters long"),
    ("engine", "market_tz", "America", "unknown time zone 'America'"),  # IsADirectoryError
    ("engine", "market_tz", "../../../outside/zone", "unknown time zone"),
    ("ibkr", "restart_tz", "B" * 300, "is not a time zone name"),
    ("engine", "instance_name", "two\nlines", "control character '\\n'"),
    ("engine", "state_dir", "x" * 300, "is 300 bytes long: at most 255"),
    ("logging", "file", "a\x00b.log", "contains a NUL byte"),
    ("api", "token_env", "NOT A NAME", "must name an environment variable"),
    ("api", "token_env", "X\x00", "contains a NUL byte"),
    ("ibkr", "host", "h" * 300, "at most 253 characters"),
    ("paper", "latency_ms", "9" * 3000 + "x", "unable to parse string as an integer"),  # shown cut, not 3,000 digits
])
def test_a_hostile_value_is_one_line_naming_the_key(tmp_path: Path, clean_env, section: str, key: str, value: str,
                                                    why: str) -> None:
    message = refused(tmp_path, overrides={section: {key: value}})
    assert why in message and key in message


@pytest.mark.parametrize("tz", ["Z" * 300, "Z" * 5000, "America", "a\x00b"])
def test_a_replay_file_time_zone_is_one_line_naming_the_file(tmp_path: Path, tz: str) -> None:
    """Before: OSError 'File name too long' (or IsADirectoryError) from inside ZoneInfo."""
    from core.config import FeedConfig
    from core.data.feeds.replay import ReplayFeed

    (tmp_path / "x.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10,1\n")
    feed = ReplayFeed(FeedConfig(files=[{"symbol": "SPY", "path": "x.csv", "tz": tz}]), lambda p: tmp_path / p)
    with pytest.raises(ConfigError) as info:
        feed.load()
    message = str(info.value)
    assert message.startswith("feed.files[SPY]: unknown time zone '") and "\n" not in message and len(message) < 200


@pytest.mark.parametrize("name,value,why", [
    ("COCKPIT_FEED__FILES", "[" * 5000, "COCKPIT_FEED__FILES (feed.files): the value nests more than 16 levels"),
    ("COCKPIT_STRATEGIES__SMA_CROSS__PARAMS", "{" * 5000, "(strategies.sma_cross.params): the value nests"),
    ("COCKPIT_STRATEGIES__X__PARAMS" + "__A" * 3000, "1", "nests 3003 levels deep"),
    ("COCKPIT_FEED__FILES", '[{"symbol": "SPY", "path": "a\\u0000b.csv"}]',
     "feed.files[0].path (env COCKPIT_FEED__FILES): contains a NUL byte"),
    ("COCKPIT_FEED__SYMBOLS", '["' + '", "'.join(f"S{i}" for i in range(20000)) + '"]', "has 20000 items"),
    ("COCKPIT_ENGINE__MARKET_TZ", "C" * 300, "engine.market_tz (env COCKPIT_ENGINE__MARKET_TZ)"),
])
def test_a_hostile_environment_value_is_one_line_naming_the_variable(tmp_path: Path, clean_env, monkeypatch,
                                                                     name: str, value: str, why: str) -> None:
    monkeypatch.setenv(name, value)
    assert why in refused(tmp_path)


@pytest.mark.parametrize("toml,why", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply to read"),  # RecursionError in tomllib
    ("[strategies.x]\nkind = 'sma_cross'\nparams = { a = " + "[" * 40 + "]" * 40 + " }\n", "nests more than 16"),
    (b'[engine]\ninstance_name = "\xff\xfe"\n', "not UTF-8 text (byte 26)"),  # UnicodeDecodeError
    ("_cli_parse_args = true\n", "unknown key '_cli_parse_args'"),  # parsed sys.argv (and exited)
    ("_env_file = '/dev/null'\n", "unknown key '_env_file'"),
    ('config_path = "x"\n', "unknown key 'config_path'"),  # TypeError: multiple values
    ("__pydantic_self__ = 1\n", "unknown key '__pydantic_self__'"),  # TypeError
    ('[keys]\n"a\\u0000b" = "x"\n', "the key contains a NUL byte"),
])
def test_a_hostile_config_file_is_one_line(tmp_path: Path, clean_env, toml: str | bytes, why: str) -> None:
    assert why in refused(tmp_path, toml=toml)


def test_validate_config_reads_neither_files_nor_the_process_environment(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("COCKPIT_PAPER__LATENCY_MS", "not a number")  # ignored: env is given explicitly
    validate_config({"paper": {"latency_ms": 5}})
    validate_config({}, env={"COCKPIT_PAPER__LATENCY_MS": "7"})
    with pytest.raises(ConfigError, match=r"paper.latency_ms \(env COCKPIT_PAPER__LATENCY_MS\)"):
        validate_config({}, env={"COCKPIT_PAPER__LATENCY_MS": "-1"})
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        validate_config({"nope": {}})


@pytest.mark.parametrize("name,value", [("COCKPIT_FEED__FILES", "[" * 5000), ("COCKPIT_ENGINE__MARKET_TZ", "D" * 300)])
def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path, clean_env, name: str, value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                           str(tmp_path / "state"), "--speed", "max"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**clean_env, name: value})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("cockpit: config error: "), proc.stderr[-500:]
    assert not (tmp_path / "state").exists()  # refused before anything was created
