from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"


@pytest.fixture
def cockpit_cmd() -> list[str]:
    """The cockpit CLI as a subprocess command, using this interpreter."""
    return [sys.executable, "-m", "cockpit"]


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
