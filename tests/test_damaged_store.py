"""A store that is not a database (the runbook's "store will not open"): every command that opens
it says so in one line with the way out and exits, with no traceback and no process left hanging
(the half-opened connection's thread kept `cockpit preflight --drill` alive after its error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT


@pytest.mark.parametrize("args,code,words", [
    (["--no-ui", "--speed", "max"], 1, "cannot be read (file is not a database): restore it from a backup"),
    (["alerts", "test", "--sink", "log"], 3, "cannot open the store"),
    (["preflight", "--drill"], 3, "cannot record the drill in the store"),
])
def test_a_damaged_store_is_one_line_and_an_exit(tmp_path: Path, clean_env, args: list[str], code: int,
                                                 words: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "cockpit.sqlite").write_bytes(os.urandom(8192))
    done = subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(CONFIG), "--state-dir", str(state)],
                          cwd=ROOT, env=clean_env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == code, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cockpit: ") and words in last and "backup list" in last, last
    assert "Traceback" not in done.stderr + done.stdout
