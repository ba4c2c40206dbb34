"""SIGKILL campaign: kill `cockpit --no-ui` at random points, restart, and count what was lost.

Each campaign is a fresh state dir (a new one whenever a replay ends before its kill
lands). The engine is started and SIGKILLed a few times at random points (at start-up
while Python imports, the moment the store file appears so migrations are cut, and
anywhere in the replay), then run to the end. Its fills must be exactly those of one
uninterrupted reference run: a fill missing is *lost*, one too many is a *duplicate*. A run
that exits non-zero without being killed is a *crash*, one that does not end in time a *hang*,
a broken audit chain an *audit failure*; files that appear or change outside the campaign's
state dirs (in the repository or the campaign folder) are counted too. Asserts nothing; prints
the figures (``--json`` for a machine).

    python bench/chaos_kills.py --kills 1000 --jobs 2          # the full campaign (about 25 min)
    python bench/chaos_kills.py --kills 30 --seed 7             # a quick one
    python bench/chaos_kills.py --mode ibkr --kills 100         # IBKR mode against `cockpit ib-sim`

Every file it writes is under one temporary directory (``--tmpdir`` to choose where).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"
RUN_TIMEOUT = 180.0  # seconds for one uninterrupted run of the shortened replay

#: Where a kill lands. "startup": anywhere from exec to the first events (imports, config,
#: calendar); "store": within ~30 ms of the database file appearing (migrations, first
#: commits; only on a fresh state dir); "replay": anywhere in a run of the reference length.
PHASES = ("startup", "store", "replay")


@dataclass
class Figures:
    campaigns: int = 0
    runs: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    crashes: int = 0
    hangs: int = 0
    audit_failures: int = 0
    outside: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, other: Figures) -> None:
        with self.lock:
            self.campaigns += other.campaigns
            self.runs += other.runs
            self.kills.update(other.kills)
            for name in ("lost", "duplicated", "crashes", "hangs", "audit_failures", "outside"):
                setattr(self, name, getattr(self, name) + getattr(other, name))
            self.problems.extend(other.problems)

    def as_dict(self) -> dict[str, object]:
        return {"campaigns": self.campaigns, "runs": self.runs, "kills": sum(self.kills.values()),
                "kills_by_phase": dict(self.kills), "lost_fills": self.lost, "duplicated_fills": self.duplicated,
                "crashes": self.crashes, "hangs": self.hangs, "audit_failures": self.audit_failures,
                "files_touched_outside_state": self.outside, "problems": self.problems[:20]}


# ---- one engine run ------------------------------------------------------------------

@dataclass
class Target:
    """What to run: the environment and arguments of one `cockpit --no-ui` on a state dir."""

    env: dict[str, str]
    extra: list[str]

    def command(self, state: Path) -> list[str]:
        return [sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir", str(state),
                "--speed", "max", *self.extra]


def clean_env(end: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update({"COCKPIT_FEED__END": end, "COCKPIT_LOGGING__LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
    return env


def run_to_end(target: Target, state: Path, cwd: Path) -> tuple[int | None, str]:
    """Run until the replay ends; (exit code, stderr tail), or (None, ...) on a hang."""
    try:
        done = subprocess.run(target.command(state), cwd=cwd, env=target.env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, tail[-1500:]
    return done.returncode, done.stderr[-1500:]


def reference_run(target: Target, state: Path, cwd: Path) -> tuple[int | None, str, float]:
    """The uninterrupted run; also how long start-up takes (until the store file appears)."""
    db = state / "cockpit.sqlite"
    with tempfile.TemporaryFile(dir=cwd) as err:
        proc = subprocess.Popen(target.command(state), cwd=cwd, env=target.env, stdout=subprocess.DEVNULL,
                                stderr=err)
        started = time.monotonic()
        while not db.exists() and proc.poll() is None:
            time.sleep(0.001)
        ready = time.monotonic() - started
        try:
            code: int | None = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        err.seek(0)
        return code, err.read().decode(errors="replace")[-1500:], ready


def run_and_kill(target: Target, state: Path, cwd: Path, phase: str, timing: list[float],
                 rng: random.Random) -> tuple[str, int | None, str]:
    """Start a run and SIGKILL it at a random point of ``phase``.

    Returns (what happened, exit code, stderr tail): "killed", or "exited" when the run ended by
    itself first (then the code tells whether it crashed), or "hung".
    """
    db = state / "cockpit.sqlite"
    with tempfile.TemporaryFile(dir=cwd) as err:
        proc = subprocess.Popen(target.command(state), cwd=cwd, env=target.env, stdout=subprocess.DEVNULL,
                                stderr=err)
        started = time.monotonic()
        ready, ref_seconds = timing
        if phase == "store":
            while not db.exists() and proc.poll() is None and time.monotonic() - started < RUN_TIMEOUT:
                time.sleep(0.0005)
            delay = rng.uniform(0.0, 0.03)
        elif phase == "startup":
            delay = rng.uniform(0.0, ready)
        else:
            delay = rng.uniform(ready, ref_seconds * 1.05)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return "killed", proc.returncode, ""
        lasted = time.monotonic() - started
        if phase == "replay" and lasted < timing[1]:
            # A whole run was quicker than the reference (timed while the machine was busier):
            # aim the next replay kills inside the runs as they are now.
            timing[1] = lasted
            timing[0] = min(timing[0], lasted / 2)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1500:]
        return "exited", proc.returncode, tail


# ---- what a run leaves ------------------------------------------------------------------

def fill_keys(state: Path) -> list[tuple[str, ...]]:
    """The fills as comparable keys: order ids are <instance>-<seq>; only the sequence must match."""
    db = state / "cockpit.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT client_order_id, symbol, side, qty, price, commission, ts FROM fills "
                            "WHERE kind = 'trade' ORDER BY seq").fetchall()
    return [(cid.split("-", 1)[-1], *rest) for cid, *rest in rows]


def audit_ok(target: Target, state: Path, cwd: Path) -> tuple[bool, str]:
    done = subprocess.run([sys.executable, "-m", "cockpit", "audit", "verify", "--config", str(CONFIG),
                           "--state-dir", str(state)], cwd=cwd, env=target.env, capture_output=True, text=True,
                          timeout=120)
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-300:]


def tree_listing(root: Path, skip: set[Path]) -> dict[str, tuple[int, int]]:
    """Path -> (size, mtime_ns) of every file under ``root`` except the ``skip`` folders."""
    seen: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip and d not in (".git", ".venv", "__pycache__",
                                                                         ".pytest_cache", ".mypy_cache",
                                                                         ".ruff_cache", ".hypothesis",
                                                                         ".import_linter_cache")]
        for name in files:
            path = here / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            seen[str(path)] = (st.st_size, st.st_mtime_ns)
    return seen


# ---- campaigns ----------------------------------------------------------------------------

def campaign(number: int, kills: int, target: Target, reference: list[tuple[str, ...]],
             timing: list[float], workdir: Path, seed: int) -> Figures:
    """``kills`` SIGKILLs on fresh state dirs, each run to the end and checked; a replay that
    ends before its kill is checked and the next kill goes to a new state dir."""
    rng = random.Random(f"{seed}-{number}")
    figures = Figures()
    done_kills = 0
    while done_kills < kills:
        state = workdir / f"state-{number}-{figures.campaigns}"
        figures.campaigns += 1
        while done_kills < kills:
            fresh = not (state / "cockpit.sqlite").exists()
            phase = rng.choice(PHASES if fresh else ("startup", "replay", "replay"))
            what, code, tail = run_and_kill(target, state, workdir, phase, timing, rng)
            figures.runs += 1
            if what == "killed":
                done_kills += 1
                figures.kills[phase] += 1
                continue
            if code != 0:
                figures.crashes += 1
                figures.problems.append(f"{state.name}: a restart exited {code}: {tail.strip()[-300:]}")
            break  # the replay ended before the kill landed: check this state dir, go on with a new one
        check(state, target, reference, workdir, figures)
    return figures


def check(state: Path, target: Target, reference: list[tuple[str, ...]], workdir: Path, figures: Figures) -> None:
    """Run ``state`` to the end of the replay and compare its fills with the reference."""
    code, tail = run_to_end(target, state, workdir)
    figures.runs += 1
    if code is None:
        figures.hangs += 1
        figures.problems.append(f"{state.name}: the final run did not end in {RUN_TIMEOUT:.0f} s")
        return
    if code != 0:
        figures.crashes += 1
        figures.problems.append(f"{state.name}: the final run exited {code}: {tail.strip()[-300:]}")
        return
    got = Counter(fill_keys(state))
    want = Counter(reference)
    lost = sum((want - got).values())
    extra = sum((got - want).values())
    figures.lost += lost
    figures.duplicated += extra
    if lost or extra:
        figures.problems.append(f"{state.name}: {lost} fills lost, {extra} extra (state {state})")
    ok, said = audit_ok(target, state, workdir)
    if not ok:
        figures.audit_failures += 1
        figures.problems.append(f"{state.name}: audit verify: {said}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs in all (default 100)")
    parser.add_argument("--per-campaign", type=int, default=5, help="kills per fresh state dir (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="campaigns side by side (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: from the clock)")
    parser.add_argument("--end", default="2014-12-31",
                        help="replay 2008-01-01..END (default 2014-12-31, the whole default config)")
    parser.add_argument("--mode", choices=("paper", "ibkr"), default="paper")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the temporary folder goes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.per_campaign < 1 or args.jobs < 1:
        parser.error("--kills, --per-campaign and --jobs must be at least 1")
    seed = args.seed if args.seed is not None else int(time.time())
    if args.mode == "ibkr":
        from bench.chaos_ibkr import run_ibkr_campaigns

        return run_ibkr_campaigns(args, seed)

    with tempfile.TemporaryDirectory(prefix="cockpit-chaos-", dir=args.tmpdir) as tmp:
        workdir = Path(tmp)
        target = Target(clean_env(args.end), [])
        before = tree_listing(ROOT, skip=set())
        started = time.monotonic()
        ref_state = workdir / "reference"
        code, tail, ready = reference_run(target, ref_state, workdir)
        ref_seconds = time.monotonic() - started
        if code != 0:
            print(f"chaos: the reference run failed ({code}): {tail}", file=sys.stderr)
            return 1
        reference = fill_keys(ref_state)
        print(f"chaos: seed {seed}; reference run 2008-01-01..{args.end}: {len(reference)} fills in "
              f"{ref_seconds:.1f} s (store open after {ready:.2f} s); {args.kills} kills, "
              f"{args.per_campaign} per campaign, {args.jobs} jobs",
              file=sys.stderr, flush=True)
        total = Figures()
        n_groups = -(-args.kills // args.per_campaign)

        def one(number: int) -> None:
            kills = min(args.per_campaign, args.kills - number * args.per_campaign)
            result = campaign(number, kills, target, reference, [ready, ref_seconds], workdir, seed)
            total.add(result)
            if not args.json and (number + 1) % 10 == 0:
                print(f"chaos: {sum(total.kills.values())}/{args.kills} kills, {total.campaigns} state dirs, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, range(n_groups)))
        outside_now = tree_listing(ROOT, skip=set())
        total.outside = sum(1 for path, meta in outside_now.items() if before.get(path) != meta) + \
            sum(1 for path in before if path not in outside_now)
        strays = [p for p in workdir.iterdir() if not p.name.startswith(("state-", "reference"))]
        total.outside += len(strays)
        total.problems.extend(f"outside the state dirs: {p}" for p in strays)
        elapsed = time.monotonic() - started
    report = {"mode": "paper", "seed": seed, "seconds": round(elapsed, 1), "reference_fills": len(reference),
              **total.as_dict()}
    print_report(report, args.json)
    return 0


def print_report(report: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if key == "problems":
            for line in value:  # type: ignore[attr-defined]
                print(f"  problem: {line}")
        else:
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
