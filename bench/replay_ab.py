"""Replay run time of this tree against another checkout, interleaved: one child process per
side and round (A B, then B A), each a warm-up run and ``--runs`` timed runs of
``replay_peers.ours.run_ours`` on one file; prints each side's median of the per-process best and
their ratio. On a shared machine only the ratio of one interleaved bench means anything.

    python bench/replay_ab.py --against /tmp/base [--only orcl] [--rounds 8] [--runs 3]
                              [--quotes 1] [--live]

``--live``: the engine as `cockpit --no-ui` builds it (alert router, backups); by default as
`cockpit backtest` configures it. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, tempfile
from pathlib import Path
root, key, quotes, runs, live = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
sys.path[:0] = [root, root + "/bench"]
from replay_peers.common import DATASETS
from replay_peers.ours import run_ours
ds = next(d for d in DATASETS if d.key == key)
with tempfile.TemporaryDirectory() as tmp:
    cache = Path(tmp) / "cache"
    run_ours(ds, quotes, Path(tmp), cache, backtest=not live)
    timed = [run_ours(ds, quotes, Path(tmp), cache, backtest=not live) for _ in range(runs)]
print(json.dumps([min(t.run_s for t in timed), min(t.full_s for t in timed)]))
"""


def _one(root: Path, args: argparse.Namespace) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root), args.only, str(args.quotes), str(args.runs),
                          "1" if args.live else "0"], env=env, capture_output=True, text=True, check=True)
    run_s, full_s = json.loads(out.stdout.strip().splitlines()[-1])
    return float(run_s), float(full_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", type=Path, required=True, help="the other checkout (a git worktree)")
    p.add_argument("--only", default="orcl", choices=["orcl", "fesx"])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--runs", type=int, default=3, help="timed runs per process (its best counts)")
    p.add_argument("--quotes", type=int, default=1, choices=[1, 2, 4])
    p.add_argument("--live", action="store_true", help="as `cockpit --no-ui` builds it, not as `cockpit backtest`")
    args = p.parse_args()
    if not (args.against / "core").is_dir():
        sys.exit(f"--against {args.against}: not a checkout of this project (no core/ in it)")
    sides = {"this": HERE, "other": args.against.resolve()}
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for i in range(args.rounds):
        for name in (("this", "other") if i % 2 == 0 else ("other", "this")):
            got[name].append(_one(sides[name], args))
        print(f"  round {i + 1}/{args.rounds}: " + ", ".join(f"{k} run {got[k][-1][0]:.3f}s" for k in sides),
              flush=True)
    med = {k: (statistics.median(r for r, _ in v), statistics.median(f for _, f in v)) for k, v in got.items()}
    for k, (run_s, full_s) in med.items():
        print(f"{k:>6} ({sides[k]}): run {run_s:.3f}s, full {full_s:.3f}s")
    print(f"this / other: run {med['this'][0] / med['other'][0]:.3f}, full {med['this'][1] / med['other'][1]:.3f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
