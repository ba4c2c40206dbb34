"""The readers' fast path to the state dir (cockpit/reader_config.py): the same state dir and
socket as the full validation whenever it answers, the full validation (and its one-line error)
whenever anything is unusual, and no pydantic, pandas or httpx loaded by a reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.reader_config import (
    API_KEYS,
    DEFAULT_LOG_FILE,
    DEFAULT_SOCKET,
    DEFAULT_STATE_DIR,
    ENGINE_KEYS,
    SECTIONS,
    reader_settings,
)
from core.config import ApiConfig, ConfigError, EngineConfig, LoggingConfig, Settings, load_config
from tests.conftest import ROOT


def test_the_names_it_knows_are_the_configs() -> None:
    from cockpit import audit_cli
    from core.audit import export

    assert audit_cli.FORMATS == export.FORMATS
    assert SECTIONS == set(Settings.model_fields) - {"config_path"}
    assert ENGINE_KEYS == set(EngineConfig.model_fields)
    assert API_KEYS == set(ApiConfig.model_fields)
    assert (DEFAULT_STATE_DIR, DEFAULT_SOCKET, DEFAULT_LOG_FILE) == (
        str(EngineConfig().state_dir), ApiConfig().socket, LoggingConfig().file)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "c.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, state_dir", [
    ((ROOT / "config.toml").read_text(encoding="utf-8"), None),
    ((ROOT / "config.toml").read_text(encoding="utf-8"), "elsewhere/st"),
    ("", None),
    ('[engine]\nstate_dir = "../up/st"\n', None),
    ('[engine]\nstate_dir = "/abs/st"\n[api]\nsocket = "./run/api.sock"\n', None),
    ('[engine]\nstate_dir = "~/st"\n', None),
    ('[engine]\nstate_dir = "st"\n', "~/given"),
])
def test_it_gives_the_state_dir_and_socket_the_full_load_gives(tmp_path: Path, text: str, state_dir: str | None,
                                                               clean_env: dict[str, str]) -> None:
    path = _write(tmp_path, text)
    given = Path(state_dir) if state_dir else None
    fast = reader_settings(path, given, clean_env, needs_socket=True)
    full = load_config(path, state_dir=given)
    assert fast is not None
    assert (fast.state_dir, fast.socket) == (full.state_dir, full.state_dir / full.api.socket)


@pytest.mark.parametrize("text, env, why", [
    ('[engine]\nstate_dir = "st"\n', {"COCKPIT_ENGINE__STATE_DIR": "/other"}, "an environment override"),
    ("", {"cockpit_engine": '{"state_dir": "/other"}'}, "a whole section from the environment"),
    ('[engin]\nstate_dir = "st"\n', {}, "a misspelt section"),
    ('[engine]\nstate_dri = "st"\n', {}, "a misspelt engine key"),
    ("[engine]\nstate_dir = 5\n", {}, "a state dir that is not text"),
    ('[risk]\nreason = "a\\u0000b"\n', {}, "a NUL byte anywhere"),
    ('[engine\nstate_dir = "st"\n', {}, "not TOML"),
    ('[api]\nsocket = "../x.sock"\n', {}, "a socket outside the state dir"),
    ('[api]\nsocket = "logs/cockpit.log"\n', {}, "the log file as the socket"),
    ('[api]\nsockett = "x.sock"\n', {}, "a misspelt api key"),
    ("engine = 3\n", {}, "an engine that is not a table"),
])
def test_anything_unusual_goes_to_the_full_validation(tmp_path: Path, text: str, env: dict[str, str],
                                                      why: str) -> None:
    assert reader_settings(_write(tmp_path, text), None, env, needs_socket=True) is None, why


def test_variables_that_do_not_feed_the_config_do_not_matter(tmp_path: Path) -> None:
    env = {"COCKPIT_CONFIG": "x.toml", "COCKPIT_API_TOKEN": "secret", "HOME": "/nowhere"}
    assert reader_settings(_write(tmp_path, '[engine]\nstate_dir = "st"\n'), None, env) is not None


def _cli(args: list[str], tmp_path: Path, code: str = "") -> subprocess.CompletedProcess[str]:
    script = ("import sys\nfrom cockpit.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
              "except SystemExit as exc:  # --help\n    rc = exc.code\n" + code + "sys.exit(rc)\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def _state(tmp_path: Path) -> Path:
    """A store with one position, as the engine writes it (its schema through the Store)."""
    import asyncio

    from core.persistence.store import Store

    async def make() -> None:
        store = Store(tmp_path / "st" / "cockpit.sqlite")
        await store.open()
        store.append("INSERT INTO positions (symbol, qty, avg_cost, realized_pnl, commissions, last_price,"
                     " updated_at) VALUES (?,?,?,?,?,?,?)", ("AAPL", "10", "100", "0", "1", "101", "2026-01-02"))
        await store.close()

    asyncio.run(make())
    return tmp_path / "st"


def test_readers_load_neither_pydantic_nor_pandas_nor_httpx(tmp_path: Path) -> None:
    state = _state(tmp_path)
    config = _write(tmp_path, (ROOT / "config.toml").read_text(encoding="utf-8"))
    heavy = "print(sorted(m for m in ('pydantic', 'pandas', 'httpx', 'aiosqlite', 'rich') if m in sys.modules))\n"
    done = _cli(["positions", "--json", "--config", str(config), "--state-dir", str(state)], tmp_path, heavy)
    assert done.returncode == 0, done.stderr
    out, loaded = done.stdout.rsplit("\n", 2)[0], done.stdout.strip().splitlines()[-1]
    assert json.loads(out)[0]["symbol"] == "AAPL"
    assert loaded == "[]"
    for args in (["--help"], ["status", "--config", str(config), "--state-dir", str(state)]):
        done = _cli(args, tmp_path, heavy.replace("'rich', ", ""))
        assert done.stdout.strip().splitlines()[-1] == "[]", (args, done.stdout[-300:])


def test_a_misspelt_key_still_gets_the_full_validations_one_line(tmp_path: Path) -> None:
    state = _state(tmp_path)
    config = _write(tmp_path, '[engine]\nstate_dri = "st"\n')
    done = _cli(["positions", "--json", "--config", str(config), "--state-dir", str(state)], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"cockpit: config error: {config}: unknown key 'engine.state_dri': remove it or " \
                                  "check its spelling"


def test_a_bad_value_the_reader_does_not_use_is_left_to_the_commands_that_use_it(tmp_path: Path) -> None:
    """The documented trade-off: `positions` reads where the file says the state is; the engine
    (and every command acting on [risk]) still refuses the bad limit."""
    state = _state(tmp_path)
    text = '[risk]\nmax_order_qty = -5\n'
    config = _write(tmp_path, text)
    done = _cli(["positions", "--json", "--config", str(config), "--state-dir", str(state)], tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)[0]["symbol"] == "AAPL"
    with pytest.raises(ConfigError, match="risk.max_order_qty"):
        load_config(config)
