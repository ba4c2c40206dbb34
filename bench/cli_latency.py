"""How long the readers take: `cockpit positions --json` and the others, start to exit.

Makes a state dir with a short paper replay of the default config (2008-2009: a few hundred
orders and fills), starts `cockpit --no-ui` on it at the bars' own pace (so `status` has an
engine to ask, and the readers run beside a live one, as they do in production), then runs each
command ``--runs`` times as a fresh process (the way a trader or a script runs them) and prints
the median, the fastest and the slowest wall time; ``python -c pass`` first, the floor any
command pays to start Python. The tree's modules are byte-compiled first, as an installed package
is (``--no-compile``: not). ``--importtime`` adds, per command, the modules that cost most to
import (``python -X importtime``, cumulative). Asserts nothing.

    python bench/cli_latency.py [--runs 15] [--importtime] [--only positions,--help]

``--state DIR`` (with ``--against``) reads an existing state dir instead (no engine beside it),
for example one with the whole ORCL daily file replayed, where `cockpit metrics` has 5,036
sessions to read; each tree then reads its own ``config.toml`` unless ``--config FILE`` names one.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[list[str]] = [
    ["--help"],
    ["positions", "--json"],
    ["positions"],
    ["orders", "--json", "--limit", "50"],
    ["orders", "--limit", "50"],
    ["fills", "--json", "--limit", "50"],
    ["pnl", "--json"],
    ["pnl"],
    ["metrics", "--json"],
    ["metrics"],
    ["report", "daily", "--json"],
    ["alerts", "--json"],
    ["alerts"],
    ["status"],
    ["status", "--json"],
]


def env(tree: Path | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    out["PYTHONPATH"] = str(tree) if tree is not None else os.environ.get("PYTHONPATH", str(ROOT))
    out["COLUMNS"] = "120"  # the tables' width: the same for every run (and both trees)
    return out


def timed(argv: list[str], cwd: Path, tree: Path | None = None) -> tuple[float, int, str, str, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env(tree), capture_output=True, text=True)
    last = done.stderr.strip().splitlines()[-1:]
    return (time.perf_counter() - start) * 1000, done.returncode, last[0] if last else "", done.stdout, done.stderr


def import_costs(argv: list[str], cwd: Path, top: int) -> list[tuple[int, str]]:
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env(), capture_output=True,
                          text=True)
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level imports and their direct children
            rows.append((int(m.group(2)), m.group(3)[1:] + m.group(4)))
    return sorted(rows, reverse=True)[:top]


def compile_tree(tree: Path) -> None:
    """Byte-compile the tree's modules, as installing the package does (pip writes the .pyc files):
    with PYTHONDONTWRITEBYTECODE set and no .pyc, every run would compile each module it imports
    again, which is not what an installed cockpit pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(tree / p) for p in ("core", "cockpit", "brokers"))],
                   check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   stdout=subprocess.DEVNULL)


