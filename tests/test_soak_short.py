"""Five exchange sessions of paper trading with a restart in every one (issue 13): the soak of
bench/soak_paper.py at CI size, the same code. A real `cockpit --no-ui` child trades real minute
bars on the replay's simulated clock at an accelerated pace and is stopped with SIGTERM or
SIGKILL once per session (after a close, in the night before the report, mid-session); an
uninterrupted run of the same config is the reference. At the end nothing is lost or doubled,
the books match the fills to the cent, every session has its daily report, the audit chain
verifies and the backups pass their check. The kills come from a seeded random
(``SOAK_SEED``, printed on failure); the bench runs the thirty sessions."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bench.soak_paper import Plan, run_soak

pytestmark = pytest.mark.slow

SESSIONS = 5
SPEED = 200_000.0  # simulated seconds per wall second: a trading day in 0.23 s, a weekend in 0.9 s


def test_five_sessions_with_a_sigterm_or_sigkill_in_each_lose_and_double_nothing(
        tmp_path: Path, clean_env: dict[str, str]) -> None:
    seed = int(os.environ.get("SOAK_SEED", random.randrange(1_000_000)))
    report = run_soak(Plan(sessions=SESSIONS, kill_mode="mixed", speed=SPEED, seed=seed), tmp_path)
    context = f"seed {seed} (SOAK_SEED={seed} to repeat): {report['problems']}"
    assert report["problems"] == [] and report["ok"], context
    # One kill per session; the last session's only if the machine looked in time (else its run ends the replay).
    assert report["kills"] >= SESSIONS - 1 and report["runs"] == report["kills"] + 1, context
    assert report["sigterm"] >= 1 and report["sigkill"] >= 1, context
    assert sum(report["kills_by_point"].values()) == report["kills"], context
    assert report["fills"] == report["reference_fills"] >= 20 * SESSIONS, context  # it trades, every session
    assert report["lost_fills"] == 0 and report["duplicated_fills"] == 0, context
    assert report["daily_reports"] == SESSIONS and len(report["engine_starts_per_report"]) == SESSIONS, context
    assert report["audit_verify_exit"] == 0, context
    assert report["breaks"] == 0 and report["reconcile_passes"] >= SESSIONS + 1, context
    assert report["backups_written"] >= 1 and report["backups_verified"] == report["backups_kept"] >= 1, context
    assert report["disk_bytes"]["store"] > 0 and report["rss_mib"]["max_peak"] > 0, context
