"""SIGKILL at random points of a paper run (start-up, migrations, mid-replay), restart, repeat:
nothing lost, nothing twice, the audit chain intact (issue 11). The same campaign as
bench/chaos_kills.py, at a few dozen kills; the bench runs the thousand."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Its campaign process has 600 s (two to three minutes on a busy 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(660)]


def test_two_dozen_random_sigkills_lose_and_double_nothing(clean_env) -> None:
    seed = random.randrange(1_000_000)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "chaos_kills.py"), "--kills", "24",
                           "--per-campaign", "6", "--jobs", "1", "--end", "2009-12-31", "--seed", str(seed),
                           "--json"], cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    print(f"seed {seed}: {report}")  # reproduce with: python bench/chaos_kills.py --seed N ...
    assert report["kills"] == 24
    assert report["kills_by_phase"].get("replay", 0) > 0 and report["kills_by_phase"].get("startup", 0) > 0
    assert report["reference_fills"] > 100
    for figure in ("lost_fills", "duplicated_fills", "crashes", "hangs", "audit_failures",
                   "files_touched_outside_state"):
        assert report[figure] == 0, (figure, seed, report["problems"])
