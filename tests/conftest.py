from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Without xdist (`pytest` alone, a debugging run) a hung test fails by SIGALRM with its
    stack: the thread method of pyproject.toml would end the whole run. Under `-n` the thread
    method stays, so xdist replaces the ended worker and the run goes on."""
    distributed = hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))
    if not distributed and getattr(config, "_env_timeout_method", None) == "thread":
        config._env_timeout_method = "signal"  # type: ignore[attr-defined]  # pytest-timeout's setting


@pytest.fixture
def cockpit_cmd() -> list[str]:
    """The cockpit CLI as a subprocess command, using this interpreter."""
    return [sys.executable, "-m", "cockpit"]


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back afterwards: ``setup_logging`` replaces its handlers, and the
    later tests in this worker need pytest's own (the ib_async logger's level too)."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    ib = logging.getLogger("ib_async")
    ib_level = ib.level
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        ib.setLevel(ib_level)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment without COCKPIT_* overrides leaking in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("COCKPIT_"):
            monkeypatch.delenv(key)
    return dict(os.environ)


@pytest.fixture
async def make_rig(tmp_path: Path):
    """Make paper rigs on ``tmp_path``; every store they opened is closed at teardown."""
    from tests.paper_rig import make_rig

    made = []

    async def factory(**kwargs):
        made.append(await make_rig(tmp_path, **kwargs))
        return made[-1]

    yield factory
    for r in made:
        await r.store.close()
