"""The replay trades exactly what it traded before it was made faster (issue 14).

The golden figures were taken on commit 7f31e15 (before any of the speed-ups) with
``python tests/replay_fingerprint.py``: a sha256 of the sorted fills (ts, symbol, side, qty,
price, commission as stored) and of the sorted orders (strategy, symbol, side, qty, type,
tif, limit, status, filled, average price, created, updated, reason). A speed-up that moves
one fill by a tick or one order's last update by a millisecond fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.replay_fingerprint import CONFIG, ROOT, Traded, bench_settings, default_settings, run_and_fingerprint, traded

GOLDEN = {
    "default": Traded(708, "66c29638b400d8413ba5a49dd6d32eb58accdc641739604ce5f1c34e5d7fd796",
                      820, "55271b0adb4492cde21ce0ea06ac122098691f92ef1b5705607aa20b3e169510"),
    # ORCL daily: an order sent at a bar's close fills on the next open, whatever the quote count.
    ("orcl", 1): Traded(197, "4ad599306a43afb14948b9f48e9268238bbfc50b7beb936fc162d2fb4ac33b82",
                        197, "5060cc1c4dcf6cd99e0326da04d164e2c8ea284cb89eda82db37f9b970dd2cce"),
    ("orcl", 4): Traded(197, "4ad599306a43afb14948b9f48e9268238bbfc50b7beb936fc162d2fb4ac33b82",
                        197, "5060cc1c4dcf6cd99e0326da04d164e2c8ea284cb89eda82db37f9b970dd2cce"),
    ("fesx", 1): Traded(1261, "e4316ea586cbb8d946ecd09b329938f5fdaf522d98b5fd96c707b2df1d1b3c9d",
                        1239, "f98750b77c386f10c2bfaa709078c0b1fd8adce12583596ed794044352c12f97"),
    ("fesx", 2): Traded(1355, "fdb5c869a5ff074fa810acbfe0935ed8bef8ba2369b32da7d434dfa24f57b3e3",
                        1275, "930eecc560a0f3db235aed66d577515b99f06b0dad7cf5f6ea2a84a0468fb7c9"),
    ("fesx", 4): Traded(1434, "0246498057a3110d11f04b867a8914f7009e85c4312aa84a70cdf2c108734365",
                        1272, "3f871235da088fab3b454a6908bac84deedc50057d63e98a5e431f9caf7433c8"),
}


def test_the_default_config_trades_as_before(tmp_path: Path) -> None:
    assert run_and_fingerprint(default_settings(tmp_path / "state")) == GOLDEN["default"]


@pytest.mark.parametrize("which, quotes", [("orcl", 1), ("orcl", 4), ("fesx", 1), ("fesx", 2), ("fesx", 4)])
def test_the_bench_sma_run_trades_as_before(tmp_path: Path, which: str, quotes: int) -> None:
    assert run_and_fingerprint(bench_settings(which, quotes, tmp_path / "state")) == GOLDEN[(which, quotes)]


@pytest.mark.slow
def test_the_cli_replay_trades_as_before_and_its_audit_chain_verifies(tmp_path: Path, clean_env) -> None:
    state = tmp_path / "state"
    env = {**clean_env, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "cockpit", "--config", str(CONFIG), "--state-dir", str(state),
                          "--no-ui", "--speed", "max"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert traded(state / "cockpit.sqlite") == GOLDEN["default"]
    verify = subprocess.run([sys.executable, "-m", "cockpit", "audit", "verify", "--config", str(CONFIG),
                             "--state-dir", str(state)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert verify.returncode == 0 and "chain intact" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.parametrize("case", ["default", ("fesx", 4)], ids=["default", "fesx-q4"])
def test_a_warm_bar_cache_trades_as_before(tmp_path: Path, case: object) -> None:
    """The second run reads its files from the bar cache the first one filled."""
    cache = tmp_path / "shared-cache"
    for n in (1, 2):
        state = tmp_path / f"state-{n}"
        settings = default_settings(state) if case == "default" else bench_settings("fesx", 4, state)
        settings.feed.bar_cache_dir = str(cache)
        assert run_and_fingerprint(settings) == GOLDEN[case]  # type: ignore[index]
    assert len(list(cache.glob("*.bars"))) == (5 if case == "default" else 1)
