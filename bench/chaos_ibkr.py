"""The SIGKILL campaign in IBKR mode: `cockpit --no-ui` against `cockpit ib-sim` (both real
processes on 127.0.0.1), killed during start-up (imports, store, connect, sync, reconcile) or
right after orders (before or after their acks and fills), restarted each time.

The campaign is tests/test_ibkr_sigkill.py at a chosen size: that test compares every
execution the simulator made with the engine's store (lost, doubled, quantity, price,
positions) and fails naming what differs, so a pass at N kills is 0 lost and 0 duplicated at
N kills. Reached through ``python bench/chaos_kills.py --mode ibkr --kills N`` or directly:

    python bench/chaos_ibkr.py --kills 300 [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"IBKR SIGKILL test: (\d+) kills \((\d+) in start-up, (\d+) right after orders\), (\d+) orders "
                     r"accepted, (\d+) refused, (\d+) executions, none lost or doubled, (\d+) break")


def run(kills: int, seed: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update({"IBKR_KILLS": str(kills), "IBKR_KILL_SEED": str(seed), "PYTHONPATH": str(ROOT)})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           "tests/test_ibkr_sigkill.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=max(600, kills * 20))
    found = SUMMARY.search(done.stdout)
    report: dict[str, object] = {"mode": "ibkr", "seed": seed, "seconds": round(time.monotonic() - started, 1),
                                 "kills": kills, "passed": done.returncode == 0}
    if found:
        k, startup, mid, accepted, refused, executions, breaks = map(int, found.groups())
        report.update({"kills_by_phase": {"startup": startup, "mid_order": mid}, "orders_accepted": accepted,
                       "orders_refused": refused, "executions": executions, "lost_fills": 0,
                       "duplicated_fills": 0, "crashes": 0, "hangs": 0, "unknown_order_breaks_accepted": breaks})
    else:
        tail = [ln for ln in done.stdout.splitlines() if ln.startswith("E ")][:10]
        report.update({"failure": tail or done.stdout[-2000:].splitlines()})
    return report


def main(argv: list[str] | None = None, seed: int | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args, _ = parser.parse_known_args(argv)
    if args.kills < 3:
        parser.error("--kills must be at least 3 (the test needs kills in start-up and after orders)")
    report = run(args.kills, args.seed if args.seed is not None else seed if seed is not None else int(time.time()))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>30}: {value}")
    return 0 if report["passed"] else 1


def run_ibkr_campaigns(args: argparse.Namespace, seed: int) -> int:
    """``bench/chaos_kills.py --mode ibkr``: the same campaign with that script's arguments."""
    return main(["--kills", str(args.kills), *(["--json"] if args.json else [])], seed=seed)


if __name__ == "__main__":
    raise SystemExit(main())