def make_state(state: Path, config: Path) -> subprocess.Popen[str]:
    """A short replay to the end (orders, fills, reports), then an engine left running on it."""
    replay_env = {**env(), "COCKPIT_FEED__START": "2008-01-01", "COCKPIT_FEED__END": "2009-12-31"}
    subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config), "--state-dir", str(state),
                    "--speed", "max"], cwd=state.parent, env=replay_env, check=True, capture_output=True, timeout=600)
    live = {**env(), "COCKPIT_FEED__START": "2008-01-01"}  # the same start: it resumes after 2009
    engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config), "--state-dir",
                               str(state), "--speed", "1"], cwd=state.parent, env=live, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # up once `status` answers
        if subprocess.run([sys.executable, "-m", "cockpit", "status", "--config", str(config), "--state-dir",
                           str(state)], cwd=state.parent, env=env(), capture_output=True).returncode == 0:
            return engine
        time.sleep(0.2)
    engine.kill()
    raise SystemExit("the engine did not come up within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", action="store_true", help="the costliest imports of each command")
    parser.add_argument("--only", default="", help="comma-separated commands (their first word), e.g. positions,--help")
    parser.add_argument("--against", metavar="TREE", default=None,
                        help="also measure another checkout of the project, runs alternating with this one")
    parser.add_argument("--check-same", action="store_true",
                        help="with --against: compare both trees' output of each command, byte for byte")
    parser.add_argument("--state", metavar="DIR", default=None,
                        help="with --against: read this state dir (no engine started beside it)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="with --state: the config both trees read (default: each tree's config.toml)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the trees first (then, with PYTHONDONTWRITEBYTECODE set, each run "
                             "compiles every module it imports that has no .pyc yet)")
    args = parser.parse_args()
    if args.against:
        return against(args)
    only = {w for w in args.only.split(",") if w}
    tree = Path(os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0])
    if not args.no_compile:
        compile_tree(tree)
    config = tree / "config.toml"  # the default config of the tree measured (its keys are the ones it knows)
    load = os.getloadavg()
    print(f"cockpit command latency, {args.runs} runs each, wall ms (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        state = Path(tmp) / "state"
        engine = make_state(state, config)
        try:
            rows = [(["python -c pass"], [sys.executable, "-c", "pass"])]
            rows += [(c, [sys.executable, "-m", "cockpit", *c, "--config", str(config), "--state-dir", str(state)]
                      if c != ["--help"] else [sys.executable, "-m", "cockpit", "--help"])
                     for c in COMMANDS if not only or c[0] in only]
            for label, argv in rows:
                times, code, last = [], 0, ""
                for _ in range(args.runs):
                    ms, code, last, _out, _err = timed(argv, Path(tmp))  # not the repo: `-m cockpit` imports from PYTHONPATH
                    times.append(ms)
                shown = " ".join(label)
                note = "" if code == 0 else f"  (exit {code}: {last[:80]})"
                print(f"  {shown:<34} median {statistics.median(times):6.1f}  min {min(times):6.1f}  "
                      f"max {max(times):6.1f}{note}")
                if args.importtime and label[0] != "python -c pass":
                    for us, name in import_costs(argv, Path(tmp), 8):
                        print(f"      {us / 1000:6.1f} ms  {name}")
        finally:
            engine.send_signal(signal.SIGTERM)
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()


def against(args: argparse.Namespace) -> None:
    """A (this tree) against B (``--against``) on one state dir, each command's runs alternating."""
    only = {w for w in args.only.split(",") if w}
    trees = {"A": ROOT, "B": Path(args.against).resolve()}
    if not (trees["B"] / "cockpit").is_dir():
        raise SystemExit(f"--against {trees['B']}: not a checkout of the project (no cockpit/ in it)")
    if not args.no_compile:
        for tree in trees.values():
            compile_tree(tree)
    load = os.getloadavg()
    print(f"cockpit command latency, A = {trees['A']}, B = {trees['B']}, {args.runs} runs each, alternating, "
          f"wall ms (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f})")
    differ = 0
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        state = Path(args.state).resolve() if args.state else Path(tmp) / "state"
        engine = None if args.state else make_state(state, ROOT / "config.toml")
        try:
            commands = [["python -c pass"]] + [c for c in COMMANDS if not only or c[0] in only]
            for command in commands:
                argvs = {}
                for side, tree in trees.items():
                    if command == ["python -c pass"]:
                        argvs[side] = [sys.executable, "-c", "pass"]
                    elif command == ["--help"]:
                        argvs[side] = [sys.executable, "-m", "cockpit", "--help"]
                    else:
                        config = Path(args.config).resolve() if args.config else tree / "config.toml"
                        argvs[side] = [sys.executable, "-m", "cockpit", *command, "--config", str(config),
                                       "--state-dir", str(state)]
                times: dict[str, list[float]] = {"A": [], "B": []}
                outputs: dict[str, tuple[int, str, str]] = {}
                for i in range(args.runs):
                    for side in ("AB" if i % 2 == 0 else "BA"):
                        ms, code, _last, out, err = timed(argvs[side], Path(tmp), trees[side])
                        times[side].append(ms)
                        outputs[side] = (code, out, err.replace(str(trees[side]), "TREE"))
                a, b = statistics.median(times["A"]), statistics.median(times["B"])
                shown = " ".join(command)
                codes = f"  exit {outputs['A'][0]}/{outputs['B'][0]}" if outputs["A"][0] or outputs["B"][0] else ""
                same = ""
                if args.check_same and command != ["python -c pass"]:
                    if outputs["A"] == outputs["B"]:
                        same = "  same output"
                    elif command[0] == "status":
                        same = "  (output differs: the engine moved between runs)" if outputs["A"][0] == \
                            outputs["B"][0] else "  OUTPUT DIFFERS"
                    else:
                        same = "  OUTPUT DIFFERS"
                        differ += 1
                print(f"  {shown:<30} A median {a:6.1f} (min {min(times['A']):6.1f})  B median {b:6.1f} "
                      f"(min {min(times['B']):6.1f})  A/B {a / b:5.2f}{codes}{same}")
        finally:
            if engine is not None:
                engine.send_signal(signal.SIGTERM)
                try:
                    engine.wait(30)
                except subprocess.TimeoutExpired:
                    engine.kill()
    load = os.getloadavg()
    print(f"load at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" +
          (f"; {differ} commands printed something else" if args.check_same else ""))


if __name__ == "__main__":
    main()
